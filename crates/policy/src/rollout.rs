//! Open-ended greedy rollouts of a policy over an env batch, for throughput: with the envs
//! on the CPU (every step uploads the observations and reads the actions back) or on the
//! device beside the policy (nothing comes back but finished-episode statistics, when asked
//! for).

use gradless_device::InferenceDevice;
use gradless_device_envs::{EnvBackend, FinishedEpisodes, StepKernel};
use gradless_device_envs::{EnvBatch, make_batch};
use gradless_envs::MakeArgs;

use crate::acting::{ActError, Agent, Selection};

/// A batch of envs driven by a greedy agent, on either backend.
pub struct Rollout {
    envs: Box<dyn EnvBatch>,
}

impl Rollout {
    /// `num_envs` envs `env` makes, on `backend`, reset from seed 0.
    pub fn new(
        env: &MakeArgs,
        num_envs: usize,
        backend: EnvBackend,
        device: &InferenceDevice,
    ) -> Result<Self, ActError> {
        Ok(Self {
            envs: make_batch(env, num_envs, backend, device.device(), 0)?,
        })
    }

    /// Number of envs.
    pub fn num_envs(&self) -> usize {
        self.envs.num_envs()
    }

    /// Whether steps are queued on a device until something is read back (device envs);
    /// CPU envs read every step's actions back, so nothing waits.
    pub fn queues_steps(&self) -> bool {
        self.envs.backend() == EnvBackend::Device
    }

    /// How device envs step; `None` for CPU envs.
    pub fn step_kernel(&self) -> Option<StepKernel> {
        self.envs.step_kernel()
    }

    /// Device envs step with `kernel` from now on (an error where it cannot run).
    pub fn use_step_kernel(&mut self, kernel: StepKernel) -> Result<(), ActError> {
        Ok(self.envs.use_step_kernel(kernel)?)
    }

    /// One greedy policy step and one step of every env. On the device nothing is waited
    /// for: call [`take_finished`](Self::take_finished) to synchronise.
    pub fn step(&mut self, agent: &Agent) -> Result<(), ActError> {
        let dim = self.envs.observation_dim();
        let actions = agent.act_on(&self.envs.observations(), dim, Selection::Greedy)?;
        self.envs.step(actions.as_batch())?;
        Ok(())
    }

    /// Reads back (and resets) the episode statistics accumulated since the last call; on a
    /// device this waits for every queued step.
    pub fn take_finished(&mut self) -> Result<FinishedEpisodes, ActError> {
        Ok(self.envs.take_finished()?)
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::Device;
    use gradless_envs::EnvRng;

    use super::*;
    use crate::network::{ActionHead, Activation, ActorCritic};

    #[test]
    fn both_backends_step_every_env_and_count_episodes() {
        let device = InferenceDevice::new(&Device::flex());
        let model = ActorCritic::new(
            4,
            &[8],
            Activation::Tanh,
            ActionHead::Categorical { n: 2 },
            &mut EnvRng::from_seed(3),
            device.device(),
        );
        let agent = Agent::actor_critic(&model, &device);
        for backend in [EnvBackend::Cpu, EnvBackend::Device] {
            let mut rollout =
                Rollout::new(&MakeArgs::registered("CartPole-v1"), 16, backend, &device).unwrap();
            assert_eq!(rollout.num_envs(), 16);
            assert_eq!(rollout.queues_steps(), backend == EnvBackend::Device);
            // An untrained policy drops the pole within a few dozen steps.
            for _ in 0..200 {
                rollout.step(&agent).unwrap();
            }
            let finished = rollout.take_finished().unwrap();
            assert!(finished.total() >= 16, "{backend}: {finished:?}");
            assert!(finished.mean_return().unwrap() < 200.0);
        }
    }
}
