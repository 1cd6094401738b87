//! Device envs behind [`EnvBatch`]: next-step autoreset, records and counters on the device.

use crate::env_batch::{
    BatchActions, BatchObservations, BatchSnapshot, BatchStep, EnvBatch, StepSignals, other_backend,
};
use gradless_envs::AutoresetMode;
use gradless_envs::EnvError;
use gradless_envs::Space;

use super::{
    DeviceActions, DeviceVectorEnv, EnvBackend, FinishedEpisodes, RecordedEpisode, StepKernel,
    fresh_table,
};

impl EnvBatch for DeviceVectorEnv {
    fn env_id(&self) -> &str {
        &self.id
    }

    fn backend(&self) -> EnvBackend {
        EnvBackend::Device
    }

    fn num_envs(&self) -> usize {
        self.num_envs
    }

    fn observation_dim(&self) -> usize {
        self.dynamics.observation_dim()
    }

    fn action_space(&self) -> Space {
        self.dynamics.action_space()
    }

    fn autoreset_mode(&self) -> AutoresetMode {
        AutoresetMode::NextStep
    }

    fn reset(&mut self, seed: u64) -> Result<(), EnvError> {
        self.device.seed(seed);
        let starts = self.dynamics.initial_state(self.num_envs, &self.device);
        self.set_table(fresh_table(starts));
        Ok(())
    }

    fn reset_seeded_episodes(
        &mut self,
        seeds: &[u64],
        episodes_per_env: usize,
    ) -> Result<(), EnvError> {
        self.reset_seeded(seeds, episodes_per_env)
    }

    fn observations(&self) -> BatchObservations<'_> {
        BatchObservations::Device(self.observations.clone())
    }

    fn step(&mut self, actions: BatchActions<'_>) -> Result<BatchStep<'_>, EnvError> {
        let uploaded;
        let actions = match actions {
            BatchActions::Device(actions) => actions,
            BatchActions::Host(actions) => {
                uploaded = DeviceActions::upload(actions, self.num_envs, &self.device);
                &uploaded
            }
        };
        let step = DeviceVectorEnv::step(self, actions)?;
        Ok(BatchStep {
            signals: StepSignals::Device(step.signals),
            final_observations: None,
        })
    }

    fn snapshot(&self) -> Result<BatchSnapshot, EnvError> {
        DeviceVectorEnv::snapshot(self).map(BatchSnapshot::Device)
    }

    fn restore(&mut self, snapshot: &BatchSnapshot) -> Result<(), EnvError> {
        match snapshot {
            BatchSnapshot::Device(snapshot) => DeviceVectorEnv::restore(self, snapshot),
            BatchSnapshot::Cpu(_) => Err(other_backend(&self.id, "CPU")),
        }
    }

    fn record_episodes(&mut self, capacity: usize) {
        DeviceVectorEnv::record_episodes(self, capacity);
    }

    fn recorded_counts(&self) -> Result<Vec<usize>, EnvError> {
        DeviceVectorEnv::recorded_counts(self)
    }

    fn read_records(&self) -> Result<Vec<RecordedEpisode>, EnvError> {
        DeviceVectorEnv::read_records(self)
    }

    fn take_finished(&mut self) -> Result<FinishedEpisodes, EnvError> {
        DeviceVectorEnv::take_finished(self)
    }

    fn step_kernel(&self) -> Option<StepKernel> {
        Some(self.kernel)
    }

    fn use_step_kernel(&mut self, kernel: StepKernel) -> Result<(), EnvError> {
        DeviceVectorEnv::use_step_kernel(self, kernel)
    }

    fn device_envs(&mut self) -> Option<&mut DeviceVectorEnv> {
        Some(self)
    }
}
