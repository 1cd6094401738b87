//! The float tensors of a state dict, by name, read with their shapes checked.

use std::collections::BTreeMap;
use std::path::Path;

use gradless_policy::LayerWeights;
use pytorch_reader::{DType, PytorchReader};

use crate::ImportError;

/// The most bytes of tensors a file may hold (a policy of classic-control size is a few
/// hundred KB; the largest network gradless builds is under 1 GiB).
pub const MAX_TENSOR_BYTES: u64 = 1 << 30;

/// A tensor's shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    /// Extents, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// A state dict's float tensors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tensors {
    /// Every tensor, by name.
    pub by_name: BTreeMap<String, Values>,
}

impl Tensors {
    /// The float tensors of a PyTorch file (`torch.save` zip, legacy or TAR), read without
    /// running any pickle code; sizes are checked before anything is read.
    pub fn read_pytorch(path: &Path) -> Result<Self, ImportError> {
        let file = |reason: String| ImportError::File {
            path: path.to_path_buf(),
            reason,
        };
        let reader = PytorchReader::new(path)
            .map_err(|e| file(format!("not a readable PyTorch file: {e}")))?;
        let total: u64 = reader.tensors().values().map(|t| t.byte_len() as u64).sum();
        if total > MAX_TENSOR_BYTES {
            return Err(file(format!(
                "holds {total} bytes of tensors, more than a policy here may ({MAX_TENSOR_BYTES})"
            )));
        }
        let mut by_name = BTreeMap::new();
        for (name, tensor) in reader.tensors() {
            let bytes = tensor.read().map_err(|e| file(format!("{name}: {e}")))?;
            let data: Vec<f32> = match tensor.dtype() {
                DType::F32 => bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                DType::F64 => bytes
                    .chunks_exact(8)
                    .map(|b| {
                        f64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                    })
                    .collect(),
                // Counters and masks (`num_batches_tracked`, ...) are not weights.
                _ => continue,
            };
            by_name.insert(
                name.clone(),
                Values {
                    shape: tensor.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(Self { by_name })
    }

    /// Whether any tensor's name starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.by_name.keys().any(|k| k.starts_with(prefix))
    }

    /// Refuses a file in `gradless export`'s layout that carries observation statistics
    /// (`obs_norm.mean`, `obs_norm.var`): the policy expects normalised inputs, and a
    /// foreign policy is evaluated on raw ones, so its returns would be silently wrong.
    pub fn refuse_observation_statistics(&self, path: &Path) -> Result<(), ImportError> {
        match self.by_name.keys().find(|k| k.starts_with("obs_norm.")) {
            None => Ok(()),
            Some(name) => Err(ImportError::Key {
                path: path.to_path_buf(),
                key: name.clone(),
                reason: "the policy was trained on normalised observations, which an imported \
                         policy does not apply yet; evaluate the checkpoint it was exported from"
                    .into(),
            }),
        }
    }

    /// The tensor `name`, which must exist.
    pub fn get(&self, path: &Path, name: &str) -> Result<&Values, ImportError> {
        self.by_name.get(name).ok_or_else(|| ImportError::Key {
            path: path.to_path_buf(),
            key: name.to_string(),
            reason: "missing".into(),
        })
    }

    /// The `nn.Linear` layers `prefix0`, `prefix2`, ... (any indices, in numeric order) as
    /// layers; `head`, when given, is one more layer after them (SB3's `action_net`).
    pub fn linear_layers(
        &self,
        path: &Path,
        prefix: &str,
        head: Option<&str>,
    ) -> Result<Vec<LayerWeights>, ImportError> {
        let mut indices: Vec<usize> = self
            .by_name
            .keys()
            .filter_map(|k| {
                k.strip_prefix(prefix)?
                    .strip_suffix(".weight")?
                    .parse()
                    .ok()
            })
            .collect();
        indices.sort_unstable();
        let mut names: Vec<String> = indices.iter().map(|i| format!("{prefix}{i}")).collect();
        names.extend(head.map(str::to_string));
        names.iter().map(|name| self.linear(path, name)).collect()
    }

    /// The layer `name` (`name.weight` `[out, in]`, `name.bias` `[out]`).
    fn linear(&self, path: &Path, name: &str) -> Result<LayerWeights, ImportError> {
        let weight = self.get(path, &format!("{name}.weight"))?;
        let bias = self.get(path, &format!("{name}.bias"))?;
        let [outputs, inputs] = weight.shape[..] else {
            return Err(ImportError::Key {
                path: path.to_path_buf(),
                key: format!("{name}.weight"),
                reason: format!(
                    "shape {:?} is not a Linear layer's [out, in] (a convolution or recurrent policy is not a plain MLP)",
                    weight.shape
                ),
            });
        };
        if bias.shape != [outputs] {
            return Err(ImportError::Key {
                path: path.to_path_buf(),
                key: format!("{name}.bias"),
                reason: format!(
                    "shape {:?} does not fit a weight of {:?}",
                    bias.shape, weight.shape
                ),
            });
        }
        Ok(LayerWeights {
            name: name.to_string(),
            weight: weight.data.clone(),
            bias: bias.data.clone(),
            inputs,
            outputs,
        })
    }
}
