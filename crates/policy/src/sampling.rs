//! The policy's distributions, in one place: on the host (categorical draws from logits,
//! diagonal Gaussian draws and their log-densities, argmax), where draws come from the
//! generator the caller passes so that runs are reproducible across devices and a saved run
//! continues with the very same draws; and as tensors ([`Categorical`], [`DiagGaussian`]:
//! log-probabilities, entropy, draws from the device's generator), which PPO's loss and its
//! rollouts on the device use.

use burn::prelude::{Int, Tensor};
use burn::tensor::Distribution;
use burn::tensor::activation;
use gradless_envs::EnvRng;

/// `ln(2 pi) / 2`, the Gaussian log-density's constant per component.
const HALF_LOG_TWO_PI: f64 = 0.5 * 1.837_877_066_409_345_5;

/// A categorical distribution per row of `[rows, n]` logits, as tensors.
#[derive(Debug, Clone)]
pub struct Categorical {
    log_probs: Tensor<2>,
}

impl Categorical {
    /// The distribution with these logits.
    pub fn new(logits: Tensor<2>) -> Self {
        Self {
            log_probs: activation::log_softmax(logits, 1),
        }
    }

    /// The log-probability of each row's action (`[rows, 1]` indices), `[rows]`.
    pub fn log_prob(&self, actions: Tensor<2, Int>) -> Tensor<1> {
        self.log_probs
            .clone()
            .gather(1, actions)
            .squeeze_dim::<1>(1)
    }

    /// The mean entropy over rows, `[1]`.
    pub fn mean_entropy(&self) -> Tensor<1> {
        (self.log_probs.clone().exp() * self.log_probs.clone())
            .sum_dim(1)
            .squeeze_dim::<1>(1)
            .neg()
            .mean()
    }

    /// One draw per row from the device's generator (the argmax of the logits plus Gumbel
    /// noise is a draw from their softmax), `[rows, 1]`, with its log-probability.
    pub fn sample(logits: Tensor<2>) -> (Tensor<2, Int>, Tensor<1>) {
        let [rows, n] = logits.dims();
        let uniform = Tensor::<2>::random(
            [rows, n],
            Distribution::Uniform(f64::from(f32::MIN_POSITIVE), 1.0),
            &logits.device(),
        );
        let gumbel = uniform.log().neg().log().neg();
        let actions = (logits.clone() + gumbel).argmax(1);
        let log_probs = Self::new(logits).log_prob(actions.clone());
        (actions, log_probs)
    }
}

/// A diagonal Gaussian per row: `[rows, dim]` means and one `[1, dim]` log standard deviation.
#[derive(Debug, Clone)]
pub struct DiagGaussian {
    mean: Tensor<2>,
    log_std: Tensor<2>,
}

impl DiagGaussian {
    /// The distribution with these means and log standard deviations.
    pub fn new(mean: Tensor<2>, log_std: Tensor<2>) -> Self {
        Self { mean, log_std }
    }

    /// The log-density of standardised values `z`, summed over components, `[rows]`.
    fn log_density_of_standardised(&self, z: Tensor<2>) -> Tensor<1> {
        (z.powi_scalar(2).mul_scalar(-0.5) - self.log_std.clone())
            .sub_scalar(HALF_LOG_TWO_PI)
            .sum_dim(1)
            .squeeze_dim::<1>(1)
    }

    /// The log-density of each row's action, `[rows]`.
    pub fn log_prob(&self, actions: Tensor<2>) -> Tensor<1> {
        let z = (actions - self.mean.clone()) / self.log_std.clone().exp();
        self.log_density_of_standardised(z)
    }

    /// The entropy (the same for every row), `[1]`.
    pub fn mean_entropy(&self) -> Tensor<1> {
        self.log_std.clone().add_scalar(0.5 + HALF_LOG_TWO_PI).sum()
    }

    /// One draw per row from the device's generator, with its log-density.
    pub fn sample(&self) -> (Tensor<2>, Tensor<1>) {
        let z = Tensor::<2>::random(
            self.mean.dims(),
            Distribution::Normal(0.0, 1.0),
            &self.mean.device(),
        );
        let actions = self.mean.clone() + self.log_std.clone().exp() * z.clone();
        (actions, self.log_density_of_standardised(z))
    }
}

pub use gradless_kernels::argmax;

/// `log_softmax` of one row of logits, in `f64`.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let log_sum = logits
        .iter()
        .map(|&v| (f64::from(v) - max).exp())
        .sum::<f64>()
        .ln();
    logits
        .iter()
        .map(|&v| f64::from(v) - max - log_sum)
        .collect()
}

/// Draws an action from the categorical distribution with these logits; returns it with its
/// log-probability.
pub fn sample_categorical(logits: &[f32], rng: &mut EnvRng) -> (usize, f64) {
    let log_probs = log_softmax(logits);
    let u = rng.next_f64();
    let mut cumulative = 0.0;
    for (k, lp) in log_probs.iter().enumerate() {
        cumulative += lp.exp();
        if u < cumulative {
            return (k, *lp);
        }
    }
    // Rounding left the cumulative sum just under 1 and u above it: the last action.
    let last = log_probs.len() - 1;
    (last, log_probs[last])
}

/// Draws from a diagonal Gaussian into `out`; returns the draw's log-density.
pub fn sample_gaussian(mean: &[f32], log_std: &[f32], rng: &mut EnvRng, out: &mut [f32]) -> f64 {
    let mut log_density = 0.0;
    for ((o, &m), &ls) in out.iter_mut().zip(mean).zip(log_std) {
        let z = rng.standard_normal();
        *o = (f64::from(m) + f64::from(ls).exp() * z) as f32;
        log_density += gaussian_log_density_term(z, f64::from(ls));
    }
    log_density
}

/// One component's log-density `-z^2/2 - log_std - ln(2 pi)/2`, `z` the standardised value.
pub fn gaussian_log_density_term(z: f64, log_std: f64) -> f64 {
    -0.5 * z * z - log_std - HALF_LOG_TWO_PI
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categorical_draws_follow_the_probabilities() {
        let logits = [0.0f32, (3.0f32).ln()];
        let mut rng = EnvRng::from_seed(1);
        let n = 40_000;
        let ones = (0..n)
            .filter(|_| sample_categorical(&logits, &mut rng).0 == 1)
            .count();
        assert!((ones as f64 / n as f64 - 0.75).abs() < 0.01, "{ones}");
        let (action, log_prob) = sample_categorical(&logits, &mut rng);
        assert!((log_prob - [0.25f64, 0.75][action].ln()).abs() < 1e-6);
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
    }

    #[test]
    fn the_constant_is_half_log_two_pi() {
        assert!((HALF_LOG_TWO_PI - 0.5 * std::f64::consts::TAU.ln()).abs() < 1e-15);
    }

    /// The tensor distributions give the host's log-probabilities and the closed-form
    /// entropies.
    #[test]
    fn tensor_distributions_agree_with_the_host() {
        use burn::prelude::{Device, TensorData};
        let device = Device::flex();
        let logits = [0.0f32, 3.0f32.ln(), -1.0, 0.5];
        let categorical = Categorical::new(Tensor::from_data(
            TensorData::new(logits.to_vec(), [2, 2]),
            &device,
        ));
        let actions = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 0], [2, 1]), &device);
        let got = categorical
            .log_prob(actions)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((f64::from(got[0]) - log_softmax_host(&logits[..2])[1]).abs() < 1e-6);
        assert!((f64::from(got[1]) - log_softmax_host(&logits[2..])[0]).abs() < 1e-6);
        let entropy: f32 = categorical.mean_entropy().into_scalar();
        let row_entropy =
            |row: &[f32]| -> f64 { log_softmax_host(row).iter().map(|lp| -lp.exp() * lp).sum() };
        let expected = (row_entropy(&logits[..2]) + row_entropy(&logits[2..])) / 2.0;
        assert!((f64::from(entropy) - expected).abs() < 1e-6);

        let mean = [1.0f32, -2.0];
        let log_std = [0.5f32, -1.0];
        let gaussian = DiagGaussian::new(
            Tensor::from_data(TensorData::new(mean.to_vec(), [1, 2]), &device),
            Tensor::from_data(TensorData::new(log_std.to_vec(), [1, 2]), &device),
        );
        let action = [1.3f32, -2.2];
        let got: f32 = gaussian
            .log_prob(Tensor::from_data(
                TensorData::new(action.to_vec(), [1, 2]),
                &device,
            ))
            .into_scalar();
        let expected: f64 = (0..2)
            .map(|k| {
                let z = f64::from(action[k] - mean[k]) / f64::from(log_std[k]).exp();
                gaussian_log_density_term(z, f64::from(log_std[k]))
            })
            .sum();
        assert!((f64::from(got) - expected).abs() < 1e-5, "{got} {expected}");
        let entropy: f32 = gaussian.mean_entropy().into_scalar();
        let expected: f64 = log_std
            .iter()
            .map(|&l| f64::from(l) + 0.5 + HALF_LOG_TWO_PI)
            .sum();
        assert!((f64::from(entropy) - expected).abs() < 1e-6);
        let (draw, density) = gaussian.sample();
        let again = gaussian.log_prob(draw).into_scalar::<f32>();
        assert!((again - density.into_scalar::<f32>()).abs() < 1e-5);
    }

    fn log_softmax_host(row: &[f32]) -> Vec<f64> {
        log_softmax(row)
    }

    #[test]
    fn gaussian_log_density_matches_the_formula() {
        let mut rng = EnvRng::from_seed(2);
        let mut out = [0.0f32; 2];
        let (mean, log_std) = ([1.0f32, -2.0], [0.5f32, -1.0]);
        let log_density = sample_gaussian(&mean, &log_std, &mut rng, &mut out);
        let expected: f64 = (0..2)
            .map(|k| {
                let std = f64::from(log_std[k]).exp();
                let z = (f64::from(out[k]) - f64::from(mean[k])) / std;
                -0.5 * z * z - std.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
            })
            .sum();
        assert!(
            (log_density - expected).abs() < 1e-5,
            "{log_density} {expected}"
        );
    }
}
