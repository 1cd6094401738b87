//! The vector env: gradless-envs' `SyncVectorEnv`, split into shards stepped on a thread pool with
//! the GIL released, its results copied into NumPy arrays made once and handed out again
//! every step, and the `infos` Gymnasium's `RecordEpisodeStatistics` writes built here.
//!
//! One file because the shards, the buffers they fill and the episode bookkeeping of the
//! infos index the same envs.

use std::sync::Mutex;
use std::time::Instant;

use gradless_envs::{Actions, AutoresetMode, EnvError, KwargValue, StepLimit, make_vector};
use numpy::{
    AllowTypeChange, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayLikeDyn, PyArrayMethods,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;

use crate::options::{make_options, set_option};
use crate::{GradlessError, SpaceParts, bounded, space_parts, to_py_err};

/// The most sub-environments one vector env holds.
const MAX_ENVS: usize = 1 << 24;

/// The most bytes of observations one buffer may take.
const MAX_OBSERVATION_BYTES: usize = 4 << 30;

/// The most threads one vector env steps on.
const MAX_THREADS: usize = 256;

/// Envs `offset..offset + env.num_envs()` of the vector env, with their part of
/// `RecordEpisodeStatistics`' bookkeeping, kept by the thread that steps them: when each env's
/// episode began (seconds since the vector env's clock), and which envs (by index in the
/// shard) ended an episode at the last step.
struct Shard {
    env: Box<dyn gradless_envs::VectorEnv>,
    offset: usize,
    episode_start: Vec<f64>,
    ended: Vec<usize>,
}

/// Everything a step changes, behind one lock: the shards are stepped without the GIL, and
/// a Python class must be shareable between threads.
struct Inner {
    shards: Vec<Shard>,
    /// Actions NumPy had to convert (another dtype, a list, a strided view), flat: one per
    /// env (discrete) or `action_dim` each.
    discrete: Vec<i64>,
    continuous: Vec<f32>,
    /// What episode durations are measured on.
    clock: Instant,
}

/// Many copies of one classic-control env, stepped together (Gymnasium's `VectorEnv`
/// semantics: sub-env `i` seeded with `seed + i`, next-step or same-step autoreset).
///
/// The arrays `reset` and `step` return, `infos["episode"]`'s and `infos["_episode"]`
/// included, are this env's own buffers, filled again by the next call: copy what must
/// outlive it. Same-step mode's `final_obs` rows are new each step.
#[pyclass(module = "gradless._native")]
pub struct VectorEnv {
    inner: Mutex<Inner>,
    /// The threads the shards step on, when there are several.
    pool: Option<rayon::ThreadPool>,
    num_envs: usize,
    mode: AutoresetMode,
    discrete_actions: bool,
    action_dim: usize,
    observations: Py<PyArray2<f32>>,
    rewards: Py<PyArray1<f64>>,
    terminated: Py<PyArray1<bool>>,
    truncated: Py<PyArray1<bool>>,
    /// `infos["episode"]`'s `r`, `l` and `t`, and `infos["_episode"]`: zero (false) but for
    /// the envs whose episode ended at the last step.
    episode_returns: Py<PyArray1<f64>>,
    episode_lengths: Py<PyArray1<i64>>,
    episode_seconds: Py<PyArray1<f64>>,
    episode_ended: Py<PyArray1<bool>>,
}

/// What `step` returns: Gymnasium's five-tuple.
type StepResult = (
    Py<PyArray2<f32>>,
    Py<PyArray1<f64>>,
    Py<PyArray1<bool>>,
    Py<PyArray1<bool>>,
    Py<PyDict>,
);

#[pymethods]
impl VectorEnv {
    /// `num_envs` copies of `env_id`; `autoreset_mode` is `"next_step"` or `"same_step"`,
    /// `max_episode_steps` the time limit (the registered one when `None`), `threads` how
    /// many threads step them, `kwargs` the env's own keyword arguments.
    #[new]
    #[pyo3(signature = (env_id, num_envs, autoreset_mode="next_step", max_episode_steps=None, threads=1, **kwargs))]
    fn new(
        py: Python<'_>,
        env_id: &str,
        num_envs: i64,
        autoreset_mode: &str,
        max_episode_steps: Option<i64>,
        threads: i64,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let num_envs = bounded("num_envs", num_envs, MAX_ENVS)?;
        let threads = bounded("threads", threads, MAX_THREADS)?.min(num_envs);
        let mode = match autoreset_mode {
            "next_step" => AutoresetMode::NextStep,
            "same_step" => AutoresetMode::SameStep,
            other => {
                return Err(PyValueError::new_err(format!(
                    "autoreset_mode must be \"next_step\" or \"same_step\", got {other:?}"
                )));
            }
        };
        let mut options = make_options(env_id, kwargs, StepLimit::Registered)?;
        if let Some(steps) = max_episode_steps {
            set_option(
                env_id,
                &mut options,
                "max_episode_steps",
                KwargValue::Int(steps),
            )?;
        }
        // The sizes come from the env's spaces: check the buffers fit before anything of
        // that size is made.
        let probe = make_vector(env_id, 1, mode, options).map_err(to_py_err)?;
        let observation_dim = probe.single_observation_space().flat_dim();
        let (n, _, high) = space_parts(probe.single_action_space());
        let (discrete_actions, action_dim) = (n.is_some(), high.len().max(1));
        num_envs
            .checked_mul(observation_dim * std::mem::size_of::<f32>())
            .filter(|&bytes| bytes <= MAX_OBSERVATION_BYTES)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "num_envs {num_envs}: the observations would take more than \
                     {MAX_OBSERVATION_BYTES} bytes"
                ))
            })?;
        let mut shards = Vec::with_capacity(threads);
        let mut offset = 0;
        for t in 0..threads {
            let share = num_envs / threads + usize::from(t < num_envs % threads);
            let env = make_vector(env_id, share, mode, options).map_err(to_py_err)?;
            shards.push(Shard {
                env,
                offset,
                episode_start: vec![0.0; share],
                ended: Vec::new(),
            });
            offset += share;
        }
        let pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("gradless-envs-{i}"))
                .build()
                .map_err(|e| GradlessError::new_err(format!("threads={threads}: {e}")))?;
            Some(pool)
        } else {
            None
        };
        Ok(Self {
            pool,
            inner: Mutex::new(Inner {
                shards,
                discrete: Vec::new(),
                continuous: Vec::new(),
                clock: Instant::now(),
            }),
            num_envs,
            mode,
            discrete_actions,
            action_dim,
            observations: PyArray2::zeros(py, [num_envs, observation_dim], false).unbind(),
            rewards: PyArray1::zeros(py, num_envs, false).unbind(),
            terminated: PyArray1::zeros(py, num_envs, false).unbind(),
            truncated: PyArray1::zeros(py, num_envs, false).unbind(),
            episode_returns: PyArray1::zeros(py, num_envs, false).unbind(),
            episode_lengths: PyArray1::zeros(py, num_envs, false).unbind(),
            episode_seconds: PyArray1::zeros(py, num_envs, false).unbind(),
            episode_ended: PyArray1::zeros(py, num_envs, false).unbind(),
        })
    }

    /// The number of sub-environments.
    #[getter]
    fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// One sub-environment's observation space as `(None, low, high)`.
    fn observation_space(&self) -> PyResult<SpaceParts> {
        let inner = self.lock()?;
        Ok(space_parts(inner.shards[0].env.single_observation_space()))
    }

    /// One sub-environment's action space as `(n, low, high)`.
    fn action_space(&self) -> PyResult<SpaceParts> {
        let inner = self.lock()?;
        Ok(space_parts(inner.shards[0].env.single_action_space()))
    }

    /// Starts every sub-environment: `seed` seeds sub-env `i` with `seed + i`, `seeds` one
    /// seed each, neither continues their generators (seeded from the OS the first time).
    #[pyo3(signature = (seed=None, seeds=None))]
    fn reset(
        &self,
        py: Python<'_>,
        seed: Option<u64>,
        seeds: Option<Vec<u64>>,
    ) -> PyResult<Py<PyArray2<f32>>> {
        let mut inner = self.lock()?;
        if let Some(seeds) = &seeds
            && seeds.len() != self.num_envs
        {
            return Err(PyValueError::new_err(format!(
                "{} seeds for {} envs",
                seeds.len(),
                self.num_envs
            )));
        }
        for shard in &mut inner.shards {
            let share = shard.env.num_envs();
            match &seeds {
                Some(seeds) => {
                    let own = &seeds[shard.offset..shard.offset + share];
                    shard.env.reset_with_seeds(own).map_err(to_py_err)?;
                }
                None => {
                    shard
                        .env
                        .reset(seed.map(|seed| seed.wrapping_add(shard.offset as u64)));
                }
            }
        }
        let now = inner.clock.elapsed().as_secs_f64();
        let mut buffers = self.episode_buffers(py)?;
        let mut episodes = buffers.rows()?;
        for shard in &mut inner.shards {
            let (own, others) = episodes.split(shard.env.num_envs());
            shard.begin_all(now, own);
            episodes = others;
        }
        self.copy_observations(py, &inner)?;
        Ok(self.observations.clone_ref(py))
    }

    /// Steps every sub-environment with its action (one index each for discrete envs,
    /// `action_dim` floats each for Box envs; any array-like NumPy can cast): Gymnasium's
    /// `(observations, rewards, terminations, truncations, infos)`.
    fn step(&self, py: Python<'_>, actions: &Bound<'_, PyAny>) -> PyResult<StepResult> {
        let mut guard = self.lock()?;
        let inner: &mut Inner = &mut guard;
        {
            let Inner {
                shards,
                discrete,
                continuous,
                clock,
            } = &mut *inner;
            let (as_indices, as_values);
            let batch = if self.discrete_actions {
                refuse_fractions(actions)?;
                as_indices = array_like::<i64>(actions)?;
                Actions::Discrete(contiguous(&as_indices, discrete))
            } else {
                as_values = array_like::<f32>(actions)?;
                Actions::Continuous(contiguous(&as_values, continuous))
            };
            let given = match batch {
                Actions::Discrete(indices) => indices.len(),
                Actions::Continuous(values) => values.len() / self.action_dim,
            };
            if given != self.num_envs || !batch_is_whole(batch, self.action_dim) {
                return Err(PyValueError::new_err(format!(
                    "actions for {given} envs, expected {} ({} value{} each)",
                    self.num_envs,
                    self.action_dim,
                    if self.action_dim == 1 { "" } else { "s" }
                )));
            }
            // The buffers are borrowed here, with the GIL, and written by the shards
            // without it, each its own rows.
            let (observations, rewards, terminated, truncated) = (
                self.observations.bind(py),
                self.rewards.bind(py),
                self.terminated.bind(py),
                self.truncated.bind(py),
            );
            let mut observations = observations.try_readwrite().map_err(borrow_error)?;
            let mut rewards = rewards.try_readwrite().map_err(borrow_error)?;
            let mut terminated = terminated.try_readwrite().map_err(borrow_error)?;
            let mut truncated = truncated.try_readwrite().map_err(borrow_error)?;
            // Several shards record their episode statistics as they step, one by one would
            // leave the other threads idle; a lone shard records them after its step, only
            // when an episode ended (borrowing four more buffers every step costs a small
            // vector env more than the recording).
            let mut episode_buffers = match self.pool {
                Some(_) => Some(self.episode_buffers(py)?),
                None => None,
            };
            let outputs = Outputs {
                observations: observations.as_slice_mut()?,
                rewards: rewards.as_slice_mut()?,
                terminated: terminated.as_slice_mut()?,
                truncated: truncated.as_slice_mut()?,
                episodes: episode_buffers
                    .as_mut()
                    .map(EpisodeBuffers::rows)
                    .transpose()?,
            };
            let (pool, num_envs) = (self.pool.as_ref(), self.num_envs);
            let clock = EpisodeClock {
                origin: *clock,
                same_step: self.mode == AutoresetMode::SameStep,
            };
            py.detach(|| step_shards(shards, pool, batch, num_envs, clock, outputs))
                .map_err(to_py_err)?;
            if self.pool.is_none() {
                for shard in shards.iter_mut() {
                    if !shard.ended.is_empty() || !shard.env.last_step().episodes.is_empty() {
                        shard.record_episodes(clock, self.episode_buffers(py)?.rows()?);
                    }
                }
            }
        }
        let infos = self.infos(py, inner)?;
        Ok((
            self.observations.clone_ref(py),
            self.rewards.clone_ref(py),
            self.terminated.clone_ref(py),
            self.truncated.clone_ref(py),
            infos,
        ))
    }
}

impl VectorEnv {
    /// The step's infos as Gymnasium's vector envs and `RecordEpisodeStatistics` write them:
    /// `episode` (`r`, `l`, `t`) and `_episode` when episodes ended, and in same-step mode
    /// `final_obs`, `_final_obs`, `final_info`, `_final_info`.
    /// The step's `infos`: the episode statistics the shards wrote as they stepped, and in
    /// same-step mode the final observations.
    fn infos(&self, py: Python<'_>, inner: &Inner) -> PyResult<Py<PyDict>> {
        let infos = PyDict::new(py);
        if inner.shards.iter().all(|shard| shard.ended.is_empty()) {
            return Ok(infos.unbind());
        }
        let same_step = self.mode == AutoresetMode::SameStep;
        if same_step {
            let numpy = py.import("numpy")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("dtype", "object")?;
            let finals = numpy.call_method("full", (self.num_envs, py.None()), Some(&kwargs))?;
            for shard in &inner.shards {
                let last = shard.env.last_step();
                let dim = last.final_observations.len() / last.rewards.len();
                for episode in last.episodes {
                    let row = &last.final_observations[episode.env_index * dim..][..dim];
                    finals.set_item(
                        shard.offset + episode.env_index,
                        PyArray1::from_slice(py, row),
                    )?;
                }
            }
            let mask = || self.episode_ended.bind(py).call_method0("copy");
            infos.set_item("final_obs", finals)?;
            infos.set_item("_final_obs", mask()?)?;
            infos.set_item("final_info", PyDict::new(py))?;
            infos.set_item("_final_info", mask()?)?;
        }
        let episode = PyDict::new(py);
        episode.set_item("r", self.episode_returns.clone_ref(py))?;
        episode.set_item("l", self.episode_lengths.clone_ref(py))?;
        episode.set_item("t", self.episode_seconds.clone_ref(py))?;
        infos.set_item("episode", episode)?;
        infos.set_item("_episode", self.episode_ended.clone_ref(py))?;
        Ok(infos.unbind())
    }

    /// The episode statistics' buffers, borrowed for writing.
    fn episode_buffers<'py>(&self, py: Python<'py>) -> PyResult<EpisodeBuffers<'py>> {
        Ok(EpisodeBuffers {
            returns: self
                .episode_returns
                .bind(py)
                .try_readwrite()
                .map_err(borrow_error)?,
            lengths: self
                .episode_lengths
                .bind(py)
                .try_readwrite()
                .map_err(borrow_error)?,
            seconds: self
                .episode_seconds
                .bind(py)
                .try_readwrite()
                .map_err(borrow_error)?,
            ended: self
                .episode_ended
                .bind(py)
                .try_readwrite()
                .map_err(borrow_error)?,
        })
    }

    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| GradlessError::new_err("the env failed in an earlier call"))
    }

    /// The envs' current observations into the observation buffer.
    fn copy_observations(&self, py: Python<'_>, inner: &Inner) -> PyResult<()> {
        let array = self.observations.bind(py);
        let mut buffer = array.try_readwrite().map_err(borrow_error)?;
        let buffer = buffer.as_slice_mut()?;
        let dim = buffer.len() / self.num_envs;
        for shard in &inner.shards {
            let observations = shard.env.last_step().observations;
            buffer[shard.offset * dim..shard.offset * dim + observations.len()]
                .copy_from_slice(observations);
        }
        Ok(())
    }
}

/// `actions` as an array of `T`: itself when it is one, else what NumPy casts it to.
fn array_like<'py, T>(
    actions: &Bound<'py, PyAny>,
) -> PyResult<PyArrayLikeDyn<'py, T, AllowTypeChange>>
where
    T: numpy::Element + for<'a> FromPyObject<'a, 'py> + 'py,
{
    actions.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "actions must be an array of numbers, got {}",
            actions
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

/// Refuses an array of floats as discrete actions: NumPy's cast would truncate 0.5 to
/// action 0 without a word.
fn refuse_fractions(actions: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Ok(array) = actions.cast::<PyUntypedArray>() {
        let dtype = array.dtype();
        if !matches!(dtype.kind(), b'i' | b'u') {
            return Err(PyTypeError::new_err(format!(
                "discrete actions must be integers, got an array of {dtype}"
            )));
        }
    }
    Ok(())
}

/// The values of `array` in order: its own memory when contiguous, else copied into
/// `buffer`.
fn contiguous<'a, T: numpy::Element + Copy>(
    array: &'a PyArrayLikeDyn<'_, T, AllowTypeChange>,
    buffer: &'a mut Vec<T>,
) -> &'a [T] {
    match array.as_slice() {
        Ok(values) => values,
        Err(_) => {
            buffer.clear();
            buffer.extend(array.as_array().iter().copied());
            buffer
        }
    }
}

/// Whether a batch of Box actions holds whole actions of `action_dim` values.
fn batch_is_whole(batch: Actions<'_>, action_dim: usize) -> bool {
    match batch {
        Actions::Discrete(_) => true,
        Actions::Continuous(values) => values.len() % action_dim == 0,
    }
}

/// A buffer the caller holds a view of that NumPy will not let us write (made read-only, or
/// borrowed elsewhere).
fn borrow_error(error: numpy::BorrowError) -> PyErr {
    GradlessError::new_err(format!(
        "the env's output buffer cannot be written ({error}); copy the arrays you keep"
    ))
}

/// `infos["episode"]`'s `r`, `l`, `t` and `infos["_episode"]`, borrowed for writing.
struct EpisodeBuffers<'py> {
    returns: numpy::PyReadwriteArray1<'py, f64>,
    lengths: numpy::PyReadwriteArray1<'py, i64>,
    seconds: numpy::PyReadwriteArray1<'py, f64>,
    ended: numpy::PyReadwriteArray1<'py, bool>,
}

impl EpisodeBuffers<'_> {
    fn rows(&mut self) -> PyResult<EpisodeRows<'_>> {
        Ok(EpisodeRows {
            returns: self.returns.as_slice_mut()?,
            lengths: self.lengths.as_slice_mut()?,
            seconds: self.seconds.as_slice_mut()?,
            ended: self.ended.as_slice_mut()?,
        })
    }
}

/// Some envs' rows of `infos["episode"]`'s `r`, `l`, `t` and `infos["_episode"]`.
struct EpisodeRows<'a> {
    returns: &'a mut [f64],
    lengths: &'a mut [i64],
    seconds: &'a mut [f64],
    ended: &'a mut [bool],
}

impl<'a> EpisodeRows<'a> {
    /// The rows of the first `envs` envs, and the rest.
    fn split(self, envs: usize) -> (EpisodeRows<'a>, EpisodeRows<'a>) {
        let (returns, other_returns) = self.returns.split_at_mut(envs);
        let (lengths, other_lengths) = self.lengths.split_at_mut(envs);
        let (seconds, other_seconds) = self.seconds.split_at_mut(envs);
        let (ended, other_ended) = self.ended.split_at_mut(envs);
        (
            EpisodeRows {
                returns,
                lengths,
                seconds,
                ended,
            },
            EpisodeRows {
                returns: other_returns,
                lengths: other_lengths,
                seconds: other_seconds,
                ended: other_ended,
            },
        )
    }
}

/// How the shards time episodes: from the vector env's clock, the next episode starting at
/// the step after one ends (next-step autoreset) or at the same step.
#[derive(Clone, Copy)]
struct EpisodeClock {
    origin: Instant,
    same_step: bool,
}

impl Shard {
    /// Every env starts an episode at `now`: nothing has ended.
    fn begin_all(&mut self, now: f64, mut rows: EpisodeRows<'_>) {
        self.clear(&mut rows);
        self.episode_start.fill(now);
    }

    /// Zeroes the rows of the envs that ended an episode at the last step.
    fn clear(&mut self, rows: &mut EpisodeRows<'_>) {
        for i in self.ended.drain(..) {
            (
                rows.returns[i],
                rows.lengths[i],
                rows.seconds[i],
                rows.ended[i],
            ) = (0.0, 0, 0.0, false);
        }
    }

    /// After a step: the rows of the envs whose episode ended, as `RecordEpisodeStatistics`
    /// writes them, the others' zero.
    fn record_episodes(&mut self, clock: EpisodeClock, mut rows: EpisodeRows<'_>) {
        let now = clock.origin.elapsed().as_secs_f64();
        if !clock.same_step {
            // Next-step autoreset: the step after an episode ended started the next one.
            for &i in &self.ended {
                self.episode_start[i] = now;
            }
        }
        self.clear(&mut rows);
        let EpisodeRows {
            returns,
            lengths,
            seconds,
            ended,
        } = rows;
        for episode in self.env.last_step().episodes {
            let i = episode.env_index;
            self.ended.push(i);
            returns[i] = episode.episode_return;
            lengths[i] = i64::from(episode.length);
            // As NumPy's `round(x, 6)`: half to even on the scaled value.
            seconds[i] = ((now - self.episode_start[i]) * 1e6).round_ties_even() / 1e6;
            ended[i] = true;
        }
        if clock.same_step {
            for &i in &self.ended {
                self.episode_start[i] = now;
            }
        }
    }
}

/// A step's results for some envs: their rows of the output buffers.
struct Outputs<'a> {
    observations: &'a mut [f32],
    rewards: &'a mut [f64],
    terminated: &'a mut [bool],
    truncated: &'a mut [bool],
    /// The episode statistics' rows, where the shards record them as they step.
    episodes: Option<EpisodeRows<'a>>,
}

impl<'a> Outputs<'a> {
    /// The rows of the first `envs` envs, and the rest.
    fn split(self, envs: usize) -> (Outputs<'a>, Outputs<'a>) {
        let dim = self.observations.len() / self.rewards.len().max(1);
        let (observations, other_observations) = self.observations.split_at_mut(envs * dim);
        let (rewards, other_rewards) = self.rewards.split_at_mut(envs);
        let (terminated, other_terminated) = self.terminated.split_at_mut(envs);
        let (truncated, other_truncated) = self.truncated.split_at_mut(envs);
        let (episodes, other_episodes) = match self.episodes {
            Some(rows) => {
                let (own, others) = rows.split(envs);
                (Some(own), Some(others))
            }
            None => (None, None),
        };
        (
            Outputs {
                observations,
                rewards,
                terminated,
                truncated,
                episodes,
            },
            Outputs {
                observations: other_observations,
                rewards: other_rewards,
                terminated: other_terminated,
                truncated: other_truncated,
                episodes: other_episodes,
            },
        )
    }
}

/// Steps every shard with its share of `batch` (on `pool` when there are several), each
/// writing its results into its rows of `outputs`.
fn step_shards(
    shards: &mut [Shard],
    pool: Option<&rayon::ThreadPool>,
    batch: Actions<'_>,
    num_envs: usize,
    clock: EpisodeClock,
    outputs: Outputs<'_>,
) -> Result<(), EnvError> {
    let mut rows = Vec::with_capacity(shards.len());
    let mut rest = outputs;
    for shard in shards.iter() {
        let (own, others) = rest.split(shard.env.num_envs());
        rows.push(own);
        rest = others;
    }
    let step = |(shard, rows): (&mut Shard, Outputs<'_>)| {
        let envs = shard.offset..shard.offset + shard.env.num_envs();
        let last = shard.env.step(batch.slice(envs, num_envs))?;
        rows.observations.copy_from_slice(last.observations);
        rows.rewards.copy_from_slice(last.rewards);
        rows.terminated.copy_from_slice(last.terminated);
        rows.truncated.copy_from_slice(last.truncated);
        if let Some(episodes) = rows.episodes {
            shard.record_episodes(clock, episodes);
        }
        Ok(())
    };
    match pool {
        None => shards.iter_mut().zip(rows).try_for_each(step),
        Some(pool) => pool.install(|| shards.par_iter_mut().zip(rows).try_for_each(step)),
    }
}
