//! A run directory:
//!
//! ```text
//! runs/NAME/
//!   config.toml            the resolved configuration, for people to read
//!   device                 the backend the run trains on (`flex`, `wgpu`)
//!   metrics.jsonl          one JSON object per episode, update, evaluation and checkpoint
//!   events.out.tfevents.*  the same as TensorBoard scalars (unless turned off)
//!   checkpoints/step-0000051200/   one directory per checkpoint (see gradless-policy)
//!   latest                 the name of the newest complete checkpoint
//!   best                   the name of the checkpoint with the best training return
//!   .lock                  held (an OS lock) by the process writing the run
//! ```
//!
//! Order of writing keeps a killed process harmless: a checkpoint is complete before it is
//! renamed into `checkpoints/`, a pointer is replaced by renaming a complete file over it,
//! and old checkpoints are deleted only after the pointers have moved away from them. A
//! checkpoint newer than `latest` (renamed into place by a process killed before it moved
//! `latest`) is an orphan: the resumed run redoes those steps and writes it again.
//!
//! Only one process writes a run at a time: a [`RunDir`] holds the run's lock for as long as
//! it lives, and a second writer is refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use gradless_files::DirLock;

use crate::TrainError;
use crate::metrics::MetricsLine;

/// The checkpoints' folder inside a run directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The pointer to the newest checkpoint.
pub const LATEST: &str = "latest";
/// The pointer to the best checkpoint.
pub const BEST: &str = "best";
/// The metrics log.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// Whether a file name is a TensorBoard event file's (the same metrics, for TensorBoard).
fn is_event_file(name: &str) -> bool {
    name.starts_with("events.out.tfevents.")
}
/// The resolved configuration.
pub const CONFIG_FILE: &str = "config.toml";
/// The backend the run trains on, for a run resumed before its first checkpoint.
pub const DEVICE_FILE: &str = "device";

/// The largest pointer file read (it holds one checkpoint name).
const MAX_POINTER_BYTES: u64 = 4096;

/// A run directory on disk, locked against other writers while this value lives.
#[derive(Debug)]
pub struct RunDir {
    root: PathBuf,
    _lock: DirLock,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl RunDir {
    /// Creates a new run directory. An empty directory, or one holding a run that wrote no
    /// checkpoint yet (killed or failed before its first), is taken and started afresh; one
    /// holding checkpoints or anything else is refused.
    pub fn create(root: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        let lock = lock(root)?;
        let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(root)
            .map_err(io(root))?
            .collect::<Result<_, _>>()
            .map_err(io(root))?;
        let unstarted = |entry: &std::fs::DirEntry| {
            let name = entry.file_name();
            match name.to_str() {
                Some(CONFIG_FILE | DEVICE_FILE | METRICS_FILE | gradless_files::LOCK_FILE) => true,
                Some(name) if is_event_file(name) && entry.path().is_file() => true,
                Some(CHECKPOINTS_DIR) => std::fs::read_dir(entry.path()).is_ok_and(|mut inside| {
                    inside.all(|e| {
                        e.is_ok_and(|e| e.file_name().to_string_lossy().contains(".partial-"))
                    })
                }),
                _ => false,
            }
        };
        // A lone config.toml may be the user's own file, not a run's: a run also has its
        // `device` file or its checkpoints folder.
        let named = |name: &str| entries.iter().any(|e| e.file_name() == name);
        let foreign_config = named(CONFIG_FILE) && !named(DEVICE_FILE) && !named(CHECKPOINTS_DIR);
        if !entries.iter().all(unstarted) || foreign_config {
            return Err(TrainError::RunExists(root.to_path_buf()));
        }
        let run = Self {
            root: root.to_path_buf(),
            _lock: lock,
        };
        // What the unstarted run left goes; its config.toml and device are rewritten.
        let event_files = entries
            .iter()
            .filter(|e| e.file_name().to_str().is_some_and(is_event_file))
            .map(|e| std::fs::remove_file(e.path()));
        for removed in [
            std::fs::remove_file(root.join(METRICS_FILE)),
            std::fs::remove_dir_all(root.join(CHECKPOINTS_DIR)),
        ]
        .into_iter()
        .chain(event_files)
        {
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(root)(e)),
                _ => {}
            }
        }
        gradless_files::create_dir_inside(root, Path::new(CHECKPOINTS_DIR)).map_err(io(root))?;
        Ok(run)
    }

    /// Opens an existing run directory for writing. `Ok(None)` when it holds a run that wrote
    /// no checkpoint yet (it has its `config.toml` but no `latest`): such a run starts again.
    pub fn open(root: &Path) -> Result<Option<Self>, TrainError> {
        if !root.join(CONFIG_FILE).is_file() && !root.join(LATEST).exists() {
            return Err(TrainError::NotARun(root.to_path_buf()));
        }
        let run = Self {
            root: root.to_path_buf(),
            _lock: lock(root)?,
        };
        Ok(run.pointer(LATEST)?.map(|_| run))
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

    /// The checkpoint a pointer (`latest`, `best`) names, if it is set. A pointer names a
    /// checkpoint directory of this run (`checkpoints/step-N`), reached without links.
    pub fn pointer(&self, name: &str) -> Result<Option<PathBuf>, TrainError> {
        let path = self.root.join(name);
        let invalid = |reason: String| TrainError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
        };
        let target = match gradless_files::read_text_bounded(&path, MAX_POINTER_BYTES) {
            Ok(target) => target,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(TrainError::Io { path, source }),
        };
        let target = target.trim();
        let checkpoint = target
            .strip_prefix(CHECKPOINTS_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|step| {
                step.starts_with("step-") && !step.contains(['/', '\\']) && *step != ".."
            });
        let Some(step) = checkpoint else {
            let shown: String = target.chars().take(80).collect();
            let more = if target.chars().count() > 80 {
                "..."
            } else {
                ""
            };
            return Err(invalid(format!(
                "does not name a checkpoint of this run (`{shown}{more}`)"
            )));
        };
        let resolved = self.root.join(CHECKPOINTS_DIR).join(step);
        for link in [self.root.join(CHECKPOINTS_DIR), resolved.clone()] {
            if std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(invalid(format!(
                    "names {}, which is a symbolic link; a run's checkpoints are its own",
                    link.display()
                )));
            }
        }
        Ok(Some(resolved))
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

    /// Deletes the checkpoints newer than `latest`: orphans a process killed between writing
    /// a checkpoint and moving `latest` left behind; the resumed run writes them again.
    pub fn remove_checkpoints_after(&self, latest: &Path) -> Result<(), TrainError> {
        for path in self.checkpoints()? {
            // Zero-padded step numbers: name order is step order.
            if path.file_name() > latest.file_name() {
                tracing::info!(checkpoint = %path.display(), "removing a checkpoint newer than `latest` (left by a killed process)");
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
            }
        }
        Ok(())
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
    pub fn append_metrics(&self, lines: &[MetricsLine]) -> Result<(), TrainError> {
        if lines.is_empty() {
            return Ok(());
        }
        let path = self.root.join(METRICS_FILE);
        let mut file = gradless_files::open_append(&path).map_err(io(&path))?;
        let mut text = String::new();
        for line in lines {
            text.push_str(&line.to_json());
            text.push('\n');
        }
        file.write_all(text.as_bytes()).map_err(io(&path))
    }

    /// Drops metrics logged after `global_step` (by a run that was killed after its last
    /// checkpoint and is now resumed from it, so those steps will be logged again), from the
    /// metrics log and from the TensorBoard event files.
    pub fn truncate_metrics_after(&self, global_step: u64) -> Result<(), TrainError> {
        gradless_tensorboard::drop_events_after(&self.root, global_step as i64)
            .map_err(io(&self.root))?;
        let path = self.root.join(METRICS_FILE);
        let text = match gradless_files::read_text_bounded(&path, MAX_METRICS_BYTES) {
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

/// The largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a TOML config file (a regular file of at most [`MAX_CONFIG_BYTES`]) with
/// `overrides` applied; errors name the file and the key.
pub fn read_config(path: &Path, overrides: &[String]) -> Result<crate::TrainConfig, TrainError> {
    let text = gradless_files::read_text_bounded(path, MAX_CONFIG_BYTES).map_err(io(path))?;
    crate::TrainConfig::from_toml(&text, overrides).map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// The config a run directory recorded (its `config.toml`), with `overrides` applied.
pub fn saved_config(root: &Path, overrides: &[String]) -> Result<crate::TrainConfig, TrainError> {
    read_config(&root.join(CONFIG_FILE), overrides)
}

/// The backend a run directory records, if it records one.
pub fn saved_backend(root: &Path) -> Result<Option<gradless_device::Backend>, TrainError> {
    let path = root.join(DEVICE_FILE);
    match gradless_files::read_text_bounded(&path, MAX_POINTER_BYTES) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|e: gradless_device::DeviceError| TrainError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TrainError::Io { path, source }),
    }
}

/// The largest metrics log a resume rewrites (some millions of episodes).
const MAX_METRICS_BYTES: u64 = 4 << 30;

/// Takes a run directory's lock, or says that another process writes it.
fn lock(root: &Path) -> Result<DirLock, TrainError> {
    DirLock::acquire(root).map_err(io(root))
}

/// Writes `bytes` to `path` atomically (see [`gradless_files::write_atomically`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    gradless_files::write_atomically(path, bytes).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradless_test_support::scratch;

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
        // Locked while `run` lives.
        let err = RunDir::open(&root).unwrap_err().to_string();
        assert!(err.contains("in use"), "{err}");
        for target in ["../../etc", "/etc", "checkpoints/../../x", "config.toml"] {
            std::fs::write(root.join(LATEST), target).unwrap();
            let err = run.pointer(LATEST).unwrap_err().to_string();
            assert!(
                err.contains("latest") && err.contains("does not name"),
                "{target}: {err}"
            );
        }
        run.set_pointer(LATEST, &run.checkpoint_path(500)).unwrap();
        drop(run);
        // A folder holding only someone's config.toml is not taken over.
        let foreign = scratch("foreign-config");
        std::fs::write(foreign.join(CONFIG_FILE), "mine").unwrap();
        assert!(matches!(
            RunDir::create(&foreign),
            Err(TrainError::RunExists(_))
        ));
        assert_eq!(
            std::fs::read_to_string(foreign.join(CONFIG_FILE)).unwrap(),
            "mine"
        );
        assert!(RunDir::open(&root).unwrap().is_some());
        assert!(matches!(
            RunDir::create(&root),
            Err(TrainError::RunExists(_))
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_metrics_log_that_is_a_link_is_not_written_through() {
        let root = scratch("metrics-link");
        let run = RunDir::create(&root).unwrap();
        let elsewhere = root.with_extension("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, root.join(METRICS_FILE)).unwrap();
        let line = MetricsLine::Checkpoint {
            global_step: 1,
            path: "x".into(),
            training_return: None,
            best: false,
        };
        let err = run.append_metrics(&[line]).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(!elsewhere.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn metrics_after_a_step_are_dropped() {
        let root = scratch("metrics");
        let run = RunDir::create(&root).unwrap();
        let lines: Vec<MetricsLine> = [10, 20, 30]
            .into_iter()
            .map(|global_step| MetricsLine::Episode {
                episode: 1,
                episode_return: 1.0,
                length: 1,
                terminated: true,
                global_step,
            })
            .collect();
        run.append_metrics(&lines).unwrap();
        let mut events = gradless_tensorboard::EventWriter::create(&root).unwrap();
        for step in [10, 20, 30] {
            events.scalar("charts/episodic_return", step, 1.0).unwrap();
        }
        events.flush().unwrap();
        run.truncate_metrics_after(20).unwrap();
        let text = std::fs::read_to_string(root.join(METRICS_FILE)).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!text.contains(":30"));
        let steps: Vec<i64> = gradless_tensorboard::read_events(events.path())
            .unwrap()
            .iter()
            .map(|e| e.step)
            .collect();
        // The version record (step 0), then the two kept.
        assert_eq!(steps, [0, 10, 20]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
