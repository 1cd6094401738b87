//! DQN with a replay buffer, a target network and a linear epsilon schedule, after
//! CleanRL's `dqn.py` (and Stable-Baselines3's `gradient_steps`, Huber loss and gradient
//! clipping as options).
//!
//! One iteration is one step of the vector env, followed by `gradient_steps` gradient steps
//! when `train_frequency` env steps have passed since the last ones. Acting and the target
//! network run on the inference device; only the online network's update is recorded for
//! backward. Transitions cut by the time limit keep their true last observation and are
//! bootstrapped; only terminations are not.

use std::path::Path;
use std::time::Instant;

use crate::metrics::{DqnUpdate, Update};
use burn::optim::GradientsParams;
use burn::prelude::{Int, Module, Tensor, TensorData};
use gradless_device::{InferenceDevice, TrainingDevice};
use gradless_envs::{
    Actions, AutoresetMode, EnvRng, MakeOptions, Space, VectorEnv, VectorSnapshot,
};
use gradless_policy::acting::{observation_tensor, read_f32};
use gradless_policy::sampling::argmax;
use gradless_policy::{
    ActError, Agent, Architecture, Checkpoint, CheckpointError, MODEL_FILE, QNetwork,
};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::adam::Adam;
#[cfg(test)]
use crate::adam::MomentValues;
use crate::algorithm::{
    Algorithm, Core, Iteration, OPTIMIZER_FILE, acting_error, crossed, save_module, state_error,
};
use crate::config::{DqnConfig, TdLoss, TrainConfig};
use crate::grad_clip::{clip_by_global_norm, global_norm};
use crate::normalization::Normalizers;
use crate::profile::Phase;
use crate::replay_buffer::ReplayBuffer;

/// The trainer's generators are seeded with the run's seed xor these, apart from the envs'
/// streams (`seed + i`).
const INIT_STREAM: u64 = 0x494e_4954_0000_0000;
const SAMPLING_STREAM: u64 = 0x4451_4e00_0000_0000;

/// The replay buffer's file inside a checkpoint.
const REPLAY_FILE: &str = "replay_buffer.bin";
/// Update statistics are averaged and reported once per this many env steps.
const REPORT_EVERY: u64 = 1_000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DqnState {
    global_step: u64,
    gradient_steps: u64,
    rng: EnvRng,
    env: VectorSnapshot,
    /// Statistics gathered since the last report: sums of loss, mean Q and gradient norm.
    pending: [f64; 3],
    pending_count: u64,
    /// Normalisation statistics (absent when the run does not normalise).
    #[serde(default, skip_serializing_if = "Normalizers::is_off")]
    normalizers: Normalizers,
}

pub(crate) struct Dqn {
    config: DqnConfig,
    training: TrainingDevice,
    inference: InferenceDevice,
    q: QNetwork,
    /// Inference copies: the one that acts (refreshed after training) and the target.
    acting: QNetwork,
    target: QNetwork,
    optimizer: Adam,
    buffer: ReplayBuffer<i64>,
    env: Box<dyn VectorEnv>,
    observations: Vec<f32>,
    observation_dim: usize,
    actions: usize,
    rng: EnvRng,
    gradient_steps: u64,
    pending: [f64; 3],
    pending_count: u64,
    core: Core,
}

impl Dqn {
    fn make_env(
        config: &TrainConfig,
        dqn: &DqnConfig,
    ) -> Result<(Box<dyn VectorEnv>, usize, usize), TrainError> {
        let env = gradless_envs::make_vector(
            &config.env,
            dqn.num_envs,
            AutoresetMode::SameStep,
            MakeOptions::default(),
        )?;
        let observation_dim = env.single_observation_space().flat_dim();
        let Space::Discrete { n } = env.single_action_space() else {
            unreachable!("config validation allows DQN on discrete action spaces only")
        };
        let actions = *n as usize;
        Ok((env, observation_dim, actions))
    }

    fn with_network(
        config: &TrainConfig,
        dqn: &DqnConfig,
        training: &TrainingDevice,
        q: QNetwork,
        env: Box<dyn VectorEnv>,
        observation_dim: usize,
        actions: usize,
    ) -> Self {
        let network = &config.network;
        let architecture = Architecture::QNetwork {
            observation_dim,
            hidden: network.hidden.clone(),
            activation: network.activation,
            actions,
        };
        Self {
            training: training.clone(),
            inference: training.inference(),
            acting: q.valid(),
            target: q.valid(),
            q,
            optimizer: Adam::new(dqn.adam_epsilon),
            buffer: ReplayBuffer::new(dqn.buffer_size, observation_dim, 1),
            config: dqn.clone(),
            env,
            observations: Vec::new(),
            observation_dim,
            actions,
            rng: EnvRng::from_seed(config.seed ^ SAMPLING_STREAM),
            gradient_steps: 0,
            pending: [0.0; 3],
            pending_count: 0,
            core: Core::starting(
                config,
                architecture,
                observation_dim,
                dqn.num_envs,
                dqn.gamma,
            ),
        }
    }

    /// A fresh run.
    pub(crate) fn new(
        config: &TrainConfig,
        dqn: &DqnConfig,
        training: &TrainingDevice,
    ) -> Result<Self, TrainError> {
        let (mut env, observation_dim, actions) = Self::make_env(config, dqn)?;
        let network = &config.network;
        let q = QNetwork::new(
            observation_dim,
            &network.hidden,
            network.activation,
            actions,
            &mut EnvRng::from_seed(config.seed ^ INIT_STREAM),
            training.device(),
        );
        let observations = env.reset(Some(config.seed)).to_vec();
        let mut fresh = Self::with_network(config, dqn, training, q, env, observation_dim, actions);
        fresh.observations = observations;
        Ok(fresh)
    }

    /// Continues the run saved in `checkpoint`: online and target networks, optimizer,
    /// replay buffer, generator and envs.
    pub(crate) fn resume(
        config: &TrainConfig,
        dqn_config: &DqnConfig,
        training: &TrainingDevice,
        checkpoint: &Checkpoint,
        state: serde_json::Value,
    ) -> Result<Self, TrainError> {
        let (mut env, observation_dim, actions) = Self::make_env(config, dqn_config)?;
        let q = checkpoint.load_q_network(training.device())?;
        let state: DqnState =
            serde_json::from_value(state).map_err(|e| state_error(checkpoint, e))?;
        env.restore(&state.env)?;
        let mut dqn = Self::with_network(
            config,
            dqn_config,
            training,
            q,
            env,
            observation_dim,
            actions,
        );
        dqn.optimizer = Adam::load(
            &checkpoint.listed_file(OPTIMIZER_FILE)?,
            &dqn.q,
            training.device(),
        )?;
        dqn.target = checkpoint.load_q_network_from(TARGET_FILE, dqn.inference.device())?;
        dqn.buffer = ReplayBuffer::load(
            &checkpoint.listed_file(REPLAY_FILE)?,
            dqn_config.buffer_size,
            observation_dim,
            1,
        )?;
        dqn.observations = state.env.observations.clone();
        dqn.rng = state.rng;
        dqn.gradient_steps = state.gradient_steps;
        dqn.pending = state.pending;
        dqn.pending_count = state.pending_count;
        dqn.core.restore(
            state.global_step,
            state.normalizers,
            config,
            observation_dim,
            dqn_config.num_envs,
            checkpoint,
        )?;
        Ok(dqn)
    }

    fn epsilon(&self) -> f64 {
        let c = &self.config;
        let duration = c.exploration_fraction * self.core.total_timesteps as f64;
        let progress = if duration > 0.0 {
            (self.core.global_step as f64 / duration).min(1.0)
        } else {
            1.0
        };
        c.start_epsilon + (c.end_epsilon - c.start_epsilon) * progress
    }

    fn act_error(&self, error: ActError, what: &str) -> TrainError {
        acting_error(self.core.global_step, error, what)
    }

    /// Epsilon-greedy actions; the network runs only when some env acts greedily.
    fn choose_actions(&mut self) -> Result<Vec<i64>, TrainError> {
        let n = self.env.num_envs();
        let epsilon = self.epsilon();
        let explore: Vec<Option<i64>> = (0..n)
            .map(|_| {
                (self.rng.next_f64() < epsilon).then(|| self.rng.below(self.actions as u64) as i64)
            })
            .collect();
        if explore.iter().all(Option::is_some) {
            return Ok(explore.into_iter().flatten().collect());
        }
        let x = observation_tensor(
            &self.core.normalizers.network_input(&self.observations),
            self.observation_dim,
            self.inference.device(),
        );
        let q_values =
            read_f32(self.acting.forward(x)).map_err(|e| self.act_error(e, "Q-values"))?;
        Ok(explore
            .into_iter()
            .zip(q_values.chunks(self.actions))
            .map(|(random, row)| random.unwrap_or(argmax(row) as i64))
            .collect())
    }

    /// One gradient step on a sampled minibatch; returns `[loss, mean Q, grad norm]` as a
    /// `[3]` tensor (left on the device).
    fn train_step(&mut self) -> Tensor<1> {
        let size = self.config.batch_size;
        let mut batch = self.buffer.sample(size, &mut self.rng);
        self.core.normalizers.apply_to_batch(&mut batch);
        let dim = self.observation_dim;
        let device = self.training.device().clone();
        let inference = self.inference.device().clone();
        let upload = |values: Vec<f32>, device| {
            Tensor::<1>::from_data(TensorData::new(values, [size]), device)
        };
        let next = observation_tensor(&batch.next_observations, dim, &inference);
        let continues = upload(batch.terminated, &inference).neg().add_scalar(1.0);
        let rewards = upload(batch.rewards, &inference);
        let actions =
            Tensor::<2, Int>::from_data(TensorData::new(batch.actions, [size, 1]), &device);
        let observations = observation_tensor(&batch.observations, dim, &device);
        self.core.profiler.mark(Phase::Minibatch);
        // The TD target on the inference device: a constant for the update.
        let next_max = self.target.forward(next).max_dim(1).reshape([size]);
        let td_target = rewards + next_max.mul_scalar(self.config.gamma) * continues;
        let q_taken = self
            .q
            .forward(observations)
            .gather(1, actions)
            .reshape([size]);
        let error = q_taken.clone() - td_target;
        let loss = match self.config.loss {
            TdLoss::Mse => error.powi_scalar(2).mean(),
            TdLoss::Huber => {
                // 0.5 e^2 for |e| <= 1, |e| - 0.5 beyond.
                let magnitude = error.abs();
                let quadratic = magnitude.clone().clamp_max(1.0);
                (quadratic.clone().powi_scalar(2).mul_scalar(0.5) + magnitude - quadratic).mean()
            }
        };
        self.core.profiler.mark(Phase::Forward);
        let mut grads = GradientsParams::from_grads(loss.backward(), &self.q);
        self.core.profiler.mark(Phase::Backward);
        let norm = match self.config.max_grad_norm {
            Some(max_norm) => clip_by_global_norm(&self.q, &mut grads, max_norm),
            None => global_norm(&self.q, &grads),
        }
        .expect("the network has parameters");
        self.core.profiler.mark(Phase::GradClip);
        self.q = self
            .optimizer
            .step(self.config.learning_rate, self.q.clone(), grads);
        self.core.profiler.mark(Phase::Optimizer);
        self.gradient_steps += 1;
        self.core.profiler.updated();
        Tensor::cat(vec![loss.inner(), q_taken.inner().mean(), norm.inner()], 0)
    }
}

/// The target network's file inside a checkpoint.
const TARGET_FILE: &str = "target.bpk";

impl Algorithm for Dqn {
    fn iterate(&mut self, iteration: &mut Iteration) -> Result<(), TrainError> {
        let started = Instant::now();
        self.core.normalizers.observe(&self.observations);
        let actions = self.choose_actions()?;
        self.core.profiler.mark(Phase::Acting);
        let step = self.env.step(Actions::Discrete(&actions))?;
        let before = self.core.count_step(&step, iteration);
        self.buffer.push_step(&self.observations, &actions, &step);
        self.observations.copy_from_slice(step.observations);
        self.core.profiler.mark(Phase::EnvStep);

        let c = &self.config;
        if self.core.global_step > c.learning_starts
            && crossed(before, self.core.global_step, c.train_frequency)
        {
            let statistics: Vec<Tensor<1>> =
                (0..c.gradient_steps).map(|_| self.train_step()).collect();
            let count = statistics.len();
            // Read back every training round, so a diverging loss stops the run before the
            // next checkpoint could save it.
            let sums = read_f32(
                Tensor::cat(statistics, 0)
                    .reshape([count, 3])
                    .sum_dim(0)
                    .reshape([3]),
            )
            .map_err(|e| self.act_error(e, "the loss"))?;
            self.core.profiler.mark(Phase::Readback);
            for (pending, value) in self.pending.iter_mut().zip(sums) {
                *pending += f64::from(value);
            }
            self.pending_count += count as u64;
            self.acting = self.q.valid();
            self.core.profiler.mark(Phase::NetworkCopy);
        }
        if crossed(
            before,
            self.core.global_step,
            self.config.target_network_frequency,
        ) {
            self.target = self.q.valid();
            self.core.profiler.mark(Phase::NetworkCopy);
        }
        if self.pending_count > 0 && crossed(before, self.core.global_step, REPORT_EVERY) {
            let k = self.pending_count as f64;
            let seconds = started.elapsed().as_secs_f64();
            iteration.update = Some(Update::Dqn(DqnUpdate {
                gradient_steps: self.gradient_steps,
                td_loss: self.pending[0] / k,
                q_values: self.pending[1] / k,
                grad_norm: self.pending[2] / k,
                epsilon: self.epsilon(),
                buffer: self.buffer.len(),
                iteration_seconds: seconds,
            }));
            self.pending = [0.0; 3];
            self.pending_count = 0;
        }
        Ok(())
    }

    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn policy(&self) -> Agent {
        Agent::q_network(&self.q, &self.inference)
    }

    fn state(&self) -> Result<serde_json::Value, TrainError> {
        Ok(serde_json::to_value(DqnState {
            global_step: self.core.global_step,
            gradient_steps: self.gradient_steps,
            rng: self.rng.clone(),
            env: self.env.snapshot().expect("the env was reset"),
            pending: self.pending,
            pending_count: self.pending_count,
            normalizers: self.core.normalizers.clone(),
        })
        .expect("state serialises"))
    }

    fn write_files(&self, dir: &Path) -> Result<(), CheckpointError> {
        save_module(&self.q, &dir.join(MODEL_FILE))?;
        save_module(&self.target, &dir.join(TARGET_FILE))?;
        self.optimizer.save(&dir.join(OPTIMIZER_FILE))?;
        self.buffer.save(&dir.join(REPLAY_FILE))
    }

    #[cfg(test)]
    fn parameters_and_moments(&self) -> (Vec<f32>, MomentValues) {
        let mut parameters = crate::algorithm::flat_parameters(&self.q);
        parameters.extend(crate::algorithm::flat_parameters(&self.target));
        (parameters, self.optimizer.moments())
    }
}
