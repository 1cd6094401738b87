//! Building, resuming and checkpointing a PPO run: the network, the optimizer, the envs and
//! the generators, and what a checkpoint keeps of them.

use std::path::Path;

use gradless_device::TrainingDevice;
use gradless_device_envs::DeviceSnapshot;
use gradless_device_envs::{BatchSnapshot, EnvBatch, make_batch};
use gradless_envs::{EnvRng, MakeArgs, VectorSnapshot};
use gradless_policy::{
    ActionHead, ActorCritic, Agent, Architecture, Checkpoint, CheckpointError, MODEL_FILE,
};
use serde::{Deserialize, Serialize};

use super::Ppo;
use crate::TrainError;
use crate::adam::Adam;
#[cfg(test)]
use crate::adam::MomentValues;
use crate::algorithm::{Algorithm, Core, Iteration, OPTIMIZER_FILE, save_module, state_error};
use crate::config::{PpoConfig, TrainConfig};
use crate::normalization::Normalizers;

/// The trainer's generators are seeded with the run's seed xor these, apart from the envs'
/// streams (`seed + i`).
const INIT_STREAM: u64 = 0x494e_4954_0000_0000;
const SAMPLING_STREAM: u64 = 0x5050_4f00_0000_0000;

/// What a checkpoint records of a PPO run besides weights and optimizer: the CPU envs'
/// snapshot, or the device envs' (two fields, as checkpoints have always had them).
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
    /// Normalisation statistics (absent when the run does not normalise).
    #[serde(default, skip_serializing_if = "Normalizers::is_off")]
    normalizers: Normalizers,
}

impl PpoState {
    fn envs(&self) -> Option<BatchSnapshot> {
        match (&self.env, &self.device_env) {
            (Some(cpu), None) => Some(BatchSnapshot::Cpu(cpu.clone())),
            (None, Some(device)) => Some(BatchSnapshot::Device(device.clone())),
            _ => None,
        }
    }
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

impl Ppo {
    /// The run's envs, reset (CPU envs from `seed + i`, device envs from the device's
    /// generator seeded with `seed`), and the action head their space calls for.
    fn make_envs(
        config: &TrainConfig,
        ppo: &PpoConfig,
        training: &TrainingDevice,
    ) -> Result<(Box<dyn EnvBatch>, ActionHead), TrainError> {
        let envs = make_batch(
            &MakeArgs::registered(config.env.as_str()),
            ppo.num_envs,
            ppo.env_backend,
            training.inference().device(),
            config.seed,
        )?;
        let head = match envs.action_space() {
            gradless_envs::Space::Discrete { n } => ActionHead::Categorical { n: n as usize },
            space => ActionHead::Gaussian {
                dim: space.flat_dim(),
            },
        };
        Ok((envs, head))
    }

    /// A fresh run: network initialised from the run's seeded generator, envs reset.
    pub(crate) fn new(
        config: &TrainConfig,
        ppo: &PpoConfig,
        training: &TrainingDevice,
    ) -> Result<Self, TrainError> {
        let (envs, head) = Self::make_envs(config, ppo, training)?;
        let network = &config.network;
        let observation_dim = envs.observation_dim();
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
            core: Core::starting(
                config,
                architecture(config, observation_dim, head),
                observation_dim,
                ppo.num_envs,
                ppo.gamma,
            ),
            updates: 0,
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
        let (mut envs, head) = Self::make_envs(config, ppo, training)?;
        let model = checkpoint.load_actor_critic(training.device())?;
        let optimizer_path = checkpoint.listed_file(OPTIMIZER_FILE)?;
        let optimizer = Adam::load(&optimizer_path, &model, training.device())?;
        let state: PpoState =
            serde_json::from_value(state).map_err(|e| state_error(checkpoint, e))?;
        let snapshot = state.envs().ok_or_else(|| {
            state_error(
                checkpoint,
                serde::de::Error::custom("not one snapshot of this run's kind of envs"),
            )
        })?;
        envs.restore(&snapshot)?;
        let observation_dim = envs.observation_dim();
        let mut core = Core::starting(
            config,
            architecture(config, observation_dim, head),
            observation_dim,
            ppo.num_envs,
            ppo.gamma,
        );
        core.restore(
            state.global_step,
            state.normalizers,
            config,
            observation_dim,
            ppo.num_envs,
            checkpoint,
        )?;
        Ok(Self {
            num_updates: config.total_timesteps / ppo.batch_size() as u64,
            config: ppo.clone(),
            training: training.clone(),
            inference: training.inference(),
            observation_dim,
            model,
            optimizer,
            envs,
            head,
            rng: state.rng,
            core,
            updates: state.updates,
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
}

impl Algorithm for Ppo {
    fn iterate(&mut self, iteration: &mut Iteration) -> Result<(), TrainError> {
        self.iteration(iteration)
    }

    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn finished(&self) -> bool {
        self.updates >= self.num_updates
    }

    fn policy(&self) -> Agent {
        Agent::actor_critic(&self.model, &self.inference)
    }

    fn state(&self) -> Result<serde_json::Value, TrainError> {
        let (env, device_env) = match self.envs.snapshot()? {
            BatchSnapshot::Cpu(snapshot) => (Some(snapshot), None),
            BatchSnapshot::Device(snapshot) => (None, Some(snapshot)),
        };
        Ok(serde_json::to_value(PpoState {
            updates: self.updates,
            global_step: self.core.global_step,
            rng: self.rng.clone(),
            env,
            device_env,
            normalizers: self.core.normalizers.clone(),
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
            crate::algorithm::flat_parameters(self.model()),
            self.optimizer().moments(),
        )
    }
}
