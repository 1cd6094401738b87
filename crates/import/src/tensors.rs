//! The float tensors of a state dict, by name, read with their shapes checked.

use std::collections::BTreeMap;
use std::path::Path;

use gradless_policy::LayerWeights;
use pytorch_reader::{DType, PytorchReader};

use crate::ImportError;

/// The most bytes of tensors a file may hold: a classic-control policy is a few hundred KB
/// (SB3's and CleanRL's default networks of 64 or 256 units), and this admits one of 16M
/// parameters, two hidden layers of 2048 units many times over.
pub const MAX_TENSOR_BYTES: u64 = 64 << 20;

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
        let copy = crate::torch_zip::readable_copy(path, MAX_TENSOR_BYTES)?;
        let read_from = copy
            .as_ref()
            .map_or(path, |(_, by_descriptor)| by_descriptor);
        let reader = PytorchReader::new(read_from)
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
        // Every tensor numbered under the prefix is a layer's weight or bias, numbered as
        // PyTorch numbers them: a stray one (`00.weight` beside `0.weight`, a norm's
        // statistics) is refused, never left out or read twice.
        let mut indices: Vec<usize> = Vec::new();
        for key in self.by_name.keys() {
            let Some((number, field)) = key
                .strip_prefix(prefix)
                .and_then(|rest| rest.split_once('.'))
                .filter(|(number, _)| {
                    !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
                })
            else {
                continue;
            };
            let index: Option<usize> = number.parse().ok();
            let canonical = index.is_some_and(|i| i.to_string() == number);
            if !canonical || !matches!(field, "weight" | "bias") {
                return Err(ImportError::Key {
                    path: path.to_path_buf(),
                    key: key.clone(),
                    reason: format!(
                        "a stray tensor: the layers under `{prefix}` are `{prefix}N.weight` and `{prefix}N.bias`"
                    ),
                });
            }
            if field == "weight" {
                indices.extend(index);
            }
        }
        indices.sort_unstable();
        let mut names: Vec<String> = indices.iter().map(|i| format!("{prefix}{i}")).collect();
        names.extend(head.map(str::to_string));
        names.iter().map(|name| self.linear(path, name)).collect()
    }

    /// The layer `name` (`name.weight` `[out, in]`, `name.bias` `[out]`).
    pub(crate) fn linear(&self, path: &Path, name: &str) -> Result<LayerWeights, ImportError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn values(shape: &[usize]) -> Values {
        Values {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    fn layers(names: &[(&str, &[usize])]) -> Result<Vec<LayerWeights>, ImportError> {
        let tensors = Tensors {
            by_name: names
                .iter()
                .map(|(name, shape)| (name.to_string(), values(shape)))
                .collect(),
        };
        tensors.linear_layers(Path::new("policy.pt"), "net.", None)
    }

    #[test]
    fn layers_are_read_in_numeric_order_and_stray_tensors_refused() {
        let mut names: Vec<(&str, &[usize])> = vec![
            ("net.0.weight", &[8, 4]),
            ("net.0.bias", &[8]),
            ("net.10.weight", &[2, 8]),
            ("net.10.bias", &[2]),
            ("log_std", &[2]),
        ];
        let read = layers(&names).unwrap();
        assert_eq!(
            read.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["net.0", "net.10"]
        );
        names.push(("net.00.weight", &[8, 4]));
        let err = layers(&names).unwrap_err().to_string();
        assert!(
            err.contains("net.00.weight") && err.contains("stray"),
            "{err}"
        );
        names.pop();
        names.push(("net.0.running_mean", &[8]));
        let err = layers(&names).unwrap_err().to_string();
        assert!(err.contains("net.0.running_mean"), "{err}");
    }
}
