//! What `gymnasium.make(id, **kwargs)` may pass to our envs, checked the way Python checks
//! keyword arguments: an unknown one is a `TypeError` naming it.

use gradless_envs::{MakeOptions, SPECS, StepLimit};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The ids gradless registers with Gymnasium (under `gradless/`), in Gymnasium's order.
#[pyfunction]
pub fn known_ids() -> Vec<&'static str> {
    SPECS.iter().map(|spec| spec.id).collect()
}

/// The options of `env_id` from the env's own keyword arguments, with `step_limit`.
pub fn make_options(
    env_id: &str,
    kwargs: Option<&Bound<'_, PyDict>>,
    step_limit: StepLimit,
) -> PyResult<MakeOptions> {
    let mut options = MakeOptions {
        step_limit,
        ..MakeOptions::default()
    };
    let Some(kwargs) = kwargs else {
        return Ok(options);
    };
    for (key, value) in kwargs.iter() {
        let key: String = key.extract()?;
        match key.as_str() {
            "sutton_barto_reward" => {
                let type_name = value.get_type().name()?;
                options.sutton_barto_reward = value.extract().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "sutton_barto_reward must be a bool, got {type_name}"
                    ))
                })?;
            }
            "g" => {
                let type_name = value.get_type().name()?;
                options.gravity = Some(value.extract().map_err(|_| {
                    PyTypeError::new_err(format!("g must be a number, got {type_name}"))
                })?);
            }
            "render_mode" if value.is_none() => {}
            other => {
                return Err(PyTypeError::new_err(format!(
                    "{env_id} got an unexpected keyword argument '{other}'"
                )));
            }
        }
    }
    Ok(options)
}

/// `max_episode_steps` as a step limit: the registered one when `None`.
pub fn step_limit(max_episode_steps: Option<i64>) -> PyResult<StepLimit> {
    match max_episode_steps {
        None => Ok(StepLimit::Registered),
        Some(steps) => u32::try_from(steps)
            .ok()
            .filter(|&steps| steps > 0)
            .map(StepLimit::Steps)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "max_episode_steps must be between 1 and {}, got {steps}",
                    u32::MAX
                ))
            }),
    }
}
