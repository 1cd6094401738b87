//! Clipping by the global gradient norm, as PyTorch's `clip_grad_norm_` does: all gradients
//! are scaled by one factor so that their joint L2 norm is at most `max_norm`. (burn's own
//! `GradientClipping::Norm` clips each parameter tensor on its own, which is a different
//! update.) The norm stays on the device: reading it back every minibatch would stall it.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::Tensor;

/// Scales `grads` (the gradients of `module`'s parameters) so that their global norm is at
/// most `max_norm`; returns the norm before clipping, a `[1]` tensor.
pub fn clip_by_global_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> Option<Tensor<1>> {
    let mut squares = SquaredNorm { grads, total: None };
    module.visit(&mut squares);
    let norm = squares.total?.sqrt();
    // min(1, max_norm / (norm + 1e-6)), PyTorch's factor.
    let factor = norm
        .clone()
        .add_scalar(1e-6)
        .recip()
        .mul_scalar(max_norm)
        .clamp_max(1.0);
    module.visit(&mut Scale { grads, factor });
    Some(norm)
}

/// The global gradient norm of `module`'s parameters without changing them.
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut squares = SquaredNorm { grads, total: None };
    module.visit(&mut squares);
    squares.total.map(Tensor::sqrt)
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let square = grad.square().sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + square,
                None => square,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: Tensor<1>,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            let factor = self.factor.clone().unsqueeze::<D>();
            self.grads.register(param.id, grad * factor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::{Device, TensorData};
    use gradless_policy::{Activation, Mlp};

    fn gradients(scale: f32) -> (Mlp, GradientsParams) {
        let device = Device::flex().autodiff();
        let mlp = Mlp::new(
            3,
            &[5],
            2,
            Activation::Tanh,
            1.0,
            &mut gradless_envs::EnvRng::from_seed(4),
            &device,
        );
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0], [1, 3]), &device);
        let loss = mlp.forward(x).sum().mul_scalar(scale);
        let grads = GradientsParams::from_grads(loss.backward(), &mlp);
        (mlp, grads)
    }

    fn flat(mlp: &Mlp, grads: &GradientsParams) -> Vec<f32> {
        let mut values = Vec::new();
        for layer in mlp.layers() {
            let w = grads.get::<2>(layer.weight.id).unwrap();
            let b = grads.get::<1>(layer.bias.as_ref().unwrap().id).unwrap();
            values.extend(w.into_data().convert::<f32>().iter::<f32>());
            values.extend(b.into_data().convert::<f32>().iter::<f32>());
        }
        values
    }

    #[test]
    fn large_gradients_are_scaled_jointly_to_the_limit() {
        let (mlp, mut grads) = gradients(100.0);
        let before = flat(&mlp, &grads);
        let norm_before = before.iter().map(|g| g * g).sum::<f32>().sqrt();
        let reported = clip_by_global_norm(&mlp, &mut grads, 0.5).unwrap();
        assert!((reported.into_scalar::<f32>() - norm_before).abs() < 1e-3 * norm_before);
        let after = flat(&mlp, &grads);
        let norm_after = after.iter().map(|g| g * g).sum::<f32>().sqrt();
        assert!((norm_after - 0.5).abs() < 1e-4, "{norm_after}");
        // One factor for every tensor: directions are kept.
        let factor = 0.5 / (norm_before + 1e-6);
        for (a, b) in after.iter().zip(&before) {
            assert!((a - b * factor).abs() < 1e-5, "{a} vs {}", b * factor);
        }
        let remaining = global_norm(&mlp, &grads).unwrap().into_scalar::<f32>();
        assert!((remaining - 0.5).abs() < 1e-4);
    }

    #[test]
    fn small_gradients_are_left_alone() {
        let (mlp, mut grads) = gradients(1e-3);
        let before = flat(&mlp, &grads);
        clip_by_global_norm(&mlp, &mut grads, 0.5).unwrap();
        assert_eq!(flat(&mlp, &grads), before);
    }
}
