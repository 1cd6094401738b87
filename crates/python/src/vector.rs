//! The vector env: gradless-envs' `SyncVectorEnv` stepping with the GIL released, its
//! results copied into NumPy arrays made once and handed out again every step.

use std::sync::Mutex;

use gradless_envs::{Actions, AutoresetMode, make_vector};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::options::{make_options, step_limit};
use crate::{GradlessError, SpaceParts, space_parts, to_py_err};

/// The most sub-environments one vector env holds.
const MAX_ENVS: usize = 1 << 24;

/// The most bytes of observations one buffer may take.
const MAX_OBSERVATION_BYTES: usize = 4 << 30;

/// The envs and the actions of the step under way, behind one lock: the env is stepped
/// without the GIL, and a Python class must be shareable between threads.
struct Inner {
    env: Box<dyn gradless_envs::VectorEnv>,
    discrete: Vec<i64>,
    continuous: Vec<f32>,
}

/// The finished episodes of a step: `(env indices, returns, lengths)`.
type Episodes = (Vec<usize>, Vec<f64>, Vec<u32>);

/// Many copies of one classic-control env, stepped together (Gymnasium's `VectorEnv`
/// semantics: sub-env `i` seeded with `seed + i`, next-step or same-step autoreset).
///
/// The arrays `reset` and `step` return are this env's own buffers, filled again by the
/// next call: copy what must outlive it.
#[pyclass(module = "gradless._native")]
pub struct VectorEnv {
    inner: Mutex<Inner>,
    num_envs: usize,
    observation_dim: usize,
    observations: Py<PyArray2<f32>>,
    final_observations: Py<PyArray2<f32>>,
    rewards: Py<PyArray1<f64>>,
    terminated: Py<PyArray1<bool>>,
    truncated: Py<PyArray1<bool>>,
}

#[pymethods]
impl VectorEnv {
    /// `num_envs` copies of `env_id`; `autoreset_mode` is `"next_step"` or `"same_step"`,
    /// `max_episode_steps` the time limit (the registered one when `None`), `kwargs` the
    /// env's own keyword arguments.
    #[new]
    #[pyo3(signature = (env_id, num_envs, autoreset_mode="next_step", max_episode_steps=None, **kwargs))]
    fn new(
        py: Python<'_>,
        env_id: &str,
        num_envs: i64,
        autoreset_mode: &str,
        max_episode_steps: Option<i64>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let num_envs = usize::try_from(num_envs)
            .ok()
            .filter(|n| (1..=MAX_ENVS).contains(n))
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "num_envs must be between 1 and {MAX_ENVS}, got {num_envs}"
                ))
            })?;
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
        // The observation size comes from the env's spec; check the buffers fit before
        // anything of that size is made.
        let probe = make_vector(env_id, 1, mode, options).map_err(to_py_err)?;
        let observation_dim = probe.single_observation_space().flat_dim();
        num_envs
            .checked_mul(observation_dim * std::mem::size_of::<f32>())
            .filter(|&bytes| bytes <= MAX_OBSERVATION_BYTES)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "num_envs {num_envs}: the observations would take more than \
                     {MAX_OBSERVATION_BYTES} bytes"
                ))
            })?;
        let env = make_vector(env_id, num_envs, mode, options).map_err(to_py_err)?;
        Ok(Self {
            inner: Mutex::new(Inner {
                env,
                discrete: Vec::new(),
                continuous: Vec::new(),
            }),
            num_envs,
            observation_dim,
            observations: PyArray2::zeros(py, [num_envs, observation_dim], false).unbind(),
            final_observations: PyArray2::zeros(py, [num_envs, observation_dim], false).unbind(),
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
        Ok(space_parts(inner.env.single_observation_space()))
    }

    /// One sub-environment's action space as `(n, low, high)`.
    fn action_space(&self) -> PyResult<SpaceParts> {
        let inner = self.lock()?;
        Ok(space_parts(inner.env.single_action_space()))
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
        {
            let mut inner = self.lock()?;
            match seeds {
                Some(seeds) => {
                    inner.env.reset_with_seeds(&seeds).map_err(to_py_err)?;
                }
                None => {
                    inner.env.reset(seed);
                }
            }
        }
        self.copy_observations(py)?;
        Ok(self.observations.clone_ref(py))
    }

    /// Steps every sub-environment with one discrete action each.
    #[allow(clippy::type_complexity)]
    fn step_discrete(
        &self,
        py: Python<'_>,
        actions: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<(
        Py<PyArray2<f32>>,
        Py<PyArray1<f64>>,
        Py<PyArray1<bool>>,
        Py<PyArray1<bool>>,
        Episodes,
    )> {
        {
            let mut inner = self.lock()?;
            inner.discrete.clear();
            inner.discrete.extend_from_slice(actions.as_slice()?);
        }
        self.step_with(py, |inner| {
            let Inner { env, discrete, .. } = inner;
            env.step(Actions::Discrete(discrete)).map(|_| ())
        })
    }

    /// Steps every sub-environment with its row of `actions` (float32 Box actions,
    /// `num_envs * action_dim` values).
    #[allow(clippy::type_complexity)]
    fn step_continuous(
        &self,
        py: Python<'_>,
        actions: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<(
        Py<PyArray2<f32>>,
        Py<PyArray1<f64>>,
        Py<PyArray1<bool>>,
        Py<PyArray1<bool>>,
        Episodes,
    )> {
        {
            let mut inner = self.lock()?;
            inner.continuous.clear();
            inner.continuous.extend_from_slice(actions.as_slice()?);
        }
        self.step_with(py, |inner| {
            let Inner {
                env, continuous, ..
            } = inner;
            env.step(Actions::Continuous(continuous)).map(|_| ())
        })
    }

    /// Same-step autoreset: the last observations of the episodes the last step ended
    /// (rows of the other envs mean nothing). This env's own buffer.
    fn final_observations(&self, py: Python<'_>) -> PyResult<Py<PyArray2<f32>>> {
        {
            let inner = self.lock()?;
            let step = inner.env.last_step();
            let array = self.final_observations.bind(py);
            let mut buffer = array.try_readwrite().map_err(borrow_error)?;
            let slice = buffer.as_slice_mut()?;
            if step.final_observations.len() == slice.len() {
                slice.copy_from_slice(step.final_observations);
            }
        }
        Ok(self.final_observations.clone_ref(py))
    }
}

#[allow(clippy::type_complexity)]
impl VectorEnv {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| GradlessError::new_err("the env failed in an earlier call"))
    }

    /// Runs `step` on the envs without the GIL, then copies what it returned into the
    /// buffers.
    fn step_with(
        &self,
        py: Python<'_>,
        step: impl FnOnce(&mut Inner) -> Result<(), gradless_envs::EnvError> + Send,
    ) -> PyResult<(
        Py<PyArray2<f32>>,
        Py<PyArray1<f64>>,
        Py<PyArray1<bool>>,
        Py<PyArray1<bool>>,
        Episodes,
    )> {
        py.detach(|| {
            let mut inner = self
                .inner
                .lock()
                .map_err(|_| GradlessError::new_err("the env failed in an earlier call"))?;
            step(&mut inner).map_err(to_py_err)
        })?;
        let episodes = {
            let inner = self.lock()?;
            let last = inner.env.last_step();
            copy_into(self.rewards.bind(py), last.rewards)?;
            copy_into(self.terminated.bind(py), last.terminated)?;
            copy_into(self.truncated.bind(py), last.truncated)?;
            let indices = last.episodes.iter().map(|e| e.env_index).collect();
            let returns = last.episodes.iter().map(|e| e.episode_return).collect();
            let lengths = last.episodes.iter().map(|e| e.length).collect();
            (indices, returns, lengths)
        };
        self.copy_observations(py)?;
        Ok((
            self.observations.clone_ref(py),
            self.rewards.clone_ref(py),
            self.terminated.clone_ref(py),
            self.truncated.clone_ref(py),
            episodes,
        ))
    }

    /// The envs' current observations into the observation buffer.
    fn copy_observations(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.lock()?;
        let observations = inner.env.last_step().observations;
        debug_assert_eq!(observations.len(), self.num_envs * self.observation_dim);
        let array = self.observations.bind(py);
        let mut buffer = array.try_readwrite().map_err(borrow_error)?;
        buffer.as_slice_mut()?.copy_from_slice(observations);
        Ok(())
    }
}

/// `values` into the one-dimensional `array` of the same length.
fn copy_into<T: numpy::Element + Copy>(
    array: &Bound<'_, PyArray1<T>>,
    values: &[T],
) -> PyResult<()> {
    let mut buffer = array.try_readwrite().map_err(borrow_error)?;
    buffer.as_slice_mut()?.copy_from_slice(values);
    Ok(())
}

/// A buffer the caller holds a view of that NumPy will not let us write (made read-only, or
/// borrowed elsewhere).
fn borrow_error(error: numpy::BorrowError) -> PyErr {
    GradlessError::new_err(format!(
        "the env's output buffer cannot be written ({error}); copy the arrays you keep"
    ))
}
