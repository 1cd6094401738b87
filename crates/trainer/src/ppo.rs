//! PPO with clipped objective, GAE, advantage normalisation, clipped value loss and global
//! gradient-norm clipping, after CleanRL's `ppo.py` and `ppo_continuous_action.py`.
//!
//! One iteration is one rollout (`num_envs x num_steps` transitions, acting through an
//! inference copy of the network) and one update (`update_epochs` passes in
//! `num_minibatches` shuffled minibatches on the autodiff device).
//!
//! Truncation is not termination: when the time limit cuts an episode, the value of its last
//! observation is added to the last reward (discounted), so returns are bootstrapped there,
//! and only true terminations end the bootstrap.
//!
//! With `env_backend = "device"` the envs step on the inference device beside the policy,
//! actions are sampled there too (Gumbel-max for categorical heads), and nothing is read back
//! until the rollout ends: then the transitions and the finished episodes come back in one
//! transfer, and the update proceeds as for CPU envs. Device envs restart on the step after
//! an episode ends (Gymnasium's next-step autoreset); that step's transition, whose action
//! was ignored, is left out of the update.

use std::path::Path;
use std::time::Instant;

use crate::metrics::{PpoUpdate, Update};
use burn::optim::GradientsParams;
use burn::prelude::{Int, Module, Tensor, TensorData};
use burn::tensor::Transaction;
use gradless_device::{InferenceDevice, TrainingDevice};
use gradless_envs::device::{
    DeviceActions, DeviceSnapshot, DeviceVectorEnv, EnvBackend, make_device_vector, signal,
};
use gradless_envs::{
    Actions, AutoresetMode, EnvRng, EpisodeStats, MakeOptions, VectorEnv, VectorSnapshot,
};
use gradless_policy::acting::{finite_f32, observation_tensor, read_f32};
use gradless_policy::sampling::{Categorical, DiagGaussian, sample_categorical, sample_gaussian};
use gradless_policy::{
    ActError, ActionHead, ActorCritic, Agent, Architecture, Checkpoint, CheckpointError, MODEL_FILE,
};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::adam::Adam;
#[cfg(test)]
use crate::adam::MomentValues;
use crate::config::{PpoConfig, TrainConfig};
use crate::grad_clip::clip_by_global_norm;
use crate::session::{Algorithm, Iteration, OPTIMIZER_FILE, save_module, state_error};

/// The trainer's generators are seeded with the run's seed xor these, apart from the envs'
/// streams (`seed + i`).
const INIT_STREAM: u64 = 0x494e_4954_0000_0000;
const SAMPLING_STREAM: u64 = 0x5050_4f00_0000_0000;

/// What a checkpoint records of a PPO run besides weights and optimizer: the CPU envs'
/// snapshot, or the device envs'.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PpoState {
    updates: u64,
    global_step: u64,
    rng: EnvRng,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<VectorSnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_env: Option<DeviceSnapshot>,
}

/// The rollout's envs.
enum RolloutEnvs {
    /// On the CPU, with the observations the next step acts on.
    Cpu {
        env: Box<dyn VectorEnv>,
        observations: Vec<f32>,
    },
    /// On the inference device.
    Device(Box<OnDevice>),
}

/// Device envs and the observations the next step acts on.
struct OnDevice {
    envs: DeviceVectorEnv,
    observations: Tensor<2>,
}

pub(crate) struct Ppo {
    config: PpoConfig,
    num_updates: u64,
    training: TrainingDevice,
    inference: InferenceDevice,
    model: ActorCritic,
    optimizer: Adam,
    envs: RolloutEnvs,
    observation_dim: usize,
    head: ActionHead,
    rng: EnvRng,
    updates: u64,
    global_step: u64,
}

/// One rollout's transitions, step-major (`t * num_envs + env`).
#[derive(Default)]
struct Rollout {
    observations: Vec<f32>,
    discrete_actions: Vec<i64>,
    continuous_actions: Vec<f32>,
    log_probs: Vec<f32>,
    values: Vec<f32>,
    rewards: Vec<f32>,
    dones: Vec<bool>,
    /// Transitions the update learns from; empty means all (device envs leave out the
    /// steps on which an env restarted).
    valid: Vec<bool>,
}

fn architecture(config: &TrainConfig, observation_dim: usize, head: ActionHead) -> Architecture {
    let network = &config.network;
    Architecture::ActorCritic {
        observation_dim,
        hidden: network.hidden.clone(),
        activation: network.activation,
        head,
    }
}

/// Generalised advantage estimates, step-major (`t * num_envs + env`) like the rollout:
/// `rewards`, `values` and `dones` per transition, `next_values` per env for the
/// observation after the last step. A done transition does not bootstrap.
fn gae(
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

impl Ppo {
    /// The run's envs, reset (CPU envs from `seed + i`, device envs from the device's
    /// generator seeded with `seed`), with the observation size and action head.
    fn make_envs(
        config: &TrainConfig,
        ppo: &PpoConfig,
        inference: &InferenceDevice,
    ) -> Result<(RolloutEnvs, usize, ActionHead), TrainError> {
        let (envs, observation_dim, action_space) = match ppo.env_backend {
            EnvBackend::Cpu => {
                let mut env = gradless_envs::make_vector(
                    &config.env,
                    ppo.num_envs,
                    AutoresetMode::SameStep,
                    MakeOptions::default(),
                )?;
                let dim = env.single_observation_space().flat_dim();
                let space = env.single_action_space().clone();
                let observations = env.reset(Some(config.seed)).to_vec();
                (RolloutEnvs::Cpu { env, observations }, dim, space)
            }
            EnvBackend::Device => {
                inference.device().seed(config.seed);
                let envs = make_device_vector(&config.env, ppo.num_envs, inference.device())?;
                let (dim, space) = (envs.observation_dim(), envs.action_space());
                let observations = envs.observations();
                (
                    RolloutEnvs::Device(Box::new(OnDevice { envs, observations })),
                    dim,
                    space,
                )
            }
        };
        let head = match action_space {
            gradless_envs::Space::Discrete { n } => ActionHead::Categorical { n: n as usize },
            space => ActionHead::Gaussian {
                dim: space.flat_dim(),
            },
        };
        Ok((envs, observation_dim, head))
    }

    /// A fresh run: network initialised from the device's seeded generator, envs reset
    /// with `seed + i`.
    pub(crate) fn new(
        config: &TrainConfig,
        ppo: &PpoConfig,
        training: &TrainingDevice,
    ) -> Result<Self, TrainError> {
        let (envs, observation_dim, head) = Self::make_envs(config, ppo, &training.inference())?;
        let network = &config.network;
        let model = ActorCritic::new(
            observation_dim,
            &network.hidden,
            network.activation,
            head,
            &mut EnvRng::from_seed(config.seed ^ INIT_STREAM),
            training.device(),
        );
        Ok(Self {
            num_updates: config.total_timesteps / ppo.batch_size() as u64,
            optimizer: Adam::new(ppo.adam_epsilon),
            config: ppo.clone(),
            training: training.clone(),
            inference: training.inference(),
            model,
            envs,
            observation_dim,
            head,
            rng: EnvRng::from_seed(config.seed ^ SAMPLING_STREAM),
            updates: 0,
            global_step: 0,
        })
    }

    /// Continues the run saved in `checkpoint`.
    pub(crate) fn resume(
        config: &TrainConfig,
        ppo: &PpoConfig,
        training: &TrainingDevice,
        checkpoint: &Checkpoint,
        state: serde_json::Value,
    ) -> Result<Self, TrainError> {
        let (mut envs, observation_dim, head) =
            Self::make_envs(config, ppo, &training.inference())?;
        let model = checkpoint.load_actor_critic(training.device())?;
        let optimizer_path = checkpoint.file(OPTIMIZER_FILE);
        let optimizer = Adam::load(&optimizer_path, &model, training.device())?;
        let state: PpoState =
            serde_json::from_value(state).map_err(|e| state_error(checkpoint, e))?;
        let missing = || {
            state_error(
                checkpoint,
                serde::de::Error::custom("no snapshot of this run's kind of envs"),
            )
        };
        match &mut envs {
            RolloutEnvs::Cpu { env, observations } => {
                let snapshot = state.env.as_ref().ok_or_else(missing)?;
                env.restore(snapshot)?;
                observations.clone_from(&snapshot.observations);
            }
            RolloutEnvs::Device(on) => {
                on.envs
                    .restore(state.device_env.as_ref().ok_or_else(missing)?)?;
                on.observations = on.envs.observations();
            }
        }
        Ok(Self {
            num_updates: config.total_timesteps / ppo.batch_size() as u64,
            config: ppo.clone(),
            training: training.clone(),
            inference: training.inference(),
            model,
            optimizer,
            envs,
            observation_dim,
            head,
            rng: state.rng,
            updates: state.updates,
            global_step: state.global_step,
        })
    }

    /// The current network (for tests that compare runs).
    #[cfg(test)]
    pub(crate) fn model(&self) -> &ActorCritic {
        &self.model
    }

    #[cfg(test)]
    pub(crate) fn optimizer(&self) -> &Adam {
        &self.optimizer
    }

    fn non_finite(&self, what: &str) -> TrainError {
        non_finite(self.global_step, what)
    }

    /// Collects one rollout with an inference copy of the network.
    fn collect(&mut self, iteration: &mut Iteration) -> Result<(Rollout, Vec<f32>), TrainError> {
        match self.envs {
            RolloutEnvs::Cpu { .. } => self.collect_on_cpu(iteration),
            RolloutEnvs::Device(_) => self.collect_on_device(iteration),
        }
    }

    /// A rollout of the CPU envs: every step uploads the observations, reads outputs back and
    /// samples on the host.
    fn collect_on_cpu(
        &mut self,
        iteration: &mut Iteration,
    ) -> Result<(Rollout, Vec<f32>), TrainError> {
        let actor = self.model.valid();
        let RolloutEnvs::Cpu { env, observations } = &mut self.envs else {
            unreachable!("called for CPU envs")
        };
        let n = env.num_envs();
        let dim = self.observation_dim;
        let device = self.inference.device().clone();
        let gamma = self.config.gamma as f32;
        let log_std = match actor.log_std() {
            Some(t) => read_f32(t).map_err(|e| act_error(self.global_step, e))?,
            None => Vec::new(),
        };
        let values_of = |observations: &[f32]| -> Result<Vec<f32>, ActError> {
            read_f32(actor.value(observation_tensor(observations, dim, &device)))
        };
        let mut rollout = Rollout::default();
        for _ in 0..self.config.num_steps {
            let x = observation_tensor(observations, dim, &device);
            let [outputs, values]: [TensorData; 2] = Transaction::default()
                .register(actor.actor(x.clone()))
                .register(actor.value(x))
                .try_execute()
                .map_err(|e| ActError::Device(e.to_string()))?
                .try_into()
                .expect("two tensors registered");
            let outputs = finite_f32(outputs).map_err(|e| act_error(self.global_step, e))?;
            let values = finite_f32(values).map_err(|e| act_error(self.global_step, e))?;
            let width = outputs.len() / n;
            rollout.observations.extend_from_slice(observations);
            rollout.values.extend_from_slice(&values);
            let first_action = rollout.continuous_actions.len();
            for row in outputs.chunks(width) {
                let log_prob = match self.head {
                    ActionHead::Categorical { .. } => {
                        let (action, log_prob) = sample_categorical(row, &mut self.rng);
                        rollout.discrete_actions.push(action as i64);
                        log_prob
                    }
                    ActionHead::Gaussian { dim } => {
                        let start = rollout.continuous_actions.len();
                        rollout.continuous_actions.resize(start + dim, 0.0);
                        sample_gaussian(
                            row,
                            &log_std,
                            &mut self.rng,
                            &mut rollout.continuous_actions[start..],
                        )
                    }
                };
                rollout.log_probs.push(log_prob as f32);
            }
            let actions = match self.head {
                ActionHead::Categorical { .. } => Actions::Discrete(
                    &rollout.discrete_actions[rollout.discrete_actions.len() - n..],
                ),
                ActionHead::Gaussian { .. } => {
                    Actions::Continuous(&rollout.continuous_actions[first_action..])
                }
            };
            let step = env.step(actions)?;
            self.global_step += n as u64;
            let mut rewards: Vec<f32> = step.rewards.iter().map(|&r| r as f32).collect();
            let cut: Vec<usize> = (0..n)
                .filter(|&e| step.truncated[e] && !step.terminated[e])
                .collect();
            let final_observations: Vec<f32> = cut
                .iter()
                .flat_map(|&e| step.final_observations[e * dim..(e + 1) * dim].to_vec())
                .collect();
            rollout
                .dones
                .extend((0..n).map(|e| step.terminated[e] || step.truncated[e]));
            iteration.episodes.extend(
                step.episodes
                    .iter()
                    .map(|episode| (self.global_step, *episode)),
            );
            observations.copy_from_slice(step.observations);
            if !cut.is_empty() {
                let bootstrap =
                    values_of(&final_observations).map_err(|e| act_error(self.global_step, e))?;
                for (&e, value) in cut.iter().zip(bootstrap) {
                    rewards[e] += gamma * value;
                }
            }
            rollout.rewards.extend(rewards);
        }
        let next_values = values_of(observations).map_err(|e| act_error(self.global_step, e))?;
        Ok((rollout, next_values))
    }

    /// A rollout of the device envs: acting, sampling and stepping stay on the device; the
    /// transitions and the finished episodes are read back once, at the end.
    fn collect_on_device(
        &mut self,
        iteration: &mut Iteration,
    ) -> Result<(Rollout, Vec<f32>), TrainError> {
        let actor = self.model.valid();
        let head = self.head;
        let steps = self.config.num_steps;
        let gamma = self.config.gamma as f32;
        let RolloutEnvs::Device(on) = &mut self.envs else {
            unreachable!("called for device envs")
        };
        let n = on.envs.num_envs();
        // An env finishes at most one episode every two steps (one acting, one restarting).
        on.envs.record_episodes(steps.div_ceil(2) + 1);
        let mut recorded = DeviceTransitions::default();
        for _ in 0..steps {
            let observations = on.observations.clone();
            let (actions, log_probs) = sample_on_device(&actor, head, observations.clone());
            recorded.values.push(actor.value(observations.clone()));
            recorded.observations.push(observations);
            recorded.log_probs.push(log_probs);
            let step = on.envs.step(&actions)?;
            match actions {
                DeviceActions::Discrete(a) => recorded.discrete_actions.push(a),
                DeviceActions::Continuous(a) => recorded.continuous_actions.push(a),
            }
            recorded.signals.push(step.signals);
            on.observations = step.observations;
        }
        let episodes = on.envs.read_records()?;
        let global_step = self.global_step;
        let (mut rollout, bootstrap, next_values) = recorded
            .read_back(actor.value(on.observations.clone()))
            .map_err(|e| act_error(global_step, e))?;
        // A truncated episode's last observation is what the env returned on its last step,
        // the next row's observation, whose value the next row holds.
        for (k, &cut) in bootstrap.iter().enumerate() {
            if cut {
                let next = rollout
                    .values
                    .get(k + n)
                    .copied()
                    .unwrap_or(next_values[k % n]);
                rollout.rewards[k] += gamma * next;
            }
        }
        self.global_step += (steps * n) as u64;
        iteration.episodes.extend(episodes.iter().map(|e| {
            (
                self.global_step,
                EpisodeStats {
                    env_index: e.env_index,
                    episode_return: e.episode_return,
                    length: e.length,
                    terminated: e.terminated,
                },
            )
        }));
        Ok((rollout, next_values))
    }

    /// The update: epochs of shuffled minibatches on the autodiff device. `returns` are the
    /// value targets (advantages plus values).
    fn update(
        &mut self,
        rollout: &Rollout,
        advantages: &[f32],
        returns: &[f32],
        lr: f64,
    ) -> Result<[f32; 6], TrainError> {
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
                let pick =
                    |values: &[f32]| -> Vec<f32> { chunk.iter().map(|&i| values[i]).collect() };
                let mut chunk_advantages = pick(advantages);
                if config.normalize_advantages {
                    normalise(&mut chunk_advantages);
                }
                let upload = |values: Vec<f32>| {
                    Tensor::<1>::from_data(TensorData::new(values, [chunk.len()]), &device)
                };
                let observations: Vec<f32> = chunk
                    .iter()
                    .flat_map(|&i| rollout.observations[i * dim..(i + 1) * dim].iter().copied())
                    .collect();
                let observations = observation_tensor(&observations, dim, &device);
                let (new_log_probs, entropy) = match self.head {
                    ActionHead::Categorical { .. } => {
                        let actions: Vec<i64> =
                            chunk.iter().map(|&i| rollout.discrete_actions[i]).collect();
                        let actions = Tensor::<2, Int>::from_data(
                            TensorData::new(actions, [chunk.len(), 1]),
                            &device,
                        );
                        let policy = Categorical::new(model.actor(observations.clone()));
                        (policy.log_prob(actions), policy.mean_entropy())
                    }
                    ActionHead::Gaussian { dim: action_dim } => {
                        let actions: Vec<f32> = chunk
                            .iter()
                            .flat_map(|&i| {
                                rollout.continuous_actions[i * action_dim..(i + 1) * action_dim]
                                    .iter()
                                    .copied()
                            })
                            .collect();
                        let actions = Tensor::<2>::from_data(
                            TensorData::new(actions, [chunk.len(), action_dim]),
                            &device,
                        );
                        let policy = DiagGaussian::new(
                            model.actor(observations.clone()),
                            model.log_std().expect("Gaussian head has a log-std"),
                        );
                        (policy.log_prob(actions), policy.mean_entropy())
                    }
                };
                let log_ratio = new_log_probs - upload(pick(&rollout.log_probs));
                let ratio = log_ratio.clone().exp();
                let chunk_advantages = upload(chunk_advantages);
                let clip = config.clip_coef;
                let policy_loss = (chunk_advantages.clone().neg() * ratio.clone())
                    .max_pair(chunk_advantages.neg() * ratio.clone().clamp(1.0 - clip, 1.0 + clip))
                    .mean();
                let new_values = model.value(observations);
                let chunk_returns = upload(pick(returns));
                let unclipped = (new_values.clone() - chunk_returns.clone()).powi_scalar(2);
                let value_loss = if config.clip_value_loss {
                    let old_values = upload(pick(&rollout.values));
                    let clipped = old_values.clone() + (new_values - old_values).clamp(-clip, clip);
                    unclipped
                        .max_pair((clipped - chunk_returns).powi_scalar(2))
                        .mean()
                        .mul_scalar(0.5)
                } else {
                    unclipped.mean().mul_scalar(0.5)
                };
                let loss = policy_loss.clone() - entropy.clone().mul_scalar(config.entropy_coef)
                    + value_loss.clone().mul_scalar(config.value_coef);
                let mut grads = GradientsParams::from_grads(loss.backward(), &model);
                let grad_norm = clip_by_global_norm(&model, &mut grads, config.max_grad_norm)
                    .expect("the network has parameters");
                model = self.optimizer.step(lr, model, grads);

                // Diagnostics, off the graph; read back once per update.
                let ratio = ratio.inner();
                let log_ratio = log_ratio.inner();
                let approx_kl = (ratio.clone().sub_scalar(1.0) - log_ratio).mean();
                let clip_fraction = ratio
                    .sub_scalar(1.0)
                    .abs()
                    .greater_elem(clip)
                    .float()
                    .mean();
                statistics.push(Tensor::cat(
                    vec![
                        policy_loss.inner(),
                        value_loss.inner(),
                        entropy.inner(),
                        approx_kl,
                        clip_fraction,
                        grad_norm.inner(),
                    ],
                    0,
                ));
            }
        }
        self.model = model;
        let count = statistics.len();
        let means =
            read_f32(Tensor::cat(statistics, 0).reshape([count, 6]).mean_dim(0)).map_err(|e| {
                match e {
                    ActError::NonFinite => self.non_finite("the loss"),
                    other => other.into(),
                }
            })?;
        Ok(means.try_into().expect("six statistics"))
    }
}

/// A device rollout's tensors, one per step, until they are read back.
#[derive(Default)]
struct DeviceTransitions {
    observations: Vec<Tensor<2>>,
    discrete_actions: Vec<Tensor<1, Int>>,
    continuous_actions: Vec<Tensor<2>>,
    log_probs: Vec<Tensor<1>>,
    values: Vec<Tensor<1>>,
    /// Each step's `[4, num_envs]` signals (reward, terminated, truncated, reset).
    signals: Vec<Tensor<2>>,
}

impl DeviceTransitions {
    /// Reads every step and `next_values` back in one transfer, step-major; returns the
    /// rollout, which transitions bootstrap (cut by the time limit, not terminated), and the
    /// next values.
    fn read_back(self, next_values: Tensor<1>) -> Result<(Rollout, Vec<bool>, Vec<f32>), ActError> {
        let discrete = !self.discrete_actions.is_empty();
        let mut transaction = Transaction::default()
            .register(Tensor::cat(self.observations, 0))
            .register(Tensor::cat(self.log_probs, 0))
            .register(Tensor::cat(self.values, 0))
            // `[4, steps * num_envs]`: each signal's row, step-major.
            .register(Tensor::cat(self.signals, 1))
            .register(next_values);
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
        let row = |k: usize| {
            let len = signals.len() / signal::COUNT;
            &signals[k * len..(k + 1) * len]
        };
        let flags = |k: usize| -> Vec<bool> { row(k).iter().map(|&v| v > 0.5).collect() };
        let terminated = flags(signal::TERMINATED);
        let truncated = flags(signal::TRUNCATED);
        let mut rollout = Rollout {
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
            ..Rollout::default()
        };
        if discrete {
            rollout.discrete_actions = actions
                .convert::<i64>()
                .try_into_vec::<i64>()
                .map_err(|e| ActError::Device(format!("{e:?}")))?;
        } else {
            rollout.continuous_actions = finite_f32(actions)?;
        }
        // Only a cut that is not also a termination bootstraps from the next value.
        let bootstrap = truncated
            .iter()
            .zip(&terminated)
            .map(|(&cut, &ended)| cut && !ended)
            .collect();
        Ok((rollout, bootstrap, finite_f32(next)?))
    }
}

/// Samples actions on the device with their log-probabilities: Gumbel-max for categorical
/// heads (the argmax of the logits plus Gumbel noise is a draw from their softmax), the mean
/// plus scaled normal noise for Gaussian ones. The draws come from the device's generator.
fn sample_on_device(
    actor: &ActorCritic,
    head: ActionHead,
    observations: Tensor<2>,
) -> (DeviceActions, Tensor<1>) {
    let outputs = actor.actor(observations);
    match head {
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

impl Algorithm for Ppo {
    fn iterate(&mut self, iteration: &mut Iteration) -> Result<(), TrainError> {
        let started = Instant::now();
        let lr = if self.config.anneal_lr {
            self.config.learning_rate * (1.0 - self.updates as f64 / self.num_updates as f64)
        } else {
            self.config.learning_rate
        };
        let (rollout, next_values) = self.collect(iteration)?;
        let advantages = gae(
            &rollout.rewards,
            &rollout.values,
            &rollout.dones,
            &next_values,
            self.config.gamma as f32,
            self.config.gae_lambda as f32,
        );
        let returns: Vec<f32> = advantages
            .iter()
            .zip(&rollout.values)
            .map(|(a, v)| a + v)
            .collect();
        let [
            policy_loss,
            value_loss,
            entropy,
            approx_kl,
            clip_fraction,
            grad_norm,
        ] = self.update(&rollout, &advantages, &returns, lr)?;
        self.updates += 1;
        let seconds = started.elapsed().as_secs_f64();
        iteration.update = Some(Update::Ppo(PpoUpdate {
            update: self.updates,
            learning_rate: lr,
            policy_loss,
            value_loss,
            entropy,
            approx_kl,
            clip_fraction,
            grad_norm,
            explained_variance: explained_variance(&rollout.values, &returns),
            sps: (rollout.values.len() as f64 / seconds).round(),
        }));
        Ok(())
    }

    fn global_step(&self) -> u64 {
        self.global_step
    }

    fn finished(&self) -> bool {
        self.updates >= self.num_updates
    }

    fn agent(&self) -> Agent {
        Agent::actor_critic(&self.model, &self.inference)
    }

    fn architecture(&self, config: &TrainConfig) -> Architecture {
        architecture(config, self.observation_dim, self.head)
    }

    fn state(&self) -> Result<serde_json::Value, TrainError> {
        let (env, device_env) = match &self.envs {
            RolloutEnvs::Cpu { env, .. } => {
                (Some(env.snapshot().expect("the env was reset")), None)
            }
            RolloutEnvs::Device(on) => (None, Some(on.envs.snapshot()?)),
        };
        Ok(serde_json::to_value(PpoState {
            updates: self.updates,
            global_step: self.global_step,
            rng: self.rng.clone(),
            env,
            device_env,
        })
        .expect("state serialises"))
    }

    fn write_files(&self, dir: &Path) -> Result<(), CheckpointError> {
        save_module(&self.model, &dir.join(MODEL_FILE))?;
        self.optimizer.save(&dir.join(OPTIMIZER_FILE))
    }

    #[cfg(test)]
    fn parameters_and_moments(&self) -> (Vec<f32>, MomentValues) {
        (
            crate::session::flat_parameters(self.model()),
            self.optimizer().moments(),
        )
    }
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
    fn normalised_values_have_zero_mean_unit_spread() {
        let mut values = vec![1.0f32, 2.0, 3.0, 4.0];
        normalise(&mut values);
        assert!(values.iter().sum::<f32>().abs() < 1e-6);
        let spread = values.iter().map(|v| v * v).sum::<f32>() / 3.0;
        assert!((spread - 1.0).abs() < 1e-5);
        assert!((explained_variance(&[1.0, 2.0], &[1.0, 2.0]) - 1.0).abs() < 1e-12);
    }
}
