//! Gymnasium's classic-control environments, step for step: the same constants, integrators,
//! termination and truncation rules, float64 internal state and float32 observations, and
//! the same seeded initial states (Gymnasium's PCG64 generator is reproduced bit for bit).
//!
//! - [`make`] builds one environment by id (`CartPole-v1`, `Acrobot-v1`, ...); [`Env`] is
//!   Gymnasium's `reset`/`step` API.
//! - [`make_vector`] builds a [`VectorEnv`]: many copies stepped in one call, with Gymnasium's
//!   autoreset modes and per-episode statistics.
//! - [`make_batch`] builds an [`EnvBatch`] on either backend: the one interface rollouts,
//!   evaluation episodes and benchmarks drive.
//! - [`replay`] runs reference trajectories (the format the parity fixtures use).
//! - [`device::make_device_vector`] builds CartPole, MountainCar or Pendulum as burn tensor
//!   programs, so a batch of envs steps on the same device as the policy.
//! - With the `gym-rs` feature, the `gym-rs` crate's environments run behind the same API.

mod batch;
mod classic;
pub mod device;
mod env;
mod error;
#[cfg(feature = "gym-rs")]
pub mod gym_rs;
mod registry;
pub mod replay;
mod rng;
mod space;
mod vector;

pub use batch::{
    BatchActions, BatchObservations, BatchSnapshot, BatchStep, CpuBatch, EnvBatch, StepSignals,
    make_batch, most_episodes,
};
pub use classic::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
pub use env::{
    Action, ClassicEnv, Dynamics, Env, EnvDescription, MAX_OBSERVATION_DIM, Observation,
    StateVector, Step, TimeLimit, Transition, check_action,
};
pub use error::EnvError;
pub use registry::{
    EnvSpec, MakeOptions, SPECS, known_ids, make, make_vector, make_with, registered_specs, spec,
};
pub use rng::EnvRng;
pub use space::{ActionSampler, Space};
pub use vector::{
    Actions, AutoresetMode, EpisodeStats, SyncVectorEnv, VectorEnv, VectorSnapshot, VectorStep,
};
