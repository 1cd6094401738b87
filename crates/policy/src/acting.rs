//! Acting: turning network outputs into actions, and running a network in an environment for
//! a fixed set of seeded episodes. Everything here runs on the inference device; an
//! [`Agent`] can only be built from a copy of a network moved off autodiff.
//!
//! Sampling happens on the host from the generator the caller passes, not from the device's
//! random numbers: that keeps runs reproducible across devices and lets a saved run continue
//! with the very same draws.

use burn::prelude::{Module, Tensor, TensorData};
use gradless_device::InferenceDevice;
use gradless_envs::{Actions, AutoresetMode, EnvError, EnvRng, MakeOptions, make_vector};
use thiserror::Error;

use crate::network::{ActorCritic, QNetwork};

/// Why acting failed.
#[derive(Debug, Error)]
pub enum ActError {
    /// The environment refused something (an action, a seed list).
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The device could not compute or return the network's outputs.
    #[error("reading network outputs from the device failed: {0}")]
    Device(String),
    /// The network produced NaN or infinite outputs.
    #[error("the network produced non-finite outputs")]
    NonFinite,
}

/// Reads a tensor back to the host as `f32` values.
pub fn read_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, ActError> {
    finite_f32(
        tensor
            .try_into_data()
            .map_err(|e| ActError::Device(e.to_string()))?,
    )
}

/// Read-back data as `f32` values, refusing NaN and infinities.
pub fn finite_f32(data: TensorData) -> Result<Vec<f32>, ActError> {
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ActError::Device(format!("{e:?}")))?;
    if values.iter().all(|v| v.is_finite()) {
        Ok(values)
    } else {
        Err(ActError::NonFinite)
    }
}

/// Uploads `rows` observations of `dim` values each as a `[rows, dim]` tensor.
pub fn observation_tensor(values: &[f32], dim: usize, device: &burn::prelude::Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len() / dim, dim]),
        device,
    )
}

/// How an action is chosen from the network's output.
#[derive(Debug)]
pub enum Selection<'a> {
    /// The most likely action: argmax of the logits or Q-values, the Gaussian mean.
    Greedy,
    /// A draw from the policy's distribution (for a Q-network, still the argmax).
    Sample(&'a mut EnvRng),
}

/// One action per env, in the form the vector envs take.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionBatch {
    /// One discrete action per env.
    Discrete(Vec<i64>),
    /// `dim` values per env, concatenated.
    Continuous(Vec<f32>),
}

impl ActionBatch {
    /// The batch as the envs take it.
    pub fn as_actions(&self) -> Actions<'_> {
        match self {
            ActionBatch::Discrete(a) => Actions::Discrete(a),
            ActionBatch::Continuous(a) => Actions::Continuous(a),
        }
    }
}

/// The index of the largest value (the first of equals, as `argmax` everywhere).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(best, max), (k, &v)| {
            if v > max { (k, v) } else { (best, max) }
        })
        .0
}

/// `log_softmax` of one row of logits, in `f64`.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let log_sum = logits
        .iter()
        .map(|&v| (f64::from(v) - max).exp())
        .sum::<f64>()
        .ln();
    logits
        .iter()
        .map(|&v| f64::from(v) - max - log_sum)
        .collect()
}

/// Draws an action from the categorical distribution with these logits; returns it with its
/// log-probability.
pub fn sample_categorical(logits: &[f32], rng: &mut EnvRng) -> (usize, f64) {
    let log_probs = log_softmax(logits);
    let u = rng.next_f64();
    let mut cumulative = 0.0;
    for (k, lp) in log_probs.iter().enumerate() {
        cumulative += lp.exp();
        if u < cumulative {
            return (k, *lp);
        }
    }
    // Rounding left the cumulative sum just under 1 and u above it: the last action.
    let last = log_probs.len() - 1;
    (last, log_probs[last])
}

/// Draws from a diagonal Gaussian into `out`; returns the draw's log-density.
pub fn sample_gaussian(mean: &[f32], log_std: &[f32], rng: &mut EnvRng, out: &mut [f32]) -> f64 {
    let mut log_density = 0.0;
    for ((o, &m), &ls) in out.iter_mut().zip(mean).zip(log_std) {
        let z = rng.standard_normal();
        *o = (f64::from(m) + f64::from(ls).exp() * z) as f32;
        log_density += gaussian_log_density_term(z, f64::from(ls));
    }
    log_density
}

/// One component's log-density `-z^2/2 - log_std - ln(2 pi)/2`, `z` the standardised value.
pub fn gaussian_log_density_term(z: f64, log_std: f64) -> f64 {
    -0.5 * z * z - log_std - 0.5 * std::f64::consts::TAU.ln()
}

/// A network ready to act: moved off autodiff (burn's `valid()`), so nothing it computes is
/// recorded for backward.
#[derive(Debug, Clone)]
pub struct Agent {
    network: AgentNetwork,
}

#[derive(Debug, Clone)]
enum AgentNetwork {
    ActorCritic(ActorCritic),
    QNetwork(QNetwork),
}

impl Agent {
    /// Acts with an inference copy of a PPO actor-critic.
    pub fn actor_critic(model: &ActorCritic) -> Self {
        Self {
            network: AgentNetwork::ActorCritic(model.valid()),
        }
    }

    /// Acts with an inference copy of a DQN Q-network.
    pub fn q_network(model: &QNetwork) -> Self {
        Self {
            network: AgentNetwork::QNetwork(model.valid()),
        }
    }

    /// The actions for `observations` (`rows * dim` values).
    pub fn act(
        &self,
        observations: &[f32],
        dim: usize,
        device: &InferenceDevice,
        selection: Selection<'_>,
    ) -> Result<ActionBatch, ActError> {
        let x = observation_tensor(observations, dim, device.device());
        let rows = observations.len() / dim;
        match &self.network {
            AgentNetwork::QNetwork(q) => {
                let values = read_f32(q.forward(x))?;
                let n = values.len() / rows;
                Ok(ActionBatch::Discrete(
                    values.chunks(n).map(|row| argmax(row) as i64).collect(),
                ))
            }
            AgentNetwork::ActorCritic(model) => {
                let outputs = read_f32(model.actor(x))?;
                let n = outputs.len() / rows;
                match (model.log_std(), selection) {
                    (None, Selection::Greedy) => Ok(ActionBatch::Discrete(
                        outputs.chunks(n).map(|row| argmax(row) as i64).collect(),
                    )),
                    (None, Selection::Sample(rng)) => Ok(ActionBatch::Discrete(
                        outputs
                            .chunks(n)
                            .map(|row| sample_categorical(row, rng).0 as i64)
                            .collect(),
                    )),
                    (Some(_), Selection::Greedy) => Ok(ActionBatch::Continuous(outputs)),
                    (Some(log_std), Selection::Sample(rng)) => {
                        let log_std = read_f32(log_std)?;
                        let mut actions = vec![0.0; outputs.len()];
                        for (mean, out) in outputs.chunks(n).zip(actions.chunks_mut(n)) {
                            sample_gaussian(mean, &log_std, rng, out);
                        }
                        Ok(ActionBatch::Continuous(actions))
                    }
                }
            }
        }
    }
}

/// One finished episode of [`run_seeded_episodes`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SeededEpisode {
    /// The seed its env was reset with.
    pub seed: u64,
    /// The sum of its rewards.
    #[serde(rename = "return")]
    pub episode_return: f64,
    /// Its number of steps.
    pub length: u32,
    /// Whether it ended in a terminal state (else the time limit cut it).
    pub terminated: bool,
}

/// Runs exactly `episodes` episodes of `env_id`, episode `i` from seed `first_seed + i`, all
/// side by side, and returns them in seed order. Every episode counts, long or short, so
/// the result does not favour episodes that end early.
pub fn run_seeded_episodes(
    agent: &Agent,
    env_id: &str,
    first_seed: u64,
    episodes: usize,
    device: &InferenceDevice,
    mut selection: Selection<'_>,
) -> Result<Vec<SeededEpisode>, ActError> {
    let mut env = make_vector(
        env_id,
        episodes,
        AutoresetMode::NextStep,
        MakeOptions::default(),
    )?;
    let dim = env.single_observation_space().flat_dim();
    let seeds: Vec<u64> = (0..episodes as u64).map(|i| first_seed + i).collect();
    let mut observations = env.reset_with_seeds(&seeds)?.to_vec();
    let mut finished: Vec<Option<SeededEpisode>> = vec![None; episodes];
    let mut remaining = episodes;
    while remaining > 0 {
        let selection = match &mut selection {
            Selection::Greedy => Selection::Greedy,
            Selection::Sample(rng) => Selection::Sample(rng),
        };
        let actions = agent.act(&observations, dim, device, selection)?;
        let step = env.step(actions.as_actions())?;
        for episode in step.episodes {
            let slot = &mut finished[episode.env_index];
            if slot.is_none() {
                *slot = Some(SeededEpisode {
                    seed: seeds[episode.env_index],
                    episode_return: episode.episode_return,
                    length: episode.length,
                    terminated: episode.terminated,
                });
                remaining -= 1;
            }
        }
        observations.copy_from_slice(step.observations);
    }
    Ok(finished.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{ActionHead, Activation};
    use burn::prelude::Device;

    #[test]
    fn categorical_draws_follow_the_probabilities() {
        let logits = [0.0f32, (3.0f32).ln()];
        let mut rng = EnvRng::from_seed(1);
        let n = 40_000;
        let ones = (0..n)
            .filter(|_| sample_categorical(&logits, &mut rng).0 == 1)
            .count();
        assert!((ones as f64 / n as f64 - 0.75).abs() < 0.01, "{ones}");
        let (action, log_prob) = sample_categorical(&logits, &mut rng);
        assert!((log_prob - [0.25f64, 0.75][action].ln()).abs() < 1e-6);
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
    }

    #[test]
    fn gaussian_log_density_matches_the_formula() {
        let mut rng = EnvRng::from_seed(2);
        let mut out = [0.0f32; 2];
        let (mean, log_std) = ([1.0f32, -2.0], [0.5f32, -1.0]);
        let log_density = sample_gaussian(&mean, &log_std, &mut rng, &mut out);
        let expected: f64 = (0..2)
            .map(|k| {
                let std = f64::from(log_std[k]).exp();
                let z = (f64::from(out[k]) - f64::from(mean[k])) / std;
                -0.5 * z * z - std.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
            })
            .sum();
        assert!(
            (log_density - expected).abs() < 1e-5,
            "{log_density} {expected}"
        );
    }

    /// Every episode is counted once, in seed order, whatever order they finish in; the
    /// same seeds give the same episodes.
    #[test]
    fn seeded_episodes_are_counted_once_and_reproducible() {
        let device = InferenceDevice::new(&Device::flex());
        let model = ActorCritic::new(
            4,
            &[8],
            Activation::Tanh,
            ActionHead::Categorical { n: 2 },
            &mut EnvRng::from_seed(4),
            &device.device().clone().autodiff(),
        );
        let agent = Agent::actor_critic(&model);
        let run = |first_seed| {
            run_seeded_episodes(
                &agent,
                "CartPole-v1",
                first_seed,
                7,
                &device,
                Selection::Greedy,
            )
            .unwrap()
        };
        let episodes = run(100);
        assert_eq!(
            episodes.iter().map(|e| e.seed).collect::<Vec<_>>(),
            (100..107).collect::<Vec<_>>()
        );
        assert_eq!(episodes, run(100));
        // The same seed gives the same episode whichever batch it runs in.
        assert_eq!(episodes[3], run(103)[0]);
        assert!(
            episodes
                .iter()
                .all(|e| e.length > 0 && e.episode_return > 0.0)
        );
    }
}
