//! The Gymnasium-shaped environment API and the single-environment runner.

use std::fmt;
use std::ops::Deref;

use serde::{Serialize, Serializer};

use crate::action::{Action, Actions};
use crate::error::EnvError;
use crate::rng::EnvRng;
use crate::space::Space;
use crate::spec::EnvSpec;

/// The most numbers any observation here holds (Acrobot's six).
pub const MAX_OBSERVATION_DIM: usize = 6;

/// A float32 observation, stored inline so that stepping allocates nothing.
#[derive(Clone, Copy, PartialEq)]
pub struct Observation {
    values: [f32; MAX_OBSERVATION_DIM],
    len: usize,
}

impl Observation {
    /// An observation holding `values`; at most [`MAX_OBSERVATION_DIM`] of them.
    pub fn new(values: &[f32]) -> Self {
        assert!(
            values.len() <= MAX_OBSERVATION_DIM,
            "observation of {} values exceeds MAX_OBSERVATION_DIM",
            values.len()
        );
        let mut stored = [0.0; MAX_OBSERVATION_DIM];
        stored[..values.len()].copy_from_slice(values);
        Self {
            values: stored,
            len: values.len(),
        }
    }
}

impl Deref for Observation {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.values[..self.len]
    }
}

impl fmt::Debug for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Observation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.deref().serialize(serializer)
    }
}

/// What one `step` returns: Gymnasium's `(obs, reward, terminated, truncated)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The observation after the step.
    pub observation: Observation,
    /// The reward for the step.
    pub reward: f64,
    /// The episode reached a terminal state of the MDP.
    pub terminated: bool,
    /// The episode hit the registered step limit (may be true together with `terminated`).
    pub truncated: bool,
}

/// The outcome of the physics for one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// The reward for the step.
    pub reward: f64,
    /// Whether the new state is terminal.
    pub terminated: bool,
}

/// An internal state: a fixed number of float64 components.
pub trait StateVector: Copy + Send + Sync + 'static {
    /// Number of components.
    const DIM: usize;
    /// The components in Gymnasium's order (`env.unwrapped.state`).
    fn components(&self) -> &[f64];
    /// The state with these components; `values.len()` must be `DIM`.
    fn from_components(values: &[f64]) -> Self;
    /// Env `i`'s state out of struct-of-arrays storage with components `stride` apart
    /// (`soa[c * stride + i]`).
    fn load(soa: &[f64], stride: usize, i: usize) -> Self;
    /// Writes env `i`'s state into struct-of-arrays storage with components `stride` apart.
    fn store(&self, soa: &mut [f64], stride: usize, i: usize);
}

impl<const N: usize> StateVector for [f64; N] {
    const DIM: usize = N;
    fn components(&self) -> &[f64] {
        self
    }
    fn from_components(values: &[f64]) -> Self {
        std::array::from_fn(|i| values[i])
    }
    #[inline]
    fn load(soa: &[f64], stride: usize, i: usize) -> Self {
        std::array::from_fn(|c| soa[c * stride + i])
    }
    #[inline]
    fn store(&self, soa: &mut [f64], stride: usize, i: usize) {
        for (c, value) in self.iter().enumerate() {
            soa[c * stride + i] = *value;
        }
    }
}

/// Envs stepped at once (see [`Dynamics::step_batch`]): `n = rewards.len()` of them.
pub struct BatchStep<'a> {
    /// Their states, component by component `stride` apart: component `c` of env `i` is
    /// `states[c * stride + i]`.
    pub states: &'a mut [f64],
    /// How far apart a state's components lie.
    pub stride: usize,
    /// An action per env, already checked against the action space.
    pub actions: Actions<'a>,
    /// Where each env's reward goes.
    pub rewards: &'a mut [f64],
    /// Where each env's terminal flag goes.
    pub terminated: &'a mut [bool],
}

/// The physics of one classic-control task, free of episode bookkeeping, so that the single
/// and the vector environment share it.
pub trait Dynamics: Clone + Send + Sync + 'static {
    /// The internal state.
    type State: StateVector;
    /// The observation space.
    fn observation_space(&self) -> Space;
    /// The action space.
    fn action_space(&self) -> Space;
    /// Draws the initial state of an episode, with Gymnasium's draws in Gymnasium's order.
    fn initial_state(&self, rng: &mut EnvRng) -> Self::State;
    /// Advances `state` by one step under an action already checked against the space.
    fn step(&self, state: &mut Self::State, action: Action<'_>) -> Transition;
    /// The float32 observation of a state.
    fn observe(&self, state: &Self::State) -> Observation;
    /// Steps the envs of `batch` at once, writing each env's reward and terminal flag. Tasks
    /// with a vectorisable kernel override this; the default steps the envs one by one.
    fn step_batch(&self, batch: BatchStep<'_>) {
        let n = batch.rewards.len();
        for i in 0..n {
            let mut state = Self::State::load(batch.states, batch.stride, i);
            let transition = self.step(&mut state, batch.actions.get(i, n));
            state.store(batch.states, batch.stride, i);
            batch.rewards[i] = transition.reward;
            batch.terminated[i] = transition.terminated;
        }
    }

    /// Writes the observations of `n` envs into `out` (`out.len() / n` values each), their
    /// states stored as in [`Dynamics::step_batch`]. Tasks whose observation is a cheap
    /// function of the state override this with a loop the compiler vectorises.
    fn observe_batch(&self, states: &[f64], stride: usize, n: usize, out: &mut [f32]) {
        let dim = out.len() / n;
        for (i, slot) in out.chunks_exact_mut(dim).enumerate() {
            slot.copy_from_slice(&self.observe(&Self::State::load(states, stride, i)));
        }
    }

    /// The reward for stepping into a terminal state again after the episode had terminated,
    /// where the task defines one (CartPole does).
    fn reward_after_termination(&self) -> Option<f64> {
        None
    }
}

/// Checks an action against a space: discrete actions in range, continuous ones of the right
/// length and finite. Continuous values out of bounds are accepted: the env clips them.
pub fn check_action(space: &Space, env_id: &str, action: Action<'_>) -> Result<(), EnvError> {
    let invalid = |reason: String| EnvError::InvalidAction {
        env: env_id.to_string(),
        action: action.to_string(),
        reason,
    };
    match (space, action) {
        (Space::Discrete { n }, Action::Discrete(a)) => {
            if a < 0 || a >= i64::from(*n) {
                return Err(invalid(format!("expected an integer in 0..{n}")));
            }
        }
        (Space::Box { low, .. }, Action::Continuous(values)) => {
            if values.len() != low.len() {
                return Err(invalid(format!(
                    "expected {} values, got {}",
                    low.len(),
                    values.len()
                )));
            }
            if values.iter().any(|v| !v.is_finite()) {
                return Err(invalid("values must be finite (got NaN or inf)".into()));
            }
        }
        (Space::Discrete { n }, Action::Continuous(_)) => {
            return Err(invalid(format!(
                "expected a discrete action in 0..{n}, got a vector"
            )));
        }
        (Space::Box { low, .. }, Action::Discrete(_)) => {
            return Err(invalid(format!(
                "expected a vector of {} floats, got an integer",
                low.len()
            )));
        }
    }
    Ok(())
}

/// A Gymnasium environment: `reset` and `step`, with its spaces and registered spec. Not
/// `Send`: gym-rs environments hold SDL handles that must stay on their thread.
pub trait Env {
    /// The spec and spaces.
    fn description(&self) -> &EnvDescription;
    /// The registered id, episode limit and reward threshold.
    fn spec(&self) -> &EnvSpec {
        &self.description().spec
    }
    /// The observation space.
    fn observation_space(&self) -> &Space {
        &self.description().observation_space
    }
    /// The action space.
    fn action_space(&self) -> &Space {
        &self.description().action_space
    }
    /// Starts an episode. `Some(seed)` reseeds the environment's generator (as Gymnasium's
    /// `reset(seed=...)`); `None` continues it (seeding from entropy the first time).
    fn reset(&mut self, seed: Option<u64>) -> Observation;
    /// Applies one action.
    fn step(&mut self, action: Action<'_>) -> Result<Step, EnvError>;
    /// The internal float64 state, `None` before the first reset.
    fn state(&self) -> Option<Vec<f64>>;
    /// Starts an episode from an explicit internal state (Gymnasium: `reset()` then
    /// `env.unwrapped.state = state`) and returns its observation.
    fn set_state(&mut self, state: &[f64]) -> Result<Observation, EnvError>;
}

/// What an environment is, as `gym.make` would describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvDescription {
    /// The registered spec.
    pub spec: EnvSpec,
    /// The observation space.
    pub observation_space: Space,
    /// The action space.
    pub action_space: Space,
}

/// Gymnasium's `TimeLimit`: counts an episode's steps and says when it is truncated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeLimit {
    max_episode_steps: Option<u32>,
    elapsed_steps: u32,
}

impl TimeLimit {
    /// A limit of `max_episode_steps` (none: never truncate).
    pub fn new(max_episode_steps: Option<u32>) -> Self {
        Self {
            max_episode_steps,
            elapsed_steps: 0,
        }
    }

    /// Starts counting a new episode.
    pub fn restart(&mut self) {
        self.elapsed_steps = 0;
    }

    /// Counts one step and says whether the episode is now truncated (it stays so for any
    /// further step, as in Gymnasium).
    pub fn tick(&mut self) -> bool {
        self.elapsed_steps = self.elapsed_steps.saturating_add(1);
        self.max_episode_steps
            .is_some_and(|limit| self.elapsed_steps >= limit)
    }
}

/// A task's dynamics wrapped with Gymnasium's episode bookkeeping: the order check
/// (`OrderEnforcing`), the step limit (`TimeLimit`) and the seeded generator.
#[derive(Debug, Clone)]
pub struct ClassicEnv<D: Dynamics> {
    dynamics: D,
    description: EnvDescription,
    rng: Option<EnvRng>,
    state: Option<D::State>,
    time_limit: TimeLimit,
    has_terminated: bool,
}

impl<D: Dynamics> ClassicEnv<D> {
    /// Wraps `dynamics` under `spec`.
    pub fn new(dynamics: D, spec: EnvSpec) -> Self {
        Self {
            description: EnvDescription {
                spec,
                observation_space: dynamics.observation_space(),
                action_space: dynamics.action_space(),
            },
            time_limit: TimeLimit::new(spec.max_episode_steps),
            dynamics,
            rng: None,
            state: None,
            has_terminated: false,
        }
    }

    fn start_episode(&mut self, state: D::State) -> Observation {
        self.state = Some(state);
        self.time_limit.restart();
        self.has_terminated = false;
        self.dynamics.observe(&state)
    }
}

impl<D: Dynamics> Env for ClassicEnv<D> {
    fn description(&self) -> &EnvDescription {
        &self.description
    }

    fn reset(&mut self, seed: Option<u64>) -> Observation {
        let rng = match seed {
            Some(seed) => self.rng.insert(EnvRng::from_seed(seed)),
            None => self.rng.get_or_insert_with(EnvRng::from_entropy),
        };
        let state = self.dynamics.initial_state(rng);
        self.start_episode(state)
    }

    fn step(&mut self, action: Action<'_>) -> Result<Step, EnvError> {
        let id = self.description.spec.id;
        check_action(&self.description.action_space, id, action)?;
        let state = self.state.as_mut().ok_or_else(|| EnvError::ResetNeeded {
            env: id.to_string(),
        })?;
        let mut transition = self.dynamics.step(state, action);
        if transition.terminated {
            if self.has_terminated
                && let Some(reward) = self.dynamics.reward_after_termination()
            {
                transition.reward = reward;
            }
            self.has_terminated = true;
        }
        Ok(Step {
            observation: self.dynamics.observe(state),
            reward: transition.reward,
            terminated: transition.terminated,
            truncated: self.time_limit.tick(),
        })
    }

    fn state(&self) -> Option<Vec<f64>> {
        self.state.map(|s| s.components().to_vec())
    }

    fn set_state(&mut self, state: &[f64]) -> Result<Observation, EnvError> {
        let invalid = |reason: String| EnvError::InvalidState {
            env: self.description.spec.id.to_string(),
            reason,
        };
        if state.len() != D::State::DIM {
            return Err(invalid(format!(
                "expected {} components, got {}",
                D::State::DIM,
                state.len()
            )));
        }
        if state.iter().any(|v| !v.is_finite()) {
            return Err(invalid(format!("components must be finite, got {state:?}")));
        }
        Ok(self.start_episode(D::State::from_components(state)))
    }
}
