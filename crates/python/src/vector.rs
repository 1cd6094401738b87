//! The vector env: gradless-envs' `SyncVectorEnv`, split into shards stepped on a thread pool with
//! the GIL released, its results copied into NumPy arrays made once and handed out again
//! every step, and the `infos` Gymnasium's `RecordEpisodeStatistics` writes built here.
//!
//! One file because the shards, the buffers they fill and the episode bookkeeping of the
//! infos index the same envs.

use std::sync::Mutex;
use std::time::Instant;

use gradless_envs::{Actions, AutoresetMode, EnvError, make_vector};
use numpy::{AllowTypeChange, PyArray1, PyArray2, PyArrayLikeDyn, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;

use crate::options::{make_options, step_limit};
use crate::{GradlessError, SpaceParts, space_parts, to_py_err};

/// The most sub-environments one vector env holds.
const MAX_ENVS: usize = 1 << 24;

/// The most bytes of observations one buffer may take.
const MAX_OBSERVATION_BYTES: usize = 4 << 30;

/// The most threads one vector env steps on.
const MAX_THREADS: usize = 256;

/// Envs `offset..offset + env.num_envs()` of the vector env.
struct Shard {
    env: Box<dyn gradless_envs::VectorEnv>,
    offset: usize,
}

/// Everything a step changes, behind one lock: the shards are stepped without the GIL, and
/// a Python class must be shareable between threads.
struct Inner {
    shards: Vec<Shard>,
    /// The step's actions, flat: one per env (discrete) or `action_dim` each.
    discrete: Vec<i64>,
    continuous: Vec<f32>,
    /// `RecordEpisodeStatistics`' bookkeeping: when each env's episode began (seconds since
    /// `clock`), and which envs ended an episode at the last step.
    clock: Instant,
    episode_start: Vec<f64>,
    previous_done: Vec<bool>,
}

/// Many copies of one classic-control env, stepped together (Gymnasium's `VectorEnv`
/// semantics: sub-env `i` seeded with `seed + i`, next-step or same-step autoreset).
///
/// The arrays `reset` and `step` return are this env's own buffers, filled again by the
/// next call: copy what must outlive it. The infos are new each step.
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
        let options = make_options(env_id, kwargs, step_limit(max_episode_steps)?)?;
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
            shards.push(Shard { env, offset });
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
                episode_start: vec![0.0; num_envs],
                previous_done: vec![false; num_envs],
            }),
            num_envs,
            mode,
            discrete_actions,
            action_dim,
            observations: PyArray2::zeros(py, [num_envs, observation_dim], false).unbind(),
            rewards: PyArray1::zeros(py, num_envs, false).unbind(),
            terminated: PyArray1::zeros(py, num_envs, false).unbind(),
            truncated: PyArray1::zeros(py, num_envs, false).unbind(),
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
        inner.episode_start.fill(now);
        inner.previous_done.fill(false);
        self.copy_observations(py, &inner)?;
        Ok(self.observations.clone_ref(py))
    }

    /// Steps every sub-environment with its action (one index each for discrete envs,
    /// `action_dim` floats each for Box envs; any array-like NumPy can cast): Gymnasium's
    /// `(observations, rewards, terminations, truncations, infos)`.
    fn step(&self, py: Python<'_>, actions: &Bound<'_, PyAny>) -> PyResult<StepResult> {
        let mut guard = self.lock()?;
        let inner: &mut Inner = &mut guard;
        let given = if self.discrete_actions {
            flatten_into::<i64>(actions, &mut inner.discrete)?
        } else {
            flatten_into::<f32>(actions, &mut inner.continuous)?
        };
        let expected = self.num_envs
            * if self.discrete_actions {
                1
            } else {
                self.action_dim
            };
        if given != expected {
            return Err(PyValueError::new_err(format!(
                "{given} action values for {} envs (expected {expected})",
                self.num_envs
            )));
        }
        let (discrete, action_dim) = (self.discrete_actions, self.action_dim);
        let pool = self.pool.as_ref();
        py.detach(|| step_shards(inner, pool, discrete, action_dim))
            .map_err(to_py_err)?;
        self.copy_step(py, inner)?;
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
    /// The last step's rewards, flags and observations into the buffers.
    fn copy_step(&self, py: Python<'_>, inner: &Inner) -> PyResult<()> {
        let rewards = self.rewards.bind(py);
        let terminated = self.terminated.bind(py);
        let truncated = self.truncated.bind(py);
        let mut rewards = rewards.try_readwrite().map_err(borrow_error)?;
        let mut terminated = terminated.try_readwrite().map_err(borrow_error)?;
        let mut truncated = truncated.try_readwrite().map_err(borrow_error)?;
        let (rewards, terminated, truncated) = (
            rewards.as_slice_mut()?,
            terminated.as_slice_mut()?,
            truncated.as_slice_mut()?,
        );
        for shard in &inner.shards {
            let last = shard.env.last_step();
            let envs = shard.offset..shard.offset + last.rewards.len();
            rewards[envs.clone()].copy_from_slice(last.rewards);
            terminated[envs.clone()].copy_from_slice(last.terminated);
            truncated[envs].copy_from_slice(last.truncated);
        }
        self.copy_observations(py, inner)
    }

    /// The step's infos as Gymnasium's vector envs and `RecordEpisodeStatistics` write them:
    /// `episode` (`r`, `l`, `t`) and `_episode` when episodes ended, and in same-step mode
    /// `final_obs`, `_final_obs`, `final_info`, `_final_info`.
    fn infos(&self, py: Python<'_>, inner: &mut Inner) -> PyResult<Py<PyDict>> {
        let infos = PyDict::new(py);
        let now = inner.clock.elapsed().as_secs_f64();
        let same_step = self.mode == AutoresetMode::SameStep;
        if !same_step {
            // Next-step autoreset: the step after an episode ended started the next one.
            for (start, &restarted) in inner.episode_start.iter_mut().zip(&inner.previous_done) {
                if restarted {
                    *start = now;
                }
            }
        }
        inner.previous_done.fill(false);
        let mut returns = Vec::new();
        let mut lengths = Vec::new();
        let mut seconds = Vec::new();
        for shard in &inner.shards {
            for episode in shard.env.last_step().episodes {
                let i = shard.offset + episode.env_index;
                inner.previous_done[i] = true;
                if returns.is_empty() {
                    returns = vec![0.0_f64; self.num_envs];
                    lengths = vec![0_i64; self.num_envs];
                    seconds = vec![0.0_f64; self.num_envs];
                }
                returns[i] = episode.episode_return;
                lengths[i] = i64::from(episode.length);
                // As NumPy's `round(x, 6)`: half to even on the scaled value.
                seconds[i] = ((now - inner.episode_start[i]) * 1e6).round_ties_even() / 1e6;
            }
        }
        if returns.is_empty() {
            return Ok(infos.unbind());
        }
        let done = PyArray1::from_slice(py, &inner.previous_done);
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
            infos.set_item("final_obs", finals)?;
            infos.set_item("_final_obs", PyArray1::from_slice(py, &inner.previous_done))?;
            infos.set_item("final_info", PyDict::new(py))?;
            infos.set_item(
                "_final_info",
                PyArray1::from_slice(py, &inner.previous_done),
            )?;
            for (start, &ended) in inner.episode_start.iter_mut().zip(&inner.previous_done) {
                if ended {
                    *start = now;
                }
            }
        }
        let episode = PyDict::new(py);
        episode.set_item("r", PyArray1::from_vec(py, returns))?;
        episode.set_item("l", PyArray1::from_vec(py, lengths))?;
        episode.set_item("t", PyArray1::from_vec(py, seconds))?;
        infos.set_item("episode", episode)?;
        infos.set_item("_episode", done)?;
        Ok(infos.unbind())
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

/// `actions` (any array-like NumPy casts to `T`) flattened into `buffer`; returns how many
/// values it held.
fn flatten_into<'py, T>(actions: &Bound<'py, PyAny>, buffer: &mut Vec<T>) -> PyResult<usize>
where
    T: numpy::Element + Copy + for<'a> FromPyObject<'a, 'py> + 'py,
{
    let array: PyArrayLikeDyn<'py, T, AllowTypeChange> = actions.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "actions must be an array of numbers, got {}",
            actions
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    buffer.clear();
    match array.as_slice() {
        Ok(values) => buffer.extend_from_slice(values),
        Err(_) => buffer.extend(array.as_array().iter().copied()),
    }
    Ok(buffer.len())
}

/// `value` of the argument `name` as a count from 1 to `most`.
fn bounded(name: &str, value: i64, most: usize) -> PyResult<usize> {
    usize::try_from(value)
        .ok()
        .filter(|n| (1..=most).contains(n))
        .ok_or_else(|| {
            PyValueError::new_err(format!("{name} must be between 1 and {most}, got {value}"))
        })
}

/// A buffer the caller holds a view of that NumPy will not let us write (made read-only, or
/// borrowed elsewhere).
fn borrow_error(error: numpy::BorrowError) -> PyErr {
    GradlessError::new_err(format!(
        "the env's output buffer cannot be written ({error}); copy the arrays you keep"
    ))
}

/// Steps every shard with its share of the actions, on `pool` when there are several.
fn step_shards(
    inner: &mut Inner,
    pool: Option<&rayon::ThreadPool>,
    discrete: bool,
    action_dim: usize,
) -> Result<(), EnvError> {
    let Inner {
        shards,
        discrete: indices,
        continuous: values,
        ..
    } = inner;
    let (indices, values) = (&*indices, &*values);
    let step = |shard: &mut Shard| {
        let envs = shard.offset..shard.offset + shard.env.num_envs();
        let actions = if discrete {
            Actions::Discrete(&indices[envs])
        } else {
            Actions::Continuous(&values[envs.start * action_dim..envs.end * action_dim])
        };
        shard.env.step(actions).map(|_| ())
    };
    match pool {
        None => shards.iter_mut().try_for_each(step),
        Some(pool) => pool.install(|| shards.par_iter_mut().try_for_each(step)),
    }
}
