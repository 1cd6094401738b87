//! `gradless train`: start a run from a config, or resume one.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use gradless_device::Backend;
use gradless_trainer::{Progress, Session, StopAt, run_dir};
use indicatif::{ProgressBar, ProgressStyle};

use crate::logging;
use crate::output::print_json_line;

/// Arguments of `gradless train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A TOML run config (see configs/).
    #[arg(long, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Override a config value: `--set ppo.learning_rate=3e-4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Override the config's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// The run directory (default: runs/<config name>-seed<seed>, numbered past existing ones).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Device to train on: wgpu (default for new runs) or flex (CPU); a resumed run
    /// defaults to the device it was trained on.
    #[arg(long)]
    device: Option<String>,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Do not write TensorBoard event files into the run directory.
    #[arg(long)]
    no_tensorboard: bool,
}

/// `--set` overrides with `--seed` as one more.
fn overrides(args: &TrainArgs) -> Vec<String> {
    let mut overrides = args.overrides.clone();
    if let Some(seed) = args.seed {
        overrides.push(format!("seed={seed}"));
    }
    overrides
}

/// `runs/<config name>-seed<seed>`, numbered `-2`, `-3`, ... past the ones that exist, so
/// that running the same command again starts a new run instead of failing.
fn default_run_dir(config: &Path, seed: u64) -> PathBuf {
    let stem = config.file_stem().unwrap_or_default().to_string_lossy();
    let base = format!("{stem}-seed{seed}");
    (1..)
        .map(|k| match k {
            1 => PathBuf::from("runs").join(&base),
            k => PathBuf::from("runs").join(format!("{base}-{k}")),
        })
        .find(|dir| !dir.exists())
        .expect("some name is free")
}

/// A progress bar on a terminal's stderr; log lines are printed above it.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn advance(&mut self, global_step: u64, total: u64, training_return: Option<f64>) {
        self.0.set_length(total);
        self.0.set_position(global_step.min(total));
        if let Some(r) = training_return {
            self.0.set_message(format!("return {r:.1}"));
        }
    }
}

/// Runs `gradless train`.
pub fn run(args: &TrainArgs, json: bool) -> Result<()> {
    let backend: Option<Backend> = args
        .device
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("--device")?;
    let overrides = overrides(args);
    let mut session = match &args.resume {
        Some(dir) => {
            // A resumed run keeps its config: what is given must equal it, and the first
            // key that differs is named.
            let config = match &args.config {
                Some(path) => Some(run_dir::read_config(path, &overrides)?),
                None if !overrides.is_empty() => Some(run_dir::saved_config(dir, &overrides)?),
                None => None,
            };
            Session::resume(dir, backend, config)?
        }
        None => {
            let path = args
                .config
                .as_ref()
                .expect("clap requires --config without --resume");
            let config = run_dir::read_config(path, &overrides)?;
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| default_run_dir(path, config.seed));
            Session::start(config, backend.unwrap_or(Backend::Wgpu), &out)?
        }
    };
    if args.no_tensorboard {
        session.turn_off_tensorboard();
    }
    let summary = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(session.config().total_timesteps).with_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} steps ({per_sec}, eta {eta}) {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        logging::show_progress_bar(Some(bar.clone()));
        let result = session.run(StopAt::End, &mut Bar(bar.clone()));
        logging::show_progress_bar(None);
        bar.finish_and_clear();
        result?
    } else {
        session.run(StopAt::End, &mut ())?
    };
    if json {
        print_json_line(&summary)?;
    } else {
        println!("run:            {}", summary.run_dir.display());
        println!("steps:          {}", summary.global_step);
        println!("episodes:       {}", summary.episodes);
        println!("train seconds:  {:.1}", summary.train_seconds);
        if let Some(r) = summary.training_return {
            println!("training return {r:.1} (mean of the last 100 episodes)");
        }
        if let Some(e) = summary.last_evaluation {
            println!(
                "greedy eval:    {:.1} at step {} ({} episodes)",
                e.mean_return,
                e.global_step,
                session.config().evaluation.episodes
            );
        }
        if let Some(e) = summary.target_reached {
            println!(
                "target reached: step {} after {:.1} s of training",
                e.global_step, e.train_seconds
            );
        }
        for (label, path) in [
            ("latest", &summary.latest_checkpoint),
            ("best", &summary.best_checkpoint),
        ] {
            if let Some(path) = path {
                println!("{label:<15} {}", path.display());
            }
        }
    }
    Ok(())
}
