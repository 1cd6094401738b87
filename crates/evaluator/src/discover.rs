//! What a path given to `gradless eval` holds: a checkpoint, a run (its checkpoints in step
//! order), an RL Zoo run (the model chosen from it) or a folder of runs.

use std::path::{Path, PathBuf};

use gradless_import::{ZooModel, ZooRun, zoo_run};
use gradless_policy::METADATA_FILE;

use crate::EvalError;

/// What a path given to `gradless eval` holds: checkpoints grouped by run.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalTarget {
    /// The run directory, when the checkpoints are a run's.
    pub run: Option<PathBuf>,
    /// Checkpoint directories (or policy files of other tools), in step order.
    pub checkpoints: Vec<PathBuf>,
    /// The RL Zoo run, when `run` is one (its one checkpoint the model chosen from it).
    pub zoo: Option<ZooRun>,
}

impl EvalTarget {
    fn alone(checkpoint: PathBuf) -> Self {
        Self {
            run: None,
            checkpoints: vec![checkpoint],
            zoo: None,
        }
    }

    fn run(run: PathBuf, checkpoints: Vec<PathBuf>) -> Self {
        Self {
            run: Some(run),
            checkpoints,
            zoo: None,
        }
    }

    fn zoo(run: ZooRun) -> Self {
        Self {
            run: Some(run.folder.clone()),
            checkpoints: vec![run.model.clone()],
            zoo: Some(run),
        }
    }
}

/// A folder with a `metadata.json` of any kind: opening it says what is wrong with one that
/// is not a regular file.
fn is_checkpoint(path: &Path) -> bool {
    path.join(METADATA_FILE).exists()
}

fn run_checkpoints(path: &Path) -> Result<Option<Vec<PathBuf>>, EvalError> {
    let found =
        gradless_policy::run_layout::run_checkpoints(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(found.map(|found| found.into_iter().map(|c| c.path).collect()))
}

/// Finds what `path` holds: a checkpoint directory, a run directory (every checkpoint in it,
/// in step order), an RL Zoo run folder (its model `zoo` picks), or a folder of these (and
/// checkpoints), in name order.
pub fn discover(path: &Path, zoo: ZooModel) -> Result<Vec<EvalTarget>, EvalError> {
    if is_checkpoint(path) || (path.is_file() && gradless_import::is_foreign_file(path)) {
        return Ok(vec![EvalTarget::alone(path.to_path_buf())]);
    }
    if let Some(run) = zoo_run(path, zoo)? {
        return Ok(vec![EvalTarget::zoo(run)]);
    }
    if let Some(checkpoints) = run_checkpoints(path)? {
        return Ok(vec![EvalTarget::run(path.to_path_buf(), checkpoints)]);
    }
    let mut children: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|entry| {
                // Outputs go into what is found here: a link would send them elsewhere.
                let link = entry.file_type().is_ok_and(|t| t.is_symlink());
                if link {
                    tracing::warn!(path = %entry.path().display(), "skipping a symbolic link in a folder of runs");
                }
                !link
            })
            .map(|entry| entry.path())
            .filter(|p| p.is_dir() || (p.is_file() && gradless_import::is_foreign_file(p)))
            .collect(),
        Err(_) => return Err(EvalError::NothingToEvaluate(path.to_path_buf())),
    };
    children.sort();
    let mut targets = Vec::new();
    for child in children {
        if is_checkpoint(&child) || child.is_file() {
            targets.push(EvalTarget::alone(child));
        } else if let Some(run) = zoo_run(&child, zoo)? {
            targets.push(EvalTarget::zoo(run));
        } else if let Some(checkpoints) = run_checkpoints(&child)? {
            targets.push(EvalTarget::run(child, checkpoints));
        }
    }
    if targets.iter().all(|t| t.checkpoints.is_empty()) {
        return Err(EvalError::NothingToEvaluate(path.to_path_buf()));
    }
    Ok(targets)
}

/// The one checkpoint `path` names: a checkpoint (or another tool's file) itself, or a
/// run's last one; a folder of several runs or checkpoints names none.
pub fn one_checkpoint(path: &Path) -> Result<PathBuf, EvalError> {
    match discover(path, ZooModel::Final)?.as_slice() {
        [target] => target
            .checkpoints
            .last()
            .cloned()
            .ok_or_else(|| EvalError::NoCheckpointYet(path.to_path_buf())),
        _ => Err(EvalError::SeveralTargets(path.to_path_buf())),
    }
}
