//! What a run normalises, with its running statistics: observations (the statistics are
//! part of the agent, see `gradless_policy::ObservationNormalizer`) and rewards.
//!
//! Reward scaling is Gymnasium's `NormalizeReward`: each env keeps a discounted return,
//! `g = g * gamma * (1 - terminated) + r`, whose running variance (over every env and step)
//! scales the rewards the learner sees, `r / sqrt(var + epsilon)`, clipped as CleanRL clips
//! them. Part of the training state; the evaluator never sees it.
//!
//! PPO normalises a rollout as it collects it. The off-policy algorithms keep raw
//! observations and rewards in their replay buffers and normalise what they sample with the
//! statistics of the moment, as SB3's `VecNormalize` does with a replay buffer.

use gradless_policy::{ObservationNormalizer, RunningMoments};
use serde::{Deserialize, Serialize};

use crate::config::NormalizationConfig;
use crate::replay_buffer::Batch;

/// What a run normalises, with its running statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Normalizers {
    /// Observation statistics, updated with every observation acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observations: Option<ObservationNormalizer>,
    /// Reward scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewards: Option<RewardScaler>,
}

impl Normalizers {
    /// Fresh statistics for what `config` asks to normalise.
    pub(crate) fn new(
        config: &NormalizationConfig,
        observation_dim: usize,
        num_envs: usize,
        gamma: f64,
    ) -> Self {
        Self {
            observations: config.observations.then(|| {
                ObservationNormalizer::new(
                    observation_dim,
                    config.clip_observations,
                    config.epsilon,
                )
            }),
            rewards: config
                .rewards
                .then(|| RewardScaler::new(num_envs, gamma, config.epsilon, config.clip_rewards)),
        }
    }

    /// Whether nothing is normalised (what checkpoints of such runs leave out).
    pub(crate) fn is_off(&self) -> bool {
        *self == Self::default()
    }

    /// Checks statistics read from a checkpoint against the run's settings.
    pub(crate) fn check_fits(
        &self,
        config: &NormalizationConfig,
        observation_dim: usize,
        num_envs: usize,
    ) -> Result<(), String> {
        let fits = self.observations.is_some() == config.observations
            && self.rewards.is_some() == config.rewards
            && self
                .observations
                .as_ref()
                .is_none_or(|o| o.check(observation_dim).is_ok())
            && self
                .rewards
                .as_ref()
                .is_none_or(|r| r.num_envs() == num_envs);
        if fits {
            Ok(())
        } else {
            Err("its normalisation statistics do not fit the run's normalization settings".into())
        }
    }

    /// Folds observations about to be acted on into the statistics.
    pub(crate) fn observe(&mut self, observations: &[f32]) {
        if let Some(normalizer) = &mut self.observations {
            normalizer.moments.update(observations);
        }
    }

    /// Observations as the network takes them (a copy, normalised when the run normalises).
    pub(crate) fn network_input(&self, observations: &[f32]) -> Vec<f32> {
        let mut values = observations.to_vec();
        if let Some(normalizer) = &self.observations {
            normalizer.apply(&mut values);
        }
        values
    }

    /// Folds one env step's rewards into the reward statistics.
    pub(crate) fn observe_rewards(&mut self, rewards: &[f64], terminated: &[bool]) {
        if let Some(scaler) = &mut self.rewards {
            scaler.observe(rewards.iter().map(|&r| r as f32), terminated);
        }
    }

    /// A replay minibatch as the learner sees it: observations normalised and rewards
    /// scaled with the statistics of the moment.
    pub(crate) fn apply_to_batch<A>(&self, batch: &mut Batch<A>) {
        if let Some(normalizer) = &self.observations {
            normalizer.apply(&mut batch.observations);
            normalizer.apply(&mut batch.next_observations);
        }
        if let Some(scaler) = &self.rewards {
            batch
                .rewards
                .iter_mut()
                .for_each(|r| *r = scaler.scaled(*r));
        }
    }
}

/// The running statistics and each env's discounted return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RewardScaler {
    returns: Vec<f64>,
    moments: RunningMoments,
    gamma: f64,
    epsilon: f64,
    clip: f64,
}

impl RewardScaler {
    pub(crate) fn new(num_envs: usize, gamma: f64, epsilon: f64, clip: f64) -> Self {
        Self {
            returns: vec![0.0; num_envs],
            moments: RunningMoments::new(1),
            gamma,
            epsilon,
            clip,
        }
    }

    /// Envs it keeps returns for.
    pub(crate) fn num_envs(&self) -> usize {
        self.returns.len()
    }

    /// Folds one step's rewards (one per env) into the returns and their statistics.
    fn observe(&mut self, rewards: impl Iterator<Item = f32>, terminated: &[bool]) {
        for ((g, r), &end) in self.returns.iter_mut().zip(rewards).zip(terminated) {
            let continues = if end { 0.0 } else { 1.0 };
            *g = *g * self.gamma * continues + f64::from(r);
        }
        let returns: Vec<f32> = self.returns.iter().map(|&g| g as f32).collect();
        self.moments.update(&returns);
    }

    /// A reward scaled by the current spread and clipped.
    fn scaled(&self, reward: f32) -> f32 {
        let std = (self.moments.var[0] + self.epsilon).sqrt();
        (f64::from(reward) / std).clamp(-self.clip, self.clip) as f32
    }

    /// Scales step-major rewards (`t * num_envs + env`) in place, step by step, as the
    /// wrapper would have seen them.
    pub(crate) fn scale(&mut self, rewards: &mut [f32], terminated: &[bool]) {
        let n = self.returns.len();
        for (row, ends) in rewards.chunks_mut(n).zip(terminated.chunks(n)) {
            self.observe(row.iter().copied(), ends);
            row.iter_mut().for_each(|r| *r = self.scaled(*r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A constant reward of 1 with gamma 0.5 builds returns 1, 1.5, 1.75, ...; the scale is
    /// their running spread; a termination restarts the env's return.
    #[test]
    fn rewards_are_divided_by_the_spread_of_the_discounted_return() {
        let mut scaler = RewardScaler::new(1, 0.5, 1e-8, 10.0);
        let mut rewards = vec![1.0f32; 3];
        scaler.scale(&mut rewards, &[false, false, true]);
        let mut moments = RunningMoments::new(1);
        let mut expected = Vec::new();
        for g in [1.0f32, 1.5, 1.0] {
            moments.update(&[g]);
            expected.push((1.0 / (moments.var[0] + 1e-8).sqrt()).clamp(-10.0, 10.0) as f32);
        }
        assert_eq!(rewards, expected);
        assert_eq!(scaler.returns, vec![1.0]);
        // The first step's spread is tiny: the clip holds the reward at 10.
        assert_eq!(rewards[0], 10.0);
    }
}
