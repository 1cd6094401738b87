//! Comparing agents as rliable does: a run (one seed) is the unit, its score is the mean
//! evaluation return of one of its checkpoints, and a group of runs (an algorithm, a
//! config) is summarised by rliable's aggregates with 95% stratified-bootstrap intervals
//! (envs as strata); each ordered pair of groups gets the probability of improvement. Pure
//! computation and figures: finding runs and evaluating them is the caller's.

pub mod figures;

use std::path::PathBuf;

use gradless_envs::EnvRng;
use serde::Serialize;
use thiserror::Error;

use gradless_stats::{
    Aggregates, Strata, aggregates, bootstrap_intervals, performance_profile,
    probability_of_improvement, trimmed_mean,
};

/// Why groups could not be compared.
#[derive(Debug, Error)]
pub enum CompareError {
    /// A group without runs.
    #[error("group `{0}` has no runs")]
    EmptyGroup(String),
    /// An env with no target (reward threshold) to measure the optimality gap against.
    #[error("{env} has no reward threshold: give one with --threshold {env}=VALUE")]
    NoTarget {
        /// The env.
        env: String,
    },
    /// Scores that cannot be normalised.
    #[error("{env}: cannot normalise scores, {reason}")]
    Normalisation {
        /// The env.
        env: String,
        /// Why.
        reason: String,
    },
    /// A score that is not a finite number.
    #[error("{run}: score {score} is not finite")]
    NonFinite {
        /// The run.
        run: PathBuf,
        /// Its score.
        score: f64,
    },
}

/// One run's score.
#[derive(Debug, Clone, PartialEq)]
pub struct RunScore {
    /// The run directory.
    pub run: PathBuf,
    /// The checkpoint the score is of.
    pub checkpoint: PathBuf,
    /// The env it was evaluated on.
    pub env: String,
    /// The mean evaluation return.
    pub score: f64,
    /// The run's evaluated checkpoints as `(step, mean return)`, in step order (for
    /// sample-efficiency curves; may be empty).
    pub curve: Vec<(u64, f64)>,
    /// The greedy evaluations logged while it trained as `(step, mean return)`: the curve
    /// when its evaluated checkpoints do not give one (pruned checkpoints); may be empty.
    pub training_curve: Vec<(u64, f64)>,
    /// The seed it was trained with, where its folder says (RL Zoo's `args.yml`).
    pub seed: Option<u64>,
}

/// Runs compared as one.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Its name in reports and figures.
    pub name: String,
    /// Its runs.
    pub runs: Vec<RunScore>,
}

/// What an env's scores are measured against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvReference {
    /// The env.
    pub env: String,
    /// The score that counts as reaching the goal: the optimality gap's `gamma` (before
    /// normalisation) and the normalised score 1.
    pub target: Option<f64>,
    /// The score that normalises to 0 (a uniform random policy's).
    pub random: Option<f64>,
}

/// How to compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareSettings {
    /// Bootstrap resamples per interval.
    pub reps: usize,
    /// Seed of the bootstrap's generator.
    pub seed: u64,
    /// Normalise each env's scores: `(score - random) / (target - random)`.
    pub normalize: bool,
}

/// A run as a group's report lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunLine {
    /// The run directory.
    pub run: PathBuf,
    /// The checkpoint scored.
    pub checkpoint: PathBuf,
    /// The env it was evaluated on.
    pub env: String,
    /// Its score (mean evaluation return).
    pub score: f64,
    /// The score normalised, when scores are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalized_score: Option<f64>,
    /// The seed it was trained with, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// One group's aggregates with their 95% intervals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupReport {
    /// The group's name.
    pub group: String,
    /// Its runs.
    pub runs: Vec<RunLine>,
    /// Interquartile mean over runs.
    pub iqm: f64,
    /// Its interval.
    pub iqm_ci95: [f64; 2],
    /// Mean over envs of the mean over runs.
    pub mean: f64,
    /// Its interval.
    pub mean_ci95: [f64; 2],
    /// Median over envs of the mean over runs.
    pub median: f64,
    /// Its interval.
    pub median_ci95: [f64; 2],
    /// Optimality gap.
    pub optimality_gap: f64,
    /// Its interval.
    pub optimality_gap_ci95: [f64; 2],
    /// Its IQM over runs against training steps, where its runs share two evaluated steps
    /// or more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<Curve>,
}

/// The probability that a run of group `x` scores above one of group `y`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairReport {
    /// The first group.
    pub x: String,
    /// The second group.
    pub y: String,
    /// P(X > Y), averaged over the envs both have.
    pub probability_of_improvement: f64,
    /// Its interval.
    pub probability_of_improvement_ci95: [f64; 2],
}

/// Everything a comparison reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// One report per group, in the order given.
    pub groups: Vec<GroupReport>,
    /// One report per ordered pair of groups that share an env.
    pub pairs: Vec<PairReport>,
    /// Each group's performance profile.
    pub profiles: Vec<Profile>,
    /// Whether scores were normalised.
    pub normalized: bool,
}

/// Points on a performance profile.
pub const PROFILE_POINTS: usize = 101;

/// The fraction of a group's runs scoring above each threshold, with its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The thresholds (evenly spaced over every group's scores).
    pub taus: Vec<f64>,
    /// The fraction of runs above each.
    pub fraction: Vec<f64>,
    /// Its 95% interval at each.
    pub ci95: Vec<[f64; 2]>,
}

/// A group's IQM over runs at the steps where all its runs were evaluated, with its 95%
/// stratified-bootstrap interval (its own generator, seeded with the comparison's seed, so
/// a group's curve is the same whatever it is compared with).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    /// Which evaluations it is drawn from.
    pub source: CurveSource,
    /// Training steps.
    pub steps: Vec<u64>,
    /// The IQM of the runs' scores there.
    pub iqm: Vec<f64>,
    /// Its 95% interval.
    pub ci95: Vec<[f64; 2]>,
}

/// The evaluations a [`Curve`] is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CurveSource {
    /// The runs' checkpoints, evaluated as the comparison's scores are.
    Checkpoints,
    /// The greedy evaluations logged during training (`metrics.jsonl`), used when the
    /// checkpoints' evaluations share fewer than two steps.
    Training,
}

impl CurveSource {
    /// What the curve's points are, for figures.
    pub fn describe(self) -> &'static str {
        match self {
            CurveSource::Checkpoints => "evaluated checkpoints",
            CurveSource::Training => "evaluations during training",
        }
    }
}

/// Turns raw scores into the values compared (normalised or not), with each env's target.
struct Scale<'a> {
    references: &'a [EnvReference],
    normalize: bool,
}

impl Scale<'_> {
    fn reference(&self, env: &str) -> Option<&EnvReference> {
        self.references.iter().find(|r| r.env == env)
    }

    fn target(&self, env: &str) -> Result<f64, CompareError> {
        let no_target = || CompareError::NoTarget {
            env: env.to_string(),
        };
        let target = self
            .reference(env)
            .and_then(|r| r.target)
            .ok_or_else(no_target)?;
        Ok(if self.normalize { 1.0 } else { target })
    }

    fn value(&self, env: &str, score: f64) -> Result<f64, CompareError> {
        if !self.normalize {
            return Ok(score);
        }
        let failed = |reason: &str| CompareError::Normalisation {
            env: env.to_string(),
            reason: reason.to_string(),
        };
        let reference = self
            .reference(env)
            .ok_or_else(|| failed("no reference scores"))?;
        let target = reference.target.ok_or_else(|| CompareError::NoTarget {
            env: env.to_string(),
        })?;
        let random = reference
            .random
            .ok_or_else(|| failed("no random-policy score"))?;
        if !(target - random).is_normal() {
            return Err(failed(&format!(
                "its target ({target}) equals its random-policy score ({random})"
            )));
        }
        Ok((score - random) / (target - random))
    }
}

/// A group's runs as strata (envs in name order) of compared values.
fn strata_of(group: &Group, scale: &Scale) -> Result<Vec<(String, Vec<f64>)>, CompareError> {
    let mut strata: Vec<(String, Vec<f64>)> = Vec::new();
    for run in &group.runs {
        if !run.score.is_finite() {
            return Err(CompareError::NonFinite {
                run: run.run.clone(),
                score: run.score,
            });
        }
        let value = scale.value(&run.env, run.score)?;
        match strata.iter_mut().find(|(env, _)| env == &run.env) {
            Some((_, values)) => values.push(value),
            None => strata.push((run.env.clone(), vec![value])),
        }
    }
    strata.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(strata)
}

fn aggregate_values(a: Aggregates) -> [f64; 4] {
    [a.iqm, a.mean, a.median, a.optimality_gap]
}

/// Compares `groups`: every group's aggregates, then P(X > Y) for every ordered pair that
/// shares an env, all intervals from one generator seeded with `settings.seed`.
///
/// Long because every interval draws from that one generator in a fixed order (groups, then
/// pairs), which is what makes a comparison repeatable from its seed.
pub fn compare(
    groups: &[Group],
    references: &[EnvReference],
    settings: &CompareSettings,
) -> Result<Comparison, CompareError> {
    let scale = Scale {
        references,
        normalize: settings.normalize,
    };
    let mut rng = EnvRng::from_seed(settings.seed);
    let mut reports = Vec::with_capacity(groups.len());
    let mut all_strata = Vec::with_capacity(groups.len());
    for group in groups {
        if group.runs.is_empty() {
            return Err(CompareError::EmptyGroup(group.name.clone()));
        }
        let strata = strata_of(group, &scale)?;
        let targets: Vec<f64> = strata
            .iter()
            .map(|(env, _)| scale.target(env))
            .collect::<Result<_, _>>()?;
        let point = aggregates(&strata, &targets);
        let [iqm_ci95, mean_ci95, median_ci95, optimality_gap_ci95] =
            bootstrap_intervals([&strata], settings.reps, &mut |n| rng.below(n), |[s]| {
                aggregate_values(aggregates(s, &targets))
            });
        let runs = group
            .runs
            .iter()
            .map(|run| RunLine {
                run: run.run.clone(),
                checkpoint: run.checkpoint.clone(),
                env: run.env.clone(),
                score: run.score,
                normalized_score: settings
                    .normalize
                    .then(|| scale.value(&run.env, run.score).expect("checked above")),
                seed: run.seed,
            })
            .collect();
        reports.push(GroupReport {
            group: group.name.clone(),
            runs,
            iqm: point.iqm,
            iqm_ci95,
            mean: point.mean,
            mean_ci95,
            median: point.median,
            median_ci95,
            optimality_gap: point.optimality_gap,
            optimality_gap_ci95,
            curve: sample_efficiency(&group.runs, &scale, settings.reps, settings.seed)?,
        });
        all_strata.push(strata);
    }
    let mut pairs = Vec::new();
    for (i, x) in all_strata.iter().enumerate() {
        for (j, y) in all_strata.iter().enumerate() {
            if i == j {
                continue;
            }
            let Some(point) = probability_of_improvement(x, y) else {
                continue;
            };
            let [interval] =
                bootstrap_intervals([x, y], settings.reps, &mut |n| rng.below(n), |[a, b]| {
                    [probability_of_improvement(a, b).expect("the resamples keep their envs")]
                });
            pairs.push(PairReport {
                x: groups[i].name.clone(),
                y: groups[j].name.clone(),
                probability_of_improvement: point,
                probability_of_improvement_ci95: interval,
            });
        }
    }
    let (low, high) = all_strata
        .iter()
        .flatten()
        .flat_map(|(_, values)| values.iter().copied())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let taus: Vec<f64> = (0..PROFILE_POINTS)
        .map(|k| low + (high - low) * k as f64 / (PROFILE_POINTS - 1) as f64)
        .collect();
    let profiles = all_strata
        .iter()
        .map(|strata| {
            let ci95 =
                bootstrap_intervals([strata], settings.reps, &mut |n| rng.below(n), |[s]| {
                    let fractions: [f64; PROFILE_POINTS] = performance_profile(s, &taus)
                        .try_into()
                        .expect("one fraction per threshold");
                    fractions
                });
            Profile {
                taus: taus.clone(),
                fraction: performance_profile(strata, &taus),
                ci95: ci95.to_vec(),
            }
        })
        .collect();
    Ok(Comparison {
        groups: reports,
        pairs,
        profiles,
        normalized: settings.normalize,
    })
}

/// The IQM over `runs` (of one env, scores not normalised) against steps, as [`compare`]
/// draws a group's curve with `reps` resamples from `seed`; `None` when the runs share
/// fewer than two evaluated steps.
pub fn curve_over_runs(
    runs: &[RunScore],
    reps: usize,
    seed: u64,
) -> Result<Option<Curve>, CompareError> {
    let scale = Scale {
        references: &[],
        normalize: false,
    };
    sample_efficiency(runs, &scale, reps, seed)
}

/// Where a run's points of one source are.
type Points = fn(&RunScore) -> &[(u64, f64)];

/// The steps at which every run's `points` has a value, in the first run's order.
fn shared_steps(runs: &[RunScore], points: impl Fn(&RunScore) -> &[(u64, f64)]) -> Vec<u64> {
    let mut steps: Vec<u64> = points(&runs[0]).iter().map(|&(step, _)| step).collect();
    steps.retain(|step| {
        runs.iter()
            .all(|r| points(r).iter().any(|(s, _)| s == step))
    });
    steps
}

/// The runs' IQM at every step all of them have an evaluation at, from their evaluated
/// checkpoints, or from their evaluations during training where those share more steps
/// (checkpoints pruned as training went on); `None` when neither gives two steps.
fn sample_efficiency(
    runs: &[RunScore],
    scale: &Scale,
    reps: usize,
    seed: u64,
) -> Result<Option<Curve>, CompareError> {
    fn from_checkpoints(run: &RunScore) -> &[(u64, f64)] {
        &run.curve
    }
    fn from_training(run: &RunScore) -> &[(u64, f64)] {
        &run.training_curve
    }
    let checkpoint_steps = shared_steps(runs, from_checkpoints).len();
    let (source, points): (CurveSource, Points) =
        if checkpoint_steps >= shared_steps(runs, from_training).len() {
            (CurveSource::Checkpoints, from_checkpoints)
        } else {
            (CurveSource::Training, from_training)
        };
    let steps = shared_steps(runs, points);
    if steps.len() < 2 {
        return Ok(None);
    }
    let mut rng = EnvRng::from_seed(seed);
    let mut curve = Curve {
        source,
        steps: steps.clone(),
        iqm: Vec::new(),
        ci95: Vec::new(),
    };
    for step in steps {
        let at_step = Group {
            name: String::new(),
            runs: runs
                .iter()
                .map(|r| RunScore {
                    score: points(r).iter().find(|(s, _)| *s == step).expect("kept").1,
                    curve: Vec::new(),
                    training_curve: Vec::new(),
                    ..r.clone()
                })
                .collect(),
        };
        let strata = strata_of(&at_step, scale)?;
        let iqm = |[s]: [&Strata; 1]| {
            let mut values: Vec<f64> = s.iter().flat_map(|(_, v)| v.iter().copied()).collect();
            [trimmed_mean(&mut values)]
        };
        let [interval] = bootstrap_intervals([&strata], reps, &mut |n| rng.below(n), iqm);
        curve.iqm.push(iqm([&strata])[0]);
        curve.ci95.push(interval);
    }
    Ok(Some(curve))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, env: &str, score: f64) -> RunScore {
        RunScore {
            run: PathBuf::from(name),
            checkpoint: PathBuf::from(name).join("checkpoints/step-0000000100"),
            env: env.to_string(),
            score,
            curve: Vec::new(),
            training_curve: Vec::new(),
            seed: None,
        }
    }

    fn cartpole_reference() -> Vec<EnvReference> {
        vec![EnvReference {
            env: "CartPole-v1".into(),
            target: Some(475.0),
            random: Some(22.0),
        }]
    }

    fn settings(normalize: bool) -> CompareSettings {
        CompareSettings {
            reps: 1000,
            seed: 0,
            normalize,
        }
    }

    #[test]
    fn groups_get_aggregates_and_ordered_pairs_their_probability() {
        let groups = [
            Group {
                name: "ppo".into(),
                runs: vec![
                    run("p1", "CartPole-v1", 500.0),
                    run("p2", "CartPole-v1", 480.0),
                    run("p3", "CartPole-v1", 400.0),
                ],
            },
            Group {
                name: "dqn".into(),
                runs: vec![
                    run("d1", "CartPole-v1", 450.0),
                    run("d2", "CartPole-v1", 300.0),
                ],
            },
        ];
        let comparison = compare(&groups, &cartpole_reference(), &settings(false)).unwrap();
        assert!(
            comparison.groups.iter().all(|g| g.curve.is_none()),
            "no evaluated steps"
        );
        let profile = &comparison.profiles[0];
        assert_eq!((profile.taus[0], profile.taus[100]), (300.0, 500.0));
        // Above 300: all three ppo runs; above 400 (tau 50): 2 of 3; above 500: none.
        assert_eq!(
            (
                profile.fraction[0],
                profile.fraction[50],
                profile.fraction[100]
            ),
            (1.0, 2.0 / 3.0, 0.0)
        );
        let ppo = &comparison.groups[0];
        assert_eq!(ppo.runs.len(), 3);
        assert_eq!(ppo.mean, 460.0);
        assert_eq!(ppo.median, 460.0, "one env: the median is the mean");
        // Shortfalls below 475: 0, 0, 75 over 3 runs.
        assert_eq!(ppo.optimality_gap, 25.0);
        assert!(ppo.iqm_ci95[0] <= ppo.iqm && ppo.iqm <= ppo.iqm_ci95[1]);
        assert_eq!(comparison.pairs.len(), 2);
        let pair = &comparison.pairs[0];
        assert_eq!((pair.x.as_str(), pair.y.as_str()), ("ppo", "dqn"));
        // 500 and 480 beat both; 400 beats 300 only: 5 of 6 pairs.
        assert_eq!(pair.probability_of_improvement, 5.0 / 6.0);
        assert_eq!(comparison.pairs[1].probability_of_improvement, 1.0 / 6.0);
        // The same seed gives the same intervals.
        let again = compare(&groups, &cartpole_reference(), &settings(false)).unwrap();
        assert_eq!(again, comparison);
    }

    #[test]
    fn curves_follow_the_steps_every_run_was_evaluated_at() {
        let mut a = run("a", "CartPole-v1", 300.0);
        a.curve = vec![(100, 50.0), (200, 150.0), (300, 300.0)];
        let mut b = run("b", "CartPole-v1", 400.0);
        b.curve = vec![(100, 30.0), (300, 400.0)];
        let groups = [Group {
            name: "g".into(),
            runs: vec![a, b],
        }];
        let comparison = compare(&groups, &cartpole_reference(), &settings(false)).unwrap();
        let curve = comparison.groups[0].curve.as_ref().unwrap();
        assert_eq!(curve.source, CurveSource::Checkpoints);
        assert_eq!(curve.steps, [100, 300]);
        assert_eq!(curve.iqm, [40.0, 350.0]);
        assert!(
            curve
                .ci95
                .iter()
                .zip(&curve.iqm)
                .all(|(ci, v)| ci[0] <= *v && *v <= ci[1])
        );
        // The same curve alone, and in another company.
        let alone = curve_over_runs(&groups[0].runs, 1000, 0).unwrap();
        assert_eq!(alone.as_ref(), Some(curve));
        let mut company = groups.to_vec();
        company.insert(
            0,
            Group {
                name: "other".into(),
                runs: vec![
                    run("c", "CartPole-v1", 100.0),
                    run("d", "CartPole-v1", 200.0),
                ],
            },
        );
        let compared = compare(&company, &cartpole_reference(), &settings(false)).unwrap();
        assert_eq!(compared.groups[1].curve.as_ref(), Some(curve));
    }

    #[test]
    fn pruned_checkpoints_give_the_curve_of_the_evaluations_during_training() {
        let mut a = run("a", "CartPole-v1", 300.0);
        a.curve = vec![(300, 300.0)];
        a.training_curve = vec![(100, 50.0), (200, 150.0), (300, 290.0)];
        let mut b = run("b", "CartPole-v1", 400.0);
        b.curve = vec![(300, 400.0)];
        b.training_curve = vec![(100, 30.0), (200, 170.0), (300, 410.0)];
        let curve = curve_over_runs(&[a.clone(), b.clone()], 200, 1)
            .unwrap()
            .unwrap();
        assert_eq!(curve.source, CurveSource::Training);
        assert_eq!(curve.steps, [100, 200, 300]);
        assert_eq!(curve.iqm, [40.0, 160.0, 350.0]);
        // One run without a log: no curve at all.
        let unlogged = RunScore {
            training_curve: Vec::new(),
            ..b.clone()
        };
        assert_eq!(
            curve_over_runs(&[a.clone(), unlogged], 200, 1).unwrap(),
            None
        );
        // Two evaluated checkpoints against three steps of training evaluations: the
        // longer curve; as many steps each: the checkpoints, scored as the comparison is.
        a.curve.insert(0, (200, 140.0));
        b.curve.insert(0, (200, 160.0));
        let longer = curve_over_runs(&[a.clone(), b.clone()], 200, 1).unwrap();
        assert_eq!(longer.unwrap().source, CurveSource::Training);
        a.curve.insert(0, (100, 60.0));
        b.curve.insert(0, (100, 20.0));
        let level = curve_over_runs(&[a.clone(), b.clone()], 200, 1)
            .unwrap()
            .unwrap();
        assert_eq!(level.source, CurveSource::Checkpoints);
        assert_eq!(level.iqm, [40.0, 150.0, 350.0]);
    }

    #[test]
    fn normalised_scores_put_random_at_zero_and_the_target_at_one() {
        let groups = [Group {
            name: "a".into(),
            runs: vec![
                run("r1", "CartPole-v1", 22.0),
                run("r2", "CartPole-v1", 475.0),
            ],
        }];
        let comparison = compare(&groups, &cartpole_reference(), &settings(true)).unwrap();
        let report = &comparison.groups[0];
        let normalized: Vec<f64> = report
            .runs
            .iter()
            .map(|r| r.normalized_score.unwrap())
            .collect();
        assert_eq!(normalized, [0.0, 1.0]);
        assert_eq!(report.mean, 0.5);
        assert_eq!(report.optimality_gap, 0.5);
        assert_eq!(report.runs[1].score, 475.0, "raw scores are kept");
    }

    #[test]
    fn missing_targets_and_empty_groups_are_errors() {
        let groups = [Group {
            name: "a".into(),
            runs: vec![run("r1", "Pendulum-v1", -300.0)],
        }];
        let references = [EnvReference {
            env: "Pendulum-v1".into(),
            target: None,
            random: Some(-1200.0),
        }];
        let error = compare(&groups, &references, &settings(false)).unwrap_err();
        assert!(
            error.to_string().contains("--threshold Pendulum-v1="),
            "{error}"
        );
        let empty = [Group {
            name: "none".into(),
            runs: Vec::new(),
        }];
        assert!(matches!(
            compare(&empty, &references, &settings(false)),
            Err(CompareError::EmptyGroup(_))
        ));
        let nan = [Group {
            name: "nan".into(),
            runs: vec![run("r", "CartPole-v1", f64::NAN)],
        }];
        assert!(compare(&nan, &cartpole_reference(), &settings(false)).is_err());
    }
}
