//! What `gymnasium.make(id, **kwargs)` may pass to our envs, checked the way Python checks
//! keyword arguments: an unknown one is a `TypeError` naming it.

use gradless_envs::{KwargError, KwargValue, MakeOptions, SPECS, StepLimit};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};

/// The ids gradless registers with Gymnasium (under `gradless/`), in Gymnasium's order.
#[pyfunction]
pub fn known_ids() -> Vec<&'static str> {
    SPECS.iter().map(|spec| spec.id).collect()
}

/// The options of `env_id` from the env's own keyword arguments, with `step_limit`: an
/// unknown keyword or a value of the wrong type is a `TypeError`, a value out of range a
/// `ValueError`, as Python would raise them.
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
        // `max_episode_steps` is `make`'s own argument here, given apart from these; these
        // envs draw nothing, so they take no render mode.
        if key == "max_episode_steps" || (key == "render_mode" && !value.is_none()) {
            return Err(PyTypeError::new_err(format!(
                "{env_id} got an unexpected keyword argument '{key}'"
            )));
        }
        let text;
        let value = if value.is_none() {
            KwargValue::None
        } else if let Ok(flag) = value.cast::<PyBool>() {
            KwargValue::Bool(flag.is_true())
        } else if let Ok(int) = value.extract::<i64>() {
            KwargValue::Int(int)
        } else if let Ok(float) = value.extract::<f64>() {
            KwargValue::Float(float)
        } else if let Ok(string) = value.extract::<String>() {
            text = string;
            KwargValue::Str(&text)
        } else {
            let type_name = value.get_type().name()?;
            return Err(PyTypeError::new_err(format!(
                "{env_id}: {key} cannot be {type_name}"
            )));
        };
        set_option(env_id, &mut options, &key, value)?;
    }
    Ok(options)
}

/// Sets one of `env_id`'s keyword arguments, raising as Python would: an unknown keyword or
/// a value of the wrong type is a `TypeError`, a value out of range a `ValueError`.
pub fn set_option(
    env_id: &str,
    options: &mut MakeOptions,
    key: &str,
    value: KwargValue<'_>,
) -> PyResult<()> {
    options.set(key, value).map_err(|error| match error {
        KwargError::BadValue { .. } => PyValueError::new_err(format!("{env_id}: {error}")),
        KwargError::Unknown(_) => PyTypeError::new_err(format!(
            "{env_id} got an unexpected keyword argument '{key}'"
        )),
        KwargError::WrongType { .. } => PyTypeError::new_err(format!("{env_id}: {error}")),
    })
}
