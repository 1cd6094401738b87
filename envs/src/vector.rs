//! Many copies of one task stepped in one call, over struct-of-arrays storage.
//!
//! One file because the block layout, the step with its autoreset bookkeeping and the
//! snapshot all index the same storage.

use serde::{Deserialize, Serialize};

use crate::action::Actions;
use crate::env::{BatchStep, Dynamics, StateVector, check_action};
use crate::error::EnvError;
use crate::rng::EnvRng;
use crate::space::Space;
use crate::spec::EnvSpec;

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
    /// Starts a new episode in sub-environment `i` now, from `seed` (as `Env::reset` with
    /// that seed would), cancelling a pending next-step restart. Returns every env's
    /// observations, env-major.
    fn reset_env(&mut self, i: usize, seed: u64) -> Result<&[f32], EnvError>;
    /// Steps every sub-environment.
    fn step(&mut self, actions: Actions<'_>) -> Result<VectorStep<'_>, EnvError>;
    /// What the last step returned, with the observations as they are now (after any
    /// [`reset_env`](VectorEnv::reset_env) since; after a reset, only the observations mean
    /// anything).
    fn last_step(&self) -> VectorStep<'_>;
    /// Everything that decides what the env does next, so that a saved run continues
    /// exactly; `None` before the first reset.
    fn snapshot(&self) -> Option<VectorSnapshot>;
    /// Puts the env back where [`snapshot`](VectorEnv::snapshot) found it; refuses a snapshot
    /// of another env id or size.
    fn restore(&mut self, snapshot: &VectorSnapshot) -> Result<(), EnvError>;
}

/// A vector env's complete state between two steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorSnapshot {
    /// The env id.
    pub env_id: String,
    /// Each sub-environment's internal state components.
    pub states: Vec<Vec<f64>>,
    /// Each sub-environment's generator.
    pub generators: Vec<EnvRng>,
    /// Steps taken in each current episode.
    pub elapsed_steps: Vec<u32>,
    /// Next-step mode: which envs restart at the next step.
    pub restart_pending: Vec<bool>,
    /// Rewards summed so far in each current episode.
    pub episode_returns: Vec<f64>,
    /// The observations the last reset or step returned.
    pub observations: Vec<f32>,
}

/// Envs per block. States are stored block by block, each block component by component,
/// and a step runs block by block, so that every pass over a block finds it still in cache.
const BLOCK: usize = 1024;

/// The vector env for any task: struct-of-arrays states in fixed-size blocks of envs, one
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
    /// Component `c` of env `b * BLOCK + j` is `state[b * DIM * BLOCK + c * BLOCK + j]`.
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
    /// Scratch space for the next-step restarts of one block: the envs, and copies of their
    /// generators.
    restarting: Vec<usize>,
    restarting_rngs: Vec<EnvRng>,
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
            state: vec![0.0; D::State::DIM * num_envs.div_ceil(BLOCK) * BLOCK],
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
            restarting: Vec::new(),
            restarting_rngs: Vec::new(),
            was_reset: false,
        }
    }

    /// The states of block `b`.
    fn block_states(state: &mut [f64], b: usize) -> &mut [f64] {
        &mut state[b * D::State::DIM * BLOCK..(b + 1) * D::State::DIM * BLOCK]
    }

    #[inline]
    fn write_observation(buffer: &mut [f32], dim: usize, i: usize, dynamics: &D, state: &D::State) {
        buffer[i * dim..(i + 1) * dim].copy_from_slice(&dynamics.observe(state));
    }

    /// Starts a new episode in env `i` from a freshly drawn state.
    fn restart(&mut self, i: usize) {
        let state = self.dynamics.initial_state(&mut self.rngs[i]);
        self.begin_episode(i, state);
    }

    /// Starts a new episode in env `i` from `state` and writes its first observation.
    fn begin_episode(&mut self, i: usize, state: D::State) {
        state.store(
            Self::block_states(&mut self.state, i / BLOCK),
            BLOCK,
            i % BLOCK,
        );
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

    /// Time limits, returns, observations and restarts for the envs of block `b` after their
    /// physics step.
    fn finish_step(&mut self, b: usize, envs: std::ops::Range<usize>) {
        // Bookkeeping for every env in straight, vectorisable passes; the few envs that
        // restart or finish are fixed up one by one afterwards.
        let limit = self.spec.max_episode_steps.unwrap_or(u32::MAX);
        for i in envs.clone() {
            self.elapsed_steps[i] += 1;
            self.episode_returns[i] += self.rewards[i];
            self.truncated[i] = self.elapsed_steps[i] >= limit;
        }
        let dim = self.observation_dim;
        self.dynamics.observe_batch(
            Self::block_states(&mut self.state, b),
            BLOCK,
            envs.len(),
            &mut self.observations[envs.start * dim..envs.end * dim],
        );
        // Next-step autoreset: the envs that finished at the previous step start again. Their
        // generators are rarely touched, so they have left the cache by now; they are copied
        // out in a tight loop over the restarting envs, where the loads overlap, instead of
        // stalling on each in turn.
        self.restarting.clear();
        self.restarting
            .extend(envs.clone().filter(|&i| self.restart_pending[i]));
        self.restarting_rngs.clear();
        self.restarting_rngs
            .extend(self.restarting.iter().map(|&i| self.rngs[i].clone()));
        for k in 0..self.restarting.len() {
            let i = self.restarting[k];
            let state = self.dynamics.initial_state(&mut self.restarting_rngs[k]);
            self.rngs[i] = self.restarting_rngs[k].clone();
            self.begin_episode(i, state);
            self.restart_pending[i] = false;
            self.rewards[i] = 0.0;
            self.terminated[i] = false;
            self.truncated[i] = false;
        }
        for i in envs.clone() {
            if self.terminated[i] || self.truncated[i] {
                self.episodes.push(EpisodeStats {
                    env_index: i,
                    episode_return: self.episode_returns[i],
                    length: self.elapsed_steps[i],
                    terminated: self.terminated[i],
                });
                match self.mode {
                    AutoresetMode::NextStep => self.restart_pending[i] = true,
                    AutoresetMode::SameStep => {
                        let dim = self.observation_dim;
                        self.final_observations[i * dim..(i + 1) * dim]
                            .copy_from_slice(&self.observations[i * dim..(i + 1) * dim]);
                        self.restart(i);
                    }
                }
            }
        }
    }

    fn check_snapshot(&self, snapshot: &VectorSnapshot) -> Result<(), String> {
        if snapshot.env_id != self.spec.id {
            return Err(format!("snapshot of {}", snapshot.env_id));
        }
        let n = self.num_envs;
        let sizes = [
            snapshot.states.len(),
            snapshot.generators.len(),
            snapshot.elapsed_steps.len(),
            snapshot.restart_pending.len(),
            snapshot.episode_returns.len(),
            snapshot.observations.len() / self.observation_dim,
        ];
        if sizes.iter().any(|&size| size != n)
            || !snapshot
                .observations
                .len()
                .is_multiple_of(self.observation_dim)
        {
            return Err(format!("snapshot sizes {sizes:?} do not fit {n} envs"));
        }
        if let Some(state) = snapshot
            .states
            .iter()
            .find(|s| s.len() != D::State::DIM || s.iter().any(|v| !v.is_finite()))
        {
            return Err(format!("invalid state {state:?}"));
        }
        Ok(())
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
        // The common cases in one pass each; the general check names the first bad action.
        let first_invalid = match (&self.action_space, actions) {
            (Space::Discrete { n }, Actions::Discrete(a)) => {
                a.iter().position(|&x| x < 0 || x >= i64::from(*n))
            }
            (Space::Box { .. }, Actions::Continuous(a)) => a
                .iter()
                .position(|x| !x.is_finite())
                .map(|k| k / self.action_dim),
            _ => Some(0),
        };
        if let Some(i) = first_invalid {
            check_action(
                &self.action_space,
                self.spec.id,
                actions.get(i, self.num_envs),
            )
            .map_err(|err| with_env_index(err, i))?;
        }
        Ok(())
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

    fn reset_env(&mut self, i: usize, seed: u64) -> Result<&[f32], EnvError> {
        if !self.was_reset || i >= self.num_envs {
            return Err(EnvError::InvalidOption {
                env: self.spec.id.to_string(),
                reason: format!("no sub-env {i} to reset among {} reset envs", self.num_envs),
            });
        }
        self.rngs[i] = EnvRng::from_seed(seed);
        self.restart(i);
        self.restart_pending[i] = false;
        Ok(&self.observations)
    }

    fn step(&mut self, actions: Actions<'_>) -> Result<VectorStep<'_>, EnvError> {
        if !self.was_reset {
            return Err(EnvError::ResetNeeded {
                env: self.spec.id.to_string(),
            });
        }
        self.check_actions(actions)?;
        self.episodes.clear();
        for b in 0..self.num_envs.div_ceil(BLOCK) {
            let envs = b * BLOCK..((b + 1) * BLOCK).min(self.num_envs);
            // Every env of the block is stepped (envs about to restart too: their results
            // are overwritten in `finish_step`), so that the physics is one vectorisable loop.
            self.dynamics.step_batch(BatchStep {
                states: Self::block_states(&mut self.state, b),
                stride: BLOCK,
                actions: actions.slice(envs.clone(), self.num_envs),
                rewards: &mut self.rewards[envs.clone()],
                terminated: &mut self.terminated[envs.clone()],
            });
            self.finish_step(b, envs);
        }
        Ok(self.last_step())
    }

    fn last_step(&self) -> VectorStep<'_> {
        VectorStep {
            observations: &self.observations,
            rewards: &self.rewards,
            terminated: &self.terminated,
            truncated: &self.truncated,
            final_observations: &self.final_observations,
            episodes: &self.episodes,
        }
    }

    fn snapshot(&self) -> Option<VectorSnapshot> {
        self.was_reset.then(|| VectorSnapshot {
            env_id: self.spec.id.to_string(),
            states: (0..self.num_envs)
                .map(|i| {
                    let b = i / BLOCK;
                    let block = &self.state[b * D::State::DIM * BLOCK..];
                    D::State::load(block, BLOCK, i % BLOCK)
                        .components()
                        .to_vec()
                })
                .collect(),
            generators: self.rngs.clone(),
            elapsed_steps: self.elapsed_steps.clone(),
            restart_pending: self.restart_pending.clone(),
            episode_returns: self.episode_returns.clone(),
            observations: self.observations.clone(),
        })
    }

    fn restore(&mut self, snapshot: &VectorSnapshot) -> Result<(), EnvError> {
        self.check_snapshot(snapshot)
            .map_err(|reason| EnvError::InvalidState {
                env: self.spec.id.to_string(),
                reason,
            })?;
        for (i, components) in snapshot.states.iter().enumerate() {
            D::State::from_components(components).store(
                Self::block_states(&mut self.state, i / BLOCK),
                BLOCK,
                i % BLOCK,
            );
        }
        self.rngs = snapshot.generators.clone();
        self.elapsed_steps = snapshot.elapsed_steps.clone();
        self.restart_pending = snapshot.restart_pending.clone();
        self.episode_returns = snapshot.episode_returns.clone();
        self.observations = snapshot.observations.clone();
        self.was_reset = true;
        Ok(())
    }
}
