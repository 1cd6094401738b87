//! A run directory:
//!
//! ```text
//! runs/NAME/
//!   config.toml            the resolved configuration, for people to read
//!   metrics.jsonl          one JSON object per episode, update, evaluation and checkpoint
//!   checkpoints/step-0000051200/   one directory per checkpoint (see gradless-policy)
//!   latest                 the name of the newest complete checkpoint
//!   best                   the name of the checkpoint with the best training return
//! ```
//!
//! Order of writing keeps a killed process harmless: a checkpoint is complete before it is
//! renamed into `checkpoints/`, a pointer is replaced by renaming a complete file over it,
//! and old checkpoints are deleted only after the pointers have moved away from them.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::TrainError;

/// The checkpoints' folder inside a run directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The pointer to the newest checkpoint.
pub const LATEST: &str = "latest";
/// The pointer to the best checkpoint.
pub const BEST: &str = "best";
/// The metrics log.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The resolved configuration.
pub const CONFIG_FILE: &str = "config.toml";

/// A run directory on disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl RunDir {
    /// Creates a new run directory; refuses one that already holds files.
    pub fn create(root: &Path) -> Result<Self, TrainError> {
        if root.exists() && std::fs::read_dir(root).map_err(io(root))?.next().is_some() {
            return Err(TrainError::RunExists(root.to_path_buf()));
        }
        let checkpoints = root.join(CHECKPOINTS_DIR);
        std::fs::create_dir_all(&checkpoints).map_err(io(&checkpoints))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Opens an existing run directory (one with a `latest` checkpoint).
    pub fn open(root: &Path) -> Result<Self, TrainError> {
        let run = Self {
            root: root.to_path_buf(),
        };
        run.pointer(LATEST)?
            .ok_or_else(|| TrainError::NotARun(root.to_path_buf()))?;
        Ok(run)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file in the run directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Where the checkpoint taken at `global_step` goes.
    pub fn checkpoint_path(&self, global_step: u64) -> PathBuf {
        self.root
            .join(CHECKPOINTS_DIR)
            .join(format!("step-{global_step:010}"))
    }

    /// The checkpoint a pointer (`latest`, `best`) names, if it is set.
    pub fn pointer(&self, name: &str) -> Result<Option<PathBuf>, TrainError> {
        let path = self.root.join(name);
        match std::fs::read_to_string(&path) {
            Ok(target) => {
                let target = target.trim();
                if target.is_empty() || target.contains("..") || Path::new(target).is_absolute() {
                    return Err(TrainError::Io {
                        path,
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("does not name a checkpoint of this run: `{target}`"),
                        ),
                    });
                }
                Ok(Some(self.root.join(target)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TrainError::Io { path, source }),
        }
    }

    /// Points `name` at `checkpoint` (a directory inside this run), atomically.
    pub fn set_pointer(&self, name: &str, checkpoint: &Path) -> Result<(), TrainError> {
        let relative = checkpoint
            .strip_prefix(&self.root)
            .unwrap_or(checkpoint)
            .to_string_lossy()
            .into_owned();
        write_atomically(&self.root.join(name), format!("{relative}\n").as_bytes())
    }

    /// Every complete checkpoint directory, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<PathBuf>, TrainError> {
        let folder = self.root.join(CHECKPOINTS_DIR);
        let mut found: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(io(&folder))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| {
                path.is_dir()
                    && path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
            })
            .collect();
        found.sort();
        Ok(found)
    }

    /// Deletes all but the newest `keep_last` checkpoints, never one a pointer names, and
    /// any half-written checkpoint a killed process left behind.
    pub fn prune(&self, keep_last: usize) -> Result<(), TrainError> {
        let pointed: Vec<PathBuf> = [LATEST, BEST]
            .iter()
            .filter_map(|name| self.pointer(name).ok().flatten())
            .collect();
        let checkpoints = self.checkpoints()?;
        let old = checkpoints.len().saturating_sub(keep_last);
        for path in &checkpoints[..old] {
            if !pointed.contains(path) {
                std::fs::remove_dir_all(path).map_err(io(path))?;
            }
        }
        let folder = self.root.join(CHECKPOINTS_DIR);
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))?.flatten() {
            if entry.file_name().to_string_lossy().contains(".partial-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }

    /// Appends lines to the metrics log.
    pub fn append_metrics(&self, lines: &[String]) -> Result<(), TrainError> {
        if lines.is_empty() {
            return Ok(());
        }
        let path = self.root.join(METRICS_FILE);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut text = lines.join("\n");
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io(&path))
    }

    /// Drops metrics logged after `global_step` (by a run that was killed after its last
    /// checkpoint and is now resumed from it, so those steps will be logged again).
    pub fn truncate_metrics_after(&self, global_step: u64) -> Result<(), TrainError> {
        let path = self.root.join(METRICS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(TrainError::Io { path, source }),
        };
        let kept: String = text
            .lines()
            .filter(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("global_step").and_then(serde_json::Value::as_u64))
                    .is_some_and(|step| step <= global_step)
            })
            .flat_map(|line| [line, "\n"])
            .collect();
        write_atomically(&path, kept.as_bytes())
    }
}

/// Writes `bytes` to `path` atomically (see [`gradless_policy::write_atomically`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    gradless_policy::write_atomically(path, bytes).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gradless-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn pointers_and_pruning_keep_what_is_pointed_at() {
        let root = scratch("prune");
        std::fs::create_dir_all(&root).unwrap();
        let run = RunDir::create(&root).expect("an empty directory may hold a new run");
        for step in [100, 200, 300, 400, 500] {
            std::fs::create_dir_all(run.checkpoint_path(step)).unwrap();
        }
        std::fs::create_dir_all(root.join("checkpoints/.step-0000000600.partial-1")).unwrap();
        run.set_pointer(BEST, &run.checkpoint_path(100)).unwrap();
        run.set_pointer(LATEST, &run.checkpoint_path(500)).unwrap();
        run.prune(2).unwrap();
        let names: Vec<String> = run
            .checkpoints()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["step-0000000100", "step-0000000400", "step-0000000500"]
        );
        assert!(!root.join("checkpoints/.step-0000000600.partial-1").exists());
        assert_eq!(run.pointer(LATEST).unwrap(), Some(run.checkpoint_path(500)));
        assert!(RunDir::open(&root).is_ok());
        assert!(matches!(
            RunDir::create(&root),
            Err(TrainError::RunExists(_))
        ));
        std::fs::write(root.join(LATEST), "../../etc").unwrap();
        assert!(
            run.pointer(LATEST)
                .unwrap_err()
                .to_string()
                .contains("latest")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn metrics_after_a_step_are_dropped() {
        let root = scratch("metrics");
        let run = RunDir::create(&root).unwrap();
        let lines: Vec<String> = [10, 20, 30]
            .iter()
            .map(|s| format!("{{\"event\":\"episode\",\"global_step\":{s}}}"))
            .collect();
        run.append_metrics(&lines).unwrap();
        run.truncate_metrics_after(20).unwrap();
        let text = std::fs::read_to_string(root.join(METRICS_FILE)).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!text.contains(":30"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
