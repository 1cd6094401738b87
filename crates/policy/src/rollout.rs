//! Open-ended greedy rollouts of a policy over a batch of envs, for throughput: with the
//! envs on the CPU (every step uploads the observations and reads the actions back) or on
//! the device beside the policy (nothing comes back but finished-episode statistics, when
//! asked for).

use burn::prelude::Tensor;
use gradless_device::InferenceDevice;
use gradless_envs::device::{
    DeviceVectorEnv, EnvBackend, FinishedEpisodes, StepKernel, make_device_vector,
};
use gradless_envs::{AutoresetMode, MakeOptions, VectorEnv, make_vector};

use crate::acting::{ActError, Agent, Selection};

/// A batch of envs driven by a greedy agent, on either backend.
pub enum Rollout {
    /// Envs on the CPU.
    Cpu {
        /// The envs.
        envs: Box<dyn VectorEnv>,
        /// The latest observations, `num_envs * dim` values.
        observations: Vec<f32>,
    },
    /// Envs on the agent's device.
    Device(Box<OnDevice>),
}

/// Envs on the device and their latest observations.
pub struct OnDevice {
    envs: DeviceVectorEnv,
    /// `[num_envs, dim]`.
    observations: Tensor<2>,
}

impl Rollout {
    /// `num_envs` envs of `env_id` on `backend`, reset (CPU envs from seed 0).
    pub fn new(
        env_id: &str,
        num_envs: usize,
        backend: EnvBackend,
        device: &InferenceDevice,
    ) -> Result<Self, ActError> {
        Ok(match backend {
            EnvBackend::Cpu => {
                let mut envs = make_vector(
                    env_id,
                    num_envs,
                    AutoresetMode::NextStep,
                    MakeOptions::default(),
                )?;
                let observations = envs.reset(Some(0)).to_vec();
                Rollout::Cpu { envs, observations }
            }
            EnvBackend::Device => {
                let envs = make_device_vector(env_id, num_envs, device.device())?;
                let observations = envs.observations();
                Rollout::Device(Box::new(OnDevice { envs, observations }))
            }
        })
    }

    /// Number of envs.
    pub fn num_envs(&self) -> usize {
        match self {
            Rollout::Cpu { envs, .. } => envs.num_envs(),
            Rollout::Device(on) => on.envs.num_envs(),
        }
    }

    /// How device envs step; `None` for CPU envs.
    pub fn step_kernel(&self) -> Option<StepKernel> {
        match self {
            Rollout::Cpu { .. } => None,
            Rollout::Device(on) => Some(on.envs.step_kernel()),
        }
    }

    /// Device envs step with `kernel` from now on (an error where it cannot run); CPU envs
    /// ignore it.
    pub fn use_step_kernel(&mut self, kernel: StepKernel) -> Result<(), ActError> {
        if let Rollout::Device(on) = self {
            on.envs.use_step_kernel(kernel)?;
        }
        Ok(())
    }

    /// One greedy policy step and one step of every env. On the device nothing is waited
    /// for: call [`take_finished`](Self::take_finished) to synchronise.
    pub fn step(&mut self, agent: &Agent) -> Result<(), ActError> {
        match self {
            Rollout::Cpu { envs, observations } => {
                let dim = envs.single_observation_space().flat_dim();
                let actions = agent.act(observations, dim, Selection::Greedy)?;
                observations.copy_from_slice(envs.step(actions.as_actions())?.observations);
            }
            Rollout::Device(on) => {
                let actions = agent.greedy_device_actions(on.observations.clone());
                on.observations = on.envs.step(&actions)?.observations;
            }
        }
        Ok(())
    }

    /// Device envs: reads back (and resets) the episode statistics accumulated since the
    /// last call, which waits for every queued step. CPU envs: `None`, nothing to wait for.
    pub fn take_finished(&mut self) -> Result<Option<FinishedEpisodes>, ActError> {
        match self {
            Rollout::Cpu { .. } => Ok(None),
            Rollout::Device(on) => Ok(Some(on.envs.take_finished()?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::Device;
    use gradless_envs::EnvRng;

    use super::*;
    use crate::network::{ActionHead, Activation, ActorCritic};

    #[test]
    fn both_backends_step_every_env_and_device_rollouts_count_episodes() {
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
            let mut rollout = Rollout::new("CartPole-v1", 16, backend, &device).unwrap();
            assert_eq!(rollout.num_envs(), 16);
            // An untrained policy drops the pole within a few dozen steps.
            for _ in 0..200 {
                rollout.step(&agent).unwrap();
            }
            match rollout.take_finished().unwrap() {
                None => assert_eq!(backend, EnvBackend::Cpu),
                Some(finished) => {
                    assert!(finished.total() >= 16, "{finished:?}");
                    assert!(finished.mean_return().unwrap() < 200.0);
                }
            }
        }
    }
}
