//! `gradless.evaluate`: the evaluator's seeded episodes, in inference mode, as `gradless eval`
//! runs them, of an agent saved in a file or folder or handed over live (a Stable-Baselines3
//! model's or a PyTorch module's weights, read off by the Python layer).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gradless_device::{DeviceChoice, InferenceDevice};
use gradless_evaluator::{
    AgentDevice, CheckpointEvaluation, EvalError, EvalSettings, LoadedCheckpoint,
    ObservationNormalizer, Stoppable, one_checkpoint,
};
use gradless_import::{MAX_TENSOR_BYTES, ModuleAction, Tensors, Values};
use gradless_policy::{ActError, Activation, EpisodePlan, RunningMoments};
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{CheckpointError, UnsupportedAgentError};

/// The most envs stepped side by side from Python.
const MAX_NUM_ENVS: usize = 1 << 16;

/// How often a running evaluation looks for Ctrl-C (it takes the GIL to look).
const SIGNAL_CHECK_EVERY: Duration = Duration::from_millis(100);

/// What every evaluation takes besides its agent: the episodes and where they run.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct RunArgs {
    env_id: Option<String>,
    episodes: i64,
    seed: u64,
    num_envs: i64,
    deterministic: bool,
    device: String,
}

impl RunArgs {
    /// The evaluator's settings (`activation` for files that name none) and the device.
    fn resolve(self, activation: Option<Activation>) -> PyResult<(EvalSettings, AgentDevice)> {
        let settings = EvalSettings {
            episodes: crate::bounded("episodes", self.episodes, EpisodePlan::MAX_EPISODES)?,
            num_envs: crate::bounded("num_envs", self.num_envs, MAX_NUM_ENVS)?,
            seed: self.seed,
            stochastic: !self.deterministic,
            env: self.env_id,
            activation,
            ..EvalSettings::default()
        };
        if self.seed > EpisodePlan::largest_first_seed(settings.episodes) {
            return Err(PyValueError::new_err(format!(
                "seed {}: the last episode's seed would pass 2**64 - 1",
                self.seed
            )));
        }
        let choice: DeviceChoice = self
            .device
            .parse()
            .map_err(|e| PyValueError::new_err(format!("device: {e}")))?;
        let base = gradless_device::open(choice.resolve().backend)
            .map_err(|e| crate::GradlessError::new_err(format!("device {}: {e}", self.device)))?;
        Ok((settings, AgentDevice::new(&InferenceDevice::new(&base))))
    }
}

/// A `VecNormalize`'s observation statistics, as the Python layer reads them off.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Statistics<'py> {
    mean: PyReadonlyArray1<'py, f64>,
    var: PyReadonlyArray1<'py, f64>,
    count: f64,
    epsilon: f64,
    clip: f64,
}

impl Statistics<'_> {
    /// The frozen normaliser they make (checked against the policy when it is loaded).
    fn normalizer(self) -> PyResult<ObservationNormalizer> {
        Ok(ObservationNormalizer {
            moments: RunningMoments {
                mean: self.mean.as_array().to_vec(),
                var: self.var.as_array().to_vec(),
                count: self.count,
            },
            clip: self.clip,
            epsilon: self.epsilon,
        })
    }
}

/// An activation named `"tanh"` or `"relu"` (or PyTorch's class names).
fn activation(name: &str) -> PyResult<Activation> {
    gradless_import::activation_named(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "activation {name:?}: expected \"tanh\" or \"relu\""
        ))
    })
}

/// Evaluates the agent at `path` (a gradless checkpoint or run directory, whose latest
/// checkpoint is taken; a Stable-Baselines3 zip, a CleanRL model or an exported state dict,
/// which need `env_id`, and `activation` where the file names none): see [`evaluation_dict`].
#[pyfunction]
#[pyo3(signature = (path, run, activation=None))]
pub fn evaluate_path<'py>(
    py: Python<'py>,
    path: PathBuf,
    run: RunArgs,
    activation: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let activation = activation.map(self::activation).transpose()?;
    let (settings, device) = run.resolve(activation)?;
    let checkpoint = one_checkpoint(&path).map_err(eval_error)?;
    let evaluation = run_interruptibly(py, &settings, |settings| {
        LoadedCheckpoint::load(&checkpoint, settings, &device)
    })?;
    evaluation_dict(py, &evaluation)
}

/// Evaluates a policy handed over as weights: `kind` says how to read `state_dict` (tensor
/// name to float32 array): `"sb3"` a Stable-Baselines3 policy's `state_dict()` (its
/// activation given when not SB3's default), or a PyTorch `nn.Sequential`'s Linear layers
/// renumbered `0, 2, 4, ...` whose outputs become actions by `"argmax"`, `"identity"` or
/// `"tanh_scale"`. `normalizer` is a `VecNormalize`'s observation statistics;
/// `source` names the agent in errors.
#[pyfunction]
#[pyo3(signature = (kind, state_dict, source, run, activation=None, step=None, normalizer=None))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate_weights<'py>(
    py: Python<'py>,
    kind: &str,
    state_dict: Bound<'py, PyDict>,
    source: &str,
    run: RunArgs,
    activation: Option<&str>,
    step: Option<u64>,
    normalizer: Option<Statistics<'py>>,
) -> PyResult<Bound<'py, PyDict>> {
    let activation = activation.map(self::activation).transpose()?;
    let normalizer = normalizer.map(Statistics::normalizer).transpose()?;
    let tensors = tensors_of(&state_dict)?;
    let policy = match kind {
        "sb3" => gradless_import::sb3_policy_from_state_dict(&tensors, activation, source, step),
        action => {
            let action: ModuleAction = action.parse().map_err(PyValueError::new_err)?;
            let activation = activation.unwrap_or(Activation::Tanh);
            gradless_import::sequential_policy(&tensors, activation, action, source)
        }
    }
    .and_then(|policy| policy.with_normalizer(normalizer))
    .map_err(|e| eval_error(EvalError::Import(e)))?;
    let (settings, device) = run.resolve(None)?;
    let evaluation = run_interruptibly(py, &settings, move |settings| {
        LoadedCheckpoint::from_foreign(policy, settings, &device)
    })?;
    evaluation_dict(py, &evaluation)
}

/// A dict of name to float32 array as tensors, their total size bounded before any is copied.
fn tensors_of(state_dict: &Bound<'_, PyDict>) -> PyResult<Tensors> {
    let mut arrays = Vec::with_capacity(state_dict.len());
    let mut bytes: u64 = 0;
    for (name, array) in state_dict.iter() {
        let name: String = name.extract()?;
        let array: PyReadonlyArrayDyn<'_, f32> = array.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "state dict entry {name:?}: expected a float32 NumPy array"
            ))
        })?;
        bytes = bytes.saturating_add(4 * array.as_array().len() as u64);
        if bytes > MAX_TENSOR_BYTES {
            return Err(UnsupportedAgentError::new_err(format!(
                "the agent's tensors pass {MAX_TENSOR_BYTES} bytes, more than a policy here may hold"
            )));
        }
        arrays.push((name, array));
    }
    let mut tensors = Tensors::default();
    for (name, array) in arrays {
        let view = array.as_array();
        let values = Values {
            shape: view.shape().to_vec(),
            data: view.iter().copied().collect(),
        };
        tensors.by_name.insert(name, values);
    }
    Ok(tensors)
}

/// Loads the agent and runs its episodes without the GIL (other Python threads go on),
/// looking for Ctrl-C every [`SIGNAL_CHECK_EVERY`] as episodes finish: an interrupt stops
/// the run and raises `KeyboardInterrupt`.
fn run_interruptibly(
    py: Python<'_>,
    settings: &EvalSettings,
    load: impl FnOnce(&EvalSettings) -> Result<LoadedCheckpoint, EvalError> + Send,
) -> PyResult<CheckpointEvaluation> {
    let mut interrupted: Option<PyErr> = None;
    let result = py.detach(|| {
        let loaded = load(settings)?;
        let mut last_look = Instant::now();
        let look_for_signals = Stoppable(|_| {
            if last_look.elapsed() < SIGNAL_CHECK_EVERY {
                return ControlFlow::Continue(());
            }
            last_look = Instant::now();
            match Python::attach(|py| py.check_signals()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(error) => {
                    interrupted = Some(error);
                    ControlFlow::Break(())
                }
            }
        });
        loaded.evaluate_with_progress(settings, look_for_signals)
    });
    match (result, interrupted) {
        (_, Some(error)) => Err(error),
        (Ok(evaluation), None) => Ok(evaluation),
        (
            Err(EvalError::Act {
                source: ActError::Stopped,
                ..
            }),
            None,
        ) => Err(PyKeyboardInterrupt::new_err("evaluation stopped")),
        (Err(error), None) => Err(eval_error(error)),
    }
}

/// A dict of the episodes' `returns`, `lengths`, `seeds`, `terminated` and `truncated` (NumPy
/// arrays, episode order), the summary `gradless eval` prints, and what was evaluated
/// (`checkpoint`, `env`, `env_backend`).
fn evaluation_dict<'py>(
    py: Python<'py>,
    evaluation: &CheckpointEvaluation,
) -> PyResult<Bound<'py, PyDict>> {
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
    let env_kwargs = PyDict::new(py);
    for (key, value) in evaluation.env_kwargs.kwargs() {
        if let Some(flag) = value.as_bool() {
            env_kwargs.set_item(key, flag)?;
        } else if let Some(int) = value.as_u64() {
            env_kwargs.set_item(key, int)?;
        } else {
            env_kwargs.set_item(key, value.as_f64())?;
        }
    }
    result.set_item("env_kwargs", env_kwargs)?;
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
