//! Exporting a policy network as a safetensors file that PyTorch loads straight into
//! `torch.nn.Sequential(Linear, Act, Linear, Act, ..., Linear)`: keys `0.weight`
//! (`[out, in]`, PyTorch's layout; burn keeps `[in, out]`), `0.bias`, `2.weight`, ...
//! The safetensors layout is small enough to write directly: an 8-byte little-endian header
//! length, a JSON header (dtype, shape, byte range per tensor, and string metadata), then the
//! raw little-endian data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::Tensor;
use serde_json::json;
use thiserror::Error;

use crate::acting::ActError;
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::network::{ActionHead, Architecture, Mlp};
use crate::normalization::ObservationNormalizer;
use crate::soft_actor_critic::ActionBounds;
use crate::weights::{ForeignHead, ForeignNetwork, LayerWeights};
use gradless_device::InferenceDevice;

/// Why an export failed.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The checkpoint could not be loaded.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The weights could not be read from the device.
    #[error("{0}")]
    Device(#[from] ActError),
    /// The file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The output file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A network the layout does not describe.
    #[error("{path}: {reason}")]
    Uncovered {
        /// The output file.
        path: PathBuf,
        /// What is not covered.
        reason: String,
    },
}

/// What the exported network is.
fn policy_kind(architecture: &Architecture) -> &'static str {
    match architecture {
        Architecture::ActorCritic {
            head: ActionHead::Categorical { .. },
            ..
        } => "categorical_actor",
        Architecture::ActorCritic { .. } => "gaussian_actor_mean",
        Architecture::QNetwork { .. } => "q_network",
        Architecture::SoftActorCritic { .. } => "squashed_gaussian_actor",
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, ActError> {
    crate::acting::read_f32(tensor)
}

/// A network's layers read back to the host, weights `[out, in]` as PyTorch keeps them.
pub(crate) fn host_layers(network: &Mlp) -> Result<Vec<LayerWeights>, ActError> {
    network
        .layers()
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let [inputs, outputs] = layer.weight.val().dims();
            // [in, out] -> [out, in].
            let weight = values(layer.weight.val().transpose())?;
            let bias = match &layer.bias {
                Some(bias) => values(bias.val())?,
                None => vec![0.0; outputs],
            };
            Ok(LayerWeights {
                name: (2 * k).to_string(),
                weight,
                bias,
                inputs,
                outputs,
            })
        })
        .collect()
}

/// A tensor written beside the layers: its name, shape and values.
type NamedTensor<'a> = (String, Vec<usize>, &'a [f32]);

/// The observation statistics an exported policy's inputs are normalised with, as tensors
/// `obs_norm.mean` and `obs_norm.var` (float32) and metadata `obs_norm_clip`,
/// `obs_norm_epsilon`.
fn normalization_tensors(
    normalizer: Option<&ObservationNormalizer>,
    metadata: &mut BTreeMap<String, String>,
) -> Vec<(String, Vec<f32>)> {
    let Some(normalizer) = normalizer else {
        return Vec::new();
    };
    metadata.insert("obs_norm_clip".into(), normalizer.clip.to_string());
    metadata.insert("obs_norm_epsilon".into(), normalizer.epsilon.to_string());
    let f32s = |values: &[f64]| values.iter().map(|&v| v as f32).collect();
    vec![
        ("obs_norm.mean".into(), f32s(&normalizer.moments.mean)),
        ("obs_norm.var".into(), f32s(&normalizer.moments.var)),
    ]
}

/// The safetensors bytes of `layers` (as `0.*`, `2.*`, ...) and `extra` tensors with
/// `metadata`.
fn safetensors_bytes(
    layers: &[LayerWeights],
    extra: &[(String, Vec<f32>)],
    metadata: BTreeMap<String, String>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!(metadata));
    let mut data: Vec<u8> = Vec::new();
    let layer_tensors = layers.iter().enumerate().flat_map(|(k, layer)| {
        [
            (
                format!("{}.weight", 2 * k),
                vec![layer.outputs, layer.inputs],
                layer.weight.as_slice(),
            ),
            (
                format!("{}.bias", 2 * k),
                vec![layer.outputs],
                layer.bias.as_slice(),
            ),
        ]
    });
    let extra_tensors = extra
        .iter()
        .map(|(name, values)| (name.clone(), vec![values.len()], values.as_slice()));
    let tensors: Vec<NamedTensor<'_>> = layer_tensors.chain(extra_tensors).collect();
    for (name, shape, tensor) in tensors {
        let start = data.len();
        data.extend(tensor.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(
            name,
            json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut header = serde_json::to_vec(&header).expect("header serialises");
    // The data starts 8-byte aligned, as the format recommends.
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.extend(data);
    bytes
}

/// The string metadata of an exported policy. `action_transform` says how greedy actions
/// are rebuilt: `none` (the argmax or the mean as it is) or `tanh_scale` (the first
/// `action_dim` outputs `m`, then `tanh(m) * action_scale + action_bias`).
fn export_metadata(
    architecture: &Architecture,
    env_id: &str,
    global_step: u64,
    log_std: Option<&[f32]>,
    bounds: Option<&ActionBounds>,
) -> BTreeMap<String, String> {
    let (observation_dim, outputs) = architecture.input_output();
    let mut metadata = BTreeMap::from([
        (
            "activation".to_string(),
            serde_json::to_value(architecture.activation())
                .expect("activation serialises")
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        ("policy".to_string(), policy_kind(architecture).to_string()),
        ("observation_dim".to_string(), observation_dim.to_string()),
        ("action_dim".to_string(), outputs.to_string()),
        ("env_id".to_string(), env_id.to_string()),
        ("global_step".to_string(), global_step.to_string()),
    ]);
    let list = |values: &[f32]| serde_json::to_string(values).expect("numbers serialise");
    if let Some(log_std) = log_std {
        metadata.insert("log_std".to_string(), list(log_std));
    }
    let transform = match bounds {
        None => "none",
        Some(bounds) => {
            metadata.insert("action_scale".to_string(), list(&bounds.scale));
            metadata.insert("action_bias".to_string(), list(&bounds.bias));
            "tanh_scale"
        }
    };
    metadata.insert("action_transform".to_string(), transform.to_string());
    metadata
}

fn write(out: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    gradless_files::write_atomically(out, bytes).map_err(|source| ExportError::Io {
        path: out.to_path_buf(),
        source,
    })
}

/// Writes the checkpoint's policy (the actor for PPO, the Q-network for DQN) to `out` as
/// safetensors, through a temporary file and a rename.
pub fn export_safetensors(
    checkpoint: &Checkpoint,
    device: &InferenceDevice,
    out: &Path,
) -> Result<(), ExportError> {
    let metadata = checkpoint.metadata();
    let (network, log_std, bounds) = match &metadata.architecture {
        Architecture::ActorCritic { .. } => {
            let model = checkpoint.load_actor_critic(device.device())?;
            let log_std = model.log_std().map(values).transpose()?;
            (model.actor_network().clone(), log_std, None)
        }
        Architecture::QNetwork { .. } => (
            checkpoint
                .load_q_network(device.device())?
                .network()
                .clone(),
            None,
            None,
        ),
        Architecture::SoftActorCritic { .. } => {
            let actor = checkpoint.load_soft_actor_critic(device.device())?.actor;
            (actor.network().clone(), None, Some(actor.bounds().clone()))
        }
    };
    let mut tags = export_metadata(
        &metadata.architecture,
        &metadata.env_id,
        metadata.global_step,
        log_std.as_deref(),
        bounds.as_ref(),
    );
    let extra = normalization_tensors(metadata.observation_normalization.as_ref(), &mut tags);
    write(
        out,
        &safetensors_bytes(&host_layers(&network)?, &extra, tags),
    )
}

/// Writes a policy read from another tool's file (with the observation statistics it
/// normalises its inputs with) to `out` in the same layout, for the env it is evaluated on.
pub fn export_foreign_safetensors(
    network: &ForeignNetwork,
    normalizer: Option<&ObservationNormalizer>,
    env_id: &str,
    global_step: u64,
    out: &Path,
) -> Result<(), ExportError> {
    if let Some(why) = network.head.unwritable() {
        return Err(ExportError::Uncovered {
            path: out.to_path_buf(),
            reason: format!("{why}; exporting it is not covered"),
        });
    }
    let log_std = match &network.head {
        ForeignHead::Gaussian { log_std } => Some(log_std.as_slice()),
        _ => None,
    };
    let mut tags = export_metadata(&network.architecture(), env_id, global_step, log_std, None);
    let extra = normalization_tensors(normalizer, &mut tags);
    write(out, &safetensors_bytes(&network.layers, &extra, tags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acting::observation_tensor;
    use crate::network::Activation;
    use burn::prelude::Device;
    use gradless_envs::EnvRng;

    /// A written file's header and a reader of its tensors (shape, values).
    fn parse(bytes: &[u8]) -> (serde_json::Value, impl Fn(&str) -> (Vec<usize>, Vec<f32>)) {
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
        let data = bytes[8 + header_len..].to_vec();
        let entries = header.clone();
        let tensor = move |name: &str| -> (Vec<usize>, Vec<f32>) {
            let entry = &entries[name];
            assert_eq!(entry["dtype"], "F32");
            let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone()).unwrap();
            let [start, end]: [usize; 2] =
                serde_json::from_value(entry["data_offsets"].clone()).unwrap();
            let values = data[start..end]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (shape, values)
        };
        (header, tensor)
    }

    /// Observation statistics travel as float32 tensors with their clip and epsilon, and a
    /// squashed actor says how its greedy actions are rebuilt.
    #[test]
    fn statistics_and_action_transform_are_written() {
        let mut normalizer = ObservationNormalizer::new(3, 5.0, 1e-8);
        normalizer.moments.update(&[1.0, 2.0, 3.0, 3.0, 2.0, 1.0]);
        let architecture = Architecture::SoftActorCritic {
            observation_dim: 3,
            hidden: vec![4],
            activation: crate::Activation::Relu,
            action_dim: 1,
        };
        let bounds = ActionBounds {
            scale: vec![2.0],
            bias: vec![0.0],
            sb3: None,
        };
        let mut metadata = export_metadata(&architecture, "Pendulum-v1", 7, None, Some(&bounds));
        let extra = normalization_tensors(Some(&normalizer), &mut metadata);
        let bytes = safetensors_bytes(&[], &extra, metadata);
        let (header, tensor) = parse(&bytes);
        let tags = &header["__metadata__"];
        assert_eq!(tags["policy"], "squashed_gaussian_actor");
        assert_eq!(tags["action_transform"], "tanh_scale");
        assert_eq!(tags["action_scale"], "[2.0]");
        assert_eq!(tags["obs_norm_clip"], "5");
        assert_eq!(tags["obs_norm_epsilon"], "0.00000001");
        let (shape, mean) = tensor("obs_norm.mean");
        assert_eq!(shape, vec![3]);
        assert!(mean.iter().all(|m| (m - 2.0).abs() < 1e-3), "{mean:?}");
        let (shape, var) = tensor("obs_norm.var");
        assert_eq!(shape, vec![3]);
        assert!(
            (var[0] - 1.0).abs() < 1e-3 && var[1].abs() < 1e-3,
            "{var:?}"
        );
        let plain = export_metadata(&architecture, "Pendulum-v1", 7, None, None);
        assert_eq!(plain["action_transform"], "none");
    }

    /// Parses the file back, runs the exported layers on the host as PyTorch would
    /// (`x @ W.T + b`, tanh between) and compares with the network's own output.
    #[test]
    fn exported_layers_reproduce_the_network() {
        let device = InferenceDevice::new(&Device::flex());
        let mlp = Mlp::new(
            4,
            &[8, 6],
            2,
            Activation::Tanh,
            1.0,
            &mut EnvRng::from_seed(1),
            device.device(),
        );
        let metadata = BTreeMap::from([("activation".to_string(), "tanh".to_string())]);
        let bytes = safetensors_bytes(&host_layers(&mlp).unwrap(), &[], metadata);
        let (header, tensor) = parse(&bytes);
        assert_eq!(header["__metadata__"]["activation"], "tanh");
        assert_eq!(tensor("0.weight").0, vec![8, 4]);
        assert_eq!(tensor("4.weight").0, vec![2, 6]);
        let input = [0.1f32, -0.2, 0.3, 0.05];
        let mut x: Vec<f32> = input.to_vec();
        for (k, name) in ["0", "2", "4"].iter().enumerate() {
            let (shape, w) = tensor(&format!("{name}.weight"));
            let (_, b) = tensor(&format!("{name}.bias"));
            let (outputs, inputs) = (shape[0], shape[1]);
            x = (0..outputs)
                .map(|o| {
                    let y = (0..inputs).map(|i| w[o * inputs + i] * x[i]).sum::<f32>() + b[o];
                    if k < 2 { y.tanh() } else { y }
                })
                .collect();
        }
        let expected =
            crate::acting::read_f32(mlp.forward(observation_tensor(&input, 4, device.device())))
                .unwrap();
        for (a, b) in x.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{x:?} vs {expected:?}");
        }
    }
}
