//! Stable-Baselines3's `vecnormalize.pkl` (a pickled `VecNormalize`, its venv removed): the
//! observation statistics it normalises with, read from the pickle as data (see
//! [`crate::pickle`]). Only what acting needs is decoded, by class name: the `VecNormalize`
//! state, its `RunningMeanStd` and the NumPy arrays, dtypes and scalars inside; the rest of
//! the file (its spaces, their random generators) is left as inert pieces and never read.

use std::path::Path;

use gradless_policy::{ObservationNormalizer, RunningMoments};

use crate::ImportError;
use crate::pickle::{self, Value};

/// The largest `vecnormalize.pkl` read (SB3's are a few KB for these envs).
const MAX_PICKLE_BYTES: u64 = 16 << 20;

const VEC_NORMALIZE: &str = "stable_baselines3.common.vec_env.vec_normalize.VecNormalize";
const RUNNING_MEAN_STD: &str = "stable_baselines3.common.running_mean_std.RunningMeanStd";
const RECONSTRUCT: [&str; 2] = [
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray._reconstruct",
];
const SCALAR: [&str; 2] = [
    "numpy._core.multiarray.scalar",
    "numpy.core.multiarray.scalar",
];
const DTYPE: &str = "numpy.dtype";

/// The observation statistics of the `VecNormalize` pickled in `path`, frozen as gradless
/// applies them; `None` when it does not normalise observations (`norm_obs` off).
pub fn read(path: &Path) -> Result<Option<ObservationNormalizer>, ImportError> {
    let bytes =
        gradless_files::read_bounded(path, MAX_PICKLE_BYTES).map_err(|e| ImportError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let file = |reason: String| ImportError::File {
        path: path.to_path_buf(),
        reason,
    };
    let key = |key: &str, reason: String| ImportError::Key {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason,
    };
    let root = pickle::read(&bytes).map_err(|e| file(format!("not a readable pickle: {e}")))?;
    let state = instance_state(&root, VEC_NORMALIZE)
        .map_err(|e| file(format!("not a pickled VecNormalize: {e}")))?;
    let field = |name: &str| {
        state
            .get(name)
            .ok_or_else(|| key(name, "missing from the VecNormalize's state".into()))
    };
    match field("norm_obs")? {
        Value::Bool(true) => {}
        Value::Bool(false) => return Ok(None),
        other => return Err(key("norm_obs", format!("{}, not a bool", other.describe()))),
    }
    if let Some(Value::List(keys)) = state.get("norm_obs_keys")
        && !keys.borrow().is_empty()
    {
        return Err(key(
            "norm_obs_keys",
            "statistics of dict observations; these envs' observations are arrays".into(),
        ));
    }
    let rms = field("obs_rms")?;
    let rms = instance_state(&rms, RUNNING_MEAN_STD).map_err(|e| key("obs_rms", e))?;
    let array = |name: &str| -> Result<Vec<f64>, ImportError> {
        let value = rms
            .get(name)
            .ok_or_else(|| key(&format!("obs_rms.{name}"), "missing".into()))?;
        float_array(&value).map_err(|e| key(&format!("obs_rms.{name}"), e))
    };
    let number = |owner: &Value, name: &str, shown: &str| -> Result<f64, ImportError> {
        let value = owner
            .get(name)
            .ok_or_else(|| key(shown, "missing".into()))?;
        float_scalar(&value).map_err(|e| key(shown, e))
    };
    let normalizer = ObservationNormalizer {
        moments: RunningMoments {
            mean: array("mean")?,
            var: array("var")?,
            count: number(&rms, "count", "obs_rms.count")?,
        },
        clip: number(&state, "clip_obs", "clip_obs")?,
        epsilon: number(&state, "epsilon", "epsilon")?,
    };
    normalizer
        .check(normalizer.moments.mean.len())
        .map_err(|reason| file(format!("observation statistics: {reason}")))?;
    Ok(Some(normalizer))
}

/// The state dict of an instance of `class` (made by `NEWOBJ` or `REDUCE`, given its state
/// by `BUILD`).
fn instance_state(value: &Value, class: &str) -> Result<Value, String> {
    let Value::Object(object) = value else {
        return Err(format!("{} where a {class} was expected", value.describe()));
    };
    let object = object.borrow();
    if object.class != class {
        return Err(format!("a {} where a {class} was expected", object.class));
    }
    match &object.state {
        Some(state @ Value::Dict(_)) => Ok(state.clone()),
        _ => Err(format!("a {class} without its state dict")),
    }
}

/// A number: a Python float or int, or a NumPy float64 or float32 scalar.
fn float_scalar(value: &Value) -> Result<f64, String> {
    match value {
        Value::Float(v) => Ok(*v),
        Value::Int(v) => Ok(*v as f64),
        Value::Object(object) => {
            let object = object.borrow();
            match (&object.class, &object.args[..]) {
                (class, [dtype, Value::Bytes(bytes)]) if SCALAR.contains(&class.as_str()) => {
                    let values = floats(bytes, &dtype_code(dtype)?)?;
                    match values[..] {
                        [v] => Ok(v),
                        _ => Err(format!("a scalar of {} values", values.len())),
                    }
                }
                (class, _) => Err(format!("a {class} object, not a number")),
            }
        }
        other => Err(format!("{}, not a number", other.describe())),
    }
}

/// A NumPy array of float64 or float32 values, flattened.
fn float_array(value: &Value) -> Result<Vec<f64>, String> {
    let Value::Object(object) = value else {
        return Err(format!("{}, not a NumPy array", value.describe()));
    };
    let object = object.borrow();
    if !RECONSTRUCT.contains(&object.class.as_str()) {
        return Err(format!("a {} object, not a NumPy array", object.class));
    }
    // ndarray.__setstate__((version, shape, dtype, is_fortran, raw bytes))
    let Some(Value::Tuple(state)) = &object.state else {
        return Err("a NumPy array without its state".into());
    };
    let [
        Value::Int(_),
        Value::Tuple(shape),
        dtype,
        Value::Bool(_),
        Value::Bytes(raw),
    ] = &state[..]
    else {
        return Err("a NumPy array state of an unknown layout".into());
    };
    let mut size: usize = 1;
    for extent in shape.iter() {
        let Value::Int(extent) = extent else {
            return Err("a NumPy array shape of non-integers".into());
        };
        size = usize::try_from(*extent)
            .ok()
            .and_then(|e| size.checked_mul(e))
            .ok_or("a NumPy array shape past memory")?;
    }
    let values = floats(raw, &dtype_code(dtype)?)?;
    if values.len() != size {
        return Err(format!(
            "a NumPy array of shape {} holding {} values",
            shape.len(),
            values.len()
        ));
    }
    Ok(values)
}

/// A NumPy dtype's type code with its byte order (`<f8`).
fn dtype_code(value: &Value) -> Result<String, String> {
    let Value::Object(object) = value else {
        return Err(format!("{}, not a NumPy dtype", value.describe()));
    };
    let object = object.borrow();
    let Some(Value::Str(code)) = object.args.first().filter(|_| object.class == DTYPE) else {
        return Err(format!("a {} object, not a NumPy dtype", object.class));
    };
    // dtype.__setstate__((version, byte order, ...))
    let order = match &object.state {
        Some(Value::Tuple(state)) => match state.get(1) {
            Some(Value::Str(order)) => order.to_string(),
            _ => return Err("a NumPy dtype state without a byte order".into()),
        },
        _ => "=".into(),
    };
    Ok(format!("{order}{code}"))
}

/// Raw little-endian (or native, on a little-endian machine) float64 or float32 values.
fn floats(raw: &[u8], code: &str) -> Result<Vec<f64>, String> {
    // Split by `get`: a malformed file's code may be empty or start with any character.
    let (order, kind) = (code.get(..1).unwrap_or(""), code.get(1..).unwrap_or(""));
    let little = order == "<" || (matches!(order, "=" | "|") && cfg!(target_endian = "little"));
    let width = match kind {
        "f8" if little => 8,
        "f4" if little => 4,
        _ => {
            return Err(format!(
                "NumPy dtype {code} (little-endian float64 and float32 are read)"
            ));
        }
    };
    if !raw.len().is_multiple_of(width) {
        return Err(format!("{} bytes of {code} values", raw.len()));
    }
    Ok(raw
        .chunks_exact(width)
        .map(|b| match b.len() {
            8 => f64::from_le_bytes(b.try_into().expect("8 bytes")),
            _ => f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn zoo_statistics() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/zoo/ppo/Acrobot-v1_1/Acrobot-v1/vecnormalize.pkl")
    }

    /// RL Zoo's own file: the statistics of Acrobot's six observation values, RL Zoo's
    /// clip and SB3's epsilon.
    #[test]
    fn rl_zoos_statistics_are_read() {
        let normalizer = read(&zoo_statistics()).unwrap().unwrap();
        assert_eq!(normalizer.moments.mean.len(), 6);
        assert_eq!(normalizer.moments.var.len(), 6);
        assert!(normalizer.moments.count > 1000.0, "{normalizer:?}");
        assert_eq!((normalizer.clip, normalizer.epsilon), (10.0, 1e-8));
        // cos and sin of the angles: means inside [-1, 1], variances positive.
        assert!(normalizer.moments.mean[..4].iter().all(|m| m.abs() <= 1.0));
        assert!(normalizer.moments.var.iter().all(|&v| v > 0.0));
    }

    /// Anything but a VecNormalize is refused by name, and nothing in the file is run.
    #[test]
    fn other_pickles_are_refused_naming_what_they_hold() {
        let dir = std::env::temp_dir().join(format!("gradless-vecnorm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vecnormalize.pkl");
        for (bytes, words) in [
            // os.system("touch pwned"): a call kept as pieces, never made.
            (
                &b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x0btouch pwned\x85R."[..],
                "a os.system where a stable_baselines3",
            ),
            (b"\x80\x04}.", "a dict where a"),
            (b"not a pickle", "not a readable pickle"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let error = read(&path).unwrap_err().to_string();
            assert!(
                error.contains("vecnormalize.pkl") && error.contains(words),
                "{error}"
            );
        }
        assert!(!Path::new("pwned").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
