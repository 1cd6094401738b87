//! Collecting a rollout: `num_steps` steps of an env batch, acting through an inference copy
//! of the network, and the advantages computed from it.
//!
//! One collector for both backends. Each step's tensors stay where they were made until the
//! rollout ends, then come back in one transfer. Actions are sampled where the observations
//! are: for CPU envs on the host from the run's own generator (outputs read back each step,
//! so a resumed run draws the same actions), for device envs on the device.
//!
//! Truncation is not termination: when the time limit cuts an episode, the discounted value
//! of its last observation is added to the last reward. Under next-step autoreset (device
//! envs) that observation is the next row's; under same-step autoreset (CPU envs) the batch
//! hands it over, since the next row already starts the new episode.

use burn::prelude::{Device, Int, Tensor, TensorData};
use burn::tensor::Transaction;
use gradless_envs::device::{DeviceActions, RecordedEpisode, signal};
use gradless_envs::{BatchObservations, EnvBatch, EnvRng, StepSignals, most_episodes};
use gradless_policy::acting::{finite_f32, read_f32};
use gradless_policy::sampling::{Categorical, DiagGaussian, sample_categorical, sample_gaussian};
use gradless_policy::{ActError, ActionBatch, ActionHead, ActorCritic, AgentActions};

use crate::normalization::{Normalizers, RewardScaler};

/// Observations as the network takes them, uploaded to `device`: host values normalised
/// when the run normalises (device observations never are: config validation refuses it).
fn network_input(
    observations: &BatchObservations<'_>,
    normalizers: &Normalizers,
    dim: usize,
    device: &Device,
) -> Tensor<2> {
    match observations {
        BatchObservations::Host(values) if normalizers.observations.is_some() => {
            BatchObservations::Host(&normalizers.network_input(values)).to_tensor(dim, device)
        }
        observations => observations.to_tensor(dim, device),
    }
}

/// One rollout's transitions, step-major (`t * num_envs + env`).
#[derive(Debug, Default)]
pub(super) struct Transitions {
    pub observations: Vec<f32>,
    pub discrete_actions: Vec<i64>,
    pub continuous_actions: Vec<f32>,
    pub log_probs: Vec<f32>,
    pub values: Vec<f32>,
    /// Rewards, truncated episodes' bootstrap values added.
    pub rewards: Vec<f32>,
    /// The episode ended at this transition, either way.
    pub dones: Vec<bool>,
    /// Transitions the update learns from: not the steps on which an env restarted instead
    /// of acting.
    pub valid: Vec<bool>,
    /// The values of the observations after the last step, one per env.
    pub next_values: Vec<f32>,
}

/// A rollout's tensors, one per step, until they are read back.
#[derive(Default)]
struct Recorded {
    observations: Vec<Tensor<2>>,
    discrete_actions: Vec<Tensor<1, Int>>,
    continuous_actions: Vec<Tensor<2>>,
    log_probs: Vec<Tensor<1>>,
    values: Vec<Tensor<1>>,
    /// Each step's `[4, num_envs]` signals.
    signals: Vec<Tensor<2>>,
    /// Same-step autoreset: the steps that cut an episode, and the values of their final
    /// observations.
    final_values: Vec<(usize, Tensor<1>)>,
}

/// A collected rollout: its transitions and the episodes that ended in it.
pub(super) struct Collected {
    pub transitions: Transitions,
    pub episodes: Vec<RecordedEpisode>,
}

/// Runs `steps` steps of `envs` with `actor` (an inference copy on `device`), sampling host
/// actions from `rng`, and reads the rollout back. Observations are normalised, and their
/// statistics updated with each batch acted on, when `normalizers` says so; rewards scaled
/// likewise (the episodes' returns stay the envs' own).
#[allow(clippy::too_many_arguments)]
pub(super) fn collect(
    actor: &ActorCritic,
    head: ActionHead,
    envs: &mut dyn EnvBatch,
    rng: &mut EnvRng,
    normalizers: &mut Normalizers,
    steps: usize,
    gamma: f32,
    device: &Device,
) -> Result<Collected, ActError> {
    let n = envs.num_envs();
    let dim = envs.observation_dim();
    envs.record_episodes(most_episodes(envs.autoreset_mode(), steps));
    let host_log_std = match actor.log_std() {
        Some(log_std) => read_f32(log_std)?,
        None => Vec::new(),
    };
    let mut recorded = Recorded::default();
    for t in 0..steps {
        let observations = envs.observations();
        if let BatchObservations::Host(values) = &observations {
            normalizers.observe(values);
        }
        let x = network_input(&observations, normalizers, dim, device);
        let (actions, log_probs) = match observations {
            BatchObservations::Host(_) => {
                sample_on_host(actor, head, x.clone(), &host_log_std, rng)?
            }
            BatchObservations::Device(_) => sample_on_device(actor, head, x.clone()),
        };
        recorded.values.push(actor.value(x.clone()));
        recorded.observations.push(x);
        recorded.log_probs.push(log_probs);
        let step = envs.step(actions.as_batch())?;
        match &actions {
            AgentActions::Device(DeviceActions::Discrete(a)) => {
                recorded.discrete_actions.push(a.clone());
            }
            AgentActions::Device(DeviceActions::Continuous(a)) => {
                recorded.continuous_actions.push(a.clone());
            }
            AgentActions::Host(host) => match DeviceActions::upload(host.as_actions(), n, device) {
                DeviceActions::Discrete(a) => recorded.discrete_actions.push(a),
                DeviceActions::Continuous(a) => recorded.continuous_actions.push(a),
            },
        }
        if let (
            Some(finals),
            StepSignals::Host {
                terminated,
                truncated,
                ..
            },
        ) = (step.final_observations, &step.signals)
            && (0..n).any(|e| truncated[e] && !terminated[e])
        {
            let finals = network_input(&BatchObservations::Host(finals), normalizers, dim, device);
            recorded.final_values.push((t, actor.value(finals)));
        }
        recorded.signals.push(step.signals.to_tensor(device));
    }
    let next = network_input(&envs.observations(), normalizers, dim, device);
    let transitions =
        recorded.read_back(actor.value(next), n, gamma, normalizers.rewards.as_mut())?;
    let mut episodes = envs.read_records()?;
    // In the order they ended, as the envs reported them.
    episodes.sort_by_key(|e| (e.step, e.env_index));
    Ok(Collected {
        transitions,
        episodes,
    })
}

impl Recorded {
    /// Reads every step back in one transfer, scales the rewards when asked to, and adds
    /// the truncation bootstraps (in the critic's units, so after the scaling).
    fn read_back(
        self,
        next_values: Tensor<1>,
        n: usize,
        gamma: f32,
        reward_scaler: Option<&mut RewardScaler>,
    ) -> Result<Transitions, ActError> {
        let discrete = !self.discrete_actions.is_empty();
        let (final_steps, final_values): (Vec<usize>, Vec<Tensor<1>>) =
            self.final_values.into_iter().unzip();
        let mut transaction = Transaction::default()
            .register(Tensor::cat(self.observations, 0))
            .register(Tensor::cat(self.log_probs, 0))
            .register(Tensor::cat(self.values, 0))
            // `[4, steps * num_envs]`: each signal's row, step-major.
            .register(Tensor::cat(self.signals, 1))
            // The next values, then each cutting step's final values.
            .register(Tensor::cat([vec![next_values], final_values].concat(), 0));
        transaction = if discrete {
            transaction.register(Tensor::cat(self.discrete_actions, 0))
        } else {
            transaction.register(Tensor::cat(self.continuous_actions, 0))
        };
        let data = transaction
            .try_execute()
            .map_err(|e| ActError::Device(e.to_string()))?;
        let [observations, log_probs, values, signals, next, actions]: [TensorData; 6] =
            data.try_into().expect("six tensors registered");
        let signals = finite_f32(signals)?;
        let len = signals.len() / signal::COUNT;
        let row = |k: usize| &signals[k * len..(k + 1) * len];
        let flags = |k: usize| -> Vec<bool> { row(k).iter().map(|&v| v > 0.5).collect() };
        let terminated = flags(signal::TERMINATED);
        let truncated = flags(signal::TRUNCATED);
        let next = finite_f32(next)?;
        let (next_values, final_values) = next.split_at(n);
        let mut transitions = Transitions {
            observations: finite_f32(observations)?,
            log_probs: finite_f32(log_probs)?,
            values: finite_f32(values)?,
            rewards: row(signal::REWARD).to_vec(),
            dones: terminated
                .iter()
                .zip(&truncated)
                .map(|(t, c)| t | c)
                .collect(),
            valid: flags(signal::RESET).into_iter().map(|r| !r).collect(),
            next_values: next_values.to_vec(),
            ..Transitions::default()
        };
        if discrete {
            transitions.discrete_actions = actions
                .convert::<i64>()
                .try_into_vec::<i64>()
                .map_err(|e| ActError::Device(format!("{e:?}")))?;
        } else {
            transitions.continuous_actions = finite_f32(actions)?;
        }
        if let Some(scaler) = reward_scaler {
            scaler.scale(&mut transitions.rewards, &terminated);
        }
        // Only a cut that is not also a termination bootstraps.
        for k in (0..len).filter(|&k| truncated[k] && !terminated[k]) {
            let (t, e) = (k / n, k % n);
            let last_value = match final_steps.iter().position(|&s| s == t) {
                Some(at) => final_values[at * n + e],
                None => transitions
                    .values
                    .get(k + n)
                    .copied()
                    .unwrap_or(next_values[e]),
            };
            transitions.rewards[k] += gamma * last_value;
        }
        Ok(transitions)
    }
}

/// Samples on the host: reads the actor's outputs back and draws from `rng` (categorical
/// heads by inverse CDF, Gaussian ones with `log_std`).
fn sample_on_host(
    actor: &ActorCritic,
    head: ActionHead,
    observations: Tensor<2>,
    log_std: &[f32],
    rng: &mut EnvRng,
) -> Result<(AgentActions, Tensor<1>), ActError> {
    let device = observations.device();
    let rows = observations.dims()[0];
    let outputs = read_f32(actor.actor(observations))?;
    let width = outputs.len() / rows;
    let mut log_probs = Vec::with_capacity(rows);
    let actions = match head {
        ActionHead::Categorical { .. } => ActionBatch::Discrete(
            outputs
                .chunks(width)
                .map(|row| {
                    let (action, log_prob) = sample_categorical(row, rng);
                    log_probs.push(log_prob as f32);
                    action as i64
                })
                .collect(),
        ),
        ActionHead::Gaussian { .. } => {
            let mut actions = vec![0.0; outputs.len()];
            for (mean, out) in outputs.chunks(width).zip(actions.chunks_mut(width)) {
                log_probs.push(sample_gaussian(mean, log_std, rng, out) as f32);
            }
            ActionBatch::Continuous(actions)
        }
    };
    let log_probs = Tensor::from_data(TensorData::new(log_probs, [rows]), &device);
    Ok((AgentActions::Host(actions), log_probs))
}

/// Samples on the device with their log-probabilities: Gumbel-max for categorical heads
/// (the argmax of the logits plus Gumbel noise is a draw from their softmax), the mean plus
/// scaled normal noise for Gaussian ones. The draws come from the device's generator.
fn sample_on_device(
    actor: &ActorCritic,
    head: ActionHead,
    observations: Tensor<2>,
) -> (AgentActions, Tensor<1>) {
    let outputs = actor.actor(observations);
    let (actions, log_probs) = match head {
        ActionHead::Categorical { .. } => {
            let (actions, log_probs) = Categorical::sample(outputs);
            (
                DeviceActions::Discrete(actions.squeeze_dim::<1>(1)),
                log_probs,
            )
        }
        ActionHead::Gaussian { .. } => {
            let log_std = actor.log_std().expect("Gaussian heads have a log-std");
            let (actions, log_density) = DiagGaussian::new(outputs, log_std).sample();
            (DeviceActions::Continuous(actions), log_density)
        }
    };
    (AgentActions::Device(actions), log_probs)
}

/// Generalised advantage estimates, step-major (`t * num_envs + env`) like the rollout:
/// `rewards`, `values` and `dones` per transition, `next_values` per env for the
/// observation after the last step. A done transition does not bootstrap.
pub(super) fn gae(
    rewards: &[f32],
    values: &[f32],
    dones: &[bool],
    next_values: &[f32],
    gamma: f32,
    lambda: f32,
) -> Vec<f32> {
    let n = next_values.len();
    let steps = rewards.len() / n;
    let mut advantages = vec![0.0f32; rewards.len()];
    for (e, &last_value) in next_values.iter().enumerate() {
        let mut running = 0.0f32;
        for t in (0..steps).rev() {
            let k = t * n + e;
            let next_value = if t + 1 == steps {
                last_value
            } else {
                values[k + n]
            };
            let continues = if dones[k] { 0.0 } else { 1.0 };
            let delta = rewards[k] + gamma * next_value * continues - values[k];
            running = delta + gamma * lambda * continues * running;
            advantages[k] = running;
        }
    }
    advantages
}
