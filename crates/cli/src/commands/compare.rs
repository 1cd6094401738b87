//! `gradless compare`: groups of runs compared as rliable compares them, a run's score
//! being the mean evaluation return of one of its checkpoints.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use gradless_compare::figures::write_figures;
use gradless_compare::{
    CompareSettings, Comparison, EnvReference, Group, GroupReport, RunScore, compare,
};
use gradless_device::InferenceDevice;
use gradless_envs::MakeArgs;
use gradless_evaluator::{
    AgentDevice, EnvBackend, EnvBackendChoice, EvalSettings, LoadedCheckpoint, default_eval_place,
    discover, evaluation_env, prepare_output_dir, random_policy_score, saved_evaluation,
    write_outputs,
};
use gradless_trainer::metrics_log::logged_evaluations;
use serde::Serialize;

use crate::output::{print_json_line, write_atomically};
use crate::settings::{ActingArgs, BootstrapArgs, EpisodeArgs, FigureArgs, Scored};

/// Whether scores are normalised per env.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Normalize {
    /// When the groups span several envs.
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

/// Arguments of `gradless compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Groups: NAME=PATH, PATH a run directory or a folder of runs (a NAME given twice
    /// gathers both paths' runs).
    #[arg(required = true, value_name = "NAME=PATH")]
    groups: Vec<String>,
    /// The checkpoint of each run that is scored.
    #[arg(long, value_enum, default_value_t = Scored::Final)]
    checkpoint: Scored,
    /// Each run's scored checkpoint is evaluated on these episodes (first, where it has no
    /// such evaluation yet, as `gradless eval` evaluates it).
    #[command(flatten)]
    counts: EpisodeArgs,
    /// `--seed` seeds the evaluations (episode i from SEED + i) and the bootstrap.
    #[command(flatten)]
    acting: ActingArgs,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
    /// The score counting as solved, for the optimality gap and normalisation: ENV=VALUE,
    /// or VALUE when every run is of one env (default: the env's reward threshold).
    #[arg(long, value_name = "[ENV=]VALUE")]
    threshold: Vec<String>,
    /// Normalise scores per env as (score - random) / (threshold - random), `random` being
    /// a uniform random policy's mean return over 100 seeded episodes.
    #[arg(long, value_enum, default_value_t = Normalize::Auto)]
    normalize: Normalize,
    /// Where the figures and comparison.json are written.
    #[arg(long, default_value = "comparison")]
    out: PathBuf,
    #[command(flatten)]
    figures: FigureArgs,
}

/// Random-policy episodes behind each env's normalisation.
const RANDOM_EPISODES: usize = 100;

/// `NAME=PATH` arguments gathered by name, in first-seen order.
fn parse_groups(specs: &[String]) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let mut groups: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for spec in specs {
        let Some((name, path)) = spec
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        else {
            bail!("`{spec}`: groups are NAME=PATH (e.g. ppo=runs/ppo)");
        };
        match groups.iter_mut().find(|(n, _)| n == name) {
            Some((_, paths)) => paths.push(PathBuf::from(path)),
            None => groups.push((name.to_string(), vec![PathBuf::from(path)])),
        }
    }
    Ok(groups)
}

/// `--threshold` values as `(env or None for all, value)`.
fn parse_thresholds(specs: &[String]) -> Result<Vec<(Option<String>, f64)>> {
    specs
        .iter()
        .map(|spec| {
            let (env, value) = match spec.split_once('=') {
                Some((env, value)) => (Some(env.to_string()), value),
                None => (None, spec.as_str()),
            };
            let value: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .with_context(|| format!("--threshold `{spec}`: expected [ENV=]NUMBER"))?;
            Ok((env, value))
        })
        .collect()
}

/// Scores runs, evaluating those whose checkpoint lacks a matching evaluation.
struct Scorer<'a> {
    args: &'a CompareArgs,
    settings: EvalSettings,
    device: Option<AgentDevice>,
    /// Every env a run was evaluated on, each once, in the order first met.
    envs: Vec<MakeArgs>,
}

impl Scorer<'_> {
    /// The mean return of `checkpoint` under the settings, from its saved evaluation or a
    /// new one (written where `gradless eval` writes it, the run locked meanwhile).
    fn score(&mut self, run: &Path, checkpoint: &Path, env: &MakeArgs) -> Result<f64> {
        let (base, relative) = default_eval_place(checkpoint);
        if let Some(saved) = saved_evaluation(&base.join(&relative))
            && saved.matches(&self.settings, env)
        {
            return Ok(saved.summary.mean_return);
        }
        tracing::info!(checkpoint = %checkpoint.display(), "evaluating");
        let _lock = gradless_files::DirLock::acquire(run)
            .map_err(|e| anyhow::Error::from(e).context(run.display().to_string()))?;
        let device = match &self.device {
            Some(device) => device,
            None => self.device.insert(AgentDevice::new(&InferenceDevice::new(
                &self.args.acting.base_device()?,
            ))),
        };
        let dir = prepare_output_dir(&base, &relative)?;
        let evaluation =
            LoadedCheckpoint::load(checkpoint, &self.settings, device)?.evaluate(&self.settings)?;
        write_outputs(&evaluation, &dir)?;
        Ok(evaluation.summary.mean_return)
    }

    /// Every evaluated checkpoint of a run whose evaluation matches, as `(step, mean)`.
    fn curve(&self, checkpoints: &[PathBuf], env: &MakeArgs) -> Vec<(u64, f64)> {
        checkpoints
            .iter()
            .filter_map(|c| {
                let (base, relative) = default_eval_place(c);
                saved_evaluation(&base.join(relative))
            })
            .filter(|saved| saved.matches(&self.settings, env))
            .filter_map(|saved| Some((saved.step?, saved.summary.mean_return)))
            .collect()
    }

    fn group(&mut self, name: &str, paths: &[PathBuf]) -> Result<Group> {
        let mut runs = Vec::new();
        for path in paths {
            let targets = discover(path, self.args.checkpoint.zoo_model())?;
            let found: Vec<_> = targets.iter().filter(|t| t.run.is_some()).collect();
            if found.is_empty() {
                bail!(
                    "{}: no run directory here (compare takes runs, not lone checkpoints)",
                    path.display()
                );
            }
            for target in found {
                let run = target.run.as_ref().expect("filtered");
                let checkpoint = self.args.checkpoint.pick(target)?;
                let env = evaluation_env(&checkpoint, &self.settings)?;
                let score = self.score(run, &checkpoint, &env)?;
                runs.push(RunScore {
                    run: run.clone(),
                    checkpoint,
                    curve: self.curve(&target.checkpoints, &env),
                    training_curve: logged_evaluations(run),
                    env: env.to_string(),
                    score,
                    seed: target.zoo.as_ref().and_then(|zoo| zoo.seed),
                });
                if !self.envs.contains(&env) {
                    self.envs.push(env);
                }
            }
        }
        Ok(Group {
            name: name.to_string(),
            runs,
        })
    }
}

/// Each env's target (threshold) and, when normalising, its random-policy score; an env
/// made with keyword arguments is an env of its own (its runs' `env` names it with them), and
/// a threshold given for its id holds for it.
fn references(
    envs: &[MakeArgs],
    thresholds: &[(Option<String>, f64)],
    normalize: bool,
    seed: u64,
) -> Result<Vec<EnvReference>> {
    if envs.len() > 1 && thresholds.iter().any(|(env, _)| env.is_none()) {
        let names: Vec<String> = envs.iter().map(MakeArgs::to_string).collect();
        bail!(
            "--threshold: the runs span {}; give ENV=VALUE for each",
            names.join(", ")
        );
    }
    envs.iter()
        .map(|env| {
            let name = env.to_string();
            // A threshold for this env wins over one for its id, then one for every env.
            let given = [Some(name.as_str()), Some(env.id.as_str()), None]
                .iter()
                .find_map(|wanted| thresholds.iter().find(|(e, _)| e.as_deref() == *wanted))
                .map(|(_, v)| *v);
            let target = given.or(gradless_envs::spec(&env.id)?.reward_threshold);
            let random = normalize
                .then(|| random_policy_score(env, RANDOM_EPISODES, seed))
                .transpose()?;
            Ok(EnvReference {
                env: name,
                target,
                random,
            })
        })
        .collect()
}

fn interval(value: f64, ci: [f64; 2]) -> String {
    format!("{value:.3} [{:.3}, {:.3}]", ci[0], ci[1])
}

fn print_table(comparison: &Comparison) {
    let width = comparison
        .groups
        .iter()
        .map(|g| g.group.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<width$} {:>4}  {:<28} {:<28} {:<28} {:<28}",
        "group", "runs", "IQM [95% CI]", "mean", "median", "optimality gap"
    );
    for g in &comparison.groups {
        println!(
            "{:<width$} {:>4}  {:<28} {:<28} {:<28} {:<28}",
            g.group,
            g.runs.len(),
            interval(g.iqm, g.iqm_ci95),
            interval(g.mean, g.mean_ci95),
            interval(g.median, g.median_ci95),
            interval(g.optimality_gap, g.optimality_gap_ci95),
        );
    }
    if comparison.normalized {
        println!("(scores normalised per env: 0 = random policy, 1 = threshold)");
    }
    for group in &comparison.groups {
        if let Some(curve) = &group.curve {
            println!(
                "{}: IQM over runs [95% CI] by step ({})",
                group.group,
                curve.source.describe()
            );
            for ((step, iqm), ci) in curve.steps.iter().zip(&curve.iqm).zip(&curve.ci95) {
                println!("  {step:>10}  {}", interval(*iqm, *ci));
            }
        }
    }
    for pair in &comparison.pairs {
        println!(
            "P({} > {}) = {}",
            pair.x,
            pair.y,
            interval(
                pair.probability_of_improvement,
                pair.probability_of_improvement_ci95
            )
        );
    }
}

/// What `comparison.json` holds.
#[derive(Serialize)]
struct ComparisonFile<'a> {
    envs: &'a [EnvReference],
    groups: &'a [GroupReport],
    pairs: &'a [gradless_compare::PairReport],
    normalized: bool,
    reps: usize,
    seed: u64,
}

/// Runs `gradless compare`.
pub fn run(args: &CompareArgs, json: bool) -> Result<()> {
    args.bootstrap.check()?;
    args.counts.check(args.acting.seed)?;
    let named = parse_groups(&args.groups)?;
    let thresholds = parse_thresholds(&args.threshold)?;
    let figures = args.figures.options()?;
    let out = prepare_output_dir(&args.out, Path::new(""))?;
    let mut scorer = Scorer {
        args,
        settings: args
            .acting
            .eval_settings(&args.counts, EnvBackendChoice::Only(EnvBackend::Cpu))?,
        device: None,
        envs: Vec::new(),
    };
    let groups: Vec<Group> = named
        .iter()
        .map(|(name, paths)| scorer.group(name, paths))
        .collect::<Result<_>>()?;
    let mut envs = std::mem::take(&mut scorer.envs);
    envs.sort_by_key(MakeArgs::to_string);
    let normalize = match args.normalize {
        Normalize::Auto => envs.len() > 1,
        Normalize::On => true,
        Normalize::Off => false,
    };
    let references = references(&envs, &thresholds, normalize, args.acting.seed)?;
    let settings = CompareSettings {
        reps: args.bootstrap.reps,
        seed: args.acting.seed,
        normalize,
    };
    let comparison = compare(&groups, &references, &settings)?;
    if json {
        for group in &comparison.groups {
            print_json_line(group)?;
        }
        for pair in &comparison.pairs {
            print_json_line(pair)?;
        }
    } else {
        print_table(&comparison);
    }
    let file = ComparisonFile {
        envs: &references,
        groups: &comparison.groups,
        pairs: &comparison.pairs,
        normalized: comparison.normalized,
        reps: args.bootstrap.reps,
        seed: args.acting.seed,
    };
    let text = serde_json::to_vec_pretty(&file).context("serialising the comparison")?;
    write_atomically(&out.join("comparison.json"), &text)?;
    for file in write_figures(&comparison, &out, &figures)? {
        tracing::info!(file = %file.display(), "figure written");
    }
    Ok(())
}
