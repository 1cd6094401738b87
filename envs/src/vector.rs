//! Many copies of one task stepped in one call, over struct-of-arrays storage.

use serde::Serialize;

use crate::env::{Action, Dynamics, StateVector, check_action};
use crate::error::EnvError;
use crate::registry::EnvSpec;
use crate::rng::EnvRng;
use crate::space::Space;

/// When a finished sub-environment starts its next episode (Gymnasium's `AutoresetMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoresetMode {
    /// Gymnasium's default: the step after the one that ended the episode ignores that env's
    /// action and returns the first observation of the next episode, with reward 0 and both
    /// flags false.
    #[default]
    NextStep,
    /// The step that ends an episode already returns the next episode's first observation;
    /// the last observation of the finished one is in `final_observations`.
    SameStep,
}

/// One action per sub-environment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Actions<'a> {
    /// A discrete action per env.
    Discrete(&'a [i64]),
    /// The Box actions of all envs, concatenated (`num_envs * action_dim` values).
    Continuous(&'a [f32]),
}

/// What `RecordEpisodeStatistics` reports for an episode that just ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EpisodeStats {
    /// Which sub-environment it ran in.
    pub env_index: usize,
    /// The sum of its rewards.
    #[serde(rename = "return")]
    pub episode_return: f64,
    /// Its number of steps.
    pub length: u32,
    /// Whether it ended in a terminal state (else it was only truncated).
    pub terminated: bool,
}

/// The results of one vector step, borrowed from the env's buffers.
#[derive(Debug, Clone, Copy)]
pub struct VectorStep<'a> {
    /// Observations, `num_envs * observation_dim` values, env-major.
    pub observations: &'a [f32],
    /// One reward per env.
    pub rewards: &'a [f64],
    /// One terminated flag per env.
    pub terminated: &'a [bool],
    /// One truncated flag per env.
    pub truncated: &'a [bool],
    /// Same-step mode only: the last observation of each env whose episode ended at this
    /// step (Gymnasium's `info["final_obs"]`); meaningless for the other envs. Empty in
    /// next-step mode.
    pub final_observations: &'a [f32],
    /// The episodes that ended at this step.
    pub episodes: &'a [EpisodeStats],
}

/// A vector of environments: Gymnasium's `VectorEnv`.
pub trait VectorEnv: Send {
    /// The registered spec of the sub-environments.
    fn spec(&self) -> &EnvSpec;
    /// The number of sub-environments.
    fn num_envs(&self) -> usize;
    /// The observation space of one sub-environment.
    fn single_observation_space(&self) -> &Space;
    /// The action space of one sub-environment.
    fn single_action_space(&self) -> &Space;
    /// How finished sub-environments restart.
    fn autoreset_mode(&self) -> AutoresetMode;
    /// Resets every sub-environment; `Some(seed)` seeds env `i` with `seed + i`, as
    /// Gymnasium's vector envs do. Returns the observations, env-major.
    fn reset(&mut self, seed: Option<u64>) -> &[f32];
    /// Resets every sub-environment with its own seed (`seeds.len()` must be `num_envs`).
    fn reset_with_seeds(&mut self, seeds: &[u64]) -> Result<&[f32], EnvError>;
    /// Steps every sub-environment.
    fn step(&mut self, actions: Actions<'_>) -> Result<VectorStep<'_>, EnvError>;
}

/// The vector env for any task: states stored component by component (`state[c][i]`), one
/// generator per env, Gymnasium's `TimeLimit` and `RecordEpisodeStatistics` built in.
#[derive(Debug, Clone)]
pub struct SyncVectorEnv<D: Dynamics> {
    dynamics: D,
    spec: EnvSpec,
    mode: AutoresetMode,
    num_envs: usize,
    observation_space: Space,
    action_space: Space,
    observation_dim: usize,
    action_dim: usize,
    /// `state[c * num_envs + i]` is component `c` of env `i`.
    state: Vec<f64>,
    rngs: Vec<EnvRng>,
    elapsed_steps: Vec<u32>,
    /// Next-step mode: the env finished at the previous step and restarts at this one.
    restart_pending: Vec<bool>,
    episode_returns: Vec<f64>,
    observations: Vec<f32>,
    final_observations: Vec<f32>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    episodes: Vec<EpisodeStats>,
    was_reset: bool,
}

impl<D: Dynamics> SyncVectorEnv<D> {
    /// `num_envs` copies of `dynamics` under `spec`.
    pub fn new(dynamics: D, spec: EnvSpec, num_envs: usize, mode: AutoresetMode) -> Self {
        let observation_space = dynamics.observation_space();
        let action_space = dynamics.action_space();
        let observation_dim = observation_space.flat_dim();
        let action_dim = action_space.flat_dim();
        Self {
            dynamics,
            spec,
            mode,
            num_envs,
            observation_space,
            action_space,
            observation_dim,
            action_dim,
            state: vec![0.0; D::State::DIM * num_envs],
            rngs: Vec::new(),
            elapsed_steps: vec![0; num_envs],
            restart_pending: vec![false; num_envs],
            episode_returns: vec![0.0; num_envs],
            observations: vec![0.0; observation_dim * num_envs],
            final_observations: match mode {
                AutoresetMode::NextStep => Vec::new(),
                AutoresetMode::SameStep => vec![0.0; observation_dim * num_envs],
            },
            rewards: vec![0.0; num_envs],
            terminated: vec![false; num_envs],
            truncated: vec![false; num_envs],
            episodes: Vec::new(),
            was_reset: false,
        }
    }

    #[inline]
    fn load(&self, i: usize) -> D::State {
        let mut components = [0.0; 8];
        for (c, value) in components.iter_mut().take(D::State::DIM).enumerate() {
            *value = self.state[c * self.num_envs + i];
        }
        D::State::from_components(&components[..D::State::DIM])
    }

    #[inline]
    fn store(&mut self, i: usize, state: &D::State) {
        for (c, value) in state.components().iter().enumerate() {
            self.state[c * self.num_envs + i] = *value;
        }
    }

    #[inline]
    fn write_observation(buffer: &mut [f32], dim: usize, i: usize, dynamics: &D, state: &D::State) {
        buffer[i * dim..(i + 1) * dim].copy_from_slice(&dynamics.observe(state));
    }

    /// Starts a new episode in env `i` and writes its first observation.
    fn restart(&mut self, i: usize) {
        let state = self.dynamics.initial_state(&mut self.rngs[i]);
        self.store(i, &state);
        self.elapsed_steps[i] = 0;
        self.episode_returns[i] = 0.0;
        Self::write_observation(
            &mut self.observations,
            self.observation_dim,
            i,
            &self.dynamics,
            &state,
        );
    }

    fn restart_all(&mut self) -> &[f32] {
        for i in 0..self.num_envs {
            self.restart(i);
            self.restart_pending[i] = false;
        }
        self.was_reset = true;
        &self.observations
    }

    fn check_actions(&self, actions: Actions<'_>) -> Result<(), EnvError> {
        let (given, expected) = match actions {
            Actions::Discrete(a) => (a.len(), self.num_envs),
            Actions::Continuous(a) => (a.len(), self.num_envs * self.action_dim),
        };
        if given != expected {
            return Err(EnvError::InvalidAction {
                env: self.spec.id.to_string(),
                action: format!("batch of {given} values"),
                reason: format!("expected {expected} values for {} envs", self.num_envs),
            });
        }
        for i in 0..self.num_envs {
            check_action(&self.action_space, self.spec.id, self.action(actions, i))
                .map_err(|err| with_env_index(err, i))?;
        }
        Ok(())
    }

    #[inline]
    fn action<'a>(&self, actions: Actions<'a>, i: usize) -> Action<'a> {
        match actions {
            Actions::Discrete(a) => Action::Discrete(a[i]),
            Actions::Continuous(a) => {
                Action::Continuous(&a[i * self.action_dim..(i + 1) * self.action_dim])
            }
        }
    }
}

fn with_env_index(err: EnvError, i: usize) -> EnvError {
    match err {
        EnvError::InvalidAction {
            env,
            action,
            reason,
        } => EnvError::InvalidAction {
            env: format!("{env} (sub-env {i})"),
            action,
            reason,
        },
        other => other,
    }
}

impl<D: Dynamics> VectorEnv for SyncVectorEnv<D> {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn num_envs(&self) -> usize {
        self.num_envs
    }

    fn single_observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn single_action_space(&self) -> &Space {
        &self.action_space
    }

    fn autoreset_mode(&self) -> AutoresetMode {
        self.mode
    }

    fn reset(&mut self, seed: Option<u64>) -> &[f32] {
        match seed {
            Some(seed) => {
                self.rngs = (0..self.num_envs as u64)
                    .map(|i| EnvRng::from_seed(seed.wrapping_add(i)))
                    .collect();
            }
            None if self.rngs.is_empty() => {
                self.rngs = (0..self.num_envs).map(|_| EnvRng::from_entropy()).collect();
            }
            None => {}
        }
        self.restart_all()
    }

    fn reset_with_seeds(&mut self, seeds: &[u64]) -> Result<&[f32], EnvError> {
        if seeds.len() != self.num_envs {
            return Err(EnvError::InvalidOption {
                env: self.spec.id.to_string(),
                reason: format!("{} seeds for {} envs", seeds.len(), self.num_envs),
            });
        }
        self.rngs = seeds.iter().map(|&seed| EnvRng::from_seed(seed)).collect();
        Ok(self.restart_all())
    }

    fn step(&mut self, actions: Actions<'_>) -> Result<VectorStep<'_>, EnvError> {
        if !self.was_reset {
            return Err(EnvError::ResetNeeded {
                env: self.spec.id.to_string(),
            });
        }
        self.check_actions(actions)?;
        self.episodes.clear();
        let limit = self.spec.max_episode_steps.unwrap_or(u32::MAX);
        for i in 0..self.num_envs {
            if self.restart_pending[i] {
                self.restart(i);
                self.restart_pending[i] = false;
                self.rewards[i] = 0.0;
                self.terminated[i] = false;
                self.truncated[i] = false;
                continue;
            }
            let mut state = self.load(i);
            let transition = self.dynamics.step(&mut state, self.action(actions, i));
            self.store(i, &state);
            self.elapsed_steps[i] += 1;
            self.episode_returns[i] += transition.reward;
            let truncated = self.elapsed_steps[i] >= limit;
            self.rewards[i] = transition.reward;
            self.terminated[i] = transition.terminated;
            self.truncated[i] = truncated;
            let finished = transition.terminated || truncated;
            let observations = match (self.mode, finished) {
                (AutoresetMode::SameStep, true) => &mut self.final_observations,
                _ => &mut self.observations,
            };
            Self::write_observation(
                observations,
                self.observation_dim,
                i,
                &self.dynamics,
                &state,
            );
            if finished {
                self.episodes.push(EpisodeStats {
                    env_index: i,
                    episode_return: self.episode_returns[i],
                    length: self.elapsed_steps[i],
                    terminated: transition.terminated,
                });
                match self.mode {
                    AutoresetMode::NextStep => self.restart_pending[i] = true,
                    AutoresetMode::SameStep => self.restart(i),
                }
            }
        }
        Ok(VectorStep {
            observations: &self.observations,
            rewards: &self.rewards,
            terminated: &self.terminated,
            truncated: &self.truncated,
            final_observations: &self.final_observations,
            episodes: &self.episodes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{MakeOptions, make, make_vector};

    fn cartpole_vector(num_envs: usize, mode: AutoresetMode) -> Box<dyn VectorEnv> {
        make_vector("CartPole-v1", num_envs, mode, MakeOptions::default()).unwrap()
    }

    /// Env `i` of a vector seeded with `s` runs the very episode a single env seeded with
    /// `s + i` runs, step for step.
    #[test]
    fn sub_envs_match_single_envs_with_offset_seeds() {
        let num_envs = 3;
        let mut vector = cartpole_vector(num_envs, AutoresetMode::NextStep);
        let mut singles: Vec<_> = (0..num_envs)
            .map(|_| make("CartPole-v1").unwrap())
            .collect();
        let first = vector.reset(Some(10)).to_vec();
        for (i, single) in singles.iter_mut().enumerate() {
            assert_eq!(
                &first[i * 4..(i + 1) * 4],
                &*single.reset(Some(10 + i as u64))
            );
        }
        let mut rng = EnvRng::from_seed(0);
        for _ in 0..40 {
            let actions: Vec<i64> = (0..num_envs).map(|_| rng.below(2) as i64).collect();
            let step = vector.step(Actions::Discrete(&actions)).unwrap();
            for (i, single) in singles.iter_mut().enumerate() {
                let expected = single.step(Action::Discrete(actions[i])).unwrap();
                assert_eq!(
                    &step.observations[i * 4..(i + 1) * 4],
                    &*expected.observation
                );
                assert_eq!(step.rewards[i], expected.reward);
                assert_eq!(step.terminated[i], expected.terminated);
                if expected.terminated {
                    return; // the single env would need a reset of its own from here
                }
            }
        }
    }

    #[test]
    fn next_step_autoreset_returns_the_reset_observation_with_zero_reward() {
        let mut vector = cartpole_vector(1, AutoresetMode::NextStep);
        vector.reset(Some(3));
        let mut length = 0;
        let stats = loop {
            let step = vector.step(Actions::Discrete(&[1])).unwrap();
            length += 1;
            if step.terminated[0] || step.truncated[0] {
                assert_eq!(step.episodes.len(), 1);
                break step.episodes[0];
            }
            assert!(step.episodes.is_empty());
        };
        assert_eq!(stats.length, length);
        assert_eq!(stats.episode_return, f64::from(length));
        assert!(stats.terminated);
        let restart = vector.step(Actions::Discrete(&[0])).unwrap();
        assert_eq!(restart.rewards[0], 0.0);
        assert!(!restart.terminated[0] && !restart.truncated[0]);
        assert!(restart.episodes.is_empty());
        assert!(restart.observations.iter().all(|v| v.abs() <= 0.05));
    }

    #[test]
    fn same_step_autoreset_reports_the_final_observation() {
        let mut vector = cartpole_vector(1, AutoresetMode::SameStep);
        vector.reset(Some(3));
        loop {
            let step = vector.step(Actions::Discrete(&[1])).unwrap();
            if step.terminated[0] {
                // The final observation is out of bounds; the returned one is a fresh start.
                let final_obs = &step.final_observations[..4];
                assert!(final_obs[0].abs() > 2.4 || final_obs[2].abs() > 0.2094);
                assert!(step.observations.iter().all(|v| v.abs() <= 0.05));
                assert_eq!(step.rewards[0], 1.0);
                break;
            }
        }
    }

    #[test]
    fn truncates_at_the_registered_limit() {
        let mut vector = make_vector(
            "Pendulum-v1",
            2,
            AutoresetMode::NextStep,
            MakeOptions::default(),
        )
        .unwrap();
        vector.reset(Some(0));
        for step_index in 1..=200 {
            let step = vector.step(Actions::Continuous(&[0.0, 0.0])).unwrap();
            assert_eq!(step.truncated[0], step_index == 200);
            assert!(!step.terminated[0]);
        }
    }

    #[test]
    fn invalid_actions_name_the_env_and_the_action() {
        let mut vector = cartpole_vector(2, AutoresetMode::NextStep);
        vector.reset(Some(0));
        let err = vector
            .step(Actions::Discrete(&[0, 2]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CartPole-v1") && err.contains("sub-env 1") && err.contains('2'),
            "{err}"
        );
        let err = vector
            .step(Actions::Discrete(&[0]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected 2"), "{err}");
        let mut pendulum = make_vector(
            "Pendulum-v1",
            1,
            AutoresetMode::NextStep,
            MakeOptions::default(),
        )
        .unwrap();
        pendulum.reset(Some(0));
        let err = pendulum
            .step(Actions::Continuous(&[f32::NAN]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Pendulum-v1") && err.contains("NaN"), "{err}");
    }

    #[test]
    fn step_before_reset_is_an_error() {
        let mut vector = cartpole_vector(1, AutoresetMode::NextStep);
        assert!(matches!(
            vector.step(Actions::Discrete(&[0])),
            Err(EnvError::ResetNeeded { .. })
        ));
    }
}
