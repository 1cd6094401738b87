//! `gradless train`: start a run from a config, or resume one.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use gradless_device::Backend;
use gradless_trainer::{Progress, Session, StopAt, run_dir};
use indicatif::{ProgressBar, ProgressStyle};

use crate::logging;
use crate::output::print_json_line;
use crate::shard::Shard;

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
    /// Device to train on: auto (the default for new runs: wgpu on a hardware GPU, flex
    /// when wgpu finds only a software adapter), wgpu or flex (CPU); a resumed run defaults
    /// to the device it was trained on.
    #[arg(long)]
    device: Option<String>,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Do not write TensorBoard event files into the run directory.
    #[arg(long)]
    no_tensorboard: bool,
    /// Time each phase of training (rollout, acting, env steps, minibatches, forward,
    /// backward, clipping, optimizer, read-backs), waiting for the device after each; the
    /// table goes to stdout and `profile.json` into the run directory.
    #[arg(long)]
    profile: bool,
    /// Train one run per seed (`1-5`, `1,3,7`, `1-3,9`), each into `seed-N` under `--out`
    /// (default: runs/<config name>).
    #[arg(long, value_name = "LIST", conflicts_with_all = ["seed", "resume"])]
    seeds: Option<String>,
    /// With --seeds: how many runs train at once (each its own process).
    #[arg(long, default_value_t = 1, requires = "seeds")]
    jobs: usize,
    /// With --seeds: train only shard K of N (K in 0..N) of the seeds: the seed at position
    /// j of the list belongs to shard j mod N. `--shard N` reads K from SLURM_ARRAY_TASK_ID
    /// or JOB_COMPLETION_INDEX, so a job array trains a sweep.
    #[arg(long, value_name = "K/N", requires = "seeds")]
    shard: Option<String>,
}

/// The most runs one `--seeds` starts.
const MAX_SEEDS: usize = 1000;

/// `1-5`, `1,3,7` or a mix, in the order given; repeats and empty ranges are refused.
fn parse_seeds(list: &str) -> Result<Vec<u64>> {
    let mut seeds: Vec<u64> = Vec::new();
    let bad = |part: &str| {
        anyhow::anyhow!("--seeds `{list}`: `{part}` is not a seed or a range like 1-5")
    };
    for part in list.split(',').map(str::trim) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let first: u64 = first.parse().map_err(|_| bad(part))?;
        let last: u64 = last.parse().map_err(|_| bad(part))?;
        if last < first || (last - first) as usize >= MAX_SEEDS {
            bail!("--seeds `{list}`: `{part}` must run upwards over at most {MAX_SEEDS} seeds");
        }
        for seed in first..=last {
            if seeds.contains(&seed) {
                bail!("--seeds `{list}`: seed {seed} is given twice");
            }
            seeds.push(seed);
            if seeds.len() > MAX_SEEDS {
                bail!("--seeds `{list}`: more than {MAX_SEEDS} seeds");
            }
        }
    }
    Ok(seeds)
}

/// Forwards a child's output lines, prefixed with its run's name (JSON lines as they are).
fn forward(reader: impl std::io::Read, prefix: String, to_stdout: bool, raw: bool) {
    use std::io::{BufRead, Write};
    for line in std::io::BufReader::new(reader)
        .lines()
        .map_while(Result::ok)
    {
        let line = if raw {
            line
        } else {
            format!("[{prefix}] {line}")
        };
        if to_stdout {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        } else {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

/// Runs one seed's child to its end, forwarding its output; an error if it fails.
fn run_child(mut command: std::process::Command, seed: u64, json: bool) -> Result<()> {
    let name = format!("seed-{seed}");
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let out_name = name.clone();
    let forwarders = [
        std::thread::spawn(move || forward(stdout, out_name, true, json)),
        std::thread::spawn(move || forward(stderr, name, false, false)),
    ];
    let status = child.wait().context("waiting for the run")?;
    for forwarder in forwarders {
        let _ = forwarder.join();
    }
    if !status.success() {
        bail!("the run exited with {status}");
    }
    Ok(())
}

/// `gradless train --seeds`: one child `gradless train` per seed, `--jobs` at a time, each
/// into `seed-N` under the output folder; fails when any of them does.
///
/// Long because the children's command line, the worker pool and the failure count share
/// the seeds' queue.
fn run_seeds(args: &TrainArgs, list: &str, json: bool) -> Result<()> {
    let mut seeds = parse_seeds(list)?;
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if let Some(shard) = args.shard.as_deref().map(Shard::from_flag).transpose()? {
        seeds = shard.share(&seeds);
        tracing::info!(shard = shard.index, of = shard.count, seeds = ?seeds, "training this shard's seeds");
    }
    let config_path = args
        .config
        .as_ref()
        .expect("clap requires --config without --resume");
    // A bad config is one error here, not one per seed.
    run_dir::read_config(config_path, &args.overrides)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(config_path.file_stem().unwrap_or_default()));
    if gradless_policy::run_layout::is_run_dir(&out) {
        bail!(
            "--out {}: is a run; --seeds trains one run per seed into a folder of runs",
            out.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("--out {}", out.display()))?;
    // Resolved once here (an `auto` probes wgpu), not once per child.
    let backend = crate::settings::resolve_device(args.device.as_deref().unwrap_or("auto"))?;
    let exe = std::env::current_exe().context("finding the gradless binary")?;
    let command = |seed: u64| {
        let mut command = std::process::Command::new(&exe);
        if json {
            command.arg("--json");
        }
        command.arg("train").arg("--config").arg(config_path);
        for set in &args.overrides {
            command.arg("--set").arg(set);
        }
        command
            .arg("--seed")
            .arg(seed.to_string())
            .arg("--out")
            .arg(out.join(format!("seed-{seed}")));
        command.arg("--device").arg(backend.name());
        if args.no_tensorboard {
            command.arg("--no-tensorboard");
        }
        if args.profile {
            command.arg("--profile");
        }
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    // `--jobs` workers take the next seed whenever their run ends.
    let queue = std::sync::Mutex::new(seeds.iter().copied());
    let failed = std::sync::Mutex::new(Vec::new());
    // The queue's lock is held only to take a seed, never while a run trains.
    let next_seed = || queue.lock().expect("workers do not panic").next();
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.min(seeds.len()) {
            scope.spawn(|| {
                while let Some(seed) = next_seed() {
                    if let Err(error) = run_child(command(seed), seed, json) {
                        eprintln!("[seed-{seed}] error: {}", crate::output::error_line(&error));
                        failed.lock().expect("workers do not panic").push(seed);
                    }
                }
            });
        }
    });
    let mut failed = failed.into_inner().expect("workers do not panic");
    failed.sort_unstable();
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(u64::to_string).collect();
        bail!(
            "{} of {} seeds failed (seeds {}; see above)",
            failed.len(),
            seeds.len(),
            list.join(", ")
        );
    }
    if !json {
        println!("{} runs in {}", seeds.len(), out.display());
    }
    Ok(())
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
///
/// Long because starting, resuming and the progress bar's events share the session's
/// lifetime; the parts that stand alone (seeds, overrides, run names) are functions.
pub fn run(args: &TrainArgs, json: bool) -> Result<()> {
    if let Some(list) = &args.seeds {
        return run_seeds(args, list, json);
    }
    let backend: Option<Backend> = args
        .device
        .as_deref()
        .map(crate::settings::resolve_device)
        .transpose()?;
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
            let backend = match backend {
                Some(backend) => backend,
                None => crate::settings::resolve_device("auto")?,
            };
            Session::start(config, backend, &out)?
        }
    };
    if args.no_tensorboard {
        session.turn_off_tensorboard();
    }
    if args.profile {
        session.profile();
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
        if let Some(profile) = &summary.profile {
            println!("where the training time went:\n{}", profile.table());
        }
    }
    Ok(())
}
