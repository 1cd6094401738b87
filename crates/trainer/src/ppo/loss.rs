//! PPO's loss and update: the clipped surrogate objective, the (optionally clipped) value
//! loss and the entropy bonus, minimised over shuffled minibatches with Adam after clipping
//! the gradients' global norm.

use burn::optim::GradientsParams;
use burn::prelude::{Device, Int, Tensor, TensorData};
use gradless_policy::acting::{observation_tensor, read_f32};
use gradless_policy::sampling::{Categorical, DiagGaussian};
use gradless_policy::{ActError, ActionHead, ActorCritic};

use super::Ppo;
use super::rollout::Transitions;
use crate::TrainError;
use crate::grad_clip::clip_by_global_norm;
use crate::metrics::PpoLosses;
use crate::profile::Phase;

/// Diagnostics per minibatch, in [`PpoLosses`]' field order.
const DIAGNOSTICS: usize = 6;

/// The update's means, in the order the loss computes them.
fn losses_from_means(means: &[f32]) -> PpoLosses {
    let means: &[f32; DIAGNOSTICS] = means.try_into().expect("six statistics");
    PpoLosses {
        policy_loss: means[0],
        value_loss: means[1],
        entropy: means[2],
        approx_kl: means[3],
        clip_fraction: means[4],
        grad_norm: means[5],
    }
}

impl Ppo {
    /// The update: epochs of shuffled minibatches on the autodiff device. `returns` are the
    /// value targets (advantages plus values).
    pub(super) fn update(
        &mut self,
        rollout: &Transitions,
        advantages: &[f32],
        returns: &[f32],
        lr: f64,
    ) -> Result<PpoLosses, TrainError> {
        let config = self.config.clone();
        let device = self.training.device().clone();
        let dim = self.observation_dim;
        let batch = rollout.values.len();
        let mut indices: Vec<usize> = (0..batch)
            .filter(|&i| rollout.valid.get(i).copied().unwrap_or(true))
            .collect();
        // All transitions of CPU envs: the configured minibatch size.
        let minibatch = indices.len().div_ceil(config.num_minibatches);
        let mut model = self.model.clone();
        let mut statistics = Vec::with_capacity(config.update_epochs * config.num_minibatches);
        for _ in 0..config.update_epochs {
            self.rng.shuffle(&mut indices);
            for chunk in indices.chunks(minibatch) {
                let batch = Minibatch::gather(
                    chunk,
                    rollout,
                    advantages,
                    returns,
                    config.normalize_advantages,
                    (dim, self.head),
                    &device,
                );
                self.core.profiler.mark(Phase::Minibatch);
                let (new_log_probs, entropy) =
                    self.log_probs_and_entropy(&model, batch.observations.clone(), batch.actions);
                let log_ratio = new_log_probs - batch.log_probs;
                let ratio = log_ratio.clone().exp();
                let clip = config.clip_coef;
                let policy_loss = (batch.advantages.clone().neg() * ratio.clone())
                    .max_pair(batch.advantages.neg() * ratio.clone().clamp(1.0 - clip, 1.0 + clip))
                    .mean();
                let new_values = model.value(batch.observations);
                let unclipped = (new_values.clone() - batch.returns.clone()).powi_scalar(2);
                let value_loss = if config.clip_value_loss {
                    let old_values = batch.values;
                    let clipped = old_values.clone() + (new_values - old_values).clamp(-clip, clip);
                    unclipped
                        .max_pair((clipped - batch.returns).powi_scalar(2))
                        .mean()
                        .mul_scalar(0.5)
                } else {
                    unclipped.mean().mul_scalar(0.5)
                };
                let loss = policy_loss.clone() - entropy.clone().mul_scalar(config.entropy_coef)
                    + value_loss.clone().mul_scalar(config.value_coef);
                self.core.profiler.mark(Phase::Forward);
                let mut grads = GradientsParams::from_grads(loss.backward(), &model);
                self.core.profiler.mark(Phase::Backward);
                let grad_norm = clip_by_global_norm(&model, &mut grads, config.max_grad_norm)
                    .expect("the network has parameters");
                self.core.profiler.mark(Phase::GradClip);
                model = self.optimizer.step(lr, model, grads);
                self.core.profiler.mark(Phase::Optimizer);

                // Diagnostics, off the graph; read back once per update.
                statistics.push(diagnostics(
                    [policy_loss, value_loss, entropy, grad_norm],
                    ratio,
                    log_ratio,
                    clip,
                ));
                self.core.profiler.mark(Phase::Forward);
            }
        }
        self.model = model;
        let count = statistics.len();
        let means = read_f32(
            Tensor::cat(statistics, 0)
                .reshape([count, DIAGNOSTICS])
                .mean_dim(0),
        )
        .map_err(|e| match e {
            ActError::NonFinite => self.non_finite("the loss"),
            other => other.into(),
        })?;
        self.core.profiler.mark(Phase::Readback);
        self.core.profiler.updated();
        Ok(losses_from_means(&means))
    }

    /// The minibatch's actions' log-probabilities under `model`'s current policy, and the
    /// policy's mean entropy.
    fn log_probs_and_entropy(
        &self,
        model: &ActorCritic,
        observations: Tensor<2>,
        actions: MinibatchActions,
    ) -> (Tensor<1>, Tensor<1>) {
        match actions {
            MinibatchActions::Discrete(actions) => {
                let policy = Categorical::new(model.actor(observations));
                (policy.log_prob(actions), policy.mean_entropy())
            }
            MinibatchActions::Continuous(actions) => {
                let policy = DiagGaussian::new(
                    model.actor(observations),
                    model.log_std().expect("Gaussian head has a log-std"),
                );
                (policy.log_prob(actions), policy.mean_entropy())
            }
        }
    }
}

/// A minibatch's actions on the device, as the action head takes them.
enum MinibatchActions {
    /// `[n, 1]` action indices.
    Discrete(Tensor<2, Int>),
    /// `[n, action_dim]` actions.
    Continuous(Tensor<2>),
}

/// One minibatch of a rollout on the training device.
struct Minibatch {
    observations: Tensor<2>,
    actions: MinibatchActions,
    /// The log-probabilities the rollout acted with.
    log_probs: Tensor<1>,
    /// Advantages, normalised over the minibatch when the config says so.
    advantages: Tensor<1>,
    /// Value targets.
    returns: Tensor<1>,
    /// The values the rollout estimated.
    values: Tensor<1>,
}

impl Minibatch {
    /// The transitions `chunk` of `rollout` (observations of `dim` values, actions of
    /// `head`'s kind), gathered on the host and uploaded to `device`.
    fn gather(
        chunk: &[usize],
        rollout: &Transitions,
        advantages: &[f32],
        returns: &[f32],
        normalize_advantages: bool,
        (dim, head): (usize, ActionHead),
        device: &Device,
    ) -> Self {
        let n = chunk.len();
        let pick = |values: &[f32]| -> Vec<f32> { chunk.iter().map(|&i| values[i]).collect() };
        let rows = |values: &[f32], width: usize| -> Vec<f32> {
            chunk
                .iter()
                .flat_map(|&i| values[i * width..(i + 1) * width].iter().copied())
                .collect()
        };
        let upload =
            |values: Vec<f32>| Tensor::<1>::from_data(TensorData::new(values, [n]), device);
        let mut chunk_advantages = pick(advantages);
        if normalize_advantages {
            normalise(&mut chunk_advantages);
        }
        let actions = match head {
            ActionHead::Categorical { .. } => {
                let actions: Vec<i64> =
                    chunk.iter().map(|&i| rollout.discrete_actions[i]).collect();
                MinibatchActions::Discrete(Tensor::from_data(
                    TensorData::new(actions, [n, 1]),
                    device,
                ))
            }
            ActionHead::Gaussian { dim: action_dim } => {
                MinibatchActions::Continuous(Tensor::from_data(
                    TensorData::new(
                        rows(&rollout.continuous_actions, action_dim),
                        [n, action_dim],
                    ),
                    device,
                ))
            }
        };
        Self {
            observations: observation_tensor(&rows(&rollout.observations, dim), dim, device),
            actions,
            log_probs: upload(pick(&rollout.log_probs)),
            advantages: upload(chunk_advantages),
            returns: upload(pick(returns)),
            values: upload(pick(&rollout.values)),
        }
    }
}

/// A minibatch's six statistics, off the graph, in the order [`losses_from_means`] reads:
/// the policy loss, value loss, entropy, approximate KL, clip fraction and gradient norm.
fn diagnostics(
    [policy_loss, value_loss, entropy, grad_norm]: [Tensor<1>; 4],
    ratio: Tensor<1>,
    log_ratio: Tensor<1>,
    clip: f64,
) -> Tensor<1> {
    let ratio = ratio.inner();
    let log_ratio = log_ratio.inner();
    let approx_kl = (ratio.clone().sub_scalar(1.0) - log_ratio).mean();
    let clip_fraction = ratio
        .sub_scalar(1.0)
        .abs()
        .greater_elem(clip)
        .float()
        .mean();
    Tensor::cat(
        vec![
            policy_loss.inner(),
            value_loss.inner(),
            entropy.inner(),
            approx_kl,
            clip_fraction,
            grad_norm.inner(),
        ],
        0,
    )
}

/// `(x - mean) / (std + 1e-8)` with the sample standard deviation, as CleanRL normalises
/// advantages.
fn normalise(values: &mut [f32]) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let variance = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0).max(1.0);
    let scale = variance.sqrt() + 1e-8;
    for v in values {
        *v = ((f64::from(*v) - mean) / scale) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_values_have_zero_mean_unit_spread() {
        let mut values = vec![1.0f32, 2.0, 3.0, 4.0];
        normalise(&mut values);
        assert!(values.iter().sum::<f32>().abs() < 1e-6);
        let spread = values.iter().map(|v| v * v).sum::<f32>() / 3.0;
        assert!((spread - 1.0).abs() < 1e-5);
    }
}
