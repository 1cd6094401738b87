//! Reward scaling as Gymnasium's `NormalizeReward` does it: each env keeps a discounted
//! return, `g = g * gamma * (1 - terminated) + r`, whose running variance (over every env and
//! step) scales the rewards the learner sees, `r / sqrt(var + epsilon)`, clipped as CleanRL
//! clips them. Part of the training state; the evaluator never sees it.

use gradless_policy::RunningMoments;
use serde::{Deserialize, Serialize};

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

    /// Scales step-major rewards (`t * num_envs + env`) in place, step by step, as the
    /// wrapper would have seen them.
    pub(crate) fn scale(&mut self, rewards: &mut [f32], terminated: &[bool]) {
        let n = self.returns.len();
        for (row, ends) in rewards.chunks_mut(n).zip(terminated.chunks(n)) {
            for ((g, &r), &end) in self.returns.iter_mut().zip(row.iter()).zip(ends) {
                let continues = if end { 0.0 } else { 1.0 };
                *g = *g * self.gamma * continues + f64::from(r);
            }
            let returns: Vec<f32> = self.returns.iter().map(|&g| g as f32).collect();
            self.moments.update(&returns);
            let std = (self.moments.var[0] + self.epsilon).sqrt();
            for r in row.iter_mut() {
                *r = (f64::from(*r) / std).clamp(-self.clip, self.clip) as f32;
            }
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
