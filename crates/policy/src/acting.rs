//! Acting: turning network outputs into actions, and running a network in an environment for
//! a fixed set of seeded episodes. Everything here runs on the inference device; an
//! [`Agent`] can only be built from a copy of a network moved off autodiff.
//!
//! Sampling happens on the host from the generator the caller passes, not from the device's
//! random numbers: that keeps runs reproducible across devices and lets a saved run continue
//! with the very same draws.

use burn::prelude::{Device, Module, Tensor, TensorData};
use gradless_device::InferenceDevice;
use gradless_envs::device::DeviceActions;
use gradless_envs::{Action, Actions, Env, EnvError, EnvRng, Observation};
use thiserror::Error;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::network::{ActorCritic, Architecture, QNetwork, TanhKernel};

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
    /// Something this way of acting cannot do.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// An episode plan that cannot be run as asked.
    #[error("{0}")]
    Plan(String),
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
    /// A draw from the policy's distribution, row `k` from generator `k` (for a Q-network,
    /// still the argmax).
    Sample(&'a mut [EnvRng]),
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

/// The network a checkpoint's policy acts with: PPO's actor-critic (its actor acts) or DQN's
/// Q-network, on whatever device and in whatever grad mode it was loaded.
#[derive(Debug, Clone)]
pub enum PolicyNetwork {
    /// PPO's actor-critic.
    ActorCritic(ActorCritic),
    /// DQN's Q-network.
    QNetwork(QNetwork),
}

impl PolicyNetwork {
    /// Loads the network a checkpoint holds (as its metadata says) onto `device`.
    pub fn load(checkpoint: &Checkpoint, device: &Device) -> Result<Self, CheckpointError> {
        Ok(match checkpoint.metadata().architecture {
            Architecture::ActorCritic { .. } => {
                Self::ActorCritic(checkpoint.load_actor_critic(device)?)
            }
            Architecture::QNetwork { .. } => Self::QNetwork(checkpoint.load_q_network(device)?),
        })
    }

    /// `[rows, outputs]`: logits or Q-values, or Gaussian means (then `true`).
    pub fn action_outputs(&self, observations: Tensor<2>) -> (Tensor<2>, bool) {
        match self {
            Self::QNetwork(q) => (q.forward(observations), false),
            Self::ActorCritic(model) => (model.actor(observations), model.log_std().is_some()),
        }
    }

    /// Visits every parameter.
    pub fn visit<V: burn::module::ModuleVisitor>(&self, visitor: &mut V) {
        match self {
            Self::ActorCritic(model) => model.visit(visitor),
            Self::QNetwork(model) => model.visit(visitor),
        }
    }
}

/// Greedy actions from read-back outputs (`rows` of them): each row's argmax, or the
/// Gaussian means as they are.
pub fn greedy_actions(outputs: Vec<f32>, rows: usize, continuous: bool) -> ActionBatch {
    if continuous {
        return ActionBatch::Continuous(outputs);
    }
    let width = outputs.len() / rows;
    ActionBatch::Discrete(
        outputs
            .chunks(width)
            .map(|row| argmax(row) as i64)
            .collect(),
    )
}

/// A network ready to act, with the inference device it acts on: moved off autodiff (burn's
/// `valid()`), so nothing it computes is recorded for backward, and free to use the
/// vectorised `tanh` on flex. It hands out neither its network nor its device: what holds an
/// agent can act, not train.
#[derive(Debug, Clone)]
pub struct Agent {
    network: PolicyNetwork,
    device: InferenceDevice,
}

impl Agent {
    /// Acts with an inference copy of a PPO actor-critic on `device`.
    pub fn actor_critic(model: &ActorCritic, device: &InferenceDevice) -> Self {
        Self::new(PolicyNetwork::ActorCritic(model.valid()), device)
    }

    /// Acts with an inference copy of a DQN Q-network on `device`.
    pub fn q_network(model: &QNetwork, device: &InferenceDevice) -> Self {
        Self::new(PolicyNetwork::QNetwork(model.valid()), device)
    }

    fn new(network: PolicyNetwork, device: &InferenceDevice) -> Self {
        let network = match network {
            PolicyNetwork::ActorCritic(model) => PolicyNetwork::ActorCritic(
                model
                    .to_device(device.device())
                    .with_tanh_kernel(TanhKernel::Vectorised),
            ),
            PolicyNetwork::QNetwork(model) => PolicyNetwork::QNetwork(
                model
                    .to_device(device.device())
                    .with_tanh_kernel(TanhKernel::Vectorised),
            ),
        };
        Self {
            network,
            device: device.clone(),
        }
    }

    /// Loads the policy a checkpoint holds onto the inference device.
    pub fn load(
        checkpoint: &Checkpoint,
        device: &InferenceDevice,
    ) -> Result<Self, CheckpointError> {
        Ok(Self::new(
            PolicyNetwork::load(checkpoint, device.device())?,
            device,
        ))
    }

    /// How many float tensors the network holds, and how many of them are on a device with
    /// autodiff or require gradients (0 for every agent: tests check it).
    pub fn tensor_census(&self) -> (usize, usize) {
        struct Census(usize, usize);
        impl burn::module::ModuleVisitor for Census {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                let tensor = param.val();
                self.0 += 1;
                if tensor.is_autodiff() || tensor.is_require_grad() {
                    self.1 += 1;
                }
            }
        }
        let mut census = Census(0, 0);
        self.network.visit(&mut census);
        (census.0, census.1)
    }

    /// Whether the agent's own device has autodiff on (never).
    pub fn device_is_autodiff(&self) -> bool {
        self.device.device().is_autodiff()
    }

    /// Uploads `rows * dim` observations to the agent's device.
    pub(crate) fn observation_tensor(&self, observations: &[f32], dim: usize) -> Tensor<2> {
        observation_tensor(observations, dim, self.device.device())
    }

    /// The agent's device, for the envs that step beside it in this crate.
    pub(crate) fn inference_device(&self) -> &InferenceDevice {
        &self.device
    }

    /// Greedy actions for a batch of observations already on the agent's device, left on
    /// the device: argmax of the logits or Q-values, or the Gaussian mean.
    pub fn greedy_device_actions(&self, observations: Tensor<2>) -> DeviceActions {
        match self.network.action_outputs(observations) {
            (means, true) => DeviceActions::Continuous(means),
            (outputs, false) => DeviceActions::Discrete(outputs.argmax(1).squeeze_dim(1)),
        }
    }

    /// The actions for `observations` (`rows * dim` values).
    pub fn act(
        &self,
        observations: &[f32],
        dim: usize,
        selection: Selection<'_>,
    ) -> Result<ActionBatch, ActError> {
        let x = self.observation_tensor(observations, dim);
        let rows = observations.len() / dim;
        let (outputs, continuous) = self.network.action_outputs(x);
        let outputs = read_f32(outputs)?;
        let n = outputs.len() / rows;
        // A Q-network acts greedily even when asked to sample.
        let (PolicyNetwork::ActorCritic(model), Selection::Sample(rngs)) =
            (&self.network, selection)
        else {
            return Ok(greedy_actions(outputs, rows, continuous));
        };
        match model.log_std() {
            None => Ok(ActionBatch::Discrete(
                outputs
                    .chunks(n)
                    .zip(rngs.iter_mut())
                    .map(|(row, rng)| sample_categorical(row, rng).0 as i64)
                    .collect(),
            )),
            Some(log_std) => {
                let log_std = read_f32(log_std)?;
                let mut actions = vec![0.0; outputs.len()];
                for ((mean, out), rng) in outputs
                    .chunks(n)
                    .zip(actions.chunks_mut(n))
                    .zip(rngs.iter_mut())
                {
                    sample_gaussian(mean, &log_std, rng, out);
                }
                Ok(ActionBatch::Continuous(actions))
            }
        }
    }
}

/// One finished episode of [`run_episodes`] (or of
/// [`run_device_episodes`](crate::run_device_episodes)).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SeededEpisode {
    /// Its index in the plan: it ran from seed `first_seed + episode`.
    pub episode: usize,
    /// The seed its env was reset with; `None` for device envs, whose starts come from the
    /// device's generator.
    pub seed: Option<u64>,
    /// The sum of its rewards.
    #[serde(rename = "return")]
    pub episode_return: f64,
    /// Its number of steps.
    pub length: u32,
    /// Whether it ended in a terminal state.
    pub terminated: bool,
    /// Whether the time limit cut it (possibly on the same step as a termination).
    pub truncated: bool,
}

/// Which episodes to run: episode `i` from seed `first_seed + i`, `num_envs` at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpisodePlan {
    /// Seed of episode 0.
    pub first_seed: u64,
    /// Episodes to run; every one is counted, long or short.
    pub episodes: usize,
    /// Envs stepped side by side (the network sees them as one batch).
    pub num_envs: usize,
    /// Sample actions from the policy (episode `i` from its own generator) instead of
    /// taking the greedy ones.
    pub stochastic: bool,
}

/// Episode `i`'s action generator (stochastic plans), apart from the env's own stream.
fn action_rng(seed: u64) -> EnvRng {
    EnvRng::from_seed(seed ^ 0x4143_5400_0000_0000)
}

/// Runs the plan's episodes of `env_id` and returns them in episode order. Each episode's
/// seed, and in stochastic plans its action generator, belongs to the episode, not to the
/// env slot that runs it, so results do not depend on `num_envs`; a slot that finishes an
/// episode starts the next unstarted one. `on_episode` sees each as it ends.
pub fn run_episodes(
    agent: &Agent,
    env_id: &str,
    plan: EpisodePlan,
    mut on_episode: impl FnMut(&SeededEpisode),
) -> Result<Vec<SeededEpisode>, ActError> {
    /// An env and the episode it is running.
    struct Slot {
        env: Box<dyn Env>,
        episode: Option<usize>,
        seed: u64,
        rng: EnvRng,
        observation: Observation,
        episode_return: f64,
        length: u32,
    }
    impl Slot {
        fn begin(&mut self, episode: usize, seed: u64) {
            self.episode = Some(episode);
            self.seed = seed;
            self.rng = action_rng(seed);
            self.observation = self.env.reset(Some(seed));
            self.episode_return = 0.0;
            self.length = 0;
        }
    }
    if plan
        .first_seed
        .checked_add(plan.episodes.saturating_sub(1) as u64)
        .is_none()
    {
        return Err(ActError::Plan(format!(
            "seeds {} + {} episodes pass the largest seed, {}",
            plan.first_seed,
            plan.episodes,
            u64::MAX
        )));
    }
    let seed_of = |episode: usize| plan.first_seed + episode as u64;
    let mut slots = Vec::new();
    for episode in 0..plan.num_envs.min(plan.episodes) {
        let mut env = gradless_envs::make(env_id)?;
        let observation = env.reset(None);
        let mut slot = Slot {
            env,
            episode: None,
            seed: 0,
            rng: action_rng(0),
            observation,
            episode_return: 0.0,
            length: 0,
        };
        slot.begin(episode, seed_of(episode));
        slots.push(slot);
    }
    let dim = slots
        .first()
        .map_or(1, |slot| slot.env.observation_space().flat_dim());
    let mut next_episode = slots.len();
    let mut finished: Vec<Option<SeededEpisode>> = vec![None; plan.episodes];
    let mut observations = Vec::with_capacity(slots.len() * dim);
    while !slots.is_empty() {
        observations.clear();
        for slot in &slots {
            observations.extend_from_slice(&slot.observation);
        }
        let actions = if plan.stochastic {
            let mut rngs: Vec<EnvRng> = slots.iter().map(|s| s.rng.clone()).collect();
            let actions = agent.act(&observations, dim, Selection::Sample(&mut rngs))?;
            for (slot, rng) in slots.iter_mut().zip(rngs) {
                slot.rng = rng;
            }
            actions
        } else {
            agent.act(&observations, dim, Selection::Greedy)?
        };
        let rows = slots.len();
        for (k, slot) in slots.iter_mut().enumerate() {
            let action = match &actions {
                ActionBatch::Discrete(a) => Action::Discrete(a[k]),
                ActionBatch::Continuous(a) => {
                    let width = a.len() / rows;
                    Action::Continuous(&a[k * width..(k + 1) * width])
                }
            };
            let step = slot.env.step(action)?;
            slot.episode_return += step.reward;
            slot.length += 1;
            slot.observation = step.observation;
            if step.terminated || step.truncated {
                let episode = slot.episode.expect("active slots run an episode");
                let result = SeededEpisode {
                    episode,
                    seed: Some(slot.seed),
                    episode_return: slot.episode_return,
                    length: slot.length,
                    terminated: step.terminated,
                    truncated: step.truncated,
                };
                on_episode(&result);
                finished[episode] = Some(result);
                if next_episode < plan.episodes {
                    slot.begin(next_episode, seed_of(next_episode));
                    next_episode += 1;
                } else {
                    slot.episode = None;
                }
            }
        }
        slots.retain(|slot| slot.episode.is_some());
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

    fn small_agent() -> Agent {
        let model = ActorCritic::new(
            4,
            &[8],
            Activation::Tanh,
            ActionHead::Categorical { n: 2 },
            &mut EnvRng::from_seed(4),
            &Device::flex().autodiff(),
        );
        Agent::actor_critic(&model, &InferenceDevice::new(&Device::flex()))
    }

    fn run(
        agent: &Agent,
        first_seed: u64,
        episodes: usize,
        num_envs: usize,
        stochastic: bool,
    ) -> Vec<SeededEpisode> {
        let plan = EpisodePlan {
            first_seed,
            episodes,
            num_envs,
            stochastic,
        };
        run_episodes(agent, "CartPole-v1", plan, |_| {}).unwrap()
    }

    /// Every episode is counted once, in episode order, whatever order they finish in, and
    /// each is the same whether 1, 3 or all envs run side by side, greedy or sampled.
    #[test]
    fn episodes_do_not_depend_on_how_many_envs_run_them() {
        let agent = small_agent();
        // Built from a network on an autodiff device: the agent's copy is not.
        assert_eq!(agent.tensor_census(), (8, 0));
        assert!(!agent.device_is_autodiff());
        for stochastic in [false, true] {
            let all = run(&agent, 100, 7, 7, stochastic);
            assert_eq!(
                all.iter()
                    .map(|e| (e.episode, e.seed.unwrap()))
                    .collect::<Vec<_>>(),
                (0..7).map(|i| (i, 100 + i as u64)).collect::<Vec<_>>()
            );
            assert_eq!(all, run(&agent, 100, 7, 3, stochastic));
            assert_eq!(all, run(&agent, 100, 7, 1, stochastic));
            assert!(all.iter().all(|e| e.length > 0 && e.episode_return > 0.0));
        }
        // The same seed gives the same episode in another plan.
        let shifted = run(&agent, 103, 2, 2, false);
        let all = run(&agent, 100, 7, 7, false);
        assert_eq!(
            (shifted[0].episode_return, shifted[0].length),
            (all[3].episode_return, all[3].length)
        );
    }
}
