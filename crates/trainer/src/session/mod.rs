//! A training session: drives an algorithm iteration by iteration, logs episodes and
//! updates, evaluates greedily, writes checkpoints, and starts or resumes a run directory.
//!
//! Here: starting, resuming and the training loop (`crate::algorithm` says what it needs of
//! PPO, DQN and SAC); `logging` the episode and update lines, `milestones` the evaluations and
//! checkpoints, `tests` the end-to-end runs.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

use gradless_device::{Backend, DeviceReport, TrainingDevice};
use gradless_device_envs::EnvBackend;
use gradless_policy::{Checkpoint, EpisodePlan, Metadata, replace_checkpoint, run_episodes};
use serde::{Deserialize, Serialize};
use serde_json::json;

mod logging;
mod milestones;

use logging::UPDATE_LOG_EVERY;

use crate::TrainError;
use crate::algorithm::{Algorithm, Iteration, state_error};
use crate::config::{AlgorithmConfig, TrainConfig};
use crate::dqn::Dqn;
use crate::metrics::{MetricsLine, Throttle, Update};
use crate::ppo::Ppo;
use crate::profile::{Profile, Profiler};
use crate::run_dir::{BEST, CONFIG_FILE, DEVICE_FILE, LATEST, RunDir};
use crate::sac::Sac;
use crate::tensorboard::TensorBoardLog;

pub use gradless_policy::BURN_VERSION;

/// Episodes the training return is averaged over.
const RECENT_EPISODES: usize = 100;

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
    /// Where the training time went, when the run was profiled (also in `profile.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}

/// A run in progress.
pub struct Session {
    config: TrainConfig,
    run: RunDir,
    device: DeviceReport,
    training_device: TrainingDevice,
    algorithm: Box<dyn Algorithm>,
    state: SessionState,
    update_log: Throttle,
    tensorboard: TensorBoardLog,
}

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
            AlgorithmConfig::Sac(sac) => Box::new(Sac::new(&config, sac, &training)?),
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
        Ok(Self::assemble(
            config,
            run,
            (device, training),
            algorithm,
            state,
        ))
    }

    /// A session of these parts, logging as sessions do.
    fn assemble(
        config: TrainConfig,
        run: RunDir,
        (device, training_device): (DeviceReport, TrainingDevice),
        algorithm: Box<dyn Algorithm>,
        state: SessionState,
    ) -> Self {
        let tensorboard = TensorBoardLog::new(
            run.root(),
            toml::to_string_pretty(&config).expect("config serialises"),
        );
        Self {
            config,
            run,
            device,
            training_device,
            algorithm,
            state,
            update_log: Throttle::new(UPDATE_LOG_EVERY),
            tensorboard,
        }
    }

    /// Continues the run in `dir` from its `latest` checkpoint. `backend` defaults to the
    /// one the run used; `config`, when given, must equal the run's. A run that stopped
    /// before its first checkpoint starts again from its `config.toml`.
    ///
    /// Long because a resume checks the run in one fixed order (lock, config, checkpoint, device,
    /// trainer state), each failure naming its file, before anything is built.
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
        // Nothing is removed here: checkpoints newer than `latest` are replaced one by one
        // as the resumed run writes their steps again.
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
            AlgorithmConfig::Sac(sac) => Box::new(Sac::resume(
                &saved,
                sac,
                &training,
                &checkpoint,
                algorithm_state,
            )?),
        };
        if saved.algorithm.name() != metadata.algorithm
            || algorithm.architecture() != metadata.architecture
        {
            return Err(mismatch(
                "the checkpoint's algorithm or network does not match its config".into(),
            ));
        }
        // Counters past what the run can reach would wrap or never end as it goes on.
        if metadata.global_step > saved.total_timesteps || state.episodes > metadata.global_step {
            return Err(mismatch(format!(
                "its global_step ({}) or episode count ({}) is past what a run of {} steps reaches",
                metadata.global_step, state.episodes, saved.total_timesteps
            )));
        }
        if algorithm.global_step() != metadata.global_step {
            return Err(mismatch(format!(
                "its global_step ({}) does not match its trainer state's ({})",
                metadata.global_step,
                algorithm.global_step()
            )));
        }
        let newer = run.checkpoints_after(metadata.global_step)?;
        if !newer.is_empty() {
            tracing::warn!(
                checkpoint = %latest.display(),
                newer = ?newer,
                "checkpoints newer than `latest` are kept until the resumed run writes their steps again"
            );
        }
        run.truncate_metrics_after(metadata.global_step)?;
        tracing::info!(
            run = %dir.display(),
            checkpoint = %latest.display(),
            global_step = metadata.global_step,
            device = %device,
            "training resumed"
        );
        Ok(Self::assemble(
            saved,
            run,
            (device, training),
            algorithm,
            state,
        ))
    }

    /// Writes no TensorBoard event files (they are written beside the metrics log by
    /// default); call before training, since the file is created with the first line logged.
    pub fn turn_off_tensorboard(&mut self) {
        self.tensorboard = TensorBoardLog::Off;
    }

    /// Times every phase of every iteration from here on (waiting for the device at the end
    /// of each, which slows a run on a device that queues work) and writes where the time
    /// went to `profile.json` in the run directory when the run ends.
    pub fn profile(&mut self) {
        let core = self.algorithm.core_mut();
        core.profiler = Profiler::on(self.training_device.device(), core.global_step);
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
            self.algorithm.core_mut().profiler.start_iteration();
            self.algorithm.iterate(&mut iteration)?;
            self.algorithm.core_mut().profiler.end_iteration();
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
        if let Some(profile) = &summary.profile {
            profile.write(self.run.root())?;
        }
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
            profile: self
                .algorithm
                .core()
                .profiler
                .report(self.algorithm.global_step()),
        }
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
mod tests;
