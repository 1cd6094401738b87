//! The metrics log's lines (`metrics.jsonl`) as types: one per episode, update, evaluation
//! and checkpoint, each with an `event` tag and the `global_step` it belongs to. The field
//! names are stable: scripts read them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

/// What one PPO update measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PpoUpdate {
    /// Updates done so far, this one included.
    pub update: u64,
    /// The learning rate it used.
    pub learning_rate: f64,
    /// Its losses and diagnostics.
    #[serde(flatten)]
    pub losses: PpoLosses,
    /// How much of the returns' variance the values explain.
    pub explained_variance: f64,
    /// Environment steps per second over the iteration.
    pub sps: f64,
    /// Seconds of the iteration spent collecting its rollout (the read-back included).
    pub rollout_seconds: f64,
}

/// A PPO update's losses and diagnostics, each the mean over its minibatches (CleanRL's
/// `losses/*`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PpoLosses {
    /// Mean clipped surrogate loss.
    pub policy_loss: f32,
    /// Mean value loss.
    pub value_loss: f32,
    /// Mean policy entropy.
    pub entropy: f32,
    /// Mean approximate KL divergence from the rollout's policy.
    pub approx_kl: f32,
    /// Fraction of ratios the clip reached.
    pub clip_fraction: f32,
    /// Mean gradient norm before clipping.
    pub grad_norm: f32,
}

/// What DQN's training rounds since the last report measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DqnUpdate {
    /// Gradient steps taken so far.
    pub gradient_steps: u64,
    /// Mean TD loss.
    pub td_loss: f64,
    /// Mean Q-value of the actions taken.
    pub q_values: f64,
    /// Mean gradient norm before clipping.
    pub grad_norm: f64,
    /// The exploration rate now.
    pub epsilon: f64,
    /// Transitions in the replay buffer.
    pub buffer: usize,
    /// Seconds the reporting iteration took.
    pub iteration_seconds: f64,
}

/// What SAC's training rounds since the last report measured (CleanRL's `losses/*`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SacUpdate {
    /// Gradient steps taken so far.
    pub gradient_steps: u64,
    /// Mean value of the first critic on the sampled pairs.
    pub qf1_values: f64,
    /// The same for the second.
    pub qf2_values: f64,
    /// Mean squared error of the first critic.
    pub qf1_loss: f64,
    /// The same for the second.
    pub qf2_loss: f64,
    /// Mean actor loss (`alpha * log pi - min Q`).
    pub actor_loss: f64,
    /// Mean entropy-weight loss (0 when the weight is fixed).
    pub alpha_loss: f64,
    /// The entropy weight now.
    pub alpha: f64,
    /// Transitions in the replay buffer.
    pub buffer: usize,
    /// Seconds the reporting iteration took.
    pub iteration_seconds: f64,
}

/// An update's statistics, by algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Update {
    /// PPO's.
    Ppo(PpoUpdate),
    /// DQN's.
    Dqn(DqnUpdate),
    /// SAC's.
    Sac(SacUpdate),
}

/// One line of the metrics log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MetricsLine {
    /// A finished training episode.
    Episode {
        /// Episodes finished so far, this one included.
        episode: u64,
        /// Its return.
        #[serde(rename = "return")]
        episode_return: f64,
        /// Its length.
        length: u32,
        /// Whether it ended in a terminal state.
        terminated: bool,
        /// The step at which it ended.
        global_step: u64,
    },
    /// An update.
    Update {
        /// The step after it.
        global_step: u64,
        /// Mean return of the last 100 training episodes.
        training_return: Option<f64>,
        /// What it measured.
        #[serde(flatten)]
        stats: Update,
    },
    /// A greedy evaluation.
    Evaluation {
        /// The step it ran at.
        global_step: u64,
        /// Its number of episodes.
        episodes: usize,
        /// Their mean return.
        mean_return: f64,
        /// Every episode's return.
        returns: Vec<f64>,
        /// Training time up to it.
        train_seconds: f64,
        /// Whether it reached `evaluation.stop_at_return`.
        target_reached: bool,
    },
    /// A checkpoint written.
    Checkpoint {
        /// Its step.
        global_step: u64,
        /// Its directory.
        path: PathBuf,
        /// The training return it was written with.
        training_return: Option<f64>,
        /// Whether it became `best`.
        best: bool,
    },
}

impl MetricsLine {
    /// The line as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("metrics serialise")
    }
}

/// Lets an info line through at most once per interval (and the first at once), so that
/// the default output is a line every few seconds rather than one per update.
#[derive(Debug)]
pub(crate) struct Throttle {
    every: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Self {
        Self { every, last: None }
    }

    /// Whether a line may be shown now.
    pub(crate) fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < self.every) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_stable_names() {
        let update = MetricsLine::Update {
            global_step: 512,
            training_return: Some(20.5),
            stats: Update::Dqn(DqnUpdate {
                gradient_steps: 3,
                td_loss: 0.5,
                q_values: 1.5,
                grad_norm: 2.0,
                epsilon: 0.1,
                buffer: 100,
                iteration_seconds: 0.01,
            }),
        };
        let value: serde_json::Value = serde_json::from_str(&update.to_json()).unwrap();
        assert_eq!(value["event"], "update");
        assert_eq!(value["global_step"], 512);
        assert_eq!(value["td_loss"], 0.5);
        let episode = MetricsLine::Episode {
            episode: 1,
            episode_return: 9.0,
            length: 9,
            terminated: true,
            global_step: 9,
        };
        let value: serde_json::Value = serde_json::from_str(&episode.to_json()).unwrap();
        assert_eq!(value["event"], "episode");
        assert_eq!(value["return"], 9.0);
    }

    #[test]
    fn the_throttle_lets_the_first_line_through_then_waits() {
        let mut throttle = Throttle::new(Duration::from_secs(3600));
        assert!(throttle.ready());
        assert!(!throttle.ready());
        let mut always = Throttle::new(Duration::ZERO);
        assert!(always.ready() && always.ready());
    }
}
