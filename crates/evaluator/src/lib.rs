//! Validating checkpoints in inference mode: load the policy onto a device without
//! autodiff, run a fixed set of seeded episodes, log every episode's return and summarise
//! them (mean, spread, IQM with a bootstrap interval). Depends on the policy crate and the
//! envs, never on the trainer.
//!
//! The device is an [`AgentDevice`], made from an inference device (itself only made from
//! `Device::without_autodiff()`) and handing nothing out, and the policy is an [`Agent`],
//! which owns that device and a `valid()` copy of the network and hands out neither: nothing
//! here can record a gradient. This crate depends on neither burn nor the device crate
//! outside its tests, so it cannot name a device to make an autodiff one from.

pub mod curve;
mod discover;
mod outputs;
pub mod record;
pub mod stats;

use std::path::{Path, PathBuf};

pub use gradless_device_envs::EnvBackend;
use gradless_envs::{MakeArgs, MakeOptions, Space};
pub use gradless_import::{ImportError, ZooModel, ZooRun};
pub use gradless_policy::Activation;
pub use gradless_policy::AgentDevice;
pub use gradless_policy::ObservationNormalizer;
use gradless_policy::{
    ActError, Agent, Checkpoint, CheckpointError, EpisodePlan, EpisodeRoute, ForeignHead,
    SeededEpisode, run_routed,
};
pub use gradless_policy::{Progress, Stoppable};
use serde::Serialize;
use thiserror::Error;

pub use curve::{write_learning_curve, write_tensorboard_curve};
pub use discover::{EvalTarget, discover, one_checkpoint};
pub use outputs::{
    SummaryCell, SummaryValue, beside_file, default_eval_place, prepare_output_dir,
    saved_evaluation, summary_row, write_outputs,
};
pub use record::{RecordPlan, RecordedVideo, VIDEOS_FILE, VideoFolder};

/// The run a checkpoint belongs to, whose lock a writer into the checkpoint must hold.
pub fn enclosing_run(checkpoint: &Path) -> Result<Option<PathBuf>, EvalError> {
    gradless_policy::run_layout::enclosing_run(checkpoint).map_err(|source| EvalError::Io {
        path: checkpoint.to_path_buf(),
        source,
    })
}
pub use stats::{ReturnSummary, summarise};

/// Why a checkpoint could not be evaluated.
#[derive(Debug, Error)]
pub enum EvalError {
    /// The checkpoint is missing, corrupt or of an unknown kind.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The env asked for does not fit the checkpoint's policy.
    #[error("{path}: {reason}")]
    Incompatible {
        /// The checkpoint.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// Acting or stepping failed.
    #[error("{path}: {source}")]
    Act {
        /// The checkpoint.
        path: PathBuf,
        /// What failed.
        source: ActError,
    },
    /// A policy file of another tool could not be read.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A frame or a video could not be made.
    #[error("{path}: {source}")]
    Render {
        /// The checkpoint.
        path: PathBuf,
        /// What failed.
        source: gradless_render::RenderError,
    },
    /// A path holds no checkpoint.
    #[error("{0}: no checkpoint here (expected a checkpoint, a run directory or a folder of runs)")]
    NothingToEvaluate(PathBuf),
    /// A run that has written no checkpoint yet, where one checkpoint was wanted.
    #[error("{0}: the run has no checkpoint yet")]
    NoCheckpointYet(PathBuf),
    /// A folder of several runs or checkpoints, where one was wanted.
    #[error("{0}: holds several runs or checkpoints; choose one checkpoint or one run")]
    SeveralTargets(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSettings {
    /// Episodes per checkpoint; episode `i` runs from seed `seed + i`.
    pub episodes: usize,
    /// Envs stepped side by side (does not change any episode's result).
    pub num_envs: usize,
    /// Seed of episode 0.
    pub seed: u64,
    /// Sample actions instead of taking the greedy ones.
    pub stochastic: bool,
    /// A Q-network agent's exploration rate: a random action with this probability, drawn
    /// from each episode's own generator (0: greedy; only Q-networks take more).
    pub epsilon: f64,
    /// Evaluate on this env instead of the one the checkpoint was trained on.
    pub env: Option<String>,
    /// Where the envs step: on the CPU (Gymnasium-exact, seeded episodes), on the device
    /// beside the policy, or wherever runs each checkpoint's episodes faster.
    pub env_backend: EnvBackendChoice,
    /// The activation of a policy read from another tool's file, replacing the one it says
    /// or its format's default (CleanRL files name none).
    pub activation: Option<Activation>,
}

impl EvalSettings {
    /// Whether actions are drawn (sampled, or ε-greedy) rather than greedy.
    pub fn samples(&self) -> bool {
        self.stochastic || self.epsilon > 0.0
    }
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            episodes: 100,
            num_envs: 16,
            seed: 1_000_000,
            stochastic: false,
            epsilon: 0.0,
            env: None,
            env_backend: EnvBackendChoice::Auto,
            activation: None,
        }
    }
}

/// Where `gradless eval` steps the envs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EnvBackendChoice {
    /// On the device when the episode kernel runs the checkpoint's episodes there (wgpu),
    /// else on the CPU: see [`EpisodeRoute::preferred`].
    #[default]
    Auto,
    /// Always on this backend.
    Only(EnvBackend),
}

impl EnvBackendChoice {
    /// Whether an evaluation whose envs stepped on `backend` is one this choice could give.
    pub fn admits(self, backend: EnvBackend) -> bool {
        match self {
            Self::Auto => true,
            Self::Only(only) => only == backend,
        }
    }
}

impl std::str::FromStr for EnvBackendChoice {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(Self::Auto),
            name => name.parse().map(Self::Only).map_err(|_| {
                format!("unknown env backend `{name}` (expected `auto`, `cpu` or `device`)")
            }),
        }
    }
}

/// One checkpoint's evaluation.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CheckpointEvaluation {
    /// The checkpoint directory.
    pub checkpoint: PathBuf,
    /// The training step it was written at; `None` for another tool's policy whose file
    /// does not say (shown as "unknown").
    pub step: Option<u64>,
    /// The frozen statistics its observations were normalised with, if any.
    #[serde(default)]
    pub observation_normalization: Option<ObservationNormalizer>,
    /// The env it was evaluated on.
    pub env: String,
    /// The keyword arguments that env was made with (an RL Zoo agent's `env_kwargs`).
    #[serde(default, skip_serializing_if = "MakeOptions::is_default")]
    pub env_kwargs: MakeOptions,
    /// Whether actions were sampled.
    pub stochastic: bool,
    /// A Q-network's exploration rate (0: greedy).
    #[serde(default)]
    pub epsilon: f64,
    /// Where the envs stepped.
    pub env_backend: EnvBackend,
    /// Seed of episode 0 (`None` in summaries written before it was recorded).
    #[serde(default)]
    pub seed: Option<u64>,
    /// The statistics.
    #[serde(flatten)]
    pub summary: ReturnSummary,
    /// Every episode, in order.
    #[serde(skip)]
    pub episodes: Vec<SeededEpisode>,
}

impl CheckpointEvaluation {
    /// Whether these are the episodes `settings` would run on `env` (a saved evaluation
    /// that can stand in for a new one).
    pub fn matches(&self, settings: &EvalSettings, env: &MakeArgs) -> bool {
        self.env == env.id
            && self.env_kwargs == env.options
            && self.stochastic == settings.samples()
            && self.epsilon == settings.epsilon
            && settings.env_backend.admits(self.env_backend)
            && self.seed == Some(settings.seed)
            && self.summary.episodes == settings.episodes
            && self.summary.mean_return.is_finite()
    }
}

/// Spaces fit when they are of the same kind and size (bounds may differ: gym-rs's
/// CartPole declares other observation bounds than Gymnasium's).
fn spaces_fit(a: &Space, b: &Space) -> bool {
    match (a, b) {
        (Space::Discrete { n }, Space::Discrete { n: m }) => n == m,
        (Space::Box { .. }, Space::Box { .. }) => a.flat_dim() == b.flat_dim(),
        _ => false,
    }
}

/// A checkpoint loaded for evaluation: its policy as an [`Agent`] on the inference device,
/// and the env it is evaluated on.
#[derive(Debug)]
pub struct LoadedCheckpoint {
    dir: PathBuf,
    step: Option<u64>,
    env: MakeArgs,
    agent: Agent,
}

impl LoadedCheckpoint {
    /// Opens the checkpoint in `dir` (every hash checked), checks that the env to evaluate on
    /// fits its spaces, and loads its policy onto `device`.
    pub fn load(
        dir: &Path,
        settings: &EvalSettings,
        device: &AgentDevice,
    ) -> Result<Self, EvalError> {
        if dir.is_file() && gradless_import::is_foreign_file(dir) {
            return Self::load_foreign(dir, settings, device);
        }
        let checkpoint = Checkpoint::open(dir)?;
        let metadata = checkpoint.metadata();
        let env_id = settings
            .env
            .clone()
            .unwrap_or_else(|| metadata.env_id.clone());
        let incompatible = |reason: String| EvalError::Incompatible {
            path: dir.to_path_buf(),
            reason,
        };
        let env = gradless_envs::make(&env_id).map_err(|e| incompatible(e.to_string()))?;
        if !spaces_fit(env.observation_space(), &metadata.observation_space)
            || !spaces_fit(env.action_space(), &metadata.action_space)
        {
            return Err(incompatible(format!(
                "trained on {} ({} -> {}); {env_id} has {} -> {}",
                metadata.env_id,
                metadata.observation_space.describe(),
                metadata.action_space.describe(),
                env.observation_space().describe(),
                env.action_space().describe()
            )));
        }
        // SAC squashes its actions into the box it was trained on: any other box would get
        // actions scaled for another env.
        let squashed = matches!(
            metadata.architecture,
            gradless_policy::Architecture::SoftActorCritic { .. }
        );
        if squashed && env.action_space() != &metadata.action_space {
            return Err(incompatible(format!(
                "a SAC policy squashes its actions into the box it was trained on, {}; {env_id}'s is {}",
                metadata.action_space.describe(),
                env.action_space().describe()
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            step: Some(metadata.global_step),
            env: MakeArgs::registered(env_id),
            agent: Agent::load(&checkpoint, device)?
                .with_epsilon(settings.epsilon)
                .map_err(|why| incompatible(format!("--epsilon: {why}")))?,
        })
    }

    /// A policy another tool saved (a Stable-Baselines3 zip, a CleanRL model, an exported
    /// state dict), on the env `settings.env` names or the file does.
    fn load_foreign(
        path: &Path,
        settings: &EvalSettings,
        device: &AgentDevice,
    ) -> Result<Self, EvalError> {
        let policy = gradless_import::read_policy(path, settings.activation)?;
        Self::from_foreign(policy, settings, device)
    }

    /// A policy of another tool, read from its file or handed over in memory (a live
    /// Stable-Baselines3 model, a PyTorch module), acting on observations normalised with
    /// its statistics (checked to fit when they were given it) when it has them, on the env
    /// `settings.env` names or the policy does.
    pub fn from_foreign(
        policy: gradless_import::ForeignPolicy,
        settings: &EvalSettings,
        device: &AgentDevice,
    ) -> Result<Self, EvalError> {
        let path = policy.path.clone();
        let incompatible = |reason: String| EvalError::Incompatible {
            path: path.clone(),
            reason,
        };
        let (env, action_space) = foreign_env(&policy, settings)?;
        if let Some(why) = policy
            .network
            .head
            .greedy_only()
            .filter(|_| settings.stochastic)
        {
            return Err(incompatible(format!(
                "the {} ({}) acts greedily only here: {why}; evaluate it deterministically",
                policy.format.name(),
                policy.kind
            )));
        }
        let agent = Agent::from_foreign(&policy.network, &action_space, device)
            .map_err(&incompatible)?
            .with_normalizer(policy.normalizer.clone())
            .with_epsilon(settings.epsilon)
            .map_err(|why| incompatible(format!("--epsilon: {why}")))?;
        tracing::debug!(file = %path.display(), format = policy.format.name(), kind = %policy.kind, "policy read");
        Ok(Self {
            dir: path,
            step: policy.step,
            env,
            agent,
        })
    }

    /// The env it is evaluated on.
    pub fn env(&self) -> &MakeArgs {
        &self.env
    }

    /// The agent that acts.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Runs the settings' episodes: every episode is logged as a `tracing` event, in order.
    pub fn evaluate(&self, settings: &EvalSettings) -> Result<CheckpointEvaluation, EvalError> {
        self.evaluate_with_progress(settings, |_| {})
    }

    /// [`evaluate`](Self::evaluate), telling `on_progress` how many episodes have finished
    /// whenever that grows; a [`Stoppable`] one that breaks stops it (an `Act` error whose
    /// source is [`ActError::Stopped`]).
    pub fn evaluate_with_progress(
        &self,
        settings: &EvalSettings,
        on_progress: impl Progress,
    ) -> Result<CheckpointEvaluation, EvalError> {
        let plan = EpisodePlan {
            first_seed: settings.seed,
            episodes: settings.episodes,
            num_envs: settings.num_envs,
            stochastic: settings.samples(),
        };
        let name = self.dir.display().to_string();
        let log_episode = |episode: &SeededEpisode| {
            tracing::info!(
                checkpoint = %name,
                episode = episode.episode,
                seed = ?episode.seed,
                r#return = episode.episode_return,
                length = episode.length,
                terminated = episode.terminated,
                truncated = episode.truncated,
                "episode"
            );
        };
        // Decided once: the episode kernel's program, where it runs them, is built here.
        let route = match settings.env_backend {
            EnvBackendChoice::Only(backend) => {
                EpisodeRoute::on(&self.agent, &self.env, backend, &plan)
            }
            EnvBackendChoice::Auto => {
                let (route, why) = EpisodeRoute::preferred(&self.agent, &self.env, &plan);
                let backend = route.backend();
                // Device envs are float32: worth a line where they replace the CPU's.
                if backend == EnvBackend::Device {
                    tracing::info!(checkpoint = %name, env_backend = %backend, reason = %why,
                        "envs step on the device (--env-backend cpu: Gymnasium's float64 envs)");
                } else {
                    tracing::debug!(checkpoint = %name, env_backend = %backend, reason = %why, "envs chosen");
                }
                route
            }
        };
        let env_backend = route.backend();
        let episodes = run_routed(
            &self.agent,
            &self.env,
            route,
            plan,
            log_episode,
            on_progress,
        )
        .map_err(|source| EvalError::Act {
            path: self.dir.clone(),
            source,
        })?;
        let returns: Vec<f64> = episodes.iter().map(|e| e.episode_return).collect();
        let truncated: Vec<bool> = episodes.iter().map(|e| e.truncated).collect();
        let summary = summarise(&returns, &truncated).ok_or_else(|| EvalError::Incompatible {
            path: self.dir.clone(),
            reason: "no episodes to evaluate (--episodes must be at least 1)".into(),
        })?;
        Ok(CheckpointEvaluation {
            checkpoint: self.dir.clone(),
            step: self.step,
            observation_normalization: self.agent.normalizer().cloned(),
            env: self.env.id.clone(),
            env_kwargs: self.env.options,
            stochastic: settings.samples(),
            epsilon: settings.epsilon,
            env_backend,
            seed: Some(settings.seed),
            summary,
            episodes,
        })
    }
}

/// Evaluates one checkpoint ([`LoadedCheckpoint::load`], then
/// [`evaluate`](LoadedCheckpoint::evaluate)).
///
/// The device is an [`AgentDevice`], made from an inference device; a training device,
/// whose autodiff is on, does not fit:
///
/// ```compile_fail
/// use gradless_device::{Device, TrainingDevice};
/// use gradless_evaluator::{EvalSettings, evaluate_checkpoint};
/// let training = TrainingDevice::new(&Device::flex());
/// let dir = std::path::Path::new("checkpoints/cartpole-v1-ppo");
/// let _ = evaluate_checkpoint(dir, &EvalSettings::default(), &training);
/// ```
///
/// the agents' device hands out no device that could be turned into an autodiff one:
///
/// ```compile_fail
/// use gradless_device::{Device, InferenceDevice};
/// use gradless_evaluator::AgentDevice;
/// let device = AgentDevice::new(&InferenceDevice::new(&Device::flex()));
/// let _raw = device.device();
/// ```
///
/// and what evaluation loads hands out no network to train or move onto autodiff:
///
/// ```compile_fail
/// use gradless_device::{Device, InferenceDevice};
/// use gradless_evaluator::{AgentDevice, EvalSettings, LoadedCheckpoint};
/// let device = AgentDevice::new(&InferenceDevice::new(&Device::flex()));
/// let dir = std::path::Path::new("checkpoints/cartpole-v1-ppo");
/// let loaded = LoadedCheckpoint::load(dir, &EvalSettings::default(), &device).unwrap();
/// let _network = loaded.agent().network;
/// ```
pub fn evaluate_checkpoint(
    dir: &Path,
    settings: &EvalSettings,
    device: &AgentDevice,
) -> Result<CheckpointEvaluation, EvalError> {
    LoadedCheckpoint::load(dir, settings, device)?.evaluate(settings)
}

/// The env a checkpoint (or a policy file of another tool) is evaluated on under
/// `settings`: `settings.env`, or the one it was trained on (that the file or its RL Zoo
/// run folder names, with the keyword arguments it was made with).
pub fn evaluation_env(checkpoint: &Path, settings: &EvalSettings) -> Result<MakeArgs, EvalError> {
    match &settings.env {
        Some(env) => Ok(MakeArgs::registered(env.as_str())),
        None if checkpoint.is_file() => Ok(read_foreign_for_env(checkpoint, settings)?.1),
        None => Ok(MakeArgs::registered(
            Checkpoint::open(checkpoint)?.metadata().env_id.as_str(),
        )),
    }
}

/// A policy file of another tool, read, with the env it is evaluated on (`settings.env`, or
/// the one the file names), checked to fit it (see [`foreign_env`]).
pub fn read_foreign_for_env(
    path: &Path,
    settings: &EvalSettings,
) -> Result<(gradless_import::ForeignPolicy, MakeArgs), EvalError> {
    let policy = gradless_import::read_policy(path, settings.activation)?;
    let (env, _) = foreign_env(&policy, settings)?;
    Ok((policy, env))
}

/// The env a policy of another tool is evaluated on (`settings.env` as registered, or the one
/// the policy names, with its keyword arguments) and its action space, checked to fit: the network's input size must be the env's
/// observation size, its outputs the env's actions (or action dimensions, for a Gaussian or
/// squashed one).
fn foreign_env(
    policy: &gradless_import::ForeignPolicy,
    settings: &EvalSettings,
) -> Result<(MakeArgs, Space), EvalError> {
    let incompatible = |reason: String| EvalError::Incompatible {
        path: policy.path.clone(),
        reason,
    };
    let args = match &settings.env {
        Some(id) => MakeArgs::registered(id.as_str()),
        None => policy.env.clone().ok_or_else(|| {
            incompatible(format!(
                "a {} file names no env: give it with --env ID",
                policy.format.name()
            ))
        })?,
    };
    let env = args.make().map_err(|e| incompatible(e.to_string()))?;
    let network = &policy.network;
    let fits = match (env.action_space(), &network.head) {
        (Space::Discrete { n }, ForeignHead::Categorical | ForeignHead::QValues) => {
            *n as usize == network.outputs()
        }
        (
            Space::Box { .. },
            ForeignHead::Gaussian { .. }
            | ForeignHead::Squashed { .. }
            | ForeignHead::Mean
            | ForeignHead::SoftActor,
        ) => env.action_space().flat_dim() == network.action_outputs(),
        _ => false,
    };
    if network.observation_dim() != env.observation_space().flat_dim() || !fits {
        return Err(incompatible(format!(
            "the {} network ({}) maps {} observations to {} {}; {args} has {} -> {}",
            policy.format.name(),
            policy.kind,
            network.observation_dim(),
            network.action_outputs(),
            match network.head {
                ForeignHead::Gaussian { .. } => "Gaussian action dimensions",
                ForeignHead::Mean => "action dimensions",
                ForeignHead::Squashed { .. } | ForeignHead::SoftActor => {
                    "squashed action dimensions"
                }
                ForeignHead::Categorical | ForeignHead::QValues => "discrete actions",
            },
            env.observation_space().describe(),
            env.action_space().describe()
        )));
    }
    Ok((args.clone(), env.action_space().clone()))
}

/// The mean return of a uniform random policy on the env `env` makes over `episodes`
/// episodes, episode `i` from seed `seed + i` (actions drawn from a generator of the same
/// seed).
pub fn random_policy_score(env: &MakeArgs, episodes: usize, seed: u64) -> Result<f64, EvalError> {
    let failed = |e: gradless_envs::EnvError| EvalError::Incompatible {
        path: PathBuf::from(env.to_string()),
        reason: e.to_string(),
    };
    let mut env = env.make().map_err(failed)?;
    let mut buffer = vec![0.0; env.action_space().flat_dim()];
    let mut total = 0.0;
    for i in 0..episodes as u64 {
        let mut sampler =
            gradless_envs::ActionSampler::new(env.action_space(), seed.wrapping_add(i));
        env.reset(Some(seed.wrapping_add(i)));
        loop {
            let step = env.step(sampler.sample(&mut buffer)).map_err(failed)?;
            total += step.reward;
            if step.terminated || step.truncated {
                break;
            }
        }
    }
    Ok(total / episodes.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::Device;
    use gradless_device::InferenceDevice;
    use gradless_test_support::{
        SUMMARY_KEYS, copy_dir, run_of_copies, scratch, shipped_checkpoint as shipped,
    };

    fn flex() -> AgentDevice {
        AgentDevice::new(&InferenceDevice::new(&Device::flex()))
    }

    fn settings(episodes: usize, num_envs: usize) -> EvalSettings {
        EvalSettings {
            episodes,
            num_envs,
            ..EvalSettings::default()
        }
    }

    /// The shipped policies are trained (and load); per-episode returns are the same
    /// whatever the number of envs.
    #[test]
    fn shipped_checkpoints_evaluate_identically_at_any_num_envs() {
        for name in ["cartpole-v1-ppo", "cartpole-v1-dqn"] {
            let one = evaluate_checkpoint(&shipped(name), &settings(12, 1), &flex()).unwrap();
            let many = evaluate_checkpoint(&shipped(name), &settings(12, 5), &flex()).unwrap();
            assert_eq!(one.episodes, many.episodes, "{name}");
            assert_eq!(one.episodes.len(), 12);
            assert!(one.summary.mean_return > 400.0, "{name}: {:?}", one.summary);
            let [lo, hi] = one.summary.iqm_ci95;
            assert!(lo <= one.summary.iqm && one.summary.iqm <= hi);
        }
    }

    /// The shipped Acrobot, MountainCar, MountainCarContinuous and Pendulum agents reach
    /// their targets over the 100 evaluation episodes `gradless eval` runs by default.
    #[test]
    fn shipped_agents_reach_the_reward_thresholds() {
        for (name, threshold) in [
            ("acrobot-v1-dqn", -100.0),
            ("mountaincar-v0-dqn", -110.0),
            ("mountaincarcontinuous-v0-sac", 90.0),
            ("pendulum-v1-sac", -200.0),
        ] {
            let settings = EvalSettings {
                num_envs: 50,
                ..EvalSettings::default()
            };
            let evaluation = evaluate_checkpoint(&shipped(name), &settings, &flex()).unwrap();
            assert_eq!(evaluation.episodes.len(), 100);
            assert!(
                evaluation.summary.mean_return >= threshold,
                "{name}: {:?}",
                evaluation.summary
            );
        }
    }

    /// A checkpoint evaluated for real: every tensor its agent holds is off autodiff and
    /// needs no gradient, before and after the episodes, and so is the agent's device.
    #[test]
    fn an_evaluated_agent_holds_no_autodiff_tensor() {
        for (name, tensors) in [
            ("cartpole-v1-ppo", 12),
            ("cartpole-v1-dqn", 6),
            ("pendulum-v1-sac", 6),
        ] {
            let loaded = LoadedCheckpoint::load(&shipped(name), &settings(3, 3), &flex()).unwrap();
            assert_eq!(loaded.agent().tensor_census(), (tensors, 0), "{name}");
            assert!(!loaded.agent().device_is_autodiff());
            let evaluation = loaded.evaluate(&settings(3, 3)).unwrap();
            assert_eq!(evaluation.episodes.len(), 3);
            assert_eq!(loaded.agent().tensor_census(), (tensors, 0), "{name}");
        }
    }

    #[test]
    fn other_envs_are_accepted_when_their_spaces_fit() {
        let on_v0 = EvalSettings {
            env: Some("CartPole-v0".into()),
            ..settings(3, 3)
        };
        let evaluation = evaluate_checkpoint(&shipped("cartpole-v1-ppo"), &on_v0, &flex()).unwrap();
        assert_eq!(evaluation.env, "CartPole-v0");
        assert!(evaluation.episodes.iter().all(|e| e.length <= 200));
        let on_pendulum = EvalSettings {
            env: Some("Pendulum-v1".into()),
            ..settings(3, 3)
        };
        let err = evaluate_checkpoint(&shipped("cartpole-v1-ppo"), &on_pendulum, &flex())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cartpole-v1-ppo") && err.contains("Pendulum-v1"),
            "{err}"
        );
    }

    /// A SAC policy whose recorded action box is not the env's is refused: its actions
    /// would be scaled for another box.
    #[test]
    fn a_sac_policy_for_another_action_box_is_refused() {
        let dir = scratch("sac-box");
        copy_dir(&shipped("pendulum-v1-sac"), &dir);
        let path = dir.join(gradless_policy::METADATA_FILE);
        let mut metadata: gradless_policy::Metadata =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        metadata.action_space = Space::Box {
            low: vec![-1.0],
            high: vec![1.0],
        };
        metadata.metadata_sha256 = metadata.content_sha256();
        std::fs::write(&path, serde_json::to_vec(&metadata).unwrap()).unwrap();
        let err = evaluate_checkpoint(&dir, &settings(2, 2), &flex())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("squashes") && err.contains("Pendulum-v1"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Another tool's policy file: its env comes from `--env` (its file names none), and
    /// the network must fit it.
    #[test]
    fn policy_files_are_evaluated_on_the_env_they_fit() {
        let zip = gradless_test_support::workspace_root()
            .join("crates/import/tests/fixtures/sb3_dqn_cartpole.zip");
        let on = |env: Option<&str>| EvalSettings {
            env: env.map(str::to_string),
            ..EvalSettings::default()
        };
        assert_eq!(
            evaluation_env(&zip, &on(Some("CartPole-v0"))).unwrap(),
            MakeArgs::registered("CartPole-v0")
        );
        let error = evaluation_env(&zip, &on(None)).unwrap_err().to_string();
        assert!(error.contains("--env"), "{error}");
        let (policy, env) = read_foreign_for_env(&zip, &on(Some("CartPole-v1"))).unwrap();
        assert_eq!(
            (env.id.as_str(), policy.network.outputs()),
            ("CartPole-v1", 2)
        );
        let error = read_foreign_for_env(&zip, &on(Some("Acrobot-v1")))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("maps 4 observations to 2 discrete actions"),
            "{error}"
        );
    }

    #[test]
    fn a_random_policy_scores_what_random_actions_score() {
        // CartPole's random policy lasts about 22 steps; MountainCar's never reaches the goal.
        let cartpole = random_policy_score(&MakeArgs::registered("CartPole-v1"), 100, 0).unwrap();
        assert!((15.0..30.0).contains(&cartpole), "{cartpole}");
        assert_eq!(
            random_policy_score(&MakeArgs::registered("CartPole-v1"), 100, 0).unwrap(),
            cartpole
        );
        assert_eq!(
            random_policy_score(&MakeArgs::registered("MountainCar-v0"), 3, 0).unwrap(),
            -200.0
        );
        assert!(random_policy_score(&MakeArgs::registered("Nope-v0"), 3, 0).is_err());
    }

    #[test]
    fn corrupt_weights_are_an_error_naming_the_file() {
        let dir = scratch("corrupt");
        copy_dir(&shipped("cartpole-v1-ppo"), &dir);
        let model = dir.join("model.bpk");
        let bytes = std::fs::read(&model).unwrap();
        std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
        let err = evaluate_checkpoint(&dir, &settings(2, 2), &flex())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.bpk") && err.contains("SHA-256"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn paths_are_a_checkpoint_a_run_or_a_folder_of_runs() {
        let root = scratch("discover");
        let run = run_of_copies(root.join("run-a"), "cartpole-v1-ppo", &[200, 100]);
        copy_dir(&shipped("cartpole-v1-dqn"), &root.join("single"));
        let as_checkpoint =
            discover(&run.join("checkpoints/step-0000000100"), ZooModel::Final).unwrap();
        assert_eq!(as_checkpoint[0].checkpoints.len(), 1);
        let as_run = discover(&run, ZooModel::Final).unwrap();
        assert_eq!(as_run[0].run.as_deref(), Some(run.as_path()));
        assert!(
            as_run[0].checkpoints[0].ends_with("step-0000000100"),
            "step order"
        );
        let as_folder = discover(&root, ZooModel::Final).unwrap();
        assert_eq!(as_folder.len(), 2);
        let err = discover(&root.join("run-a/checkpoints/missing"), ZooModel::Final).unwrap_err();
        assert!(err.to_string().contains("no checkpoint here"), "{err}");

        let evaluation =
            evaluate_checkpoint(&root.join("single"), &settings(4, 2), &flex()).unwrap();
        let out = prepare_output_dir(&root, Path::new("out")).unwrap();
        write_outputs(&evaluation, &out).unwrap();
        let lines = std::fs::read_to_string(out.join("episodes.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 4);
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        for key in SUMMARY_KEYS {
            assert!(summary.get(key).is_some(), "{key} missing: {summary}");
        }
        let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
        assert_eq!(csv.lines().count(), 2);
        // A later reader finds the evaluation and knows which episodes it ran.
        let saved = saved_evaluation(&out).unwrap();
        assert_eq!(saved.summary, evaluation.summary);
        assert_eq!((saved.step, saved.seed), (evaluation.step, Some(1_000_000)));
        let cartpole = MakeArgs::registered("CartPole-v1");
        assert!(saved.matches(&settings(4, 3), &cartpole));
        assert!(!saved.matches(&settings(5, 2), &cartpole), "other episodes");
        assert!(
            !saved.matches(&settings(4, 2), &MakeArgs::registered("CartPole-v0")),
            "another env"
        );
        let mut shorter = cartpole.clone();
        shorter.options.step_limit = gradless_envs::StepLimit::Steps(100);
        assert!(
            !saved.matches(&settings(4, 2), &shorter),
            "the env made with other keyword arguments"
        );
        assert!(saved_evaluation(&root).is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
