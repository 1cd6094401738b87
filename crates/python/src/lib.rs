//! `gradless._native`: gradless-envs' envs and the evaluator for Python. The pure-Python layer
//! (`python/gradless`) turns these into Gymnasium's `Env` and `VectorEnv`; here are the
//! envs themselves, the NumPy buffers they fill, and errors as Python exceptions.

mod evaluation;
mod options;
mod single;
mod vector;

use gradless_envs::{EnvError, Space};
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    gradless,
    GradlessError,
    PyException,
    "What gradless refuses or cannot do, in one line."
);
pyo3::create_exception!(
    gradless,
    CheckpointError,
    GradlessError,
    "A checkpoint that is missing, damaged or not gradless's."
);
pyo3::create_exception!(
    gradless,
    UnsupportedAgentError,
    GradlessError,
    "An agent gradless cannot read, or one that does not fit the env."
);

/// `value` of the argument `name` as a count from 1 to `most`.
fn bounded(name: &str, value: i64, most: usize) -> PyResult<usize> {
    usize::try_from(value)
        .ok()
        .filter(|n| (1..=most).contains(n))
        .ok_or_else(|| {
            PyValueError::new_err(format!("{name} must be between 1 and {most}, got {value}"))
        })
}

/// An env error as the Python exception a caller expects: a bad id, option or action is
/// the caller's `ValueError`; stepping before a reset is gradless's own error.
fn to_py_err(error: EnvError) -> PyErr {
    match error {
        EnvError::UnknownEnv { .. }
        | EnvError::InvalidAction { .. }
        | EnvError::InvalidOption { .. }
        | EnvError::InvalidState { .. } => PyValueError::new_err(error.to_string()),
        other => GradlessError::new_err(other.to_string()),
    }
}

/// A space as the Python layer builds Gymnasium's from it: `(n, low, high)`, `n` the
/// number of actions of a discrete space (`None` for a box).
type SpaceParts = (Option<u32>, Vec<f32>, Vec<f32>);

fn space_parts(space: &Space) -> SpaceParts {
    match space {
        Space::Discrete { n } => (Some(*n), Vec::new(), Vec::new()),
        Space::Box { low, high } => (None, low.clone(), high.clone()),
    }
}

#[pymodule]
mod _native {
    #[pymodule_export]
    use super::evaluation::{evaluate_path, evaluate_weights};
    #[pymodule_export]
    use super::options::known_ids;
    #[pymodule_export]
    use super::single::Env;
    #[pymodule_export]
    use super::vector::VectorEnv;
    #[pymodule_export]
    use super::{CheckpointError, GradlessError, UnsupportedAgentError};
}
