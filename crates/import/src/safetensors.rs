//! `gradless export`'s safetensors files: sequential keys and string metadata (activation,
//! policy kind, env).

use std::path::{Path, PathBuf};

use gradless_envs::MakeArgs;
use gradless_policy::{
    Activation, ForeignHead, ForeignNetwork, ObservationNormalizer, RunningMoments,
};

use crate::tensors::{MAX_TENSOR_BYTES, Tensors, Values};
use crate::{ForeignPolicy, Format, ImportError, activation_named};

/// The largest JSON header read.
const MAX_HEADER_BYTES: u64 = 16 << 20;

fn file_error(path: &Path, reason: impl Into<String>) -> ImportError {
    ImportError::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The tensors and metadata of a safetensors file (F32 tensors only).
///
/// Long because the header's fields are read in turn, each bounded and checked against the
/// file's size before anything is allocated.
fn parse(
    path: &Path,
    bytes: &[u8],
) -> Result<(Tensors, serde_json::Map<String, serde_json::Value>), ImportError> {
    let bad = |reason: String| file_error(path, format!("not a safetensors file: {reason}"));
    let header_len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("eight bytes")))
        .ok_or_else(|| bad("shorter than its 8-byte header length".into()))?;
    if header_len > MAX_HEADER_BYTES || 8 + header_len > bytes.len() as u64 {
        return Err(bad(format!(
            "a header of {header_len} bytes in a file of {}",
            bytes.len()
        )));
    }
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + header_len as usize])
            .map_err(|e| bad(e.to_string()))?;
    let data = &bytes[8 + header_len as usize..];
    let mut tensors = Tensors::default();
    let mut metadata = serde_json::Map::new();
    let mut ranges: Vec<(usize, usize, String)> = Vec::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            if let serde_json::Value::Object(map) = entry {
                metadata = map;
            }
            continue;
        }
        let key = |reason: String| ImportError::Key {
            path: path.to_path_buf(),
            key: name.clone(),
            reason,
        };
        if entry.get("dtype").and_then(|d| d.as_str()) != Some("F32") {
            return Err(key(format!(
                "dtype {}: only F32 tensors are read",
                entry["dtype"]
            )));
        }
        let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone())
            .map_err(|e| key(format!("shape: {e}")))?;
        let [start, end]: [usize; 2] = serde_json::from_value(entry["data_offsets"].clone())
            .map_err(|e| key(format!("data_offsets: {e}")))?;
        let elements = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| key(format!("shape {shape:?} overflows")))?;
        if end < start || end > data.len() || elements.checked_mul(4) != Some(end - start) {
            return Err(key(format!(
                "data_offsets [{start}, {end}] do not hold a {shape:?} F32 tensor in {} bytes of data",
                data.len()
            )));
        }
        ranges.push((start, end, name.clone()));
        let values = data[start..end]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.by_name.insert(
            name,
            Values {
                shape,
                data: values,
            },
        );
    }
    // As the format requires: the tensors tile the data exactly, no byte shared or left over.
    ranges.sort();
    let mut covered = 0;
    for (start, end, name) in &ranges {
        if *start != covered {
            return Err(ImportError::Key {
                path: path.to_path_buf(),
                key: name.clone(),
                reason: format!(
                    "data_offsets start at {start}, where the data before ends at {covered} (tensors may neither overlap nor leave gaps)"
                ),
            });
        }
        covered = *end;
    }
    if covered != data.len() {
        return Err(bad(format!(
            "{} bytes after the last tensor's data",
            data.len() - covered
        )));
    }
    Ok((tensors, metadata))
}

/// Reads a `gradless export` safetensors file.
pub fn read(path: &Path, activation: Option<Activation>) -> Result<ForeignPolicy, ImportError> {
    let bytes = gradless_files::read_bounded(path, MAX_TENSOR_BYTES + MAX_HEADER_BYTES + 8)
        .map_err(|e| file_error(path, e.to_string()))?;
    let (tensors, metadata) = parse(path, &bytes)?;
    let text = |key: &str| {
        metadata
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let normalizer = observation_statistics(path, &tensors, &text)?;
    let named = match text("activation") {
        Some(name) => Some(activation_named(&name).ok_or_else(|| ImportError::Key {
            path: path.to_path_buf(),
            key: "__metadata__.activation".into(),
            reason: format!("`{name}`: only tanh and relu are covered"),
        })?),
        None => None,
    };
    // The log-std is metadata in `gradless export`'s files, a tensor in others'.
    let log_std = match (text("log_std"), tensors.by_name.get("log_std")) {
        (Some(json), _) => {
            Some(
                serde_json::from_str::<Vec<f32>>(&json).map_err(|e| ImportError::Key {
                    path: path.to_path_buf(),
                    key: "__metadata__.log_std".into(),
                    reason: format!("not a list of numbers: {e}"),
                })?,
            )
        }
        (None, Some(tensor)) => Some(tensor.data.clone()),
        (None, None) => None,
    };
    let head = match (text("policy").as_deref(), log_std) {
        (Some("q_network"), _) => ForeignHead::QValues,
        (Some("squashed_gaussian_actor"), _) => ForeignHead::SoftActor,
        (Some("gaussian_actor_mean") | None, Some(log_std)) => ForeignHead::Gaussian { log_std },
        (Some("categorical_actor") | None, None) => ForeignHead::Categorical,
        (Some("gaussian_actor_mean"), None) => {
            return Err(ImportError::Key {
                path: path.to_path_buf(),
                key: "__metadata__.log_std".into(),
                reason: "missing for a Gaussian policy".into(),
            });
        }
        (Some(other), _) => {
            return Err(ImportError::Key {
                path: path.to_path_buf(),
                key: "__metadata__.policy".into(),
                reason: format!(
                    "`{other}` (expected categorical_actor, gaussian_actor_mean, q_network or squashed_gaussian_actor)"
                ),
            });
        }
    };
    Ok(ForeignPolicy {
        path: PathBuf::new(),
        format: Format::Export,
        kind: text("policy").unwrap_or_else(|| "sequential network".into()),
        network: ForeignNetwork {
            layers: tensors.linear_layers(path, "", None)?,
            activation: activation.or(named).unwrap_or(Activation::Tanh),
            head,
            critic: Vec::new(),
        },
        normalizer,
        step: text("global_step").and_then(|s| s.parse().ok()),
        env: text("env_id").map(MakeArgs::registered),
    })
}

/// The observation statistics an export carries (tensors `obs_norm.mean` and
/// `obs_norm.var`, metadata `obs_norm_clip` and `obs_norm_epsilon`), frozen as written.
fn observation_statistics(
    path: &Path,
    tensors: &Tensors,
    text: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ObservationNormalizer>, ImportError> {
    let key = |key: &str, reason: String| ImportError::Key {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason,
    };
    let (mean, var) = match (
        tensors.by_name.get("obs_norm.mean"),
        tensors.by_name.get("obs_norm.var"),
    ) {
        (Some(mean), Some(var)) => (mean, var),
        (None, None) => return Ok(None),
        (None, Some(_)) => return Err(key("obs_norm.mean", "missing beside obs_norm.var".into())),
        (Some(_), None) => return Err(key("obs_norm.var", "missing beside obs_norm.mean".into())),
    };
    let number = |name: &str| -> Result<f64, ImportError> {
        let shown = format!("__metadata__.{name}");
        let value = text(name).ok_or_else(|| key(&shown, "missing beside obs_norm.*".into()))?;
        value
            .parse()
            .map_err(|_| key(&shown, format!("`{value}` is not a number")))
    };
    let widen = |values: &[f32]| values.iter().map(|&v| f64::from(v)).collect();
    Ok(Some(ObservationNormalizer {
        moments: RunningMoments {
            mean: widen(&mean.data),
            var: widen(&var.data),
            // Frozen statistics: the count only matters to updates, which never come.
            count: 1.0,
        },
        clip: number("obs_norm_clip")?,
        epsilon: number("obs_norm_epsilon")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in the export layout: a 4 -> 2 layer, and `extra` tensors of four values.
    fn exported(extra: &[&str]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        header.insert(
            "__metadata__".into(),
            serde_json::json!({"policy": "categorical_actor", "activation": "tanh",
                "obs_norm_clip": "10", "obs_norm_epsilon": "1e-8"}),
        );
        let mut tensors = vec![("0.weight", vec![2, 4]), ("0.bias", vec![2])];
        tensors.extend(extra.iter().map(|&name| (name, vec![4])));
        let mut data = Vec::new();
        for (name, shape) in tensors {
            let count: usize = shape.iter().product();
            let start = data.len();
            data.extend((0..count).flat_map(|k| (k as f32 * 0.1).to_le_bytes()));
            header.insert(
                name.into(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let header = serde_json::to_vec(&header).unwrap();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header);
        bytes.extend(data);
        bytes
    }

    /// A policy exported with observation statistics reads back with them; half of them is
    /// refused, naming the tensor.
    #[test]
    fn exports_with_observation_statistics_read_back_with_them() {
        let dir = std::env::temp_dir().join(format!("gradless-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("plain.safetensors");
        std::fs::write(&plain, exported(&[])).unwrap();
        let policy = read(&plain, None).unwrap();
        assert_eq!(policy.network.layers.len(), 1);
        let normalised = dir.join("normalised.safetensors");
        std::fs::write(&normalised, exported(&["obs_norm.mean", "obs_norm.var"])).unwrap();
        let normalizer = read(&normalised, None).unwrap().normalizer.unwrap();
        assert_eq!(
            normalizer.moments.mean,
            [0.0, 0.1f32 as f64, 0.2f32 as f64, 0.3f32 as f64]
        );
        assert_eq!((normalizer.clip, normalizer.epsilon), (10.0, 1e-8));
        std::fs::write(&normalised, exported(&["obs_norm.mean"])).unwrap();
        let err = read(&normalised, None).unwrap_err().to_string();
        assert!(
            err.contains("normalised.safetensors") && err.contains("obs_norm.var"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Tensors that share bytes, and bytes after the last tensor, are refused by name.
    #[test]
    fn overlapping_and_trailing_data_are_refused() {
        let path = Path::new("policy.safetensors");
        let mut trailing = exported(&[]);
        trailing.extend([0u8; 4]);
        let err = parse(path, &trailing).unwrap_err().to_string();
        assert!(err.contains("4 bytes after"), "{err}");

        // The bias (offsets [32, 40]) moved back onto the weight's last bytes.
        let mut bytes = exported(&[]);
        let at = bytes
            .windows(7)
            .position(|w| w == b"[32,40]")
            .expect("the bias's offsets are in the header");
        bytes[at..at + 7].copy_from_slice(b"[24,32]");
        bytes.truncate(bytes.len() - 8);
        let err = parse(path, &bytes).unwrap_err().to_string();
        assert!(err.contains("0.bias") || err.contains("0.weight"), "{err}");
    }
}
