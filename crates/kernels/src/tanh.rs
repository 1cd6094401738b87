//! `tanh` for inference on burn's CPU backend. burn-flex evaluates `tanh` one element at a
//! time through libm, which was 60% of a 1024-env CartPole evaluation. This rational
//! approximation has no branches, so the compiler vectorises the loop over a batch.
//!
//! The coefficients come from `scripts/fit_tanh.py` (a weighted least-squares fit of
//! `x P(x^2) / Q(x^2)` on [0, 9] in high precision). In `f32` the result stays within 6 ULP
//! and 3.5e-7 of the exact value, and is odd and bounded by 1 like `tanh` itself.

use burn::prelude::{Device, Tensor};
use burn::tensor::activation;

const NUMERATOR: [f32; 5] = [
    1.0,
    0.133_839_65,
    0.003_498_977_5,
    2.066_093_7e-5,
    1.341_934_4e-8,
];
const DENOMINATOR: [f32; 5] = [1.0, 0.467_172_86, 0.025_890_136, 3.291_007e-4, 7.804_539e-7];

/// Beyond this, `tanh` rounds to +-1 in `f32`.
const SATURATION: f32 = 9.0;

#[inline(always)]
fn horner(coefficients: &[f32; 5], s: f32) -> f32 {
    coefficients.iter().rev().fold(0.0, |acc, &c| acc * s + c)
}

/// `tanh(x)` within 6 ULP; NaN stays NaN. Always inlined: the host forward pass vectorises it.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let x = x.clamp(-SATURATION, SATURATION);
    let s = x * x;
    (x * horner(&NUMERATOR, s) / horner(&DENOMINATOR, s)).clamp(-1.0, 1.0)
}

/// `tanh` of every element. On a flex device without autodiff it runs the vectorised
/// approximation over the tensor's memory (a host round trip, which would cut an autodiff
/// graph); elsewhere it is burn's own `tanh`.
pub fn vectorised_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    // Device equality ignores autodiff, so that is checked on its own.
    if device != Device::flex() || x.is_autodiff() {
        return activation::tanh(x);
    }
    let mut data = x.into_data();
    match data.as_mut_slice::<f32>() {
        Ok(values) => {
            values.iter_mut().for_each(|v| *v = tanh(*v));
            Tensor::from_data(data, &device)
        }
        Err(_) => activation::tanh(Tensor::from_data(data, &device)),
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::TensorData;

    use super::*;

    /// Distance in units in the last place of `f32` at the exact value.
    fn ulps(approx: f32, exact: f64) -> f64 {
        let spacing = f64::from((exact.abs() as f32).next_up() - exact.abs() as f32);
        (f64::from(approx) - exact).abs() / spacing
    }

    #[test]
    fn within_six_ulp_of_the_exact_value() {
        let mut worst = (0.0, 0.0f32);
        // Every 1/4096 on [-12, 12] and a dense sweep near zero, where relative error shows.
        let grid = (-12 * 4096..=12 * 4096).map(|k| k as f32 / 4096.0);
        let near_zero = (1..=10_000).flat_map(|k| [k as f32 * 1e-7, -(k as f32) * 1e-7]);
        for x in grid.chain(near_zero) {
            let error = ulps(tanh(x), f64::from(x).tanh());
            if error > worst.0 {
                worst = (error, x);
            }
        }
        assert!(worst.0 <= 6.0, "{} ULP at x = {}", worst.0, worst.1);
    }

    #[test]
    fn odd_bounded_and_saturating() {
        for x in [0.0f32, 1e-30, 0.3, 1.7, 8.9, 9.5, 1e6, f32::INFINITY] {
            assert_eq!(tanh(-x), -tanh(x));
            assert!(tanh(x).abs() <= 1.0);
        }
        assert_eq!(tanh(20.0), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }

    fn inputs(device: &Device) -> Tensor<2> {
        let values: Vec<f32> = (0..256).map(|k| (k as f32 - 128.0) / 16.0).collect();
        Tensor::from_data(TensorData::new(values, [16, 16]), device)
    }

    fn values(x: Tensor<2>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn plain_flex_tensors_take_the_approximation() {
        let x = inputs(&Device::flex());
        let expected: Vec<f32> = values(x.clone()).into_iter().map(tanh).collect();
        assert_eq!(values(vectorised_tanh(x.clone())), expected);
        // burn's own tanh agrees to within the approximation's error.
        for (a, b) in expected.iter().zip(values(activation::tanh(x))) {
            assert!((a - b).abs() <= 4e-7, "{a} vs {b}");
        }
    }

    #[test]
    fn autodiff_tensors_keep_burns_tanh_and_their_gradient() {
        let device = Device::flex().autodiff();
        let x = inputs(&device).require_grad();
        let y = vectorised_tanh(x.clone());
        assert_eq!(values(y.clone()), values(activation::tanh(x.clone())));
        let grads = y.sum().backward();
        let grad = x.grad(&grads).expect("x keeps its gradient");
        // d tanh / dx = 1 - tanh^2.
        let expected: Vec<f32> = values(activation::tanh(x.inner()))
            .iter()
            .map(|t| 1.0 - t * t)
            .collect();
        for (a, b) in values(grad).iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
        }
    }
}
