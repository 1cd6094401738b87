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
//!   .gradless-run          marks the folder as a run gradless made
//! ```
//!
//! Order of writing keeps a killed process harmless: a checkpoint is complete before it is
//! renamed into `checkpoints/`, a pointer is replaced by renaming a complete file over it,
//! and old checkpoints are deleted only after the pointers have moved away from them. A
//! checkpoint newer than `latest` (renamed into place by a process killed before it moved
//! `latest`) is an orphan: the resumed run redoes those steps and replaces it once the new
//! checkpoint of that step is complete. Nothing is removed when a run is opened.
//!
//! Only one process writes a run at a time: a [`RunDir`] holds the run's lock for as long as
//! it lives, and a second writer is refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use gradless_files::DirLock;

use crate::TrainError;
use crate::metrics::MetricsLine;

pub use gradless_policy::run_layout::{CHECKPOINTS_DIR, CONFIG_FILE, RUN_MARKER};
use gradless_policy::run_layout::{
    RunCheckpoint, checkpoint_name, checkpoint_step, is_half_written, run_checkpoints,
};
/// The pointer to the newest checkpoint.
pub const LATEST: &str = "latest";
/// The pointer to the best checkpoint.
pub const BEST: &str = "best";
/// The metrics log.
pub const METRICS_FILE: &str = "metrics.jsonl";
const RUN_MARKER_TEXT: &[u8] = b"a run directory of gradless\n";

/// Whether a file name is a TensorBoard event file's (the same metrics, for TensorBoard).
fn is_event_file(name: &str) -> bool {
    name.starts_with("events.out.tfevents.")
}
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
    /// Creates a new run directory in a new or empty folder, or in a folder gradless marked
    /// as a run that wrote no checkpoint yet (killed or failed before its first), which is
    /// started afresh: its metrics and event files go, nothing else. A folder holding anything
    /// gradless did not write, or a run with checkpoints, is refused.
    pub fn create(root: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        // Looked at before the lock is taken, so that a refused folder gets no `.lock`, and
        // again under it, since another process may have started a run meanwhile.
        check_new_run_folder(root)?;
        let lock = lock(root)?;
        let leftovers = check_new_run_folder(root)?;
        write_atomically(&root.join(RUN_MARKER), RUN_MARKER_TEXT)?;
        let run = Self {
            root: root.to_path_buf(),
            _lock: lock,
        };
        for path in leftovers {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
                _ => {}
            }
        }
        gradless_files::create_dir_inside(root, Path::new(CHECKPOINTS_DIR)).map_err(io(root))?;
        Ok(run)
    }

    /// Opens an existing run directory for writing. `Ok(None)` when it holds a run that wrote
    /// no checkpoint yet (it has its `config.toml` but no `latest`): such a run starts again.
    pub fn open(root: &Path) -> Result<Option<Self>, TrainError> {
        if root.join(gradless_policy::METADATA_FILE).exists() {
            return Err(TrainError::CheckpointNotRun(root.to_path_buf()));
        }
        if !root.join(CONFIG_FILE).is_file() && !root.join(LATEST).exists() {
            return Err(TrainError::NotARun(root.to_path_buf()));
        }
        let run = Self {
            root: root.to_path_buf(),
            _lock: lock(root)?,
        };
        if std::fs::symlink_metadata(root.join(RUN_MARKER)).is_err() {
            // A run made before runs were marked.
            write_atomically(&root.join(RUN_MARKER), RUN_MARKER_TEXT)?;
        }
        Ok(run.pointer(LATEST)?.map(|_| run))
    }

    /// Fails when the run directory is gone or is no longer this run (deleted or replaced
    /// while training): the run stops rather than write a run without its config.
    pub fn check_present(&self) -> Result<(), TrainError> {
        let marked = [RUN_MARKER, CHECKPOINTS_DIR]
            .iter()
            .all(|name| std::fs::symlink_metadata(self.root.join(name)).is_ok());
        if marked {
            Ok(())
        } else {
            Err(TrainError::Io {
                path: self.root.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the run directory was removed or replaced while training; stopping",
                ),
            })
        }
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
            .join(checkpoint_name(global_step))
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
            .filter(|step| checkpoint_step(step).is_some());
        let Some(step) = checkpoint else {
            return Err(invalid(format!(
                "does not name a checkpoint of this run (`{}`)",
                gradless_files::quoted(target)
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

    /// Every complete checkpoint of the run with its step, in step order.
    fn listed(&self) -> Result<Vec<RunCheckpoint>, TrainError> {
        Ok(run_checkpoints(&self.root)
            .map_err(io(&self.root))?
            .unwrap_or_default())
    }

    /// Every complete checkpoint directory, in step order.
    pub fn checkpoints(&self) -> Result<Vec<PathBuf>, TrainError> {
        Ok(self.listed()?.into_iter().map(|c| c.path).collect())
    }

    /// The checkpoints newer than `step` (left by a process killed between writing one and
    /// moving `latest`, or by a `latest` moved back by hand): a resumed run writes them again
    /// as it reaches their steps, each replaced only once its successor is complete.
    pub fn checkpoints_after(&self, step: u64) -> Result<Vec<u64>, TrainError> {
        Ok(self
            .listed()?
            .iter()
            .map(|c| c.step)
            .filter(|&s| s > step)
            .collect())
    }

    /// Deletes all but the newest `keep_last` checkpoints up to `step` (the one this process
    /// just wrote), never one a pointer names nor one newer than `step` (not yet written
    /// again by this process), and any half-written checkpoint a killed process left behind.
    pub fn prune(&self, keep_last: usize, step: u64) -> Result<(), TrainError> {
        let pointed: Vec<PathBuf> = [LATEST, BEST]
            .iter()
            .filter_map(|name| self.pointer(name).ok().flatten())
            .collect();
        let written: Vec<PathBuf> = self
            .listed()?
            .into_iter()
            .filter(|c| c.step <= step)
            .map(|c| c.path)
            .collect();
        let old = written.len().saturating_sub(keep_last);
        for path in &written[..old] {
            if !pointed.contains(path) {
                std::fs::remove_dir_all(path).map_err(io(path))?;
            }
        }
        let folder = self.root.join(CHECKPOINTS_DIR);
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_half_written(&name) && entry.file_type().is_ok_and(|t| t.is_dir()) {
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
        self.check_present()?;
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

/// Checks that `root` may hold a new run: it is empty, or a run gradless marked that wrote
/// no checkpoint yet. Returns what that unstarted run left (its metrics, event files and
/// checkpoints folder), to be removed; its `config.toml` and `device` are rewritten.
fn check_new_run_folder(root: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io(root))? {
        let entry = entry.map_err(io(root))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    // The lock this process (or a refused one) took is no one's data.
    names.retain(|name| name != gradless_files::LOCK_FILE);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let marked = std::fs::symlink_metadata(root.join(RUN_MARKER)).is_ok_and(|m| m.is_file());
    let regular =
        |name: &str| std::fs::symlink_metadata(root.join(name)).is_ok_and(|m| m.is_file());
    let ours = |name: &str| match name {
        RUN_MARKER | CONFIG_FILE | DEVICE_FILE | METRICS_FILE | LATEST | BEST => regular(name),
        CHECKPOINTS_DIR => {
            std::fs::symlink_metadata(root.join(name)).is_ok_and(|m| m.file_type().is_dir())
        }
        name => is_event_file(name) && regular(name),
    };
    if let Some(first) = names.iter().find(|name| !marked || !ours(name)) {
        return Err(TrainError::ForeignFolder {
            folder: root.to_path_buf(),
            first: gradless_files::quoted(first),
        });
    }
    let started = root.join(LATEST).exists()
        || run_checkpoints(root)
            .map_err(io(root))?
            .is_some_and(|found| !found.is_empty());
    if started {
        return Err(TrainError::RunExists(root.to_path_buf()));
    }
    let mut leftovers: Vec<PathBuf> = names
        .iter()
        .filter(|name| *name == METRICS_FILE || is_event_file(name))
        .map(|name| root.join(name))
        .collect();
    // Checkpoints a killed process left half-written (its own staging folders).
    if let Ok(entries) = std::fs::read_dir(root.join(CHECKPOINTS_DIR)) {
        leftovers.extend(entries.flatten().filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            is_half_written(&name).then(|| entry.path())
        }));
    }
    Ok(leftovers)
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

/// The largest metrics log a resume rewrites or figures read (some millions of episodes).
pub const MAX_METRICS_BYTES: u64 = 4 << 30;

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
        run.prune(2, 500).unwrap();
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
        // Past 10^10 steps names grow a digit: pruning goes by the step number.
        for step in [9_999_998_976, 10_000_000_000] {
            std::fs::create_dir_all(run.checkpoint_path(step)).unwrap();
        }
        run.set_pointer(LATEST, &run.checkpoint_path(10_000_000_000))
            .unwrap();
        run.prune(1, 10_000_000_000).unwrap();
        let kept = run.checkpoints().unwrap();
        assert!(
            kept.contains(&run.checkpoint_path(10_000_000_000))
                && !kept.contains(&run.checkpoint_path(9_999_998_976)),
            "{kept:?}"
        );
        // A checkpoint newer than the step just written is not this process's to remove.
        run.prune(0, 500).unwrap();
        assert!(run.checkpoint_path(10_000_000_000).is_dir());
        drop(run);
        // A folder holding only someone's config.toml is not taken over.
        let foreign = scratch("foreign-config");
        std::fs::write(foreign.join(CONFIG_FILE), "mine").unwrap();
        assert!(matches!(
            RunDir::create(&foreign),
            Err(TrainError::ForeignFolder { .. })
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

    /// A folder gradless did not mark as a run keeps every file, whatever their names; the
    /// refusal names the folder and the first foreign file, and leaves no `.lock`.
    #[test]
    fn a_new_run_never_takes_over_a_foreign_folder() {
        let foreign = scratch("foreign-run-files");
        let names = [
            METRICS_FILE,
            "events.out.tfevents.1.host",
            CONFIG_FILE,
            DEVICE_FILE,
        ];
        for name in names {
            std::fs::write(foreign.join(name), "mine").unwrap();
        }
        let err = RunDir::create(&foreign).unwrap_err().to_string();
        assert!(
            err.contains(&*foreign.to_string_lossy()) && err.contains("`config.toml`"),
            "{err}"
        );
        for name in names {
            assert_eq!(std::fs::read_to_string(foreign.join(name)).unwrap(), "mine");
        }
        assert!(!foreign.join(gradless_files::LOCK_FILE).exists());

        // A marked run that wrote no checkpoint yet is started afresh: its metrics go,
        // a file someone put beside them does not.
        let unstarted = scratch("unstarted-run");
        drop(RunDir::create(&unstarted).unwrap());
        std::fs::write(unstarted.join(METRICS_FILE), "old").unwrap();
        std::fs::write(unstarted.join("notes.txt"), "mine").unwrap();
        let err = RunDir::create(&unstarted).unwrap_err().to_string();
        assert!(err.contains("`notes.txt`"), "{err}");
        std::fs::remove_file(unstarted.join("notes.txt")).unwrap();
        drop(RunDir::create(&unstarted).unwrap());
        assert!(!unstarted.join(METRICS_FILE).exists());
        std::fs::remove_dir_all(&foreign).unwrap();
        std::fs::remove_dir_all(&unstarted).unwrap();
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
