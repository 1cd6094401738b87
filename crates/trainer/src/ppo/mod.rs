//! PPO with clipped objective, GAE, advantage normalisation, clipped value loss and global
//! gradient-norm clipping, after CleanRL's `ppo.py` and `ppo_continuous_action.py`. Read top
//! to bottom: the training loop here, then [`rollout`] (collecting transitions, GAE),
//! [`loss`] (the update) and [`state`] (building, resuming and checkpointing a run).
//!
//! One iteration is one rollout (`num_envs x num_steps` transitions, acting through an
//! inference copy of the network) and one update (`update_epochs` passes in
//! `num_minibatches` shuffled minibatches on the autodiff device).
//!
//! With `env_backend = "device"` the envs step on the inference device beside the policy,
//! actions are sampled there too, and nothing is read back until the rollout ends. Device
//! envs restart on the step after an episode ends (Gymnasium's next-step autoreset); that
//! step's transition, whose action was ignored, is left out of the update.
//! On wgpu the whole rollout runs in the rollout kernel where the actor fits it
//! (`rollout_kernel = true`, the default): many steps of policy, draw and env per launch.

mod loss;
mod rollout;
mod state;

use std::time::Instant;

use burn::module::Module;

use gradless_device::{InferenceDevice, TrainingDevice};
use gradless_device_envs::EnvBatch;
use gradless_envs::{EnvRng, EpisodeStats};
use gradless_policy::{ActError, ActionHead, ActorCritic};

use crate::TrainError;
use crate::adam::Adam;
use crate::algorithm::{Core, Iteration};
use crate::config::PpoConfig;
use crate::metrics::{PpoUpdate, Update};
use crate::profile::Phase;
use rollout::{Collected, gae};

pub(crate) struct Ppo {
    config: PpoConfig,
    num_updates: u64,
    training: TrainingDevice,
    inference: InferenceDevice,
    model: ActorCritic,
    optimizer: Adam,
    envs: Box<dyn EnvBatch>,
    observation_dim: usize,
    head: ActionHead,
    rng: EnvRng,
    core: Core,
    updates: u64,
}

impl Ppo {
    /// One iteration: anneal the learning rate, collect a rollout, compute advantages and
    /// value targets, update.
    fn iteration(&mut self, iteration: &mut Iteration) -> Result<(), TrainError> {
        let started = Instant::now();
        let lr = if self.config.anneal_lr {
            self.config.learning_rate * (1.0 - self.updates as f64 / self.num_updates as f64)
        } else {
            self.config.learning_rate
        };
        let Collected {
            transitions,
            episodes,
        } = rollout::collect(
            &self.model.valid(),
            self.head,
            self.envs.as_mut(),
            &mut self.rng,
            &mut self.core.normalizers,
            self.config.num_steps,
            self.config.gamma as f32,
            self.inference.device(),
            self.config.rollout_kernel,
        )
        .map_err(|e| act_error(self.core.global_step, e))?;
        self.core.profiler.mark(Phase::Rollout);
        let rollout_seconds = started.elapsed().as_secs_f64();
        let n = self.envs.num_envs() as u64;
        iteration.episodes.extend(episodes.iter().map(|episode| {
            (
                self.core.global_step + episode.step * n,
                EpisodeStats {
                    env_index: episode.env_index,
                    episode_return: episode.episode_return,
                    length: episode.length,
                    terminated: episode.terminated,
                },
            )
        }));
        self.core.global_step += transitions.values.len() as u64;
        let advantages = gae(
            &transitions.rewards,
            &transitions.values,
            &transitions.dones,
            &transitions.next_values,
            self.config.gamma as f32,
            self.config.gae_lambda as f32,
        );
        let returns: Vec<f32> = advantages
            .iter()
            .zip(&transitions.values)
            .map(|(a, v)| a + v)
            .collect();
        self.core.profiler.mark(Phase::Advantages);
        let losses = self.update(&transitions, &advantages, &returns, lr)?;
        self.updates += 1;
        let seconds = started.elapsed().as_secs_f64();
        iteration.update = Some(Update::Ppo(PpoUpdate {
            update: self.updates,
            learning_rate: lr,
            losses,
            explained_variance: explained_variance(&transitions.values, &returns),
            sps: (transitions.values.len() as f64 / seconds).round(),
            rollout_seconds,
        }));
        Ok(())
    }

    fn non_finite(&self, what: &str) -> TrainError {
        non_finite(self.core.global_step, what)
    }
}

fn non_finite(global_step: u64, what: &str) -> TrainError {
    TrainError::NonFinite {
        global_step,
        what: what.to_string(),
    }
}

/// An acting error at `global_step`; non-finite outputs name the policy.
fn act_error(global_step: u64, error: ActError) -> TrainError {
    match error {
        ActError::NonFinite => non_finite(global_step, "the policy's output"),
        other => other.into(),
    }
}

/// `1 - Var(returns - values) / Var(returns)`: how much of the returns the critic explains.
fn explained_variance(values: &[f32], returns: &[f32]) -> f64 {
    let variance = |xs: &mut dyn Iterator<Item = f64>| {
        let xs: Vec<f64> = xs.collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64
    };
    let of_returns = variance(&mut returns.iter().map(|&r| f64::from(r)));
    if of_returns == 0.0 {
        return f64::NAN;
    }
    let of_residuals = variance(
        &mut returns
            .iter()
            .zip(values)
            .map(|(&r, &v)| f64::from(r) - f64::from(v)),
    );
    1.0 - of_residuals / of_returns
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two envs, three steps, every reward 1, values 1 (env 0) and 2 (env 1), next values 4;
    /// env 1's episode ends at step 1. Worked by hand, step-major (`t * 2 + env`).
    #[test]
    fn gae_matches_hand_computed_values() {
        let rewards = [1.0f32; 6];
        let values = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0];
        let dones = [false, false, false, true, false, false];
        let close = |got: &[f32], want: &[f32]| {
            assert!(
                got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6),
                "{got:?} vs {want:?}"
            );
        };
        // gamma 0.5, lambda 1: env 0 at t=0 is 1 + .5 + .25 + .125 * 4 - 1 = 1.25; env 1's
        // t=1 ends its episode (1 - 2), t=2 bootstraps (1 + .5 * 4 - 2), t=0 reaches only
        // t=1 (1 + .5 * 2 - 2 + .5 * (1 - 2) = -0.5).
        let full = gae(&rewards, &values, &dones, &[4.0, 4.0], 0.5, 1.0);
        close(&full, &[1.25, -0.5, 1.5, -1.0, 2.0, 1.0]);
        // lambda 0.5: env 0 deltas 0.5, 0.5, 2 give 0.75, 1.0, 2.0; env 1 deltas 0, -1, 1
        // give -0.25, -1, 1.
        let half = gae(&rewards, &values, &dones, &[4.0, 4.0], 0.5, 0.5);
        close(&half, &[0.75, -0.25, 1.0, -1.0, 2.0, 1.0]);
    }

    #[test]
    fn explained_variance_is_one_for_a_perfect_critic() {
        assert!((explained_variance(&[1.0, 2.0], &[1.0, 2.0]) - 1.0).abs() < 1e-12);
        assert!(explained_variance(&[1.0, 1.0], &[1.0, 1.0]).is_nan());
    }
}
