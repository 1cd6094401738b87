//! `gradless eval`: validate checkpoints in inference mode and report episode returns.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use gradless_device::{Backend, Device, InferenceDevice};
use gradless_evaluator::{
    AgentDevice, CheckpointEvaluation, EnvBackend, EvalSettings, LoadedCheckpoint, RecordPlan,
    SummaryValue, discover, enclosing_run, prepare_output_dir, summary_row, write_learning_curve,
    write_outputs, write_tensorboard_curve,
};

use gradless_grad_modes::{Speedup, inference_speedup};
use gradless_policy::{Checkpoint, EpisodePlan};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::commands::grad_modes;
use crate::logging;
use crate::output::{error_line, print_json_line, write_atomically};

/// How the agent acts, as `gradless eval` and `gradless record` take it.
#[derive(Debug, Args)]
pub struct ActingArgs {
    /// Seed of episode 0.
    #[arg(long, default_value_t = 1_000_000)]
    pub seed: u64,
    /// Sample actions from the policy instead of taking the greedy ones.
    #[arg(long)]
    pub stochastic: bool,
    /// Device: wgpu or flex.
    #[arg(long, default_value = "wgpu")]
    pub device: String,
    /// Evaluate on another env with the same spaces (e.g. CartPole-v0).
    #[arg(long)]
    pub env: Option<String>,
}

impl ActingArgs {
    /// The device `--device` names, opened.
    pub fn base_device(&self) -> Result<Device> {
        let backend: Backend = self.device.parse().context("--device")?;
        Ok(gradless_device::open(backend)?)
    }
}

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
    #[command(flatten)]
    acting: ActingArgs,
    /// Where the envs step: `cpu` (Gymnasium-exact, episode i from seed SEED + i) or
    /// `device` (beside the policy, in f32; starts drawn from the device's generator seeded
    /// with SEED; CartPole, MountainCar-v0 and Pendulum-v1; greedy actions only).
    #[arg(long, default_value = "cpu")]
    env_backend: String,
    /// Where to write episodes.jsonl, summary.json and summary.csv (one folder per
    /// checkpoint); default: an `eval` folder inside each checkpoint.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also measure, per checkpoint, how much faster its policy runs in inference mode than
    /// under no_grad at a batch of NUM_ENVS (written to grad_mode_report.json too).
    #[arg(long)]
    grad_mode_report: bool,
    /// Also record each checkpoint's first N episodes as GIFs (as `gradless record`) into
    /// a `videos` folder of its evaluation folder.
    #[arg(long, default_value_t = 0, value_name = "N")]
    record: usize,
}

/// A checkpoint's evaluation as printed with `--json`.
#[derive(Serialize)]
struct EvaluationLine<'a> {
    #[serde(flatten)]
    evaluation: &'a CheckpointEvaluation,
    #[serde(skip_serializing_if = "Option::is_none")]
    grad_mode_report: Option<Speedup>,
}

/// Times the checkpoint's policy under no_grad and in inference mode on `base`.
fn grad_mode_report(checkpoint: &Path, base: &Device, batch: usize, dir: &Path) -> Result<Speedup> {
    let opened = Checkpoint::open(checkpoint)?;
    let speedup = inference_speedup(&opened, base, batch, &grad_modes::report_plan())?;
    let json = serde_json::to_vec_pretty(&speedup).context("serialising the grad-mode report")?;
    write_atomically(&dir.join("grad_mode_report.json"), &json)?;
    Ok(speedup)
}

/// Where a checkpoint's evaluation files go, as a folder inside a base: by default `eval`
/// inside the checkpoint (an input: no link there is followed), with `--out` the run's and
/// the checkpoint's names inside it.
fn output_place(out: Option<&Path>, checkpoint: &Path, run: Option<&Path>) -> (PathBuf, PathBuf) {
    match out {
        None => (checkpoint.to_path_buf(), PathBuf::from("eval")),
        Some(out) => {
            let mut relative = PathBuf::new();
            if let Some(run) = run.and_then(Path::file_name) {
                relative.push(run);
            }
            relative.push(checkpoint.file_name().unwrap_or_default());
            (out.to_path_buf(), relative)
        }
    }
}

fn print_row(evaluation: &CheckpointEvaluation, with_header: bool) {
    let cells: Vec<(&str, String)> = summary_row(evaluation)
        .into_iter()
        .filter_map(|cell| {
            let heading = cell.heading?;
            // Paths get a wide column, numbers one as wide as their heading (at least 8).
            let width = match cell.value {
                SummaryValue::Text(_) => 48,
                _ => heading.len().max(8),
            };
            Some((heading, cell.value.table(width)))
        })
        .collect();
    if with_header {
        let headings: Vec<String> = cells
            .iter()
            .map(|(heading, value)| match cells.first() {
                Some((first, _)) if first == heading => format!("{heading:<w$}", w = value.len()),
                _ => format!("{heading:>w$}", w = value.len()),
            })
            .collect();
        println!("{}", headings.join(" "));
    }
    let values: Vec<&str> = cells.iter().map(|(_, value)| value.as_str()).collect();
    println!("{}", values.join(" "));
}

/// The progress bar of a long evaluation (checkpoints and their episodes), on a terminal
/// only; log lines and results are printed above it. Cleared when dropped.
struct EvalProgress(Option<ProgressBar>);

impl EvalProgress {
    fn start(episodes: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::new(episodes).with_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} episodes ({per_sec}, eta {eta}) {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        logging::show_progress_bar(Some(bar.clone()));
        Self(Some(bar))
    }

    /// A checkpoint starts, `done` episodes into the evaluation.
    fn checkpoint(&self, checkpoint: &Path, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_message(checkpoint.display().to_string());
            bar.set_position(done);
        }
    }

    fn at(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }

    /// Runs `print` with the bar out of the way.
    fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        match &self.0 {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }
}

impl Drop for EvalProgress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            logging::show_progress_bar(None);
            bar.finish_and_clear();
        }
    }
}

/// Records an evaluated checkpoint's first `count` episodes into `videos` inside its
/// evaluation folder; each video's episode is the evaluation's of the same seed.
fn record_videos(
    loaded: &LoadedCheckpoint,
    evaluation: &CheckpointEvaluation,
    first_seed: u64,
    dir: &Path,
    count: usize,
    progress: &EvalProgress,
) -> Result<()> {
    let videos = prepare_output_dir(dir, Path::new("videos"))?;
    let plan = RecordPlan {
        first_seed,
        episodes: count.min(evaluation.episodes.len()),
        stochastic: evaluation.stochastic,
    };
    loaded.record_videos(&plan, &videos, |video, path| {
        let evaluated = &evaluation.episodes[video.episode.episode];
        if &video.episode != evaluated {
            tracing::warn!(video = %path.display(), recorded = ?video.episode, ?evaluated, "the recorded episode differs from the evaluated one");
        }
        progress.suspend(|| tracing::info!(video = %path.display(), r#return = video.episode.episode_return, frames = video.frames, "episode video written"));
    })?;
    Ok(())
}

/// Runs `gradless eval`; a checkpoint that fails is reported and skipped, and the exit
/// status says so at the end.
pub fn run(args: &EvalArgs, json: bool) -> Result<()> {
    if args.episodes == 0 || args.num_envs == 0 {
        bail!("--episodes and --num-envs must be at least 1");
    }
    let largest_seed = EpisodePlan::largest_first_seed(args.episodes);
    if args.acting.seed > largest_seed {
        bail!(
            "--seed {}: with --episodes {} the episode seeds would pass the largest seed, {} (use --seed {largest_seed} or less)",
            args.acting.seed,
            args.episodes,
            u64::MAX,
        );
    }
    if let Some(out) = &args.out {
        // Before any episode runs: an unwritable --out is found now, not at the end.
        std::fs::create_dir_all(out)
            .and_then(|()| gradless_files::check_writable(out))
            .with_context(|| format!("--out {}", out.display()))?;
    }
    let base = args.acting.base_device()?;
    let device = AgentDevice::new(&InferenceDevice::new(&base));
    let settings = EvalSettings {
        episodes: args.episodes,
        num_envs: args.num_envs,
        seed: args.acting.seed,
        stochastic: args.acting.stochastic,
        env: args.acting.env.clone(),
        env_backend: args
            .env_backend
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--env-backend: {e}"))?,
    };
    if settings.env_backend == EnvBackend::Device && settings.stochastic {
        bail!("--stochastic: sampled actions need --env-backend cpu");
    }
    if settings.env_backend == EnvBackend::Device && args.record > 0 {
        bail!("--record: videos replay seeded episodes, which need --env-backend cpu");
    }
    let targets = discover(&args.path)?;
    let mut rows_printed = 0;
    let total: usize = targets.iter().map(|t| t.checkpoints.len()).sum();
    let progress = EvalProgress::start((total * args.episodes) as u64);
    let mut episodes_before = 0u64;
    let mut failed = 0;
    for target in &targets {
        // Evaluations of a run are written into it: no trainer may write it meanwhile.
        let run_written = match (&target.run, target.checkpoints.as_slice()) {
            (Some(run), _) => Some(run.clone()),
            (None, [checkpoint]) => enclosing_run(checkpoint),
            (None, _) => None,
        };
        let _lock = match (&run_written, &args.out) {
            (Some(run), None) => match gradless_files::DirLock::acquire(run) {
                Ok(lock) => Some(lock),
                Err(error) => {
                    let error = anyhow::Error::from(error).context(run.display().to_string());
                    if targets.len() == 1 {
                        return Err(error);
                    }
                    progress.suspend(|| eprintln!("error: {}", error_line(&error)));
                    failed += target.checkpoints.len();
                    episodes_before += (target.checkpoints.len() * args.episodes) as u64;
                    continue;
                }
            },
            _ => None,
        };
        let mut evaluated = Vec::new();
        for checkpoint in &target.checkpoints {
            let (out_base, relative) =
                output_place(args.out.as_deref(), checkpoint, target.run.as_deref());
            let result = prepare_output_dir(&out_base, &relative)
                .and_then(|dir| {
                    progress.checkpoint(checkpoint, episodes_before);
                    let loaded = LoadedCheckpoint::load(checkpoint, &settings, &device)?;
                    let evaluation = loaded.evaluate_with_progress(&settings, |done| {
                        progress.at(episodes_before + done as u64);
                    })?;
                    write_outputs(&evaluation, &dir)?;
                    Ok((loaded, dir, evaluation))
                })
                .map_err(anyhow::Error::from)
                .and_then(|(loaded, dir, evaluation)| {
                    if args.record > 0 {
                        record_videos(
                            &loaded,
                            &evaluation,
                            settings.seed,
                            &dir,
                            args.record,
                            &progress,
                        )?;
                    }
                    Ok((dir, evaluation))
                })
                .and_then(|(dir, evaluation)| {
                    let report = args
                        .grad_mode_report
                        .then(|| grad_mode_report(checkpoint, &base, args.num_envs, &dir))
                        .transpose()?;
                    Ok((evaluation, report))
                });
            episodes_before += args.episodes as u64;
            match result {
                Ok((evaluation, report)) => {
                    if json {
                        progress.suspend(|| {
                            print_json_line(&EvaluationLine {
                                evaluation: &evaluation,
                                grad_mode_report: report,
                            })
                        })?;
                    } else {
                        progress.suspend(|| {
                            print_row(&evaluation, rows_printed == 0);
                            if let Some(r) = report {
                                println!(
                                    "  inference mode vs no_grad at batch {}: {:.2}x faster ({:.1} vs {:.1} us per policy step)",
                                    r.batch,
                                    r.inference_speedup,
                                    r.inference_us_per_step,
                                    r.no_grad_us_per_step
                                );
                            }
                        });
                        rows_printed += 1;
                    }
                    evaluated.push(evaluation);
                }
                // One checkpoint: its error is the command's error.
                Err(error) if total == 1 => return Err(error),
                Err(error) => {
                    progress.suspend(|| eprintln!("error: {}", error_line(&error)));
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
                Some(out) => {
                    prepare_output_dir(out, Path::new(run.file_name().unwrap_or_default()))?
                }
                None => prepare_output_dir(run, Path::new("eval"))?,
            };
            let points: Vec<&CheckpointEvaluation> = evaluated.iter().collect();
            let title = format!("{} on {}", run.display(), best.env);
            for file in write_learning_curve(&points, &title, &folder.join("learning_curve"))? {
                tracing::info!(file = %file.display(), "learning curve written");
            }
            let events = write_tensorboard_curve(&points, &folder)?;
            tracing::info!(file = %events.display(), "TensorBoard evaluation curve written");
            tracing::info!(
                run = %run.display(),
                best = %best.checkpoint.display(),
                iqm = best.summary.iqm,
                "best checkpoint by IQM"
            );
            if !json {
                progress.suspend(|| {
                    println!(
                        "best of {}: {} (IQM {:.1})",
                        run.display(),
                        best.checkpoint.display(),
                        best.summary.iqm
                    );
                });
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {total} checkpoints could not be evaluated (see above)");
    }
    Ok(())
}
