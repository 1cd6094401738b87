//! Statistics of returns and runs, the one place for them: the interquartile mean and
//! NumPy's percentiles, and rliable's aggregate metrics over runs (Agarwal et al., 2021) with
//! runs grouped by env: the interquartile mean over all runs, the mean and median over envs
//! of each env's mean, the optimality gap, the probability of improvement, and their
//! percentile intervals from a stratified bootstrap (runs resampled with replacement within
//! each env). Resamples draw from the caller's generator (`below(n)`: an index in `0..n`),
//! so this crate depends on none.

/// One group's scores, env by env: `(env, scores of that env's runs)`, each env once.
pub type Strata = [(String, Vec<f64>)];

/// The four aggregates of a set of scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregates {
    /// The 25% trimmed mean of every run's score, all envs together.
    pub iqm: f64,
    /// The mean over envs of each env's mean over runs.
    pub mean: f64,
    /// The median over envs of each env's mean over runs (with one env, the mean).
    pub median: f64,
    /// How far runs fall short of their env's target `gamma` on average:
    /// `mean(gamma - min(score, gamma))`.
    pub optimality_gap: f64,
}

/// NumPy's `percentile` (linear interpolation) of sorted values.
pub fn percentile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    let position = q / 100.0 * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

/// `scipy.stats.trim_mean(values, 0.25)` of values in any order.
pub fn interquartile_mean(values: &[f64]) -> f64 {
    trimmed_mean(&mut values.to_vec())
}

/// `scipy.stats.trim_mean(values, 0.25)`: drops `floor(n / 4)` values at each end.
pub fn trimmed_mean(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let cut = values.len() / 4;
    let kept = &values[cut..values.len() - cut];
    kept.iter().sum::<f64>() / kept.len() as f64
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile_of_sorted(values, 50.0)
}

/// The aggregates of `strata` (no env without runs); `gamma[k]` is env `k`'s target.
pub fn aggregates(strata: &Strata, gamma: &[f64]) -> Aggregates {
    let mut all: Vec<f64> = strata.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    let mut env_means: Vec<f64> = strata.iter().map(|(_, s)| mean(s)).collect();
    let shortfall: f64 = strata
        .iter()
        .zip(gamma)
        .flat_map(|((_, scores), &g)| scores.iter().map(move |&s| g - s.min(g)))
        .sum();
    Aggregates {
        optimality_gap: shortfall / all.len() as f64,
        iqm: trimmed_mean(&mut all),
        mean: mean(&env_means),
        median: median(&mut env_means),
    }
}

/// P(X > Y) for one env: the Mann-Whitney U statistic of `x` over `y` divided by the number
/// of pairs, a tie counting one half.
pub fn probability_greater(x: &[f64], y: &[f64]) -> f64 {
    let wins: f64 = x
        .iter()
        .flat_map(|&a| {
            y.iter().map(move |&b| match a.total_cmp(&b) {
                std::cmp::Ordering::Greater => 1.0,
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Less => 0.0,
            })
        })
        .sum();
    wins / (x.len() * y.len()) as f64
}

/// The probability of improvement of X over Y: P(X > Y) averaged over the envs both have
/// (`None` when they share none).
pub fn probability_of_improvement(x: &Strata, y: &Strata) -> Option<f64> {
    let per_env: Vec<f64> = x
        .iter()
        .filter_map(|(env, xs)| {
            let (_, ys) = y.iter().find(|(other, _)| other == env)?;
            Some(probability_greater(xs, ys))
        })
        .collect();
    (!per_env.is_empty()).then(|| mean(&per_env))
}

/// A resample of `strata`: each env's runs drawn with replacement, as many as it has.
fn resample(
    strata: &Strata,
    below: &mut impl FnMut(u64) -> u64,
    into: &mut Vec<(String, Vec<f64>)>,
) {
    into.resize_with(strata.len(), Default::default);
    for ((env, scores), (slot_env, slot)) in strata.iter().zip(into.iter_mut()) {
        if slot_env != env {
            slot_env.clone_from(env);
        }
        slot.clear();
        let n = scores.len() as u64;
        slot.extend((0..n).map(|_| scores[below(n) as usize]));
    }
}

/// The 95% percentile intervals of the `M` values of `statistic` over `reps`
/// stratified-bootstrap resamples of each of `samples` (resampled independently of each
/// other, every statistic from the same resamples), each index drawn by `below(n)`.
pub fn bootstrap_intervals<const K: usize, const M: usize>(
    samples: [&Strata; K],
    reps: usize,
    below: &mut impl FnMut(u64) -> u64,
    mut statistic: impl FnMut([&Strata; K]) -> [f64; M],
) -> [[f64; 2]; M] {
    let mut resampled: [Vec<(String, Vec<f64>)>; K] = std::array::from_fn(|_| Vec::new());
    let mut estimates: [Vec<f64>; M] = std::array::from_fn(|_| Vec::with_capacity(reps));
    for _ in 0..reps {
        for (sample, into) in samples.iter().zip(resampled.iter_mut()) {
            resample(sample, below, into);
        }
        let values = statistic(std::array::from_fn(|k| resampled[k].as_slice()));
        for (estimate, value) in estimates.iter_mut().zip(values) {
            estimate.push(value);
        }
    }
    estimates.map(|mut values| {
        values.sort_by(f64::total_cmp);
        [
            percentile_of_sorted(&values, 2.5),
            percentile_of_sorted(&values, 97.5),
        ]
    })
}

/// The fraction of runs whose score exceeds each `tau` (rliable's score distribution: over
/// all runs of all envs together).
pub fn performance_profile(strata: &Strata, taus: &[f64]) -> Vec<f64> {
    let all: Vec<f64> = strata.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    taus.iter()
        .map(|&tau| all.iter().filter(|&&s| s > tau).count() as f64 / all.len() as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small generator for the tests (SplitMix64): `below(n)` draws an index in `0..n`.
    fn draws(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |n| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
    }

    fn one_env(scores: &[f64]) -> Vec<(String, Vec<f64>)> {
        vec![("CartPole-v1".to_string(), scores.to_vec())]
    }

    /// Values computed by hand.
    #[test]
    fn aggregates_are_rliables() {
        // Eight runs: IQM drops two at each end -> mean(3, 4, 5, 100) = 28.
        let strata = one_env(&[1.0, 2.0, 3.0, 4.0, 5.0, 100.0, 200.0, 300.0]);
        let a = aggregates(&strata, &[10.0]);
        assert_eq!(a.iqm, 28.0);
        // One env: the median over envs is that env's mean, as is the mean.
        assert_eq!((a.mean, a.median), (76.875, 76.875));
        // Shortfalls below 10: 9 + 8 + 7 + 6 + 5 + 0 + 0 + 0 = 35, over 8 runs.
        assert_eq!(a.optimality_gap, 35.0 / 8.0);

        // Three envs with their own targets: env means 2, 10 and 0.5.
        let strata = vec![
            ("a".to_string(), vec![1.0, 3.0]),
            ("b".to_string(), vec![10.0]),
            ("c".to_string(), vec![0.0, 0.5, 1.0]),
        ];
        let a = aggregates(&strata, &[2.0, 5.0, 1.0]);
        assert_eq!((a.mean, a.median), (12.5 / 3.0, 2.0));
        // All six sorted: 0, 0.5, 1, 1, 3, 10; one dropped at each end: mean(0.5, 1, 1, 3).
        assert_eq!(a.iqm, 1.375);
        // Shortfalls: a: 1 + 0; b: 0; c: 1 + 0.5 + 0 -> 2.5 over 6 runs.
        assert_eq!(a.optimality_gap, 2.5 / 6.0);
    }

    #[test]
    fn probability_of_improvement_counts_ties_as_half() {
        assert_eq!(
            probability_greater(&[3.0, 5.0], &[1.0, 3.0, 4.0]),
            4.5 / 6.0
        );
        assert_eq!(probability_greater(&[2.0, 2.0], &[2.0, 2.0]), 0.5);
        let x = vec![("a".to_string(), vec![1.0]), ("b".to_string(), vec![0.0])];
        let y = vec![("b".to_string(), vec![1.0]), ("a".to_string(), vec![0.0])];
        assert_eq!(probability_of_improvement(&x, &y), Some(0.5));
        let other = vec![("c".to_string(), vec![0.0])];
        assert_eq!(probability_of_improvement(&x, &other), None);
    }

    #[test]
    fn bootstrap_intervals_hold_the_estimate_and_shrink_with_more_runs() {
        let mut rng = draws(3);
        let scores: Vec<f64> = (0..40).map(|k| f64::from(k % 10)).collect();
        let iqm = |[s]: [&Strata; 1]| [aggregates(s, &[1.0]).iqm];
        let few = one_env(&scores[..10]);
        let many = one_env(&scores);
        let [[lo_few, hi_few]] = bootstrap_intervals([&few], 2000, &mut rng, iqm);
        let [[lo, hi]] = bootstrap_intervals([&many], 2000, &mut rng, iqm);
        let estimate = aggregates(&many, &[1.0]).iqm;
        assert!(lo <= estimate && estimate <= hi, "{lo} {estimate} {hi}");
        assert!(
            hi - lo < hi_few - lo_few,
            "{lo}..{hi} vs {lo_few}..{hi_few}"
        );
        // A constant sample has a point interval.
        let constant = one_env(&[4.0; 5]);
        assert_eq!(
            bootstrap_intervals([&constant], 100, &mut rng, iqm),
            [[4.0, 4.0]]
        );
        // Resampling stays within each env: env a's 0s never stand in for env b's 1s.
        let strata = vec![("a".into(), vec![0.0, 0.0]), ("b".into(), vec![1.0, 1.0])];
        let mean = |[s]: [&Strata; 1]| [aggregates(s, &[1.0, 1.0]).mean];
        assert_eq!(
            bootstrap_intervals([&strata], 200, &mut rng, mean),
            [[0.5, 0.5]]
        );
        // Two samples resampled independently: P(X > Y) of separated samples stays 1.
        let x = one_env(&[5.0, 6.0, 7.0]);
        let y = one_env(&[1.0, 2.0]);
        let poi = |[a, b]: [&Strata; 2]| [probability_of_improvement(a, b).unwrap()];
        assert_eq!(
            bootstrap_intervals([&x, &y], 200, &mut rng, poi),
            [[1.0, 1.0]]
        );
    }

    #[test]
    fn profiles_count_runs_strictly_above_each_threshold() {
        let strata = vec![("a".into(), vec![1.0, 2.0]), ("b".into(), vec![3.0, 4.0])];
        assert_eq!(
            performance_profile(&strata, &[0.0, 2.0, 3.5, 4.0]),
            [1.0, 0.5, 0.25, 0.0]
        );
    }
}
