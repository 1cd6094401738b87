//! Where a run directory keeps its checkpoints, as the trainer writes them and the
//! evaluator, `record` and `compare` find them: `RUN/checkpoints/step-N`, ordered by the
//! step number N (never by name: a run past 10^10 steps has longer names), reached without
//! links (a link would send what is written into a checkpoint outside the run).

use std::io;
use std::path::{Path, PathBuf};

/// The checkpoints' folder inside a run directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";

/// The file by which gradless marks a folder as a run it made: only such a folder is ever
/// taken over by a new run, and only the files a run writes are removed from it.
pub const RUN_MARKER: &str = ".gradless-run";

/// The resolved configuration a run records (runs made before [`RUN_MARKER`] have it).
pub const CONFIG_FILE: &str = "config.toml";

/// Whether `dir` holds a run gradless made: it is marked, or has its `config.toml`.
pub fn is_run_dir(dir: &Path) -> bool {
    dir.join(RUN_MARKER).is_file() || dir.join(CONFIG_FILE).is_file()
}

/// The run a checkpoint directory belongs to (`RUN/checkpoints/step-N`), if it is a run's:
/// what writes into the checkpoint must hold that run's lock. A checkpoint or `checkpoints`
/// folder inside a run that is a link is refused; a path that reaches a run's checkpoint
/// through a link of the caller's (an alias) gives the run it resolves to.
pub fn enclosing_run(checkpoint: &Path) -> io::Result<Option<PathBuf>> {
    if let Some(run) = run_by_name(checkpoint) {
        not_a_link(&run.join(CHECKPOINTS_DIR))?;
        not_a_link(checkpoint)?;
    }
    Ok(std::fs::canonicalize(checkpoint)
        .ok()
        .and_then(|real| run_by_name(&real)))
}

/// The run `checkpoint` lies in by its path's names alone.
fn run_by_name(checkpoint: &Path) -> Option<PathBuf> {
    let folder = checkpoint.parent()?;
    let run = folder.parent()?;
    (folder.file_name()? == CHECKPOINTS_DIR && is_run_dir(run)).then(|| run.to_path_buf())
}

/// Refuses `path` if it is a symbolic link (inside a run, where links are never followed).
fn not_a_link(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(link_refused(path)),
        _ => Ok(()),
    }
}

/// The start of a checkpoint directory's name; the step follows.
const STEP_PREFIX: &str = "step-";

/// The name of the checkpoint taken at `step` (zero-padded to ten digits, so a listing
/// reads in order up to 10^10 steps).
pub fn checkpoint_name(step: u64) -> String {
    format!("{STEP_PREFIX}{step:010}")
}

/// The step a checkpoint directory's name gives, if it is one (`step-` and decimal digits).
pub fn checkpoint_step(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(STEP_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Where [`crate::write_checkpoint`] stages checkpoint `name` before renaming it into place:
/// `.NAME.partial-PID`.
pub(crate) fn half_written_name(name: &str) -> String {
    format!(".{name}.partial-{}", std::process::id())
}

/// Whether a name in `checkpoints/` is a checkpoint being written, or left half-written by a
/// killed process (see [`half_written_name`]).
pub fn is_half_written(name: &str) -> bool {
    name.starts_with('.') && name.contains(".partial-")
}

/// A checkpoint directory of a run, with its step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCheckpoint {
    /// The training step it was written at (from its name).
    pub step: u64,
    /// The directory.
    pub path: PathBuf,
}

fn link_refused(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is a symbolic link; a run's checkpoints are its own folders, never links",
            path.display()
        ),
    )
}

/// The checkpoints of the run in `run`, in step order; `None` when it has no
/// `checkpoints` folder. A `checkpoints` folder or checkpoint that is a link is refused;
/// half-written checkpoints (hidden staging folders) and other names are passed over.
pub fn run_checkpoints(run: &Path) -> io::Result<Option<Vec<RunCheckpoint>>> {
    let folder = run.join(CHECKPOINTS_DIR);
    not_a_link(&folder)?;
    match std::fs::metadata(&folder) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&folder)? {
        let entry = entry?;
        let Some(step) = entry.file_name().to_str().and_then(checkpoint_step) else {
            continue;
        };
        not_a_link(&entry.path())?;
        if entry.file_type()?.is_dir() {
            found.push(RunCheckpoint {
                step,
                path: entry.path(),
            });
        }
    }
    found.sort_by_key(|c| c.step);
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradless_test_support::scratch;

    #[test]
    fn checkpoints_are_in_step_order_past_ten_digits() {
        let run = scratch("layout-order");
        for step in [10_000_000_000u64, 9_999_998_976, 5, 100] {
            std::fs::create_dir_all(run.join(CHECKPOINTS_DIR).join(checkpoint_name(step))).unwrap();
        }
        // Not checkpoints: a staging folder, a stray name, a file.
        std::fs::create_dir_all(run.join("checkpoints/.step-0000000600.partial-1")).unwrap();
        std::fs::create_dir_all(run.join("checkpoints/step-x")).unwrap();
        std::fs::write(run.join("checkpoints/step-7"), b"").unwrap();
        let steps: Vec<u64> = run_checkpoints(&run)
            .unwrap()
            .unwrap()
            .iter()
            .map(|c| c.step)
            .collect();
        assert_eq!(steps, [5, 100, 9_999_998_976, 10_000_000_000]);
        assert_eq!(checkpoint_step("step-10000000000"), Some(10_000_000_000));
        assert_eq!(checkpoint_step("step-+1"), None);
        assert_eq!(checkpoint_step("step-99999999999999999999"), None);
        assert!(run_checkpoints(&run.join("missing")).unwrap().is_none());
        std::fs::remove_dir_all(&run).unwrap();
    }

    #[test]
    fn links_inside_a_run_are_refused() {
        let run = scratch("layout-links");
        let elsewhere = scratch("layout-links-target");
        std::fs::create_dir_all(run.join(CHECKPOINTS_DIR)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, run.join("checkpoints/step-0000000001")).unwrap();
        let err = run_checkpoints(&run).unwrap_err().to_string();
        assert!(
            err.contains("step-0000000001") && err.contains("link"),
            "{err}"
        );
        std::fs::remove_dir_all(&run).unwrap();

        std::fs::create_dir_all(&run).unwrap();
        std::os::unix::fs::symlink(&elsewhere, run.join(CHECKPOINTS_DIR)).unwrap();
        let err = run_checkpoints(&run).unwrap_err().to_string();
        assert!(err.contains("checkpoints") && err.contains("link"), "{err}");
        std::fs::remove_dir_all(&run).unwrap();
        std::fs::remove_dir_all(&elsewhere).unwrap();
    }

    #[test]
    fn runs_enclose_their_checkpoints_and_aliases_of_them() {
        let root = scratch("enclosing");
        let checkpoint = root.join("run/checkpoints/step-0000000100");
        std::fs::create_dir_all(&checkpoint).unwrap();
        assert_eq!(enclosing_run(&checkpoint).unwrap(), None, "not a run");
        std::fs::write(root.join("run").join(RUN_MARKER), "").unwrap();
        let run = std::fs::canonicalize(root.join("run")).unwrap();
        assert_eq!(enclosing_run(&checkpoint).unwrap(), Some(run.clone()));
        // An alias of the checkpoint, outside the run: the real run is the one to lock.
        let alias = root.join("alias");
        std::os::unix::fs::symlink(&checkpoint, &alias).unwrap();
        assert_eq!(enclosing_run(&alias).unwrap(), Some(run));
        // A link inside the run is refused.
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let inside = root.join("run/checkpoints/step-0000000200");
        std::os::unix::fs::symlink(&elsewhere, &inside).unwrap();
        let err = enclosing_run(&inside).unwrap_err().to_string();
        assert!(
            err.contains("step-0000000200") && err.contains("link"),
            "{err}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
