//! Summary statistics of episode returns, with the interquartile mean and its 95% bootstrap
//! interval computed as rliable does (Agarwal et al., 2021): IQM is the 25% trimmed mean
//! (`scipy.stats.trim_mean(x, 0.25)`), the interval is the percentile interval of the IQM
//! over bootstrap resamples. With one task and one checkpoint the stratified bootstrap
//! resamples the episodes themselves.

use gradless_envs::EnvRng;
pub use gradless_stats::interquartile_mean;
use gradless_stats::{bootstrap_intervals, percentile_of_sorted};
use serde::Serialize;

/// Bootstrap resamples for the interval.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// What `gradless eval` reports per checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ReturnSummary {
    /// Episodes.
    pub episodes: usize,
    /// Mean return.
    pub mean_return: f64,
    /// Standard deviation (population, `ddof = 0` as NumPy's default).
    pub std_return: f64,
    /// Median return.
    pub median_return: f64,
    /// Smallest return.
    pub min_return: f64,
    /// Largest return.
    pub max_return: f64,
    /// Interquartile mean.
    pub iqm: f64,
    /// 95% stratified-bootstrap interval of the IQM, `[lo, hi]`.
    pub iqm_ci95: [f64; 2],
    /// Fraction of episodes the time limit ended.
    pub truncated_fraction: f64,
}

/// The 95% percentile-bootstrap interval of the IQM, from `resamples` resamples drawn with
/// a generator seeded by `seed` (one stratum: the episodes).
pub fn iqm_interval(values: &[f64], resamples: usize, seed: u64) -> [f64; 2] {
    let mut rng = EnvRng::from_seed(seed);
    let episodes = [(String::new(), values.to_vec())];
    let [interval] = bootstrap_intervals([&episodes], resamples, &mut |n| rng.below(n), |[s]| {
        [interquartile_mean(&s[0].1)]
    });
    interval
}

/// Summarises returns (`truncated[i]` for episode `i`); `None` for no episodes.
pub fn summarise(returns: &[f64], truncated: &[bool]) -> Option<ReturnSummary> {
    if returns.is_empty() {
        return None;
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let variance = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    let mut sorted = returns.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(ReturnSummary {
        episodes: returns.len(),
        mean_return: mean,
        std_return: variance.sqrt(),
        median_return: percentile_of_sorted(&sorted, 50.0),
        min_return: sorted[0],
        max_return: sorted[sorted.len() - 1],
        iqm: interquartile_mean(&sorted),
        iqm_ci95: iqm_interval(returns, BOOTSTRAP_RESAMPLES, 0),
        truncated_fraction: truncated.iter().filter(|&&t| t).count() as f64 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqm_matches_scipy_trim_mean() {
        // scipy.stats.trim_mean([1..8], 0.25) drops 2 at each end: mean(3, 4, 5, 6) = 4.5.
        let values: Vec<f64> = (1..=8).map(f64::from).collect();
        assert_eq!(interquartile_mean(&values), 4.5);
        // n = 10: floor(2.5) = 2 dropped at each end; an outlier does not move it.
        let mut values: Vec<f64> = (1..=10).map(f64::from).collect();
        values[9] = 1e9;
        assert_eq!(interquartile_mean(&values), 5.5);
        assert_eq!(interquartile_mean(&[7.0]), 7.0);
    }

    #[test]
    fn summary_matches_numpy() {
        let returns = [10.0, 20.0, 30.0, 40.0];
        let s = summarise(&returns, &[false, true, false, true]).unwrap();
        assert_eq!(s.mean_return, 25.0);
        assert!((s.std_return - 11.180339887498949).abs() < 1e-12); // np.std
        assert_eq!(s.median_return, 25.0);
        assert_eq!((s.min_return, s.max_return), (10.0, 40.0));
        assert_eq!(s.iqm, 25.0);
        assert_eq!(s.truncated_fraction, 0.5);
        assert!(summarise(&[], &[]).is_none());
    }

    #[test]
    fn bootstrap_interval_brackets_the_iqm_and_shrinks_with_more_episodes() {
        let mut rng = EnvRng::from_seed(1);
        let draw = |n: usize, rng: &mut EnvRng| -> Vec<f64> {
            (0..n)
                .map(|_| 100.0 + 20.0 * rng.standard_normal())
                .collect()
        };
        let small = draw(50, &mut rng);
        let large = draw(2000, &mut rng);
        let [lo, hi] = iqm_interval(&small, 2000, 0);
        let iqm = interquartile_mean(&small);
        assert!(lo < iqm && iqm < hi, "{lo} {iqm} {hi}");
        let [lo_large, hi_large] = iqm_interval(&large, 2000, 0);
        assert!(hi_large - lo_large < (hi - lo) / 3.0);
        // Reproducible: the same seed gives the same interval.
        assert_eq!(iqm_interval(&small, 2000, 0), [lo, hi]);
        // Identical returns have a zero-width interval.
        assert_eq!(iqm_interval(&[500.0; 20], 100, 0), [500.0, 500.0]);
    }
}
