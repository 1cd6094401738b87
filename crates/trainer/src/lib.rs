//! Training: PPO, DQN and SAC on a burn device with autodiff on. Rollouts act through an inference
//! copy of the network (`valid()`), only the updates run on the autodiff device. Every
//! checkpoint holds the complete training state (weights, optimizer moments, generator
//! states, env states, replay buffer), so a resumed run continues exactly where the saved one
//! stood.

mod adam;
mod algorithm;
mod binary;
pub mod config;
mod dqn;
mod grad_clip;
pub mod metrics;
pub mod metrics_log;
mod normalization;
mod ppo;
pub mod profile;
mod replay_buffer;
pub mod run_dir;
mod sac;
mod session;
mod tensorboard;
pub mod training_curves;

use std::path::PathBuf;

use thiserror::Error;

pub use adam::Adam;
pub use config::{AlgorithmConfig, AlgorithmKind, ConfigError, ConfigFile, SacConfig, TrainConfig};
pub use grad_clip::{clip_by_global_norm, global_norm};
pub use run_dir::RunDir;
pub use session::{Progress, RunSummary, Session, StopAt};

/// Why training stopped early or could not start.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] gradless_policy::CheckpointError),
    /// The environment refused something.
    #[error(transparent)]
    Env(#[from] gradless_envs::EnvError),
    /// Acting failed (device read-back, non-finite outputs).
    #[error(transparent)]
    Act(#[from] gradless_policy::ActError),
    /// The device could not be opened.
    #[error(transparent)]
    Device(#[from] gradless_device::DeviceError),
    /// A run file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A new run was pointed at a directory that already holds one.
    #[error("{0}: already holds a run (continue it with --resume, or choose another --out)")]
    RunExists(PathBuf),
    /// A new run was pointed at a folder that holds files of someone else's.
    #[error(
        "{folder}: not empty and not a gradless run (it holds `{first}`); train into a new or empty folder"
    )]
    ForeignFolder {
        /// The folder.
        folder: PathBuf,
        /// The first entry gradless did not write.
        first: String,
    },
    /// `--resume` was pointed at something that is not a run directory.
    #[error("{0}: not a run directory (no `latest` checkpoint and no config.toml)")]
    NotARun(PathBuf),
    /// `--resume` was pointed at a checkpoint instead of the run that holds it.
    #[error(
        "{0}: is a checkpoint, not a run; --resume takes a run directory (RUN for RUN/checkpoints/step-N)"
    )]
    CheckpointNotRun(PathBuf),
    /// A resume whose configuration or environment does not match the saved run.
    #[error("{path}: cannot resume: {reason}")]
    ResumeMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A loss or network output became NaN or infinite.
    #[error("training diverged at step {global_step}: {what} is not finite")]
    NonFinite {
        /// The environment step at which it was seen.
        global_step: u64,
        /// Which quantity.
        what: String,
    },
    /// Training stopped at a non-finite value; says what of the run is left.
    #[error("{cause}; {}", match kept {
        Some(checkpoint) => format!("the last good checkpoint, {}, is kept", checkpoint.display()),
        None => "no checkpoint was written before it (start the run again, e.g. with a lower learning rate)".to_string(),
    })]
    Diverged {
        /// The [`TrainError::NonFinite`] that stopped it.
        cause: Box<TrainError>,
        /// The newest checkpoint, if one was written.
        kept: Option<PathBuf>,
    },
}
