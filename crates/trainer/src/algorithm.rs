//! What the session needs of a training algorithm, and the helpers the algorithms share for
//! their checkpoint files.

use std::path::Path;

use gradless_envs::{EpisodeStats, VectorStep};
use gradless_policy::{
    Agent, Architecture, Checkpoint, CheckpointError, METADATA_FILE, ObservationNormalizer,
};

use crate::TrainError;
use crate::config::TrainConfig;
use crate::metrics::Update;
use crate::normalization::Normalizers;
use crate::profile::Profiler;

/// The optimizer state's file inside a checkpoint.
pub(crate) const OPTIMIZER_FILE: &str = "optimizer.bin";

/// What one iteration produced, for logging.
#[derive(Debug, Default)]
pub(crate) struct Iteration {
    /// Finished episodes with the global step at which each ended.
    pub episodes: Vec<(u64, EpisodeStats)>,
    /// Update statistics, when an update happened.
    pub update: Option<Update>,
}

/// What every algorithm keeps alike: the env steps taken so far and its budget, the network's
/// architecture, the running statistics its observations (and rewards) are normalised
/// with, and the profiler its phases are timed with.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) global_step: u64,
    /// The run's budget of env steps.
    pub(crate) total_timesteps: u64,
    /// The network's architecture, as checkpoints record it.
    pub(crate) architecture: Architecture,
    pub(crate) normalizers: Normalizers,
    /// Off unless the run is profiled; not part of the training state.
    pub(crate) profiler: Profiler,
}

impl Core {
    /// A run's core before its first step: `num_envs` envs of `observation_dim` values,
    /// returns discounted by `gamma` for the reward statistics.
    pub(crate) fn starting(
        config: &TrainConfig,
        architecture: Architecture,
        observation_dim: usize,
        num_envs: usize,
        gamma: f64,
    ) -> Self {
        Self {
            global_step: 0,
            total_timesteps: config.total_timesteps,
            architecture,
            normalizers: Normalizers::new(&config.normalization, observation_dim, num_envs, gamma),
            profiler: Profiler::default(),
        }
    }

    /// Takes up the step count and statistics a checkpoint saved, refusing (naming the
    /// checkpoint) statistics that do not fit this run's settings, `observation_dim` values
    /// and `num_envs` envs.
    pub(crate) fn restore(
        &mut self,
        global_step: u64,
        normalizers: Normalizers,
        config: &TrainConfig,
        observation_dim: usize,
        num_envs: usize,
        checkpoint: &Checkpoint,
    ) -> Result<(), TrainError> {
        normalizers
            .check_fits(&config.normalization, observation_dim, num_envs)
            .map_err(|reason| state_error(checkpoint, serde::de::Error::custom(reason)))?;
        self.global_step = global_step;
        self.normalizers = normalizers;
        Ok(())
    }

    /// Counts one step of the envs: their rewards into the statistics, their number into the
    /// step count, the episodes that ended into `iteration` (at the new count). Returns the
    /// count before the step.
    pub(crate) fn count_step(&mut self, step: &VectorStep<'_>, iteration: &mut Iteration) -> u64 {
        self.normalizers
            .observe_rewards(step.rewards, step.terminated);
        let before = self.global_step;
        self.global_step += step.rewards.len() as u64;
        iteration.episodes.extend(
            step.episodes
                .iter()
                .map(|episode| (self.global_step, *episode)),
        );
        before
    }
}

/// A training algorithm as the session drives it.
pub(crate) trait Algorithm {
    /// One iteration: PPO a rollout and an update, DQN an env step and any training due.
    fn iterate(&mut self, iteration: &mut Iteration) -> Result<(), TrainError>;
    /// The state every algorithm keeps alike.
    fn core(&self) -> &Core;
    /// The same, to change.
    fn core_mut(&mut self) -> &mut Core;
    /// Environment steps taken.
    fn global_step(&self) -> u64 {
        self.core().global_step
    }
    /// Whether the configured budget is spent.
    fn finished(&self) -> bool {
        self.core().global_step >= self.core().total_timesteps
    }
    /// An inference copy of the current network, before observation normalisation.
    fn policy(&self) -> Agent;
    /// An inference copy of the current network with the observation statistics frozen.
    fn agent(&self) -> Agent {
        self.policy().with_normalizer(self.observation_normalizer())
    }
    /// The observation statistics the agent normalises its inputs with, if any.
    fn observation_normalizer(&self) -> Option<ObservationNormalizer> {
        self.core().normalizers.observations.clone()
    }
    /// The network's architecture.
    fn architecture(&self) -> Architecture {
        self.core().architecture.clone()
    }
    /// What a checkpoint must record to continue exactly.
    fn state(&self) -> Result<serde_json::Value, TrainError>;
    /// Writes weights, optimizer and other state files into a checkpoint directory.
    fn write_files(&self, dir: &Path) -> Result<(), CheckpointError>;
    /// All parameters and optimizer moments, for tests comparing runs.
    #[cfg(test)]
    fn parameters_and_moments(&self) -> (Vec<f32>, crate::adam::MomentValues);
}

/// Whether a multiple of `every` lies in `(before, after]`: whether something due every
/// `every` env steps falls within an iteration that went from `before` to `after`.
pub(crate) fn crossed(before: u64, after: u64, every: u64) -> bool {
    after / every > before / every
}

/// An acting error at `global_step`: non-finite outputs stop the run naming `what`, other
/// failures pass through.
pub(crate) fn acting_error(
    global_step: u64,
    error: gradless_policy::ActError,
    what: &str,
) -> TrainError {
    match error {
        gradless_policy::ActError::NonFinite => TrainError::NonFinite {
            global_step,
            what: what.to_string(),
        },
        other => other.into(),
    }
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

#[cfg(test)]
mod tests {
    use super::crossed;

    #[test]
    fn crossings_count_multiples_in_the_half_open_interval() {
        assert!(crossed(9, 10, 10));
        assert!(!crossed(10, 19, 10));
        assert!(crossed(15, 25, 10));
        assert!(crossed(0, 4, 4));
        assert!(!crossed(0, 3, 4));
    }
}
