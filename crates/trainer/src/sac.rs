//! Soft actor-critic after CleanRL's `sac_continuous_action.py`: twin critics trained
//! towards `r + gamma * (min target Q(s', a') - alpha * log pi(a'|s'))`, a tanh-squashed
//! Gaussian actor maximising `min Q(s, a) - alpha * log pi(a|s)` every `policy_frequency`
//! gradient steps, Polyak-averaged targets, and the entropy weight `alpha` tuned towards a
//! target entropy of `-action_dim`.
//!
//! One file, read top to bottom as CleanRL's script reads: the state, acting, the critic
//! and actor updates, then the checkpoint files.
//!
//! Exploration may use noise correlated in time (`noise_correlation`), which keeps each
//! draw's distribution and makes pushes persist: white noise almost never reaches
//! MountainCarContinuous's flag by chance, correlated noise mostly does.
//!
//! Every draw (random actions before learning starts, exploration, minibatches, the noise of
//! the reparameterised samples) comes from the trainer's own generator on the host, so a
//! run is the same on every device and a resumed run continues with the very same draws.
//! The targets and the next actions run on the inference device; only the updates are
//! recorded for backward.

use std::path::Path;
use std::time::Instant;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::{Device, Tensor, TensorData};
use gradless_device::{InferenceDevice, TrainingDevice};
use gradless_envs::{Actions, AutoresetMode, EnvRng, MakeOptions, VectorEnv, VectorSnapshot};
use gradless_policy::acting::{observation_tensor, read_f32};
use gradless_policy::{
    ActError, ActionBounds, Agent, Architecture, Checkpoint, CheckpointError, MODEL_FILE,
    SoftActorCritic, SquashedGaussianActor, TwinQ, squash_with_noise,
};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::adam::Adam;
#[cfg(test)]
use crate::adam::MomentValues;
use crate::algorithm::{
    Algorithm, Core, Iteration, OPTIMIZER_FILE, acting_error, crossed, save_module, state_error,
};
use crate::config::{SacConfig, TrainConfig};
use crate::metrics::{SacUpdate, Update};
use crate::normalization::Normalizers;
use crate::profile::Phase;
use crate::replay_buffer::ReplayBuffer;

/// The trainer's generators are seeded with the run's seed xor these, apart from the envs'
/// streams (`seed + i`).
const INIT_STREAM: u64 = 0x494e_4954_0000_0000;
const SAMPLING_STREAM: u64 = 0x5341_4300_0000_0000;

/// The checkpoint's files besides the model (actor and online critics) and the critics'
/// optimizer ([`OPTIMIZER_FILE`]).
const TARGET_FILE: &str = "target.bpk";
const ACTOR_OPTIMIZER_FILE: &str = "actor_optimizer.bin";
const TEMPERATURE_OPTIMIZER_FILE: &str = "temperature_optimizer.bin";
const REPLAY_FILE: &str = "replay_buffer.bin";
/// Update statistics are averaged and reported once per this many env steps.
const REPORT_EVERY: u64 = 1_000;

/// The entropy weight's logarithm, as a module so that Adam can train it.
#[derive(Module, Debug)]
struct Temperature {
    log_alpha: Param<Tensor<1>>,
}

impl Temperature {
    fn new(log_alpha: f32, device: &Device) -> Self {
        Self {
            log_alpha: Param::from_data(TensorData::new(vec![log_alpha], [1]), device),
        }
    }
}

/// What a run has learned, fresh or resumed: the networks, the critics' target copy and the
/// entropy weight's logarithm.
struct Learned {
    networks: SoftActorCritic,
    target: TwinQ,
    log_alpha: f32,
}

/// Sums of the statistics since the last report.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    /// Mean Q1, mean Q2, Q1 loss, Q2 loss: summed over critic steps.
    critic: [f64; 4],
    critic_steps: u64,
    /// Actor loss and entropy-weight loss: summed over actor steps.
    actor: [f64; 2],
    actor_steps: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SacState {
    global_step: u64,
    gradient_steps: u64,
    /// `ln(alpha)`, exactly as the temperature holds it.
    log_alpha: f32,
    rng: EnvRng,
    /// The exploration noise's current values, `num_envs * action_dim`.
    exploration: Vec<f64>,
    env: VectorSnapshot,
    pending: Pending,
    /// Normalisation statistics (absent when the run does not normalise).
    #[serde(default, skip_serializing_if = "Normalizers::is_off")]
    normalizers: Normalizers,
}

pub(crate) struct Sac {
    config: SacConfig,
    training: TrainingDevice,
    inference: InferenceDevice,
    actor: SquashedGaussianActor,
    critics: TwinQ,
    /// Inference copies: the actor that acts and computes next actions (refreshed after
    /// each actor update), and the Polyak-averaged target critics.
    acting: SquashedGaussianActor,
    target: TwinQ,
    temperature: Temperature,
    /// `exp(log_alpha)` on the host, the weight every loss uses as a constant.
    alpha: f64,
    actor_optimizer: Adam,
    critic_optimizer: Adam,
    temperature_optimizer: Adam,
    buffer: ReplayBuffer<f32>,
    env: Box<dyn VectorEnv>,
    bounds: ActionBounds,
    observations: Vec<f32>,
    observation_dim: usize,
    rng: EnvRng,
    /// Each env's exploration noise (see `noise_correlation`), `num_envs * action_dim`.
    exploration: Vec<f64>,
    gradient_steps: u64,
    pending: Pending,
    core: Core,
}

impl Sac {
    fn make_env(config: &TrainConfig, sac: &SacConfig) -> Result<Box<dyn VectorEnv>, TrainError> {
        Ok(gradless_envs::make_vector(
            &config.env,
            sac.num_envs,
            AutoresetMode::SameStep,
            MakeOptions::default(),
        )?)
    }

    fn bounds(env: &dyn VectorEnv) -> ActionBounds {
        ActionBounds::of(env.single_action_space())
            .expect("config validation allows SAC on bounded boxes only")
    }

    /// The trainer around `learned`, fresh or resumed, with empty optimizers and buffer.
    fn with_networks(
        config: &TrainConfig,
        sac: &SacConfig,
        training: &TrainingDevice,
        learned: Learned,
        env: Box<dyn VectorEnv>,
    ) -> Self {
        let Learned {
            networks: SoftActorCritic { actor, critics },
            target,
            log_alpha,
        } = learned;
        let network = &config.network;
        let observation_dim = env.single_observation_space().flat_dim();
        let bounds = Self::bounds(env.as_ref());
        let action_dim = bounds.scale.len();
        let architecture = Architecture::SoftActorCritic {
            observation_dim,
            hidden: network.hidden.clone(),
            activation: network.activation,
            action_dim,
        };
        Self {
            training: training.clone(),
            inference: training.inference(),
            acting: actor.valid(),
            actor,
            critics,
            target,
            temperature: Temperature::new(log_alpha, training.device()),
            alpha: f64::from(log_alpha).exp(),
            actor_optimizer: Adam::new(sac.adam_epsilon),
            critic_optimizer: Adam::new(sac.adam_epsilon),
            temperature_optimizer: Adam::new(sac.adam_epsilon),
            buffer: ReplayBuffer::new(sac.buffer_size, observation_dim, action_dim),
            config: sac.clone(),
            env,
            bounds,
            observations: Vec::new(),
            observation_dim,
            rng: EnvRng::from_seed(config.seed ^ SAMPLING_STREAM),
            exploration: Vec::new(),
            gradient_steps: 0,
            pending: Pending::default(),
            core: Core::starting(
                config,
                architecture,
                observation_dim,
                sac.num_envs,
                sac.gamma,
            ),
        }
    }

    /// A fresh run.
    pub(crate) fn new(
        config: &TrainConfig,
        sac: &SacConfig,
        training: &TrainingDevice,
    ) -> Result<Self, TrainError> {
        let mut env = Self::make_env(config, sac)?;
        let observation_dim = env.single_observation_space().flat_dim();
        let bounds = Self::bounds(env.as_ref());
        let action_dim = bounds.scale.len();
        let network = &config.network;
        let mut init = EnvRng::from_seed(config.seed ^ INIT_STREAM);
        let device = training.device();
        let actor = SquashedGaussianActor::new(
            observation_dim,
            &network.hidden,
            network.activation,
            bounds,
            &mut init,
            device,
        );
        let critics = TwinQ::new(
            observation_dim,
            action_dim,
            &network.hidden,
            network.activation,
            &mut init,
            device,
        );
        let learned = Learned {
            target: critics.valid(),
            networks: SoftActorCritic { actor, critics },
            log_alpha: sac.alpha.ln() as f32,
        };
        let observations = env.reset(Some(config.seed)).to_vec();
        let num_envs = env.num_envs();
        let mut fresh = Self::with_networks(config, sac, training, learned, env);
        fresh.observations = observations;
        fresh.exploration = (0..num_envs * action_dim)
            .map(|_| fresh.rng.standard_normal())
            .collect();
        Ok(fresh)
    }

    /// Continues the run saved in `checkpoint`: networks, targets, optimizers, entropy
    /// weight, replay buffer, generator and envs.
    pub(crate) fn resume(
        config: &TrainConfig,
        sac: &SacConfig,
        training: &TrainingDevice,
        checkpoint: &Checkpoint,
        state: serde_json::Value,
    ) -> Result<Self, TrainError> {
        let mut env = Self::make_env(config, sac)?;
        let state: SacState =
            serde_json::from_value(state).map_err(|e| state_error(checkpoint, e))?;
        let learned = Learned {
            networks: checkpoint.load_soft_actor_critic(training.device())?,
            target: checkpoint.load_twin_q_from(TARGET_FILE, training.inference().device())?,
            log_alpha: state.log_alpha,
        };
        env.restore(&state.env)?;
        let mut resumed = Self::with_networks(config, sac, training, learned, env);
        let device = training.device();
        let optimizer = |file: &str| checkpoint.listed_file(file);
        resumed.critic_optimizer =
            Adam::load(&optimizer(OPTIMIZER_FILE)?, &resumed.critics, device)?;
        resumed.actor_optimizer =
            Adam::load(&optimizer(ACTOR_OPTIMIZER_FILE)?, &resumed.actor, device)?;
        resumed.temperature_optimizer = Adam::load(
            &optimizer(TEMPERATURE_OPTIMIZER_FILE)?,
            &resumed.temperature,
            device,
        )?;
        resumed.buffer = ReplayBuffer::load(
            &checkpoint.listed_file(REPLAY_FILE)?,
            sac.buffer_size,
            resumed.observation_dim,
            resumed.bounds.scale.len(),
        )?;
        resumed.observations = state.env.observations.clone();
        if state.exploration.len() != resumed.exploration_len() {
            return Err(state_error(
                checkpoint,
                serde::de::Error::custom(format!(
                    "{} exploration noise values for {} envs of {} action dimensions",
                    state.exploration.len(),
                    resumed.env.num_envs(),
                    resumed.action_dim()
                )),
            ));
        }
        resumed.exploration = state.exploration;
        resumed.rng = state.rng;
        resumed.gradient_steps = state.gradient_steps;
        resumed.pending = state.pending;
        let observation_dim = resumed.observation_dim;
        resumed.core.restore(
            state.global_step,
            state.normalizers,
            config,
            observation_dim,
            sac.num_envs,
            checkpoint,
        )?;
        Ok(resumed)
    }

    fn action_dim(&self) -> usize {
        self.bounds.scale.len()
    }

    fn exploration_len(&self) -> usize {
        self.env.num_envs() * self.action_dim()
    }

    /// Moves every env's exploration noise one step: `rho * e + sqrt(1 - rho^2) * z`, which
    /// keeps each component standard normal (white noise when `rho` is 0).
    fn advance_exploration(&mut self) {
        let rho = self.config.noise_correlation;
        let fresh = (1.0 - rho * rho).sqrt();
        for e in &mut self.exploration {
            *e = rho * *e + fresh * self.rng.standard_normal();
        }
    }

    /// Restarts the noise of the envs whose episode just ended (correlated noise only:
    /// white noise has nothing to carry over).
    fn restart_exploration(&mut self, ended: &[bool]) {
        if self.config.noise_correlation == 0.0 {
            return;
        }
        let dim = self.action_dim();
        for (e, _) in ended.iter().enumerate().filter(|(_, ended)| **ended) {
            for value in &mut self.exploration[e * dim..(e + 1) * dim] {
                *value = self.rng.standard_normal();
            }
        }
    }

    fn act_error(&self, error: ActError, what: &str) -> TrainError {
        acting_error(self.core.global_step, error, what)
    }

    /// `[rows, action_dim]` standard normal draws from the trainer's generator.
    fn noise(&mut self, rows: usize, device: &Device) -> Tensor<2> {
        let dim = self.action_dim();
        let values: Vec<f32> = (0..rows * dim)
            .map(|_| self.rng.standard_normal() as f32)
            .collect();
        Tensor::from_data(TensorData::new(values, [rows, dim]), device)
    }

    /// Random actions until learning starts (uniform over the box, or with correlated noise
    /// the squashed noise itself), then draws from the actor with the exploration noise.
    fn choose_actions(&mut self) -> Result<Vec<f32>, TrainError> {
        let n = self.env.num_envs();
        let dim = self.action_dim();
        let mut actions = vec![0.0; n * dim];
        if self.core.global_step < self.config.learning_starts
            && self.config.noise_correlation == 0.0
        {
            for (k, action) in actions.iter_mut().enumerate() {
                let (scale, bias) = (self.bounds.scale[k % dim], self.bounds.bias[k % dim]);
                *action = (self.rng.uniform(-1.0, 1.0) as f32) * scale + bias;
            }
            return Ok(actions);
        }
        self.advance_exploration();
        let (mean, log_std) = if self.core.global_step < self.config.learning_starts {
            // A standard normal before the squash: the actor's distribution at mean 0, std 1.
            (vec![0.0; n * dim], vec![0.0; n * dim])
        } else {
            let x = observation_tensor(
                &self.core.normalizers.network_input(&self.observations),
                self.observation_dim,
                self.inference.device(),
            );
            let (mean, log_std) = self.acting.heads(x);
            (
                read_f32(mean).map_err(|e| self.act_error(e, "the actor's means"))?,
                read_f32(log_std).map_err(|e| self.act_error(e, "the actor's spread"))?,
            )
        };
        for (k, out) in actions.chunks_mut(dim).enumerate() {
            let row = k * dim..(k + 1) * dim;
            squash_with_noise(
                &mean[row.clone()],
                &log_std[row.clone()],
                &self.bounds,
                &self.exploration[row],
                out,
            );
        }
        Ok(actions)
    }

    /// One gradient step of the critics, the actor and the temperature when due, and the
    /// targets when due. Returns the critic statistics `[mean Q1, mean Q2, Q1 loss, Q2
    /// loss]` and, after actor steps, `[actor loss, temperature loss]` per step (on the
    /// device; read back once per training round).
    fn train_step(&mut self) -> (Tensor<1>, Vec<Tensor<1>>) {
        let size = self.config.batch_size;
        let mut batch = self.buffer.sample(size, &mut self.rng);
        self.core.normalizers.apply_to_batch(&mut batch);
        let (dim, action_dim) = (self.observation_dim, self.action_dim());
        let device = self.training.device().clone();
        let inference = self.inference.device().clone();
        let column = |values: Vec<f32>, device| {
            Tensor::<1>::from_data(TensorData::new(values, [size]), device)
        };

        let next = observation_tensor(&batch.next_observations, dim, &inference);
        let continues = column(batch.terminated, &inference).neg().add_scalar(1.0);
        let rewards = column(batch.rewards, &inference);
        let observations = observation_tensor(&batch.observations, dim, &device);
        let actions =
            Tensor::<2>::from_data(TensorData::new(batch.actions, [size, action_dim]), &device);
        self.core.profiler.mark(Phase::Minibatch);

        // The critics' target on the inference device: a constant for the update.
        let next_noise = self.noise(size, &inference);
        let (next_actions, next_log_prob) = self.acting.sample(next.clone(), next_noise);
        let soft_value = self.target.min(next, next_actions) - next_log_prob.mul_scalar(self.alpha);
        let target = rewards + soft_value.mul_scalar(self.config.gamma) * continues;
        let (q1, q2) = self.critics.forward(observations.clone(), actions);
        let q1_loss = (q1.clone() - target.clone()).powi_scalar(2).mean();
        let q2_loss = (q2.clone() - target).powi_scalar(2).mean();
        let loss = q1_loss.clone() + q2_loss.clone();
        self.core.profiler.mark(Phase::Forward);
        let grads = GradientsParams::from_grads(loss.backward(), &self.critics);
        self.core.profiler.mark(Phase::Backward);
        self.critics = self
            .critic_optimizer
            .step(self.config.q_lr, self.critics.clone(), grads);
        self.core.profiler.mark(Phase::Optimizer);
        self.gradient_steps += 1;
        self.core.profiler.updated();
        let critic_stats = Tensor::cat(
            vec![
                q1.inner().mean(),
                q2.inner().mean(),
                q1_loss.inner(),
                q2_loss.inner(),
            ],
            0,
        );

        let mut actor_stats = Vec::new();
        if self
            .gradient_steps
            .is_multiple_of(self.config.policy_frequency)
        {
            // Delayed updates, as many as were skipped (TD3's trick, kept by CleanRL).
            for _ in 0..self.config.policy_frequency {
                actor_stats.push(self.actor_step(observations.clone()));
            }
            self.acting = self.actor.valid();
            self.core.profiler.mark(Phase::NetworkCopy);
        }
        if self
            .gradient_steps
            .is_multiple_of(self.config.target_network_frequency)
        {
            self.target = polyak(self.target.clone(), &self.critics.valid(), self.config.tau);
            self.core.profiler.mark(Phase::NetworkCopy);
        }
        (critic_stats, actor_stats)
    }

    /// One actor step on `observations` (training device) and, when tuned, one temperature
    /// step; returns `[actor loss, temperature loss]`.
    fn actor_step(&mut self, observations: Tensor<2>) -> Tensor<1> {
        let device = self.training.device().clone();
        let rows = observations.dims()[0];
        let noise = self.noise(rows, &device);
        let (actions, log_prob) = self.actor.sample(observations.clone(), noise);
        let q = self.critics.min(observations.clone(), actions);
        let actor_loss = (log_prob.mul_scalar(self.alpha) - q).mean();
        self.core.profiler.mark(Phase::Forward);
        let grads = GradientsParams::from_grads(actor_loss.backward(), &self.actor);
        self.core.profiler.mark(Phase::Backward);
        self.actor = self
            .actor_optimizer
            .step(self.config.policy_lr, self.actor.clone(), grads);
        self.core.profiler.mark(Phase::Optimizer);
        if !self.config.autotune {
            return Tensor::cat(
                vec![
                    actor_loss.inner(),
                    Tensor::zeros([1], &self.inference.device().clone()),
                ],
                0,
            );
        }
        // The temperature follows the updated actor's entropy, a constant for its step.
        let inference = self.inference.device().clone();
        let noise = self.noise(rows, &inference);
        let (_, log_prob) = self.actor.valid().sample(observations.inner(), noise);
        let target_entropy = -(self.action_dim() as f64);
        let log_alpha = self.temperature.log_alpha.val();
        let temperature_loss = (log_alpha.exp() * log_prob.add_scalar(target_entropy))
            .neg()
            .mean();
        self.core.profiler.mark(Phase::Forward);
        let grads = GradientsParams::from_grads(temperature_loss.backward(), &self.temperature);
        self.core.profiler.mark(Phase::Backward);
        // CleanRL steps the temperature at the critics' learning rate.
        self.temperature =
            self.temperature_optimizer
                .step(self.config.q_lr, self.temperature.clone(), grads);
        self.core.profiler.mark(Phase::Optimizer);
        Tensor::cat(vec![actor_loss.inner(), temperature_loss.inner()], 0)
    }

    fn log_alpha(&self) -> Result<f32, ActError> {
        Ok(read_f32(self.temperature.log_alpha.val())?[0])
    }
}

/// `tau * online + (1 - tau) * target`, parameter by parameter (both the same architecture,
/// `online` an inference copy on the target's device).
fn polyak<M: Module>(target: M, online: &M, tau: f64) -> M {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let size = value.shape().num_elements();
            self.0.push(value.reshape([size]));
        }
    }
    struct Blend {
        online: std::vec::IntoIter<Tensor<1>>,
        tau: f64,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, value, mapper) = param.consume();
            let online = self
                .online
                .next()
                .expect("online and target have the same parameters")
                .reshape(value.dims());
            let blended = online.mul_scalar(self.tau) + value.mul_scalar(1.0 - self.tau);
            Param::from_mapped_value(id, blended, mapper)
        }
    }
    let mut collect = Collect(Vec::new());
    online.visit(&mut collect);
    target.map(&mut Blend {
        online: collect.0.into_iter(),
        tau,
    })
}

impl Algorithm for Sac {
    fn iterate(&mut self, iteration: &mut Iteration) -> Result<(), TrainError> {
        let started = Instant::now();
        let n = self.env.num_envs();
        self.core.normalizers.observe(&self.observations);
        let actions = self.choose_actions()?;
        self.core.profiler.mark(Phase::Acting);
        let step = self.env.step(Actions::Continuous(&actions))?;
        let before = self.core.count_step(&step, iteration);
        self.buffer.push_step(&self.observations, &actions, &step);
        self.observations.copy_from_slice(step.observations);
        let ended: Vec<bool> = (0..n)
            .map(|e| step.terminated[e] || step.truncated[e])
            .collect();
        self.restart_exploration(&ended);
        self.core.profiler.mark(Phase::EnvStep);

        let c = &self.config;
        if self.core.global_step > c.learning_starts
            && crossed(before, self.core.global_step, c.train_frequency)
        {
            let (critic, actor): (Vec<Tensor<1>>, Vec<Vec<Tensor<1>>>) =
                (0..c.gradient_steps).map(|_| self.train_step()).unzip();
            let actor: Vec<Tensor<1>> = actor.into_iter().flatten().collect();
            // Read back every training round, so a diverging loss stops the run before the
            // next checkpoint could save it.
            let (critic_steps, actor_steps) = (critic.len(), actor.len());
            let mut sums = Tensor::cat(critic, 0)
                .reshape([critic_steps, 4])
                .sum_dim(0)
                .reshape([4]);
            if actor_steps > 0 {
                let actor_sums = Tensor::cat(actor, 0)
                    .reshape([actor_steps, 2])
                    .sum_dim(0)
                    .reshape([2]);
                sums = Tensor::cat(vec![sums, actor_sums], 0);
            }
            let sums = read_f32(sums).map_err(|e| self.act_error(e, "the losses"))?;
            self.core.profiler.mark(Phase::Readback);
            for (pending, value) in self.pending.critic.iter_mut().zip(&sums) {
                *pending += f64::from(*value);
            }
            for (pending, value) in self.pending.actor.iter_mut().zip(sums.iter().skip(4)) {
                *pending += f64::from(*value);
            }
            self.pending.critic_steps += critic_steps as u64;
            self.pending.actor_steps += actor_steps as u64;
            if actor_steps > 0 && self.config.autotune {
                let log_alpha = self
                    .log_alpha()
                    .map_err(|e| self.act_error(e, "the entropy weight"))?;
                self.alpha = f64::from(log_alpha).exp();
                self.core.profiler.mark(Phase::Readback);
            }
        }
        if self.pending.critic_steps > 0 && crossed(before, self.core.global_step, REPORT_EVERY) {
            let p = &self.pending;
            let critic = |k: usize| p.critic[k] / p.critic_steps as f64;
            let actor = |k: usize| p.actor[k] / p.actor_steps.max(1) as f64;
            iteration.update = Some(Update::Sac(SacUpdate {
                gradient_steps: self.gradient_steps,
                qf1_values: critic(0),
                qf2_values: critic(1),
                qf1_loss: critic(2),
                qf2_loss: critic(3),
                actor_loss: actor(0),
                alpha_loss: actor(1),
                alpha: self.alpha,
                buffer: self.buffer.len(),
                iteration_seconds: started.elapsed().as_secs_f64(),
            }));
            self.pending = Pending::default();
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
        Agent::soft_actor(&self.actor, &self.inference)
    }

    fn state(&self) -> Result<serde_json::Value, TrainError> {
        let log_alpha = self
            .log_alpha()
            .map_err(|e| self.act_error(e, "the entropy weight"))?;
        Ok(serde_json::to_value(SacState {
            global_step: self.core.global_step,
            gradient_steps: self.gradient_steps,
            log_alpha,
            rng: self.rng.clone(),
            exploration: self.exploration.clone(),
            env: self.env.snapshot().expect("the env was reset"),
            pending: self.pending.clone(),
            normalizers: self.core.normalizers.clone(),
        })
        .expect("state serialises"))
    }

    fn write_files(&self, dir: &Path) -> Result<(), CheckpointError> {
        let model = SoftActorCritic {
            actor: self.actor.clone(),
            critics: self.critics.clone(),
        };
        save_module(&model, &dir.join(MODEL_FILE))?;
        save_module(&self.target, &dir.join(TARGET_FILE))?;
        self.critic_optimizer.save(&dir.join(OPTIMIZER_FILE))?;
        self.actor_optimizer.save(&dir.join(ACTOR_OPTIMIZER_FILE))?;
        self.temperature_optimizer
            .save(&dir.join(TEMPERATURE_OPTIMIZER_FILE))?;
        self.buffer.save(&dir.join(REPLAY_FILE))
    }

    #[cfg(test)]
    fn parameters_and_moments(&self) -> (Vec<f32>, MomentValues) {
        let mut parameters = crate::algorithm::flat_parameters(&self.actor);
        parameters.extend(crate::algorithm::flat_parameters(&self.critics));
        parameters.extend(crate::algorithm::flat_parameters(&self.target));
        parameters.extend(crate::algorithm::flat_parameters(&self.temperature));
        let mut moments = self.critic_optimizer.moments();
        moments.extend(self.actor_optimizer.moments());
        moments.extend(self.temperature_optimizer.moments());
        (parameters, moments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradless_policy::Activation;

    /// Polyak averaging moves each target parameter `tau` of the way to the online one.
    #[test]
    fn polyak_moves_targets_by_tau() {
        let device = Device::flex();
        let make = |seed| {
            TwinQ::new(
                2,
                1,
                &[4],
                Activation::Relu,
                &mut EnvRng::from_seed(seed),
                &device,
            )
        };
        let (target, online) = (make(1), make(2));
        let before = crate::algorithm::flat_parameters(&target);
        let towards = crate::algorithm::flat_parameters(&online);
        let blended = crate::algorithm::flat_parameters(&polyak(target, &online, 0.25));
        for ((b, t), x) in before.iter().zip(&towards).zip(&blended) {
            assert!((x - (0.25 * t + 0.75 * b)).abs() < 1e-6);
        }
    }
}
