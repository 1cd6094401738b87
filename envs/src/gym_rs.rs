//! The `gym-rs` crate's environments behind this crate's [`Env`] API, as
//! `gym-rs/CartPole` and `gym-rs/MountainCar`.
//!
//! gym-rs 0.3 is not Gymnasium, and the adapter does not hide it:
//! - its CartPole uses `polemass_length = masspole + length` (0.6) where Gymnasium has
//!   `masspole * length` (0.05), so the pole reacts differently to the same pushes;
//! - its CartPole starts from `U(-0.5, 0.5)` per component instead of `U(-0.05, 0.05)`;
//! - it never truncates (no step limit); the adapter adds Gymnasium's registered limits
//!   (500 for CartPole, 200 for MountainCar) as `gym.make` would, so a harness that counts
//!   episodes always sees them end;
//! - its generator is its own: the same seed gives other initial states than Gymnasium's;
//! - `reset(None)` reseeds from entropy every time instead of continuing the generator.
//!
//! Observations are float64 in gym-rs and are returned as float32, as everywhere here.

use gym_rs::core::Env as GymRsCoreEnv;
use gym_rs::envs::classical_control::cartpole::{CartPoleEnv, CartPoleObservation};
use gym_rs::envs::classical_control::mountain_car::{MountainCarEnv, MountainCarObservation};
use gym_rs::utils::renderer::RenderMode;
use ordered_float::OrderedFloat;

use crate::action::Action;
use crate::env::{Env, EnvDescription, Observation, Step, TimeLimit, check_action};
use crate::error::EnvError;
use crate::space::Space;
use crate::spec::{EnvSpec, MakeOptions};

/// A gym-rs environment this adapter knows how to drive.
trait GymRsTask: GymRsCoreEnv<Action = usize> {
    fn create() -> Self;
    fn write_state(&mut self, state: &[f64]);
    fn spaces() -> (Space, Space);
}

impl GymRsTask for CartPoleEnv {
    fn create() -> Self {
        CartPoleEnv::new(RenderMode::None)
    }
    fn write_state(&mut self, s: &[f64]) {
        self.state = CartPoleObservation::new(
            OrderedFloat(s[0]),
            OrderedFloat(s[1]),
            OrderedFloat(s[2]),
            OrderedFloat(s[3]),
        );
    }
    fn spaces() -> (Space, Space) {
        let theta = (12.0 * 2.0 * std::f64::consts::PI / 360.0 * 2.0) as f32;
        (
            Space::symmetric_box(&[4.8, f32::INFINITY, theta, f32::INFINITY]),
            Space::Discrete { n: 2 },
        )
    }
}

impl GymRsTask for MountainCarEnv {
    fn create() -> Self {
        MountainCarEnv::new(RenderMode::None)
    }
    fn write_state(&mut self, s: &[f64]) {
        self.state = MountainCarObservation {
            position: OrderedFloat(s[0]),
            velocity: OrderedFloat(s[1]),
        };
    }
    fn spaces() -> (Space, Space) {
        (
            Space::Box {
                low: vec![-1.2, -0.07],
                high: vec![0.6, 0.07],
            },
            Space::Discrete { n: 3 },
        )
    }
}

/// A gym-rs environment with Gymnasium's order check and step limit around it.
struct GymRsEnv<E: GymRsTask> {
    inner: E,
    description: EnvDescription,
    state: Option<Vec<f64>>,
    time_limit: TimeLimit,
}

impl<E: GymRsTask> GymRsEnv<E> {
    fn new(spec: EnvSpec) -> Self {
        let (observation_space, action_space) = E::spaces();
        Self {
            inner: E::create(),
            description: EnvDescription {
                spec,
                observation_space,
                action_space,
            },
            state: None,
            time_limit: TimeLimit::new(spec.max_episode_steps),
        }
    }

    fn observe(&mut self, state: Vec<f64>) -> Observation {
        let observation: Vec<f32> = state.iter().map(|v| *v as f32).collect();
        self.state = Some(state);
        Observation::new(&observation)
    }
}

impl<E: GymRsTask> Env for GymRsEnv<E> {
    fn description(&self) -> &EnvDescription {
        &self.description
    }

    fn reset(&mut self, seed: Option<u64>) -> Observation {
        let (observation, _) = self.inner.reset(seed, false, None);
        self.time_limit.restart();
        self.observe(observation.into())
    }

    fn step(&mut self, action: Action<'_>) -> Result<Step, EnvError> {
        let id = self.description.spec.id;
        check_action(&self.description.action_space, id, action)?;
        if self.state.is_none() {
            return Err(EnvError::ResetNeeded {
                env: id.to_string(),
            });
        }
        let Action::Discrete(action) = action else {
            unreachable!("checked against a Discrete space")
        };
        let outcome = self.inner.step(action as usize);
        let truncated = self.time_limit.tick() || outcome.truncated;
        Ok(Step {
            observation: self.observe(outcome.observation.into()),
            reward: outcome.reward.into_inner(),
            terminated: outcome.done,
            truncated,
        })
    }

    fn state(&self) -> Option<Vec<f64>> {
        self.state.clone()
    }

    fn set_state(&mut self, state: &[f64]) -> Result<Observation, EnvError> {
        let dim = self.description.observation_space.flat_dim();
        if state.len() != dim || state.iter().any(|v| !v.is_finite()) {
            return Err(EnvError::InvalidState {
                env: self.description.spec.id.to_string(),
                reason: format!("expected {dim} finite components, got {state:?}"),
            });
        }
        self.inner.reset(Some(0), false, None);
        self.inner.write_state(state);
        self.time_limit.restart();
        Ok(self.observe(state.to_vec()))
    }
}

/// The adapter's specs: gym-rs registers no limits, so these are Gymnasium's.
pub const SPECS: [EnvSpec; 2] = [
    EnvSpec {
        id: "gym-rs/CartPole",
        max_episode_steps: Some(500),
        reward_threshold: Some(475.0),
    },
    EnvSpec {
        id: "gym-rs/MountainCar",
        max_episode_steps: Some(200),
        reward_threshold: Some(-110.0),
    },
];

/// Makes a gym-rs environment for one of [`SPECS`]; `Ok(None)` for any other id.
pub(crate) fn make(id: &str, options: MakeOptions) -> Result<Option<Box<dyn Env>>, EnvError> {
    let Some(spec) = SPECS.iter().find(|spec| spec.id == id).copied() else {
        return Ok(None);
    };
    if options != MakeOptions::default() {
        return Err(EnvError::InvalidOption {
            env: id.to_string(),
            reason: "gym-rs environments take no options".into(),
        });
    }
    Ok(Some(match id {
        "gym-rs/CartPole" => Box::new(GymRsEnv::<CartPoleEnv>::new(spec)),
        _ => Box::new(GymRsEnv::<MountainCarEnv>::new(spec)),
    }))
}
