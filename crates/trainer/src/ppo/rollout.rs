//! Collecting a rollout: `num_steps` steps of an env batch, acting through an inference copy
//! of the network, and the advantages computed from it.
//!
//! One collector for both backends. Each step's tensors stay where they were made until the
//! rollout ends, then come back in one transfer. Actions are sampled where the observations
//! are: for CPU envs on the host from the run's own generator (outputs read back each step,
//! so a resumed run draws the same actions), for device envs on the device.
//!
//! Device envs on wgpu take another way where the actor fits the rollout kernel: many
//! steps of policy, draw and env per launch, the draws from the kernel's counter-based
//! generator keyed by a seed from the run's generator; then one batched forward pass gives
//! the values and log-probabilities.
//!
//! Truncation is not termination: when the time limit cuts an episode, the discounted value
//! of its last observation is added to the last reward. Under next-step autoreset (device
//! envs) that observation is the next row's; under same-step autoreset (CPU envs) the batch
//! hands it over, since the next row already starts the new episode.

use burn::prelude::{Device, Int, Tensor, TensorData};
use burn::tensor::Transaction;
use gradless_device_envs::{BatchObservations, EnvBatch, StepSignals, most_episodes};
use gradless_device_envs::{DeviceActions, DeviceVectorEnv, RecordedEpisode, signal};
use gradless_envs::EnvRng;
use gradless_policy::acting::{finite_f32, read_f32};
use gradless_policy::rollout_kernel::{KernelRollout, RolloutProgram, run_rollout};
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
/// likewise (the episodes' returns stay the envs' own). Device envs run in the rollout
/// kernel when `use_kernel` and the actor fits it.
///
/// Long because the host and device paths share the step loop's bookkeeping (normalisation,
/// episode records, read-backs) and must stay step for step alike.
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
    use_kernel: bool,
) -> Result<Collected, ActError> {
    if use_kernel && let Some(device_envs) = envs.device_envs() {
        let program = device_envs
            .kernel_physics()
            .ok_or_else(|| format!("{} has no kernel physics", device_envs.env_id()))
            .and_then(|physics| RolloutProgram::new(actor, head, physics));
        match program {
            Ok(program) => {
                return collect_in_kernel(
                    &program,
                    actor,
                    head,
                    device_envs,
                    rng,
                    normalizers,
                    steps,
                    gamma,
                );
            }
            Err(why) => tracing::debug!(%why, "the rollout steps one step at a time"),
        }
    }
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

/// [`collect`] in the rollout kernel: the kernel's records, then the values and
/// log-probabilities of the whole rollout in one forward pass each.
#[allow(clippy::too_many_arguments)]
fn collect_in_kernel(
    program: &RolloutProgram,
    actor: &ActorCritic,
    head: ActionHead,
    envs: &mut DeviceVectorEnv,
    rng: &mut EnvRng,
    normalizers: &mut Normalizers,
    steps: usize,
    gamma: f32,
) -> Result<Collected, ActError> {
    let n = envs.num_envs();
    let run = run_rollout(program, envs, steps, rng.next_u64())?;
    let outputs = actor.actor(run.observations.clone());
    let mut recorded = Recorded::default();
    let log_probs = match head {
        ActionHead::Categorical { .. } => {
            let actions = run.actions.clone().int();
            recorded.discrete_actions.push(actions.clone());
            Categorical::new(outputs).log_prob(actions.unsqueeze_dim(1))
        }
        ActionHead::Gaussian { .. } => {
            let actions = run.actions.clone().unsqueeze_dim(1);
            recorded.continuous_actions.push(actions.clone());
            let log_std = actor.log_std().expect("Gaussian heads have a log-std");
            DiagGaussian::new(outputs, log_std).log_prob(actions)
        }
    };
    recorded.log_probs.push(log_probs);
    recorded.values.push(actor.value(run.observations.clone()));
    recorded.observations.push(run.observations.clone());
    recorded.signals.push(run.signals.clone());
    let next_values = actor.value(envs.observations());
    let transitions = recorded.read_back(next_values, n, gamma, normalizers.rewards.as_mut())?;
    Ok(Collected {
        transitions,
        episodes: kernel_episodes(&run, n)?,
    })
}

/// The episodes that ended in a kernel rollout of `n` envs, in the order they ended, each
/// with the step it ended on.
fn kernel_episodes(run: &KernelRollout, n: usize) -> Result<Vec<RecordedEpisode>, ActError> {
    // Terminated and truncated, then the return and length after each step.
    let ends = Tensor::cat(
        vec![
            run.signals.clone().narrow(0, signal::TERMINATED, 2),
            run.totals.clone(),
        ],
        0,
    );
    let values = read_f32(ends)?;
    let columns = values.len() / 4;
    let row = |k: usize| &values[k * columns..(k + 1) * columns];
    let (terminated, truncated, returns, lengths) = (row(0), row(1), row(2), row(3));
    let mut finished = vec![0; n];
    let mut episodes = Vec::new();
    for k in (0..columns).filter(|&k| terminated[k] > 0.5 || truncated[k] > 0.5) {
        let env_index = k % n;
        episodes.push(RecordedEpisode {
            env_index,
            nth: finished[env_index],
            episode_return: f64::from(returns[k]),
            length: lengths[k] as u32,
            terminated: terminated[k] > 0.5,
            truncated: truncated[k] > 0.5,
            step: (k / n + 1) as u64,
        });
        finished[env_index] += 1;
    }
    Ok(episodes)
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

#[cfg(test)]
mod tests {
    use gradless_device::{Backend, InferenceDevice, open};
    use gradless_device_envs::make_device_vector;
    use gradless_policy::Activation;

    use super::*;

    /// A fresh CartPole actor's rollout of `steps` steps of 16 device envs on wgpu, in the
    /// rollout kernel or one step at a time.
    fn rollout(in_kernel: bool, steps: usize) -> Collected {
        let base = open(Backend::Wgpu).expect("a wgpu adapter (lavapipe on CI)");
        let device = InferenceDevice::new(&base).device().clone();
        let head = ActionHead::Categorical { n: 2 };
        let mut rng = EnvRng::from_seed(3);
        let actor = ActorCritic::new(4, &[64, 64], Activation::Tanh, head, &mut rng, &device);
        let mut envs = make_device_vector("CartPole-v1", 16, &device).unwrap();
        EnvBatch::reset(&mut envs, 5).unwrap();
        let mut normalizers = Normalizers::default();
        collect(
            &actor,
            head,
            &mut envs,
            &mut rng,
            &mut normalizers,
            steps,
            0.99,
            &device,
            in_kernel,
        )
        .unwrap()
    }

    fn mean_length(episodes: &[RecordedEpisode]) -> f64 {
        episodes.iter().map(|e| f64::from(e.length)).sum::<f64>() / episodes.len() as f64
    }

    /// The kernel's rollout is a rollout: the step after each episode's end restarts its env
    /// and is left out of the update, each episode's length is the steps its env acted
    /// since its previous one ended, the log-probabilities are the actor's, and a near-
    /// uniform policy's episodes last as long as in a per-step rollout (within five
    /// standard errors).
    #[test]
    fn kernel_rollouts_are_rollouts_of_the_policy() {
        let (n, steps) = (16, 120);
        let Collected {
            transitions,
            episodes,
        } = rollout(true, steps);
        assert_eq!(transitions.values.len(), n * steps);
        assert_eq!(transitions.observations.len(), n * steps * 4);
        assert!(
            transitions
                .discrete_actions
                .iter()
                .all(|&a| a == 0 || a == 1)
        );
        // A near-uniform policy: every log-probability close to ln 1/2.
        assert!(
            transitions
                .log_probs
                .iter()
                .all(|&p| (p - 0.5f32.ln()).abs() < 0.05),
            "{:?}",
            &transitions.log_probs[..8]
        );
        let mut acted = vec![0u32; n];
        let mut seen = vec![0usize; n];
        for t in 0..steps {
            for e in 0..n {
                let k = t * n + e;
                let restarts = t > 0 && transitions.dones[k - n];
                assert_eq!(transitions.valid[k], !restarts, "step {t}, env {e}");
                if restarts {
                    acted[e] = 0;
                    continue;
                }
                acted[e] += 1;
                if transitions.dones[k] {
                    let episode = episodes
                        .iter()
                        .find(|ep| ep.env_index == e && ep.nth == seen[e])
                        .expect("an episode per done transition");
                    assert_eq!(episode.step, (t + 1) as u64);
                    assert_eq!(episode.length, acted[e]);
                    assert_eq!(episode.episode_return, f64::from(acted[e]));
                    seen[e] += 1;
                }
            }
        }
        assert_eq!(seen.iter().sum::<usize>(), episodes.len());
        let stepped = rollout(false, steps).episodes;
        let (a, b) = (mean_length(&episodes), mean_length(&stepped));
        let spread = |e: &[RecordedEpisode], mean: f64| {
            e.iter()
                .map(|x| (f64::from(x.length) - mean).powi(2))
                .sum::<f64>()
                / e.len() as f64
        };
        let error = (spread(&episodes, a) / episodes.len() as f64
            + spread(&stepped, b) / stepped.len() as f64)
            .sqrt();
        assert!(
            (a - b).abs() < 5.0 * error,
            "{a} vs {b} (standard error {error})"
        );
    }
}
