//! `gradless.evaluate` of an agent saved in a file or folder: the evaluator's seeded
//! episodes, in inference mode, as `gradless eval` runs them.

use std::path::PathBuf;

use gradless_device::{DeviceChoice, InferenceDevice};
use gradless_evaluator::{AgentDevice, EvalError, EvalSettings, LoadedCheckpoint, one_checkpoint};
use gradless_policy::EpisodePlan;
use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{CheckpointError, UnsupportedAgentError};

/// The most envs stepped side by side from Python.
const MAX_NUM_ENVS: usize = 1 << 16;

/// Evaluates the agent at `path` (a gradless checkpoint or run directory, whose latest
/// checkpoint is taken; a Stable-Baselines3 zip, a CleanRL model or an exported state dict,
/// which need `env_id`, and `activation` where the file names none): a dict of the episodes' `returns`, `lengths`, `seeds`, `terminated`
/// and `truncated` (NumPy arrays, episode order), the summary `gradless eval` prints, and
/// what was evaluated (`checkpoint`, `env`, `env_backend`).
#[pyfunction]
#[pyo3(signature = (path, env_id=None, episodes=100, seed=1_000_000, num_envs=16, deterministic=true, device="auto", activation=None))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate_path<'py>(
    py: Python<'py>,
    path: PathBuf,
    env_id: Option<String>,
    episodes: i64,
    seed: u64,
    num_envs: i64,
    deterministic: bool,
    device: &str,
    activation: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let activation = activation
        .map(|name| {
            gradless_import::activation_named(name).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "activation {name:?}: expected \"tanh\" or \"relu\""
                ))
            })
        })
        .transpose()?;
    let settings = EvalSettings {
        episodes: crate::bounded("episodes", episodes, EpisodePlan::MAX_EPISODES)?,
        num_envs: crate::bounded("num_envs", num_envs, MAX_NUM_ENVS)?,
        seed,
        stochastic: !deterministic,
        env: env_id,
        activation,
        ..EvalSettings::default()
    };
    if seed > EpisodePlan::largest_first_seed(settings.episodes) {
        return Err(PyValueError::new_err(format!(
            "seed {seed}: the last episode's seed would pass 2**64 - 1"
        )));
    }
    let choice: DeviceChoice = device
        .parse()
        .map_err(|e| PyValueError::new_err(format!("device: {e}")))?;
    let base = gradless_device::open(choice.resolve().backend)
        .map_err(|e| crate::GradlessError::new_err(format!("device {device}: {e}")))?;
    let agent_device = AgentDevice::new(&InferenceDevice::new(&base));
    let checkpoint = one_checkpoint(&path).map_err(eval_error)?;
    // The episodes run without the GIL: other Python threads go on meanwhile.
    let evaluation = py
        .detach(|| {
            LoadedCheckpoint::load(&checkpoint, &settings, &agent_device)
                .and_then(|loaded| loaded.evaluate(&settings))
        })
        .map_err(eval_error)?;
    let result = PyDict::new(py);
    let episodes = &evaluation.episodes;
    let returns: Vec<f64> = episodes.iter().map(|e| e.episode_return).collect();
    result.set_item("returns", PyArray1::from_vec(py, returns))?;
    let lengths: Vec<i64> = episodes.iter().map(|e| i64::from(e.length)).collect();
    result.set_item("lengths", PyArray1::from_vec(py, lengths))?;
    let seeds: Vec<u64> = episodes.iter().map(|e| e.seed).collect();
    result.set_item("seeds", PyArray1::from_vec(py, seeds))?;
    let terminated: Vec<bool> = episodes.iter().map(|e| e.terminated).collect();
    result.set_item("terminated", PyArray1::from_vec(py, terminated))?;
    let truncated: Vec<bool> = episodes.iter().map(|e| e.truncated).collect();
    result.set_item("truncated", PyArray1::from_vec(py, truncated))?;
    let summary = &evaluation.summary;
    result.set_item("mean", summary.mean_return)?;
    result.set_item("std", summary.std_return)?;
    result.set_item("median", summary.median_return)?;
    result.set_item("iqm", summary.iqm)?;
    result.set_item("iqm_ci95", (summary.iqm_ci95[0], summary.iqm_ci95[1]))?;
    result.set_item("truncated_fraction", summary.truncated_fraction)?;
    result.set_item("checkpoint", evaluation.checkpoint.display().to_string())?;
    result.set_item("env", &evaluation.env)?;
    result.set_item("env_backend", evaluation.env_backend.to_string())?;
    Ok(result)
}

/// An evaluator error as the exception a caller can tell apart: a damaged or missing
/// checkpoint, an agent gradless cannot read or that does not fit the env, or another
/// failure.
fn eval_error(error: EvalError) -> PyErr {
    let message = error.to_string();
    match error {
        EvalError::Checkpoint(_)
        | EvalError::NothingToEvaluate(_)
        | EvalError::NoCheckpointYet(_)
        | EvalError::Io { .. } => CheckpointError::new_err(message),
        EvalError::SeveralTargets(_) => PyValueError::new_err(message),
        EvalError::Import(_) | EvalError::Incompatible { .. } => {
            UnsupportedAgentError::new_err(message)
        }
        _ => crate::GradlessError::new_err(message),
    }
}
