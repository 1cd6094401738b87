//! One env, as `gymnasium.make` wraps it: no time limit of its own (Gymnasium's `TimeLimit`
//! wrapper, which `make` adds from the registered `max_episode_steps`, truncates it).

use std::sync::Mutex;

use gradless_envs::{Action, StepLimit, make_classic};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::options::make_options;
use crate::{GradlessError, SpaceParts, space_parts, to_py_err};

/// One classic-control env: `reset` and `step` return fresh arrays, as Gymnasium's do.
#[pyclass(module = "gradless._native")]
pub struct Env {
    env: Mutex<Box<dyn gradless_envs::Env + Send>>,
}

#[pymethods]
impl Env {
    /// `env_id` with its own keyword arguments `kwargs`.
    #[new]
    #[pyo3(signature = (env_id, **kwargs))]
    fn new(env_id: &str, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let options = make_options(env_id, kwargs, StepLimit::Unlimited)?;
        let env = make_classic(env_id, options).map_err(to_py_err)?;
        Ok(Self {
            env: Mutex::new(env),
        })
    }

    /// The observation space as `(None, low, high)`.
    fn observation_space(&self) -> PyResult<SpaceParts> {
        Ok(space_parts(self.lock()?.observation_space()))
    }

    /// The action space as `(n, low, high)`.
    fn action_space(&self) -> PyResult<SpaceParts> {
        Ok(space_parts(self.lock()?.action_space()))
    }

    /// Starts an episode: `seed` reseeds the generator, `None` continues it.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let observation = self.lock()?.reset(seed);
        Ok(PyArray1::from_slice(py, &observation))
    }

    /// One discrete action: `(observation, reward, terminated, truncated)`.
    fn step_discrete<'py>(
        &self,
        py: Python<'py>,
        action: i64,
    ) -> PyResult<(Bound<'py, PyArray1<f32>>, f64, bool, bool)> {
        self.step(py, Action::Discrete(action))
    }

    /// One Box action (float32).
    fn step_continuous<'py>(
        &self,
        py: Python<'py>,
        action: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<(Bound<'py, PyArray1<f32>>, f64, bool, bool)> {
        self.step(py, Action::Continuous(action.as_slice()?))
    }
}

impl Env {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, Box<dyn gradless_envs::Env + Send>>> {
        self.env
            .lock()
            .map_err(|_| GradlessError::new_err("the env failed in an earlier call"))
    }

    fn step<'py>(
        &self,
        py: Python<'py>,
        action: Action<'_>,
    ) -> PyResult<(Bound<'py, PyArray1<f32>>, f64, bool, bool)> {
        let step = self.lock()?.step(action).map_err(to_py_err)?;
        Ok((
            PyArray1::from_slice(py, &step.observation),
            step.reward,
            step.terminated,
            step.truncated,
        ))
    }
}
