//! Gymnasium's classic-control environments, step for step: the same constants, integrators,
//! termination and truncation rules, float64 internal state and float32 observations, and
//! the same seeded initial states (Gymnasium's PCG64 generator is reproduced bit for bit).
//!
//! - [`make`] builds one environment by id (`CartPole-v1`, `Acrobot-v1`, ...); [`Env`] is
//!   Gymnasium's `reset`/`step` API.
//! - [`make_vector`] builds a [`VectorEnv`]: many copies stepped in one call, with Gymnasium's
//!   autoreset modes and per-episode statistics.
//! - [`replay`] runs reference trajectories (the format the parity fixtures use).
//! - [`constants`] are the physics' constants, for other implementations of the same
//!   dynamics (the device envs, which step them in `f32`).
//! - With the `gym-rs` feature, the `gym-rs` crate's environments run behind the same API.
//!
//! Plain Rust: no tensor library, so statistics, Python bindings and other CPU users build
//! without the GPU stack.

mod action;
mod classic;
mod env;
mod error;
#[cfg(feature = "gym-rs")]
pub mod gym_rs;
mod registry;
pub mod replay;
mod rng;
mod space;
mod spec;
mod vector;

pub use action::{Action, Actions};
pub use classic::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
pub use env::{
    BatchStep, ClassicEnv, Dynamics, Env, EnvDescription, MAX_OBSERVATION_DIM, Observation,
    StateVector, Step, TimeLimit, Transition, check_action,
};
pub use error::EnvError;
pub use registry::{known_ids, make, make_classic, make_vector, make_with, registered_specs, spec};
pub use rng::EnvRng;
pub use space::{ActionSampler, Space};
pub use spec::{EnvSpec, KWARGS, KwargError, KwargValue, MakeArgs, MakeOptions, SPECS, StepLimit};
pub use vector::{
    AutoresetMode, EpisodeStats, SyncVectorEnv, VectorEnv, VectorSnapshot, VectorStep,
};

/// The constants of each env's physics, as the CPU envs use them.
pub mod constants {
    /// CartPole's.
    pub mod cartpole {
        pub use crate::classic::cartpole::{
            FORCE_MAG, GRAVITY, HALF_LENGTH, MASS_CART, MASS_POLE, POLE_MASS_LENGTH, TAU,
            THETA_THRESHOLD, TOTAL_MASS, X_THRESHOLD,
        };
    }
    /// MountainCar's (discrete; the continuous one shares the track).
    pub mod mountain_car {
        pub use crate::classic::mountain_car::{
            FORCE, GOAL_POSITION, GRAVITY, MAX_POSITION, MAX_SPEED, MIN_POSITION,
        };
    }
    /// Pendulum's.
    pub mod pendulum {
        pub use crate::classic::pendulum::{DT, GRAVITY, LENGTH, MASS, MAX_SPEED, MAX_TORQUE};
    }
}
