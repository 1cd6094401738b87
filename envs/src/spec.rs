//! What the registry knows of an id, and the keyword arguments `make` takes.

use serde::Serialize;

/// What Gymnasium's registry says about an id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EnvSpec {
    /// The id, e.g. `CartPole-v1`.
    pub id: &'static str,
    /// The `TimeLimit` that truncates episodes.
    pub max_episode_steps: Option<u32>,
    /// The return at which the task counts as solved.
    pub reward_threshold: Option<f64>,
}

/// Every id this crate registers, in Gymnasium's order.
pub const SPECS: [EnvSpec; 6] = [
    EnvSpec {
        id: "CartPole-v0",
        max_episode_steps: Some(200),
        reward_threshold: Some(195.0),
    },
    EnvSpec {
        id: "CartPole-v1",
        max_episode_steps: Some(500),
        reward_threshold: Some(475.0),
    },
    EnvSpec {
        id: "MountainCar-v0",
        max_episode_steps: Some(200),
        reward_threshold: Some(-110.0),
    },
    EnvSpec {
        id: "MountainCarContinuous-v0",
        max_episode_steps: Some(999),
        reward_threshold: Some(90.0),
    },
    EnvSpec {
        id: "Pendulum-v1",
        max_episode_steps: Some(200),
        reward_threshold: None,
    },
    EnvSpec {
        id: "Acrobot-v1",
        max_episode_steps: Some(500),
        reward_threshold: Some(-100.0),
    },
];

/// Keyword arguments of `gym.make` that the tasks accept.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MakeOptions {
    /// CartPole only: Sutton & Barto's reward (0 per step, -1 on failure).
    pub sutton_barto_reward: bool,
    /// When `TimeLimit` truncates an episode (`gym.make`'s `max_episode_steps`).
    pub step_limit: StepLimit,
    /// Pendulum only: its gravitational acceleration (Gymnasium's `g`).
    pub gravity: Option<f64>,
}

/// The steps an episode may take before it is truncated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StepLimit {
    /// The registered `max_episode_steps`.
    #[default]
    Registered,
    /// This many steps (at least one).
    Steps(u32),
    /// Never truncated here: a wrapper outside (Gymnasium's `TimeLimit`) counts the steps.
    Unlimited,
}
