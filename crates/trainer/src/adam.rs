//! Adam, written out here rather than taken from `burn-optim`, for two reasons: its state
//! has to be saved and restored exactly, on the run's own device (burn's optimizer record
//! materialises restored state on the process's default device, which is wgpu even in a
//! flex run), and a restore must be checked against the network it is for (burn's silently
//! re-initialises state it cannot match). The update is PyTorch's:
//! `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
//!
//! Moments are kept flat, one pair per parameter tensor, in the order the module visits its
//! parameters, which is fixed by its architecture.

use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::{Device, Tensor, TensorData};
use gradless_policy::CheckpointError;

use crate::binary::{BinaryReader, BinaryWriter};

const MAGIC: &[u8; 8] = b"GLADAM1\0";
const BETA_1: f64 = 0.9;
const BETA_2: f64 = 0.999;

/// First and second moments per parameter tensor, as host values.
pub type MomentValues = Vec<(Vec<f32>, Vec<f32>)>;

/// Adam's state for one network.
#[derive(Debug, Clone)]
pub struct Adam {
    epsilon: f64,
    steps: u64,
    /// First and second moments per parameter tensor, flat, on the inference form of the
    /// training device.
    moments: Vec<(Tensor<1>, Tensor<1>)>,
}

impl Adam {
    /// Fresh state (moments start at zero on first use).
    pub fn new(epsilon: f64) -> Self {
        Self {
            epsilon,
            steps: 0,
            moments: Vec::new(),
        }
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update of `module` with learning rate `lr`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, mut grads: GradientsParams) -> M {
        self.steps += 1;
        let t = self.steps as i32;
        let mut mapper = AdamUpdate {
            lr,
            epsilon: self.epsilon,
            bias_1: 1.0 - BETA_1.powi(t),
            bias_2_sqrt: (1.0 - BETA_2.powi(t)).sqrt(),
            moments: &mut self.moments,
            grads: &mut grads,
            index: 0,
        };
        module.map(&mut mapper)
    }

    /// The moments as host values, parameter by parameter (first, second).
    pub fn moments(&self) -> MomentValues {
        self.moments
            .iter()
            .map(|(m, v)| (to_vec(m.clone()), to_vec(v.clone())))
            .collect()
    }

    /// Writes the state to `path`.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut writer = BinaryWriter::new(MAGIC);
        writer.f64(self.epsilon);
        writer.u64(self.steps);
        writer.u64(self.moments.len() as u64);
        for (first, second) in self.moments() {
            writer.f32s(&first);
            writer.f32s(&second);
        }
        writer.write(path)
    }

    /// Reads the state saved for `module` onto `device`; refuses state whose tensors do not
    /// match `module`'s parameters one for one.
    pub fn load<M: Module>(
        path: &Path,
        module: &M,
        device: &Device,
    ) -> Result<Self, CheckpointError> {
        let mut sizes = ParameterSizes(Vec::new());
        module.visit(&mut sizes);
        let sizes = sizes.0;
        // The header, then two length-prefixed f32 arrays per parameter.
        let limit = sizes
            .iter()
            .map(|&size| 2 * (8 + 4 * size as u64))
            .sum::<u64>()
            + 32;
        let mut reader = BinaryReader::open(path, MAGIC, limit)?;
        let epsilon = reader.f64()?;
        let steps = reader.u64()?;
        let count = reader.u64()? as usize;
        // State exists for every parameter once a step has been taken, for none before.
        let expected = if steps == 0 { 0 } else { sizes.len() };
        if count != expected {
            return Err(reader.invalid(format!(
                "holds optimizer state for {count} parameter tensors, the network has {}",
                sizes.len()
            )));
        }
        let device = device.clone().without_autodiff();
        let mut moments = Vec::with_capacity(count);
        for (k, &size) in sizes.iter().enumerate().take(count) {
            let first = reader.f32s()?;
            let second = reader.f32s()?;
            if first.len() != size || second.len() != size {
                return Err(reader.invalid(format!(
                    "optimizer state for parameter {k} has {} values, the parameter {size}",
                    first.len()
                )));
            }
            let upload =
                |values: Vec<f32>| Tensor::<1>::from_data(TensorData::new(values, [size]), &device);
            moments.push((upload(first), upload(second)));
        }
        reader.finish()?;
        Ok(Self {
            epsilon,
            steps,
            moments,
        })
    }
}

fn to_vec(tensor: Tensor<1>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float32 data")
}

struct ParameterSizes(Vec<usize>);

impl ModuleVisitor for ParameterSizes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().shape().num_elements());
    }
}

struct AdamUpdate<'a> {
    lr: f64,
    epsilon: f64,
    bias_1: f64,
    bias_2_sqrt: f64,
    moments: &'a mut Vec<(Tensor<1>, Tensor<1>)>,
    grads: &'a mut GradientsParams,
    index: usize,
}

impl ModuleMapper for AdamUpdate<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let index = self.index;
        self.index += 1;
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let was_autodiff = tensor.is_autodiff();
        let require_grad = tensor.is_require_grad();
        let strategy = tensor.gradient_checkpointing_strategy();
        let value = tensor.inner();
        let dims = value.dims();
        let size = dims.iter().product::<usize>();
        let grad = grad.inner().reshape([size]);
        if index == self.moments.len() {
            let zeros = Tensor::<1>::zeros([size], &value.device());
            self.moments.push((zeros.clone(), zeros));
        }
        let (first, second) = &mut self.moments[index];
        *first = first.clone().mul_scalar(BETA_1) + grad.clone().mul_scalar(1.0 - BETA_1);
        *second = second.clone().mul_scalar(BETA_2) + grad.square().mul_scalar(1.0 - BETA_2);
        let denominator = second
            .clone()
            .sqrt()
            .div_scalar(self.bias_2_sqrt)
            .add_scalar(self.epsilon);
        let update = first
            .clone()
            .div(denominator)
            .mul_scalar(self.lr / self.bias_1);
        let mut updated = value - update.reshape(dims);
        if was_autodiff {
            updated = updated.autodiff();
            if let Some(strategy) = strategy {
                updated = updated.with_gradient_checkpointing_strategy(strategy);
            }
            if require_grad {
                updated = updated.require_grad();
            }
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradless_policy::{Activation, Mlp};

    fn loss(mlp: &Mlp, device: &Device) -> Tensor<1> {
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![0.5f32, -1.0, 2.0, 0.1, 0.2, 0.3], [2, 3]),
            device,
        );
        mlp.forward(x).powi_scalar(2).mean()
    }

    fn small_mlp(hidden: &[usize], device: &Device) -> Mlp {
        let mut rng = gradless_envs::EnvRng::from_seed(4);
        Mlp::new(3, hidden, 2, Activation::Tanh, 1.0, &mut rng, device)
    }

    fn parameters(mlp: &Mlp) -> Vec<f32> {
        mlp.layers()
            .iter()
            .flat_map(|l| {
                let mut v = to_vec(l.weight.val().inner().flatten(0, 1));
                v.extend(to_vec(l.bias.as_ref().unwrap().val().inner()));
                v
            })
            .collect()
    }

    /// Adam's first step moves every parameter by about `lr` against its gradient's sign,
    /// and the loss falls over a few steps.
    #[test]
    fn first_step_moves_each_parameter_by_the_learning_rate() {
        let device = Device::flex().autodiff();
        let mut mlp = small_mlp(&[4], &device);
        let before = parameters(&mlp);
        let first_loss = loss(&mlp, &device).into_scalar::<f32>();
        let mut adam = Adam::new(1e-8);
        let grads = GradientsParams::from_grads(loss(&mlp, &device).backward(), &mlp);
        mlp = adam.step(0.01, mlp, grads);
        let after = parameters(&mlp);
        for (a, b) in after.iter().zip(&before) {
            // Adam's first step is lr * g / (|g| + eps): lr for every non-zero gradient.
            let moved = (a - b).abs();
            assert!((moved - 0.01).abs() < 1e-4 || moved < 1e-7, "{moved}");
        }
        for _ in 0..20 {
            let grads = GradientsParams::from_grads(loss(&mlp, &device).backward(), &mlp);
            mlp = adam.step(0.01, mlp, grads);
        }
        assert!(loss(&mlp, &device).into_scalar::<f32>() < first_loss);
        assert!(mlp.layers()[0].weight.val().is_require_grad());
    }

    #[test]
    fn saved_state_restores_exactly_and_foreign_state_is_refused() {
        let device = Device::flex().autodiff();
        let mut mlp = small_mlp(&[4], &device);
        let mut adam = Adam::new(1e-5);
        for _ in 0..3 {
            let grads = GradientsParams::from_grads(loss(&mlp, &device).backward(), &mlp);
            mlp = adam.step(0.01, mlp, grads);
        }
        let path = std::env::temp_dir().join(format!("gradless-adam-{}", std::process::id()));
        adam.save(&path).unwrap();
        let restored = Adam::load(&path, &mlp, &device).unwrap();
        assert_eq!(restored.steps(), 3);
        assert_eq!(restored.moments(), adam.moments());

        // Continuing from either gives the same parameters.
        let grads = GradientsParams::from_grads(loss(&mlp, &device).backward(), &mlp);
        let a = adam.step(0.01, mlp.clone(), grads);
        let grads = GradientsParams::from_grads(loss(&mlp, &device).backward(), &mlp);
        let b = restored.clone().step(0.01, mlp.clone(), grads);
        assert_eq!(parameters(&a), parameters(&b));

        let other = small_mlp(&[5], &device);
        let err = Adam::load(&path, &other, &device).unwrap_err().to_string();
        assert!(err.contains("values, the parameter"), "{err}");
        let deeper = small_mlp(&[4, 4], &device);
        let err = Adam::load(&path, &deeper, &device).unwrap_err().to_string();
        assert!(
            err.contains("4 parameter tensors, the network has 6"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
