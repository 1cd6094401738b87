//! A training session: drives an algorithm iteration by iteration, logs episodes and
//! updates, evaluates greedily, writes checkpoints, and starts or resumes a run directory.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

use gradless_device::{Backend, DeviceReport, TrainingDevice};
use gradless_envs::EpisodeStats;
use gradless_envs::device::EnvBackend;
use gradless_policy::{
    Agent, Architecture, Checkpoint, CheckpointError, EpisodePlan, METADATA_FILE, Metadata,
    run_episodes, write_checkpoint,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::TrainError;
use crate::config::{AlgorithmConfig, TrainConfig};
use crate::dqn::Dqn;
use crate::metrics::{MetricsLine, Throttle, Update};
use crate::ppo::Ppo;
use crate::run_dir::{BEST, CONFIG_FILE, DEVICE_FILE, LATEST, RunDir};

/// The optimizer state's file inside a checkpoint.
pub(crate) const OPTIMIZER_FILE: &str = "optimizer.bin";

/// The burn version this build uses (checked against Cargo.lock by a test).
pub const BURN_VERSION: &str = "0.22.1";

/// Episodes the training return is averaged over.
const RECENT_EPISODES: usize = 100;

/// What one iteration produced, for logging.
#[derive(Debug, Default)]
pub(crate) struct Iteration {
    /// Finished episodes with the global step at which each ended.
    pub episodes: Vec<(u64, EpisodeStats)>,
    /// Update statistics, when an update happened.
    pub update: Option<Update>,
}

/// A training algorithm as the session drives it.
pub(crate) trait Algorithm {
    /// One iteration: PPO a rollout and an update, DQN an env step and any training due.
    fn iterate(&mut self, iteration: &mut Iteration) -> Result<(), TrainError>;
    /// Environment steps taken.
    fn global_step(&self) -> u64;
    /// Whether the configured budget is spent.
    fn finished(&self) -> bool;
    /// An inference copy of the current network.
    fn agent(&self) -> Agent;
    /// The network's architecture.
    fn architecture(&self, config: &TrainConfig) -> Architecture;
    /// What a checkpoint must record to continue exactly.
    fn state(&self) -> Result<serde_json::Value, TrainError>;
    /// Writes weights, optimizer and other state files into a checkpoint directory.
    fn write_files(&self, dir: &Path) -> Result<(), CheckpointError>;
    /// All parameters and optimizer moments, for tests comparing runs.
    #[cfg(test)]
    fn parameters_and_moments(&self) -> (Vec<f32>, crate::adam::MomentValues);
}

/// Writes a module's parameters in burn's format.
pub(crate) fn save_module<M: burn::module::Module>(
    module: &M,
    path: &Path,
) -> Result<(), CheckpointError> {
    module
        .clone()
        .save_file(path)
        .map_err(|e| CheckpointError::Weights {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// A checkpoint's trainer state that does not parse.
pub(crate) fn state_error(checkpoint: &Checkpoint, error: serde_json::Error) -> TrainError {
    CheckpointError::Metadata {
        path: checkpoint.file(METADATA_FILE),
        reason: format!("trainer state: {error}"),
    }
    .into()
}

/// Every float parameter of a module, flattened in visiting order.
#[cfg(test)]
pub(crate) fn flat_parameters<M: burn::module::Module>(module: &M) -> Vec<f32> {
    use burn::module::{ModuleVisitor, Param};
    use burn::prelude::Tensor;
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().inner().into_data().convert::<f32>();
            self.0.extend(data.iter::<f32>());
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

/// The session's own bookkeeping, saved in every checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionState {
    episodes: u64,
    recent_returns: VecDeque<f64>,
    best_training_return: Option<f64>,
    next_checkpoint: u64,
    next_evaluation: u64,
    last_evaluation: Option<Evaluation>,
    target_reached: Option<Evaluation>,
    train_seconds: f64,
}

/// One greedy evaluation during training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Environment steps trained when it ran.
    pub global_step: u64,
    /// Mean return over its episodes.
    pub mean_return: f64,
    /// Training time up to it (rollouts and updates; not evaluations or checkpoints).
    pub train_seconds: f64,
}

/// Where [`Session::run`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAt {
    /// When the configured steps are done (or the evaluation target is reached).
    End,
    /// After this many iterations of this call, writing nothing extra: what a process
    /// killed right then leaves behind (used to test resuming).
    Iterations(u64),
}

/// Receives progress, e.g. to draw a progress bar.
pub trait Progress {
    /// Called after every iteration.
    fn advance(&mut self, global_step: u64, total_timesteps: u64, training_return: Option<f64>);
}

/// No progress display.
impl Progress for () {
    fn advance(&mut self, _: u64, _: u64, _: Option<f64>) {}
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Environment steps taken.
    pub global_step: u64,
    /// Episodes finished.
    pub episodes: u64,
    /// Training time (rollouts and updates), summed over resumes.
    pub train_seconds: f64,
    /// The newest checkpoint.
    pub latest_checkpoint: Option<PathBuf>,
    /// The checkpoint with the best training return.
    pub best_checkpoint: Option<PathBuf>,
    /// Mean return of the last 100 training episodes.
    pub training_return: Option<f64>,
    /// The last greedy evaluation.
    pub last_evaluation: Option<Evaluation>,
    /// The first evaluation that reached `evaluation.stop_at_return`.
    pub target_reached: Option<Evaluation>,
}

/// A run in progress.
pub struct Session {
    config: TrainConfig,
    run: RunDir,
    device: DeviceReport,
    algorithm: Box<dyn Algorithm>,
    state: SessionState,
    update_log: Throttle,
}

/// A number shown to four significant digits in log lines (metrics.jsonl keeps them all).
struct Short(f64);

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let x = self.0;
        if x == 0.0 || !x.is_finite() {
            return write!(f, "{x}");
        }
        let magnitude = x.abs().log10().floor();
        if !(-4.0..6.0).contains(&magnitude) {
            return write!(f, "{x:.3e}");
        }
        write!(f, "{x:.*}", (3.0 - magnitude).max(0.0) as usize)
    }
}

/// How often an update is logged at info level.
const UPDATE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Session {
    /// Starts a new run in `out` (which must not hold a run yet; one that stopped before its
    /// first checkpoint is started again).
    pub fn start(config: TrainConfig, backend: Backend, out: &Path) -> Result<Self, TrainError> {
        let base = gradless_device::open(backend)?;
        let device = gradless_device::describe(backend)?;
        let training = TrainingDevice::new(&base);
        let run = RunDir::create(out)?;
        crate::run_dir::write_atomically(
            &run.path(DEVICE_FILE),
            format!("{backend}\n").as_bytes(),
        )?;
        crate::run_dir::write_atomically(
            &run.path(CONFIG_FILE),
            toml::to_string_pretty(&config)
                .expect("config serialises")
                .as_bytes(),
        )?;
        let algorithm: Box<dyn Algorithm> = match &config.algorithm {
            AlgorithmConfig::Ppo(ppo) => Box::new(Ppo::new(&config, ppo, &training)?),
            AlgorithmConfig::Dqn(dqn) => Box::new(Dqn::new(&config, dqn, &training)?),
        };
        let state = SessionState {
            episodes: 0,
            recent_returns: VecDeque::new(),
            best_training_return: None,
            next_checkpoint: config.checkpoint.every_steps,
            next_evaluation: config.evaluation.every_steps,
            last_evaluation: None,
            target_reached: None,
            train_seconds: 0.0,
        };
        tracing::info!(
            run = %out.display(),
            env = %config.env,
            algorithm = config.algorithm.name(),
            device = %device,
            total_timesteps = config.total_timesteps,
            "training started"
        );
        Ok(Self {
            config,
            run,
            device,
            algorithm,
            state,
            update_log: Throttle::new(UPDATE_LOG_EVERY),
        })
    }

    /// Continues the run in `dir` from its `latest` checkpoint. `backend` defaults to the
    /// one the run used; `config`, when given, must equal the run's. A run that stopped
    /// before its first checkpoint starts again from its `config.toml`.
    pub fn resume(
        dir: &Path,
        backend: Option<Backend>,
        config: Option<TrainConfig>,
    ) -> Result<Self, TrainError> {
        let Some(run) = RunDir::open(dir)? else {
            let saved = crate::run_dir::saved_config(dir, &[])?;
            if let Some(reason) = config.and_then(|given| config_difference(&saved, &given)) {
                return Err(TrainError::ResumeMismatch {
                    path: dir.join(CONFIG_FILE),
                    reason,
                });
            }
            tracing::warn!(
                run = %dir.display(),
                "the run stopped before its first checkpoint: starting it again"
            );
            let backend = match backend {
                Some(backend) => backend,
                None => crate::run_dir::saved_backend(dir)?.unwrap_or(Backend::Wgpu),
            };
            return Self::start(saved, backend, dir);
        };
        let latest = run
            .pointer(LATEST)?
            .ok_or_else(|| TrainError::NotARun(dir.into()))?;
        run.remove_checkpoints_after(&latest)?;
        let checkpoint = Checkpoint::open(&latest)?;
        let metadata = checkpoint.metadata().clone();
        let mismatch = |reason: String| TrainError::ResumeMismatch {
            path: latest.clone(),
            reason,
        };
        let saved: TrainConfig = serde_json::from_value(metadata.config.clone())
            .map_err(|e| state_error(&checkpoint, e))?;
        if let Some(reason) = config.and_then(|given| config_difference(&saved, &given)) {
            return Err(mismatch(reason));
        }
        let env = gradless_envs::make(&saved.env)?;
        if metadata.env_id != saved.env
            || env.observation_space() != &metadata.observation_space
            || env.action_space() != &metadata.action_space
        {
            return Err(mismatch(format!(
                "the checkpoint's env {} ({} -> {}) does not match {} ({} -> {})",
                metadata.env_id,
                metadata.observation_space.describe(),
                metadata.action_space.describe(),
                saved.env,
                env.observation_space().describe(),
                env.action_space().describe()
            )));
        }
        let backend = backend.unwrap_or(metadata.device.backend);
        if backend != metadata.device.backend {
            tracing::warn!(
                run_device = %metadata.device,
                device = backend.name(),
                "resuming on another device: the run continues, but not bit for bit as it would have"
            );
        }
        let base = gradless_device::open(backend)?;
        let device = gradless_device::describe(backend)?;
        let training = TrainingDevice::new(&base);
        let session_state = metadata
            .trainer_state
            .get("session")
            .cloned()
            .unwrap_or_default();
        let state: SessionState =
            serde_json::from_value(session_state).map_err(|e| state_error(&checkpoint, e))?;
        let algorithm_state = metadata
            .trainer_state
            .get("algorithm")
            .cloned()
            .unwrap_or_default();
        let algorithm: Box<dyn Algorithm> = match &saved.algorithm {
            AlgorithmConfig::Ppo(ppo) => Box::new(Ppo::resume(
                &saved,
                ppo,
                &training,
                &checkpoint,
                algorithm_state,
            )?),
            AlgorithmConfig::Dqn(dqn) => Box::new(Dqn::resume(
                &saved,
                dqn,
                &training,
                &checkpoint,
                algorithm_state,
            )?),
        };
        if saved.algorithm.name() != metadata.algorithm
            || algorithm.architecture(&saved) != metadata.architecture
        {
            return Err(mismatch(
                "the checkpoint's algorithm or network does not match its config".into(),
            ));
        }
        if algorithm.global_step() != metadata.global_step {
            return Err(mismatch(format!(
                "its global_step ({}) does not match its trainer state's ({})",
                metadata.global_step,
                algorithm.global_step()
            )));
        }
        run.truncate_metrics_after(metadata.global_step)?;
        tracing::info!(
            run = %dir.display(),
            checkpoint = %latest.display(),
            global_step = metadata.global_step,
            device = %device,
            "training resumed"
        );
        Ok(Self {
            config: saved,
            run,
            device,
            algorithm,
            state,
            update_log: Throttle::new(UPDATE_LOG_EVERY),
        })
    }

    /// The run directory.
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }

    /// The resolved configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Trains until `stop`; writes a checkpoint at every `checkpoint.every_steps` and at the
    /// end. A non-finite loss stops with an error, leaving the last good checkpoint.
    pub fn run(
        &mut self,
        stop: StopAt,
        progress: &mut dyn Progress,
    ) -> Result<RunSummary, TrainError> {
        self.train(stop, progress).map_err(|error| match error {
            TrainError::NonFinite { .. } => TrainError::Diverged {
                cause: Box::new(error),
                kept: self.run.pointer(LATEST).ok().flatten(),
            },
            other => other,
        })
    }

    fn train(
        &mut self,
        stop: StopAt,
        progress: &mut dyn Progress,
    ) -> Result<RunSummary, TrainError> {
        let mut iterations = 0;
        loop {
            if self.algorithm.finished() || self.state.target_reached.is_some() {
                break;
            }
            if let StopAt::Iterations(limit) = stop
                && iterations >= limit
            {
                return Ok(self.summary());
            }
            let started = Instant::now();
            let mut iteration = Iteration::default();
            self.algorithm.iterate(&mut iteration)?;
            self.state.train_seconds += started.elapsed().as_secs_f64();
            iterations += 1;
            self.log(iteration)?;
            let step = self.algorithm.global_step();
            if self.config.evaluation.every_steps > 0 && step >= self.state.next_evaluation {
                self.state.next_evaluation =
                    next_multiple(step, self.config.evaluation.every_steps);
                self.evaluate()?;
            }
            if step >= self.state.next_checkpoint {
                self.state.next_checkpoint =
                    next_multiple(step, self.config.checkpoint.every_steps);
                self.checkpoint()?;
            }
            progress.advance(step, self.config.total_timesteps, self.training_return());
        }
        let step = self.algorithm.global_step();
        if self.config.evaluation.every_steps > 0
            && self
                .state
                .last_evaluation
                .is_none_or(|e| e.global_step != step)
        {
            self.evaluate()?;
        }
        self.checkpoint()?;
        let summary = self.summary();
        tracing::info!(
            global_step = summary.global_step,
            episodes = summary.episodes,
            train_seconds = summary.train_seconds,
            training_return = summary.training_return,
            "training finished"
        );
        Ok(summary)
    }

    fn training_return(&self) -> Option<f64> {
        let returns = &self.state.recent_returns;
        (!returns.is_empty()).then(|| returns.iter().sum::<f64>() / returns.len() as f64)
    }

    fn summary(&self) -> RunSummary {
        RunSummary {
            run_dir: self.run.root().to_path_buf(),
            global_step: self.algorithm.global_step(),
            episodes: self.state.episodes,
            train_seconds: self.state.train_seconds,
            latest_checkpoint: self.run.pointer(LATEST).ok().flatten(),
            best_checkpoint: self.run.pointer(BEST).ok().flatten(),
            training_return: self.training_return(),
            last_evaluation: self.state.last_evaluation,
            target_reached: self.state.target_reached,
        }
    }

    /// An update as a log line, under CleanRL's metric names: at info level every few
    /// seconds, at debug level always.
    fn log_update(&mut self, global_step: u64, training_return: Option<f64>, stats: &Update) {
        let level_info = self.update_log.ready();
        macro_rules! emit {
            ($($fields:tt)*) => {
                if level_info {
                    tracing::info!($($fields)*);
                } else {
                    tracing::debug!($($fields)*);
                }
            };
        }
        let training_return = training_return.map(Short);
        match stats {
            Update::Ppo(u) => emit!(
                global_step,
                "charts/episodic_return" = training_return.map(tracing::field::display),
                "charts/SPS" = u.sps,
                "losses/value_loss" = %Short(u.value_loss.into()),
                "losses/policy_loss" = %Short(u.policy_loss.into()),
                "losses/entropy" = %Short(u.entropy.into()),
                "losses/approx_kl" = %Short(u.approx_kl.into()),
                "update"
            ),
            Update::Dqn(u) => emit!(
                global_step,
                "charts/episodic_return" = training_return.map(tracing::field::display),
                "charts/epsilon" = %Short(u.epsilon),
                "losses/td_loss" = %Short(u.td_loss),
                "losses/q_values" = %Short(u.q_values),
                "update"
            ),
        }
    }

    fn log(&mut self, iteration: Iteration) -> Result<(), TrainError> {
        let mut lines = Vec::with_capacity(iteration.episodes.len() + 1);
        for (global_step, episode) in iteration.episodes {
            self.state.episodes += 1;
            if self.state.recent_returns.len() == RECENT_EPISODES {
                self.state.recent_returns.pop_front();
            }
            self.state.recent_returns.push_back(episode.episode_return);
            tracing::debug!(
                episode = self.state.episodes,
                r#return = episode.episode_return,
                length = episode.length,
                terminated = episode.terminated,
                global_step,
                "episode"
            );
            lines.push(
                MetricsLine::Episode {
                    episode: self.state.episodes,
                    episode_return: episode.episode_return,
                    length: episode.length,
                    terminated: episode.terminated,
                    global_step,
                }
                .to_json(),
            );
        }
        if let Some(stats) = iteration.update {
            let global_step = self.algorithm.global_step();
            let training_return = self.training_return();
            self.log_update(global_step, training_return, &stats);
            lines.push(
                MetricsLine::Update {
                    global_step,
                    training_return,
                    stats,
                }
                .to_json(),
            );
        }
        self.run.append_metrics(&lines)
    }

    fn evaluate(&mut self) -> Result<(), TrainError> {
        let settings = &self.config.evaluation;
        let plan = EpisodePlan {
            first_seed: settings.seed,
            episodes: settings.episodes,
            num_envs: settings.episodes,
            stochastic: false,
        };
        let agent = self.algorithm.agent();
        let episodes = run_episodes(&agent, &self.config.env, EnvBackend::Cpu, plan, |_| {})
            .map_err(|e| match e {
                gradless_policy::ActError::NonFinite => TrainError::NonFinite {
                    global_step: self.algorithm.global_step(),
                    what: "the policy's output".into(),
                },
                other => other.into(),
            })?;
        let returns: Vec<f64> = episodes.iter().map(|e| e.episode_return).collect();
        let mean_return = returns.iter().sum::<f64>() / returns.len() as f64;
        let evaluation = Evaluation {
            global_step: self.algorithm.global_step(),
            mean_return,
            train_seconds: self.state.train_seconds,
        };
        self.state.last_evaluation = Some(evaluation);
        let reached = settings
            .stop_at_return
            .is_some_and(|target| mean_return >= target);
        if reached {
            self.state.target_reached = Some(evaluation);
        }
        tracing::info!(
            global_step = evaluation.global_step,
            episodes = returns.len(),
            mean_return,
            min_return = returns.iter().copied().fold(f64::INFINITY, f64::min),
            train_seconds = evaluation.train_seconds,
            "greedy evaluation"
        );
        self.run.append_metrics(&[MetricsLine::Evaluation {
            global_step: evaluation.global_step,
            episodes: returns.len(),
            mean_return,
            returns,
            train_seconds: evaluation.train_seconds,
            target_reached: reached,
        }
        .to_json()])
    }

    fn checkpoint(&mut self) -> Result<(), TrainError> {
        let step = self.algorithm.global_step();
        let dir = self.run.checkpoint_path(step);
        if self.run.pointer(LATEST)?.as_ref() == Some(&dir) {
            // Written at this very step already (a run ending on a checkpoint step).
            return Ok(());
        }
        if dir.exists() {
            // An orphan newer than `latest`: written by a process killed before it moved
            // the pointer, and redone now.
            std::fs::remove_dir_all(&dir).map_err(|source| TrainError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        // Decided before the state is saved, so that a resumed run carries the same record.
        let training_return = self.training_return();
        let best = match (training_return, self.state.best_training_return) {
            (Some(now), Some(best)) => now > best,
            (Some(_), None) => true,
            (None, _) => self.run.pointer(BEST)?.is_none(),
        };
        if best && training_return.is_some() {
            self.state.best_training_return = training_return;
        }
        let env = gradless_envs::make(&self.config.env)?;
        let metadata = Metadata {
            format_version: gradless_policy::FORMAT_VERSION,
            algorithm: self.config.algorithm.name().to_string(),
            env_id: self.config.env.clone(),
            observation_space: env.observation_space().clone(),
            action_space: env.action_space().clone(),
            architecture: self.algorithm.architecture(&self.config),
            global_step: step,
            episodes: self.state.episodes,
            burn_version: BURN_VERSION.to_string(),
            device: self.device.clone(),
            config: serde_json::to_value(&self.config).expect("config serialises"),
            trainer_state: json!({
                "session": self.state,
                "algorithm": self.algorithm.state()?,
            }),
            files: Default::default(),
            metadata_sha256: String::new(),
        };
        write_checkpoint(&dir, metadata, |staging| {
            self.algorithm.write_files(staging)
        })?;
        self.run.set_pointer(LATEST, &dir)?;
        if best {
            self.run.set_pointer(BEST, &dir)?;
        }
        self.run.prune(self.config.checkpoint.keep_last)?;
        tracing::info!(
            checkpoint = %dir.display(),
            global_step = step,
            training_return,
            best,
            "checkpoint written"
        );
        self.run.append_metrics(&[MetricsLine::Checkpoint {
            global_step: step,
            path: dir,
            training_return,
            best,
        }
        .to_json()])
    }

    #[cfg(test)]
    pub(crate) fn parameters_and_moments(&self) -> (Vec<f32>, crate::adam::MomentValues) {
        self.algorithm.parameters_and_moments()
    }
}

/// Why `given` is not the run's config `saved`, naming the first key that differs.
fn config_difference(saved: &TrainConfig, given: &TrainConfig) -> Option<String> {
    saved
        .first_difference(given)
        .map(|(key, was, now)| format!("the config differs at `{key}` (run: {was}, given: {now})"))
}

/// The first multiple of `every` above `step`.
fn next_multiple(step: u64, every: u64) -> u64 {
    (step / every + 1) * every
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradless_test_support::scratch;

    fn config(text: &str) -> TrainConfig {
        TrainConfig::from_toml(text, &[]).unwrap()
    }

    const PPO: &str = r#"
        env = "CartPole-v1"
        algorithm = "ppo"
        seed = 7
        total_timesteps = 256
        network = { hidden = [16], activation = "tanh" }
        checkpoint = { every_steps = 64, keep_last = 2 }
        evaluation = { every_steps = 0 }
        [ppo]
        num_envs = 2
        num_steps = 32
        num_minibatches = 2
        update_epochs = 2
    "#;

    const DQN: &str = r#"
        env = "CartPole-v1"
        algorithm = "dqn"
        seed = 3
        total_timesteps = 400
        network = { hidden = [16], activation = "relu" }
        checkpoint = { every_steps = 100, keep_last = 2 }
        evaluation = { every_steps = 0 }
        [dqn]
        num_envs = 2
        buffer_size = 150
        batch_size = 16
        learning_starts = 60
        train_frequency = 4
        gradient_steps = 2
        target_network_frequency = 30
        exploration_fraction = 0.5
        loss = "huber"
        max_grad_norm = 10.0
    "#;

    fn episode_lines(run: &Path) -> Vec<String> {
        std::fs::read_to_string(run.join(crate::run_dir::METRICS_FILE))
            .unwrap()
            .lines()
            .filter(|line| line.contains("\"episode\""))
            .map(str::to_string)
            .collect()
    }

    /// Training N iterations straight and N/2, a "kill", a resume from the latest checkpoint
    /// and the rest gives the very same parameters, optimizer moments and episodes, on flex.
    fn resume_matches_straight_run(name: &str, text: &str, halfway: u64) {
        let straight_dir = scratch(&format!("{name}-straight"));
        let mut straight = Session::start(config(text), Backend::Flex, &straight_dir).unwrap();
        let summary = straight.run(StopAt::End, &mut ()).unwrap();
        assert!(summary.episodes > 0);

        let resumed_dir = scratch(&format!("{name}-resumed"));
        let mut first = Session::start(config(text), Backend::Flex, &resumed_dir).unwrap();
        first.run(StopAt::Iterations(halfway), &mut ()).unwrap();
        // Steps taken after the checkpoint are lost with the process; they are redone.
        drop(first);
        let mut second = Session::resume(&resumed_dir, None, Some(config(text))).unwrap();
        second.run(StopAt::End, &mut ()).unwrap();

        let (parameters, moments) = straight.parameters_and_moments();
        let (resumed_parameters, resumed_moments) = second.parameters_and_moments();
        assert!(!moments.is_empty());
        assert_eq!(parameters, resumed_parameters);
        assert_eq!(moments, resumed_moments);
        assert_eq!(episode_lines(&straight_dir), episode_lines(&resumed_dir));
        // Only the newest `keep_last` checkpoints (and the best) remain.
        let kept = second.run_dir().checkpoints().unwrap();
        assert!((2..=3).contains(&kept.len()), "{kept:?}");
        Checkpoint::open(&second.run_dir().pointer(LATEST).unwrap().unwrap()).unwrap();
        std::fs::remove_dir_all(&straight_dir).unwrap();
        std::fs::remove_dir_all(&resumed_dir).unwrap();
    }

    #[test]
    fn ppo_resume_is_exact() {
        // 4 updates of 64 transitions; checkpoints every update; killed after 3, one of
        // which is lost.
        resume_matches_straight_run("ppo", PPO, 3);
    }

    #[test]
    fn gaussian_ppo_resume_is_exact() {
        // Pendulum only truncates (at 200 steps): this also covers the bootstrap there.
        let pendulum = PPO
            .replace("CartPole-v1", "Pendulum-v1")
            .replace("total_timesteps = 256", "total_timesteps = 512");
        resume_matches_straight_run("ppo-gaussian", &pendulum, 5);
    }

    #[test]
    fn dqn_resume_is_exact() {
        // 200 vector steps; checkpoints every 50; killed after 120 (20 lost).
        resume_matches_straight_run("dqn", DQN, 120);
    }

    /// With the envs on the device the rollout reads back once; episodes are still logged,
    /// and a run resumes from the device envs' snapshot (not bit for bit: the device's
    /// generator state is not saved).
    #[test]
    fn ppo_with_device_envs_learns_logs_episodes_and_resumes() {
        let text = r#"
            env = "CartPole-v1"
            algorithm = "ppo"
            seed = 1
            total_timesteps = 16384
            checkpoint = { every_steps = 4096, keep_last = 2 }
            evaluation = { every_steps = 0 }
            [ppo]
            env_backend = "device"
        "#;
        let dir = scratch("device-envs");
        let mut first = Session::start(config(text), Backend::Flex, &dir).unwrap();
        first.run(StopAt::Iterations(10), &mut ()).unwrap();
        drop(first);
        let latest = RunDir::open(&dir)
            .unwrap()
            .unwrap()
            .pointer(LATEST)
            .unwrap()
            .unwrap();
        let checkpoint = Checkpoint::open(&latest).unwrap();
        let state = &checkpoint.metadata().trainer_state;
        assert!(
            state["algorithm"]["device_env"]["state"].is_array(),
            "{state}"
        );
        let mut second = Session::resume(&dir, None, Some(config(text))).unwrap();
        let summary = second.run(StopAt::End, &mut ()).unwrap();
        assert_eq!(summary.global_step, 16384);
        let episodes = episode_lines(&dir);
        assert!(episodes.len() > 100, "{}", episodes.len());
        // A random policy balances for about 22 steps; after 32 updates the last 100
        // episodes average 50-60 (seeds 1-4 measured).
        assert!(summary.training_return.unwrap() > 35.0, "{summary:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resume_refuses_another_config_and_non_runs() {
        let dir = scratch("mismatch");
        let mut session = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
        session.run(StopAt::Iterations(1), &mut ()).unwrap();
        drop(session);
        let other = TrainConfig::from_toml(PPO, &["ppo.clip_coef=0.3".into()]).unwrap();
        let err = Session::resume(&dir, None, Some(other))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`ppo.clip_coef` (run: 0.2, given: 0.3)"),
            "{err}"
        );
        assert!(err.contains("step-0000000064"), "{err}");
        let err = Session::start(config(PPO), Backend::Flex, &dir)
            .err()
            .unwrap();
        assert!(matches!(err, TrainError::RunExists(_)), "{err}");
        let err = Session::resume(&dir.join("checkpoints"), None, None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a run directory"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A learning rate that blows the network up stops training with an error, and the
    /// checkpoint written before stays the latest and intact; without one, the error says
    /// none is kept, and the same run can be started again.
    #[test]
    fn divergence_stops_and_says_what_is_kept() {
        let dir = scratch("diverge");
        let text = DQN
            .replace(
                "learning_starts = 60",
                "learning_starts = 120\nlearning_rate = 1e30",
            )
            .replace("max_grad_norm = 10.0", "");
        let mut session = Session::start(config(&text), Backend::Flex, &dir).unwrap();
        let err = session.run(StopAt::End, &mut ()).err().unwrap();
        assert!(
            matches!(err, TrainError::Diverged { kept: Some(_), .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("the last good checkpoint")
                && err.to_string().contains("step-0000000100"),
            "{err}"
        );
        let latest = session.run_dir().pointer(LATEST).unwrap().unwrap();
        assert!(latest.ends_with("step-0000000100"), "{latest:?}");
        Checkpoint::open(&latest).unwrap();
        drop(session);
        std::fs::remove_dir_all(&dir).unwrap();

        let early = text.replace("every_steps = 100", "every_steps = 1000");
        let mut session = Session::start(config(&early), Backend::Flex, &dir).unwrap();
        let err = session.run(StopAt::End, &mut ()).err().unwrap().to_string();
        assert!(err.contains("no checkpoint was written"), "{err}");
        drop(session);
        // Not stuck: a new start into the same folder is accepted.
        let again = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Killed before its first checkpoint, a run is started again by `--resume` (from its
    /// config.toml) and by a new `train` into the same folder.
    #[test]
    fn a_run_killed_before_its_first_checkpoint_can_be_continued() {
        let dir = scratch("unstarted");
        // Started, then killed before its first iteration ended.
        drop(Session::start(config(PPO), Backend::Flex, &dir).unwrap());
        assert!(dir.join(CONFIG_FILE).is_file());
        // On the device the run was started on (flex), recorded in the run directory.
        let mut resumed = Session::resume(&dir, None, None).unwrap();
        let summary = resumed.run(StopAt::End, &mut ()).unwrap();
        assert_eq!(summary.global_step, 256);
        assert_eq!(resumed.device.backend, Backend::Flex);
        drop(resumed);
        std::fs::remove_dir_all(&dir).unwrap();

        let first = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
        drop(first);
        Session::start(config(PPO), Backend::Flex, &dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A process killed after its last checkpoint was renamed into place but before
    /// `latest` moved: the resumed run writes that checkpoint again and moves `latest`.
    #[test]
    fn a_checkpoint_newer_than_latest_is_redone() {
        let dir = scratch("orphan");
        let mut session = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
        session.run(StopAt::End, &mut ()).unwrap();
        let run = session.run_dir();
        let last = run.pointer(LATEST).unwrap().unwrap();
        assert!(last.ends_with("step-0000000256"), "{last:?}");
        // What the kill leaves: `latest` one checkpoint behind.
        run.set_pointer(LATEST, &run.checkpoint_path(192)).unwrap();
        drop(session);
        let mut resumed = Session::resume(&dir, None, None).unwrap();
        let summary = resumed.run(StopAt::End, &mut ()).unwrap();
        assert_eq!(summary.global_step, 256);
        assert_eq!(summary.latest_checkpoint.as_ref(), Some(&last));
        Checkpoint::open(&last).unwrap();
        drop(resumed);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_run_in_use_is_refused_to_a_second_writer() {
        let dir = scratch("locked");
        let mut session = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
        session.run(StopAt::Iterations(1), &mut ()).unwrap();
        let err = Session::resume(&dir, None, None).err().unwrap().to_string();
        assert!(err.contains("in use by another gradless process"), "{err}");
        drop(session);
        Session::resume(&dir, None, None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `latest` naming a checkpoint through a link (into another run) is refused.
    #[test]
    fn pointers_do_not_leave_the_run() {
        let dir = scratch("escape");
        let other = scratch("escape-other");
        let mut session = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
        session.run(StopAt::Iterations(1), &mut ()).unwrap();
        drop(session);
        let mut foreign = Session::start(config(DQN), Backend::Flex, &other).unwrap();
        foreign.run(StopAt::Iterations(100), &mut ()).unwrap();
        drop(foreign);
        let checkpoints = dir.join("checkpoints");
        std::os::unix::fs::symlink(
            other.join("checkpoints/step-0000000100"),
            checkpoints.join("step-0000009999"),
        )
        .unwrap();
        std::fs::write(dir.join(LATEST), "checkpoints/step-0000009999\n").unwrap();
        let err = Session::resume(&dir, None, None).err().unwrap().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        std::fs::write(dir.join(LATEST), "x".repeat(100_000)).unwrap();
        let err = Session::resume(&dir, None, None).err().unwrap().to_string();
        assert!(err.len() < 300, "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&other).unwrap();
    }

    /// The same run's first update on wgpu (lavapipe without a GPU) and on flex: same
    /// initial network (drawn on the host), same rollout, parameters after the update
    /// agree to float32 rounding.
    #[test]
    fn first_update_on_wgpu_matches_flex() {
        let mut parameters = Vec::new();
        for backend in [Backend::Flex, Backend::Wgpu] {
            let dir = scratch(&format!("wgpu-{backend}"));
            let mut session = Session::start(config(PPO), backend, &dir).unwrap();
            session.run(StopAt::Iterations(1), &mut ()).unwrap();
            parameters.push(session.parameters_and_moments().0);
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let largest = parameters[0]
            .iter()
            .zip(&parameters[1])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(largest < 1e-4, "largest difference {largest}");
    }

    #[test]
    fn log_numbers_keep_four_significant_digits() {
        let shown: Vec<String> = [
            43.767292,
            -0.0018129865,
            0.69297397,
            1.7e-5,
            287.0,
            0.0,
            1.5e7,
        ]
        .iter()
        .map(|&x| Short(x).to_string())
        .collect();
        assert_eq!(
            shown,
            [
                "43.77",
                "-0.001813",
                "0.6930",
                "1.700e-5",
                "287.0",
                "0",
                "1.500e7"
            ]
        );
    }

    #[test]
    fn burn_version_is_the_locked_one() {
        let lock =
            std::fs::read_to_string(gradless_test_support::workspace_root().join("Cargo.lock"))
                .unwrap();
        assert!(
            lock.contains(&format!("name = \"burn\"\nversion = \"{BURN_VERSION}\"")),
            "Cargo.lock pins another burn than {BURN_VERSION}"
        );
    }
}
