//! Errors the environments report.

use thiserror::Error;

/// What can go wrong when making or stepping an environment.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EnvError {
    /// `make` was given an id that is not registered.
    #[error("unknown environment id `{id}`; known ids: {}", known.join(", "))]
    UnknownEnv {
        /// The id asked for.
        id: String,
        /// Every registered id.
        known: Vec<String>,
    },
    /// An action outside the action space (or NaN).
    #[error("invalid action {action} for {env}: {reason}")]
    InvalidAction {
        /// The environment id.
        env: String,
        /// The action as given.
        action: String,
        /// Why it was refused.
        reason: String,
    },
    /// `step` was called before the first `reset`.
    #[error("{env}: step called before reset")]
    ResetNeeded {
        /// The environment id.
        env: String,
    },
    /// An explicit internal state of the wrong size or with non-finite values.
    #[error("invalid state for {env}: {reason}")]
    InvalidState {
        /// The environment id.
        env: String,
        /// Why it was refused.
        reason: String,
    },
    /// An option that the environment does not have or whose value it refuses.
    #[error("invalid option for {env}: {reason}")]
    InvalidOption {
        /// The environment id.
        env: String,
        /// Why it was refused.
        reason: String,
    },
    /// An env that has no tensor (device) version.
    #[error(
        "{env} has no device version (CartPole-v0, CartPole-v1, MountainCar-v0 and Pendulum-v1 do)"
    )]
    NoDeviceVersion {
        /// The environment id.
        env: String,
    },
    /// Envs on a burn device failed to run or to read back.
    #[error("device envs failed: {0}")]
    Device(String),
}
