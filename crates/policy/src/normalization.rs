//! Running observation normalisation, part of the agent: the trainer updates the statistics
//! with every observation it sees (as Gymnasium's `NormalizeObservation` and SB3's
//! `VecNormalize` do), checkpoints record them, and the evaluator applies them frozen.
//!
//! The statistics are kept in `f64`; applying them is done in `f32` exactly as an exported
//! policy's reader does it in PyTorch (`(obs - mean) / sqrt(var + epsilon)`, clipped, every
//! operation on float32 values), so both see the same network inputs bit for bit.

use burn::prelude::{Device, Tensor, TensorData};
use gradless_kernels::FrozenNormalization;
use serde::{Deserialize, Serialize};

/// The count the statistics start from, as Gymnasium's `RunningMeanStd` (it keeps the first
/// update from dividing by zero and weighs the starting mean 0, variance 1 next to nothing).
const INITIAL_COUNT: f64 = 1e-4;

/// A running mean and variance per component (Chan et al.'s parallel update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunningMoments {
    /// Mean per component.
    pub mean: Vec<f64>,
    /// Variance per component.
    pub var: Vec<f64>,
    /// Rows seen (plus the starting count).
    pub count: f64,
}

impl RunningMoments {
    /// Mean 0, variance 1, `dim` components.
    pub fn new(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: INITIAL_COUNT,
        }
    }

    /// Folds in a batch of rows of `mean.len()` values each.
    pub fn update(&mut self, rows: &[f32]) {
        let dim = self.mean.len();
        let n = rows.len() / dim;
        if n == 0 {
            return;
        }
        let batch = n as f64;
        let total = self.count + batch;
        for k in 0..dim {
            let column = rows.iter().skip(k).step_by(dim).map(|&v| f64::from(v));
            let batch_mean = column.clone().sum::<f64>() / batch;
            let batch_var = column.map(|v| (v - batch_mean).powi(2)).sum::<f64>() / batch;
            let delta = batch_mean - self.mean[k];
            let m2 = self.var[k] * self.count
                + batch_var * batch
                + delta * delta * self.count * batch / total;
            self.mean[k] += delta * batch / total;
            self.var[k] = m2 / total;
        }
        self.count = total;
    }
}

/// Observation normalisation: running moments with the clip and epsilon they are applied
/// with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationNormalizer {
    /// The statistics.
    #[serde(flatten)]
    pub moments: RunningMoments,
    /// Normalised values are clipped to `[-clip, clip]`.
    pub clip: f64,
    /// Added to the variance before its square root.
    pub epsilon: f64,
}

impl ObservationNormalizer {
    /// Fresh statistics for `dim` components.
    pub fn new(dim: usize, clip: f64, epsilon: f64) -> Self {
        Self {
            moments: RunningMoments::new(dim),
            clip,
            epsilon,
        }
    }

    /// Checks saved statistics: `dim` components, finite, variances and count non-negative,
    /// clip and epsilon positive.
    pub fn check(&self, dim: usize) -> Result<(), String> {
        let m = &self.moments;
        if m.mean.len() != dim || m.var.len() != dim {
            return Err(format!(
                "statistics of {} and {} components for observations of {dim}",
                m.mean.len(),
                m.var.len()
            ));
        }
        let finite = m.mean.iter().chain(&m.var).all(|v| v.is_finite());
        if !finite || m.var.iter().any(|&v| v < 0.0) || !(m.count.is_finite() && m.count > 0.0) {
            return Err("statistics are not finite or have a negative variance".into());
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !(positive(self.clip) && positive(self.epsilon)) {
            return Err(format!(
                "clip {} and epsilon {} must be positive",
                self.clip, self.epsilon
            ));
        }
        // Observations are divided by these in f32: one that rounds to zero (a variance of
        // 0 with an epsilon below f32's range) would divide by zero.
        if let Some(k) = self.frozen().std.iter().position(|&std| !(std.is_normal())) {
            return Err(format!(
                "component {k}: variance {} + epsilon {} is no positive f32 to divide by",
                m.var[k], self.epsilon
            ));
        }
        Ok(())
    }

    /// The statistics frozen as the `f32` values the inputs are normalised with.
    pub(crate) fn frozen(&self) -> FrozenNormalization {
        let m = &self.moments;
        let epsilon = self.epsilon as f32;
        FrozenNormalization {
            mean: m.mean.iter().map(|&v| v as f32).collect(),
            std: m.var.iter().map(|&v| (v as f32 + epsilon).sqrt()).collect(),
            clip: self.clip as f32,
        }
    }

    /// Normalises rows of observations in place.
    pub fn apply(&self, rows: &mut [f32]) {
        let frozen = self.frozen();
        let dim = frozen.mean.len();
        for (k, value) in rows.iter_mut().enumerate() {
            *value = frozen.apply(k % dim, *value);
        }
    }

    /// The same on a `[rows, dim]` tensor (device observations).
    pub fn apply_tensor(&self, observations: Tensor<2>) -> Tensor<2> {
        let FrozenNormalization { mean, std, .. } = self.frozen();
        let device: Device = observations.device();
        let row = |values: Vec<f32>| {
            let dim = values.len();
            Tensor::<2>::from_data(TensorData::new(values, [1, dim]), &device)
        };
        let clip = self.clip;
        ((observations - row(mean)) / row(std)).clamp(-clip, clip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches folded in one by one give the moments of all rows at once (the starting
    /// count weighs in at 1e-4).
    #[test]
    fn running_moments_match_the_whole_sample() {
        let rows: Vec<f32> = (0..40).map(|k| ((k * 7 % 11) as f32) * 0.5 - 1.0).collect();
        let mut running = RunningMoments::new(2);
        for chunk in rows.chunks(6) {
            running.update(chunk);
        }
        for k in 0..2 {
            let column: Vec<f64> = rows
                .iter()
                .skip(k)
                .step_by(2)
                .map(|&v| f64::from(v))
                .collect();
            let n = column.len() as f64;
            let mean = column.iter().sum::<f64>() / n;
            let var = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            assert!((running.mean[k] - mean).abs() < 1e-4, "{k}");
            assert!((running.var[k] - var).abs() < 1e-3, "{k}");
        }
        assert!((running.count - 20.0).abs() < 1e-3);
    }

    #[test]
    fn host_and_tensor_normalisation_agree_and_clip() {
        let mut normalizer = ObservationNormalizer::new(2, 3.0, 1e-8);
        normalizer
            .moments
            .update(&[0.0, 10.0, 2.0, 30.0, 4.0, 20.0]);
        let mut rows = vec![2.0f32, 20.0, 100.0, -100.0];
        let device = Device::flex();
        let tensor = Tensor::<2>::from_data(TensorData::new(rows.clone(), [2, 2]), &device);
        normalizer.apply(&mut rows);
        let from_tensor = normalizer
            .apply_tensor(tensor)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(rows, from_tensor);
        assert!(rows[0].abs() < 1e-3 && rows[1].abs() < 1e-3, "{rows:?}");
        assert_eq!(&rows[2..], &[3.0, -3.0]);
        assert!(normalizer.check(2).is_ok());
        assert!(normalizer.check(3).is_err());
        // A constant component is fine with an epsilon f32 can hold, not with one below.
        normalizer.moments.var[0] = 0.0;
        assert!(normalizer.check(2).is_ok());
        normalizer.epsilon = 1e-300;
        let err = normalizer.check(2).unwrap_err();
        assert!(err.contains("component 0"), "{err}");
        normalizer.epsilon = 1e-8;
        normalizer.moments.var[0] = f64::NAN;
        assert!(normalizer.check(2).is_err());
    }
}
