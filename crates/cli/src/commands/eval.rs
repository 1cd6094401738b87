//! `gradless eval`: validate checkpoints in inference mode and report episode returns.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use gradless_device::{Backend, InferenceDevice};
use gradless_evaluator::{
    CheckpointEvaluation, EvalSettings, discover, evaluate_checkpoint, write_learning_curve,
    write_outputs,
};

use crate::output::print_json_line;

/// Arguments of `gradless eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A checkpoint directory, a run directory (every checkpoint, in step order) or a
    /// folder of runs.
    path: PathBuf,
    /// Episodes per checkpoint; episode i runs from seed SEED + i.
    #[arg(long, default_value_t = 100)]
    episodes: usize,
    /// Envs stepped side by side (per-episode results do not depend on it).
    #[arg(long, default_value_t = 16)]
    num_envs: usize,
    /// Seed of episode 0.
    #[arg(long, default_value_t = 1_000_000)]
    seed: u64,
    /// Sample actions from the policy instead of taking the greedy ones.
    #[arg(long)]
    stochastic: bool,
    /// Device: wgpu or flex.
    #[arg(long, default_value = "wgpu")]
    device: String,
    /// Evaluate on another env with the same spaces (e.g. CartPole-v0).
    #[arg(long)]
    env: Option<String>,
    /// Where to write episodes.jsonl, summary.json and summary.csv (one folder per
    /// checkpoint); default: an `eval` folder inside each checkpoint.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn output_dir(out: Option<&Path>, checkpoint: &Path, run: Option<&Path>) -> PathBuf {
    match out {
        None => checkpoint.join("eval"),
        Some(out) => {
            let mut dir = out.to_path_buf();
            if let Some(run) = run.and_then(Path::file_name) {
                dir.push(run);
            }
            dir.join(checkpoint.file_name().unwrap_or_default())
        }
    }
}

fn print_row(evaluation: &CheckpointEvaluation) {
    let s = &evaluation.summary;
    println!(
        "{:<48} {:>10} {:>5} {:>8.1} {:>7.1} {:>8.1} {:>7.1} {:>7.1} {:>8.1} [{:>6.1}, {:>6.1}] {:>6.0}%",
        evaluation.checkpoint.display(),
        evaluation.step,
        s.episodes,
        s.mean_return,
        s.std_return,
        s.median_return,
        s.min_return,
        s.max_return,
        s.iqm,
        s.iqm_ci95[0],
        s.iqm_ci95[1],
        100.0 * s.truncated_fraction
    );
}

/// Runs `gradless eval`; a checkpoint that fails is reported and skipped, and the exit
/// status says so at the end.
pub fn run(args: &EvalArgs, json: bool) -> Result<()> {
    if args.episodes == 0 || args.num_envs == 0 {
        bail!("--episodes and --num-envs must be at least 1");
    }
    let backend: Backend = args.device.parse().context("--device")?;
    let device = InferenceDevice::new(&gradless_device::open(backend)?);
    let settings = EvalSettings {
        episodes: args.episodes,
        num_envs: args.num_envs,
        seed: args.seed,
        stochastic: args.stochastic,
        env: args.env.clone(),
    };
    let targets = discover(&args.path)?;
    if !json {
        println!(
            "{:<48} {:>10} {:>5} {:>8} {:>7} {:>8} {:>7} {:>7} {:>8} {:>16} {:>7}",
            "checkpoint",
            "step",
            "eps",
            "mean",
            "std",
            "median",
            "min",
            "max",
            "IQM",
            "IQM 95% CI",
            "trunc"
        );
    }
    let total: usize = targets.iter().map(|t| t.checkpoints.len()).sum();
    let mut failed = 0;
    for target in &targets {
        let mut evaluated = Vec::new();
        for checkpoint in &target.checkpoints {
            let result =
                evaluate_checkpoint(checkpoint, &settings, &device).and_then(|evaluation| {
                    let dir = output_dir(args.out.as_deref(), checkpoint, target.run.as_deref());
                    write_outputs(&evaluation, &dir)?;
                    Ok(evaluation)
                });
            match result {
                Ok(evaluation) => {
                    if json {
                        print_json_line(&evaluation)?;
                    } else {
                        print_row(&evaluation);
                    }
                    evaluated.push(evaluation);
                }
                // One checkpoint: its error is the command's error.
                Err(error) if total == 1 => return Err(error.into()),
                Err(error) => {
                    eprintln!("error: {error}");
                    failed += 1;
                }
            }
        }
        if let Some(run) = &target.run
            && let Some(best) = evaluated
                .iter()
                .max_by(|a, b| a.summary.iqm.total_cmp(&b.summary.iqm))
        {
            let folder = match &args.out {
                Some(out) => out.join(run.file_name().unwrap_or_default()),
                None => run.join("eval"),
            };
            let points: Vec<&CheckpointEvaluation> = evaluated.iter().collect();
            let title = format!("{} on {}", run.display(), best.env);
            for file in write_learning_curve(&points, &title, &folder.join("learning_curve"))? {
                tracing::info!(file = %file.display(), "learning curve written");
            }
            tracing::info!(
                run = %run.display(),
                best = %best.checkpoint.display(),
                iqm = best.summary.iqm,
                "best checkpoint by IQM"
            );
            if !json {
                println!(
                    "best of {}: {} (IQM {:.1})",
                    run.display(),
                    best.checkpoint.display(),
                    best.summary.iqm
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {total} checkpoints could not be evaluated (see above)");
    }
    Ok(())
}
