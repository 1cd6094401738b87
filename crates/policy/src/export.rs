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
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, ActError> {
    crate::acting::read_f32(tensor)
}

/// A network's layers read back to the host, weights `[out, in]` as PyTorch keeps them.
fn host_layers(network: &Mlp) -> Result<Vec<LayerWeights>, ActError> {
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

/// The safetensors bytes of `layers` (as `0.*`, `2.*`, ...) with `metadata`.
fn safetensors_bytes(layers: &[LayerWeights], metadata: BTreeMap<String, String>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!(metadata));
    let mut data: Vec<u8> = Vec::new();
    for (k, layer) in layers.iter().enumerate() {
        for (name, shape, tensor) in [
            (
                format!("{}.weight", 2 * k),
                vec![layer.outputs, layer.inputs],
                &layer.weight,
            ),
            (format!("{}.bias", 2 * k), vec![layer.outputs], &layer.bias),
        ] {
            let start = data.len();
            data.extend(tensor.iter().flat_map(|v| v.to_le_bytes()));
            header.insert(
                name,
                json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
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

/// The string metadata of an exported policy.
fn export_metadata(
    architecture: &Architecture,
    env_id: &str,
    global_step: u64,
    log_std: Option<&[f32]>,
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
    if let Some(log_std) = log_std {
        metadata.insert(
            "log_std".to_string(),
            serde_json::to_string(log_std).expect("numbers serialise"),
        );
    }
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
    let (network, log_std) = match &metadata.architecture {
        Architecture::ActorCritic { .. } => {
            let model = checkpoint.load_actor_critic(device.device())?;
            let log_std = model.log_std().map(values).transpose()?;
            (model.actor_network().clone(), log_std)
        }
        Architecture::QNetwork { .. } => (
            checkpoint
                .load_q_network(device.device())?
                .network()
                .clone(),
            None,
        ),
    };
    let tags = export_metadata(
        &metadata.architecture,
        &metadata.env_id,
        metadata.global_step,
        log_std.as_deref(),
    );
    write(out, &safetensors_bytes(&host_layers(&network)?, tags))
}

/// Writes a policy read from another tool's file to `out` in the same layout, for the env
/// it is evaluated on.
pub fn export_foreign_safetensors(
    network: &ForeignNetwork,
    env_id: &str,
    global_step: u64,
    out: &Path,
) -> Result<(), ExportError> {
    let log_std = match &network.head {
        ForeignHead::Gaussian { log_std } => Some(log_std.as_slice()),
        _ => None,
    };
    let tags = export_metadata(&network.architecture(), env_id, global_step, log_std);
    write(out, &safetensors_bytes(&network.layers, tags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acting::observation_tensor;
    use crate::network::Activation;
    use burn::prelude::Device;
    use gradless_envs::EnvRng;

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
        let bytes = safetensors_bytes(&host_layers(&mlp).unwrap(), metadata);
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
        let data = &bytes[8 + header_len..];
        assert_eq!(header["__metadata__"]["activation"], "tanh");
        let tensor = |name: &str| -> (Vec<usize>, Vec<f32>) {
            let entry = &header[name];
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
