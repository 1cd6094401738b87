//! `gradless eval`: validate checkpoints in inference mode and report episode returns.
//! One file: the flags, the loop over checkpoints, their output places and shards belong to
//! the one command.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use gradless_device::{Backend, Device, InferenceDevice};
use gradless_evaluator::{
    AgentDevice, CheckpointEvaluation, EnvBackend, EnvBackendChoice, EvalSettings, EvalTarget,
    LoadedCheckpoint, RecordPlan, SummaryValue, VideoFolder, ZooModel, discover, enclosing_run,
    evaluation_env, prepare_output_dir, saved_evaluation, summary_row, write_learning_curve,
    write_outputs, write_tensorboard_curve,
};

use gradless_compare::figures::write_curve_over_runs;
use gradless_compare::{Curve, RunScore, curve_over_runs};
use gradless_envs::MakeArgs;
use gradless_grad_modes::{Plan, Speedup, inference_speedup};
use gradless_plots::FigureOptions;
use gradless_policy::Checkpoint;
use gradless_render::VideoFormat;
use gradless_trainer::metrics_log::logged_evaluations;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::logging;
use crate::output::{error_line, print_json_line, write_atomically};
use crate::settings::{
    ActingArgs, BootstrapArgs, EpisodeArgs, FigureArgs, Scored, check_count, lock_out,
};
use crate::shard::Shard;

/// Arguments of `gradless eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A checkpoint directory, a run directory (every checkpoint, in step order), a policy
    /// file of another tool, an RL Zoo run folder (`logs/ppo/Acrobot-v1_1`) or a folder of
    /// any of these (`logs/ppo`).
    path: PathBuf,
    /// Evaluate one checkpoint per run: its last (`final`) or the one its `best` pointer
    /// names; of an RL Zoo run, `<EnvId>.zip` (also the default) or `best_model.zip`.
    #[arg(long, value_enum)]
    checkpoint: Option<Scored>,
    #[command(flatten)]
    counts: EpisodeArgs,
    #[command(flatten)]
    acting: ActingArgs,
    #[command(flatten)]
    figures: FigureArgs,
    /// For a folder of runs of one env: the resamples of the band of its curve over seeds.
    #[command(flatten)]
    bootstrap: BootstrapArgs,
    /// Where the envs step: `cpu` (Gymnasium-exact, episode i from seed SEED + i),
    /// `device` (beside the policy, in f32, from the starts the CPU envs' seeds give;
    /// CartPole, MountainCar-v0 and Pendulum-v1; `--stochastic` on wgpu only, drawn in the
    /// episode kernel) or `auto`: `device` where the episode kernel runs the checkpoint's
    /// episodes (wgpu), else `cpu` (flex, other envs, `--record`).
    #[arg(long, default_value = "auto")]
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
    /// With --record: the videos' format, `gif` or `mp4` (through the system's ffmpeg).
    #[arg(long, default_value = "gif", value_name = "gif|mp4")]
    record_format: VideoFormat,
    /// Evaluate only shard K of N (K in 0..N) of the checkpoints PATH holds: checkpoint j,
    /// counted over every run in order, belongs to shard j mod N. `--shard N` reads K from
    /// SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX. Run-level outputs wait for --merge.
    #[arg(long, value_name = "K/N", conflicts_with = "merge")]
    shard: Option<String>,
    /// Evaluate nothing: gather the evaluations the shards wrote (of these same episodes)
    /// into the table, the learning curves and the best checkpoint.
    #[arg(long, conflicts_with_all = ["grad_mode_report", "record"])]
    merge: bool,
}

/// Keeps `shard`'s checkpoints, counted over every run in order (and the targets that
/// still have some).
fn keep_shard(shard: Shard, targets: &mut Vec<EvalTarget>) {
    let mut position = 0;
    for target in targets.iter_mut() {
        target.checkpoints.retain(|_| {
            position += 1;
            shard.owns(position - 1)
        });
    }
    targets.retain(|t| !t.checkpoints.is_empty());
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
fn grad_mode_report(
    checkpoint: &Path,
    settings: &EvalSettings,
    base: &Device,
    batch: usize,
    dir: &Path,
) -> Result<Speedup> {
    let speedup = if checkpoint.is_file() {
        // Another tool's policy: measured on a native copy of it, made for the measurement
        // in a folder of this process's only (mode 0700), removed when done.
        let scratch = gradless_files::PrivateDir::create("gradless-grad-modes")
            .context("a private folder for a copy of the policy")?;
        // Only the network is timed: the copy names the env by id alone.
        let (policy, env) = gradless_evaluator::read_foreign_for_env(checkpoint, settings)?;
        let copy = crate::foreign::write_native(
            checkpoint,
            &policy,
            &env.id,
            &scratch.path().join("policy"),
        )?;
        inference_speedup(&copy, base, batch, &Plan::quick_report())?
    } else {
        let opened = Checkpoint::open(checkpoint)?;
        inference_speedup(&opened, base, batch, &Plan::quick_report())?
    };
    let json = serde_json::to_vec_pretty(&speedup).context("serialising the grad-mode report")?;
    write_atomically(&dir.join("grad_mode_report.json"), &json)?;
    Ok(speedup)
}

/// Where a checkpoint's evaluation files go, as a folder inside a base: by default `eval`
/// inside the checkpoint (an input: no link there is followed), with `--out` the run's and
/// the checkpoint's names inside it (a policy file's name without its extension: a folder
/// is not named like a file).
fn output_place(out: Option<&Path>, checkpoint: &Path, run: Option<&Path>) -> (PathBuf, PathBuf) {
    match out {
        None => gradless_evaluator::default_eval_place(checkpoint),
        Some(out) => {
            let mut relative = PathBuf::new();
            if let Some(run) = run.and_then(Path::file_name) {
                relative.push(run);
            }
            let name = match checkpoint.is_file() {
                true => checkpoint.file_stem(),
                false => checkpoint.file_name(),
            };
            relative.push(name.unwrap_or_default());
            (out.to_path_buf(), relative)
        }
    }
}

/// Refuses, before anything runs, checkpoints whose outputs would share a folder
/// (`a.zip` and `a.pt` side by side under `--out`).
fn check_distinct_outputs(targets: &[EvalTarget], out: Option<&Path>) -> Result<()> {
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for target in targets {
        for checkpoint in &target.checkpoints {
            let (base, relative) = output_place(out, checkpoint, target.run.as_deref());
            let place = base.join(relative);
            if let Some((_, other)) = seen.iter().find(|(p, _)| *p == place) {
                bail!(
                    "{} and {} would write their evaluations to the same folder {}; evaluate them apart",
                    other.display(),
                    checkpoint.display(),
                    place.display()
                );
            }
            seen.push((place, checkpoint));
        }
    }
    Ok(())
}

fn print_row(evaluation: &CheckpointEvaluation, with_header: bool) {
    let cells: Vec<(&str, String)> = summary_row(evaluation)
        .into_iter()
        .filter_map(|cell| {
            let heading = cell.heading?;
            // Paths get a wide column, numbers one as wide as their heading (at least 8).
            let width = match cell.value {
                SummaryValue::Text(_) if cell.name == "checkpoint" => 48,
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
    (count, format): (usize, VideoFormat),
    progress: &EvalProgress,
) -> Result<()> {
    let videos = prepare_output_dir(dir, Path::new("videos"))?;
    let plan = RecordPlan {
        first_seed,
        episodes: count.min(evaluation.episodes.len()),
        stochastic: evaluation.stochastic,
        format,
    };
    loaded.record_videos(&plan, &videos, VideoFolder::Owned, |video, path| {
        let evaluated = &evaluation.episodes[video.episode.episode];
        if &video.episode != evaluated {
            tracing::warn!(video = %path.display(), recorded = ?video.episode, ?evaluated, "the recorded episode differs from the evaluated one");
        }
        progress.suspend(|| tracing::info!(video = %path.display(), r#return = video.episode.episode_return, frames = video.frames, "episode video written"));
    })?;
    Ok(())
}

/// The evaluation a shard wrote for `checkpoint` into `dir`, which must be of the episodes
/// `settings` asks for.
fn merged_evaluation(
    checkpoint: &Path,
    dir: &Path,
    settings: &EvalSettings,
) -> Result<CheckpointEvaluation> {
    let env = evaluation_env(checkpoint, settings)?;
    let mut evaluation = saved_evaluation(dir)
        .filter(|saved| saved.matches(settings, &env))
        .with_context(|| {
            format!(
                "{}: no evaluation of these episodes to merge (has every shard finished, with the same --episodes, --seed, --stochastic and --env?)",
                dir.display()
            )
        })?;
    evaluation.checkpoint = checkpoint.to_path_buf();
    Ok(evaluation)
}

/// Before a merge writes anything: every checkpoint must have its evaluation.
fn check_mergeable(
    targets: &[EvalTarget],
    out: Option<&Path>,
    settings: &EvalSettings,
) -> Result<()> {
    let mut missing = Vec::new();
    let mut total = 0;
    for target in targets {
        for checkpoint in &target.checkpoints {
            total += 1;
            let (base, relative) = output_place(out, checkpoint, target.run.as_deref());
            if let Err(error) = merged_evaluation(checkpoint, &base.join(relative), settings) {
                missing.push(error);
            }
        }
    }
    match missing.first() {
        None => Ok(()),
        Some(first) => bail!(
            "--merge: {} of {total} checkpoints cannot be merged, the first: {}",
            missing.len(),
            error_line(first)
        ),
    }
}

/// `gradless eval`'s flags, checked and resolved once, with the device opened.
struct EvalRun<'a> {
    args: &'a EvalArgs,
    settings: EvalSettings,
    /// The device `--device` names (the grad-mode report builds its own on it).
    base: Device,
    device: AgentDevice,
    shard: Option<Shard>,
    figures: FigureOptions,
}

impl<'a> EvalRun<'a> {
    /// Checks every flag before the device opens (probing wgpu takes seconds).
    fn resolve(args: &'a EvalArgs) -> Result<Self> {
        args.counts.check(args.acting.seed)?;
        args.bootstrap.check()?;
        let figures = args.figures.options()?;
        if args.record > 0 {
            check_count("--record", args.record, RecordPlan::MAX_EPISODES)?;
            if args.record_format == VideoFormat::Mp4 {
                gradless_render::check_ffmpeg().context("--record-format mp4")?;
            }
        }
        let mut env_backend: EnvBackendChoice = args
            .env_backend
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--env-backend: {e}"))?;
        let device_envs = env_backend == EnvBackendChoice::Only(EnvBackend::Device);
        if args.record > 0 {
            if device_envs {
                bail!("--record: videos replay seeded episodes, which need --env-backend cpu");
            }
            // The videos show the evaluated episodes: the CPU envs'.
            env_backend = EnvBackendChoice::Only(EnvBackend::Cpu);
        }
        let settings = args.acting.eval_settings(&args.counts, env_backend)?;
        let (base, backend) = args.acting.open_device()?;
        let device = AgentDevice::new(&InferenceDevice::new(&base));
        if device_envs && settings.samples() && backend == Backend::Flex {
            bail!(
                "--stochastic: with --env-backend device, actions are drawn in the episode kernel, \
                 which runs on wgpu; on flex use --env-backend cpu"
            );
        }
        let shard = args.shard.as_deref().map(Shard::from_flag).transpose()?;
        Ok(Self {
            args,
            settings,
            base,
            device,
            shard,
            figures,
        })
    }

    /// The checkpoints `PATH` holds (this shard's share of them), grouped by run.
    fn targets(&self) -> Result<Vec<EvalTarget>> {
        let choice = self.args.checkpoint;
        let mut targets = discover(
            &self.args.path,
            choice.map_or(ZooModel::Final, Scored::zoo_model),
        )?;
        if let Some(choice) = choice {
            for target in targets.iter_mut().filter(|t| t.run.is_some()) {
                target.checkpoints = vec![choice.pick(target)?];
            }
        }
        check_distinct_outputs(&targets, self.args.out.as_deref())?;
        if let Some(shard) = self.shard {
            let before: usize = targets.iter().map(|t| t.checkpoints.len()).sum();
            keep_shard(shard, &mut targets);
            let kept: usize = targets.iter().map(|t| t.checkpoints.len()).sum();
            tracing::info!(
                shard = shard.index,
                of = shard.count,
                kept,
                before,
                "evaluating this shard's checkpoints"
            );
        }
        if self.args.merge {
            check_mergeable(&targets, self.args.out.as_deref(), &self.settings)?;
        }
        Ok(targets)
    }

    /// The lock on the run whose checkpoints `target` evaluates into it: no trainer may write
    /// the run meanwhile. Shards each write their own checkpoints of a run: they share it.
    fn lock_run(&self, target: &EvalTarget) -> Result<Option<gradless_files::DirLock>> {
        let run_written = match (&target.run, target.checkpoints.as_slice()) {
            (Some(run), _) => Some(run.clone()),
            (None, [checkpoint]) => enclosing_run(checkpoint)?,
            (None, _) => None,
        };
        let (Some(run), None) = (run_written, &self.args.out) else {
            return Ok(None);
        };
        let lock = match self.shard {
            Some(_) => gradless_files::DirLock::acquire_shared(&run),
            None => gradless_files::DirLock::acquire(&run),
        };
        Ok(Some(lock.with_context(|| run.display().to_string())?))
    }

    /// One checkpoint evaluated (or, with `--merge`, its shards' evaluations merged), its
    /// outputs written, its videos recorded and its grad modes timed where asked.
    fn evaluate(
        &self,
        checkpoint: &Path,
        run: Option<&Path>,
        progress: &EvalProgress,
        episodes_before: u64,
    ) -> Result<(CheckpointEvaluation, Option<Speedup>)> {
        let (args, settings) = (self.args, &self.settings);
        let (out_base, relative) = output_place(args.out.as_deref(), checkpoint, run);
        if args.merge {
            let evaluation = merged_evaluation(checkpoint, &out_base.join(&relative), settings)?;
            return Ok((evaluation, None));
        }
        // Loaded first: a policy that is refused leaves no empty output folder behind.
        let loaded = LoadedCheckpoint::load(checkpoint, settings, &self.device)?;
        let dir = prepare_output_dir(&out_base, &relative)?;
        progress.checkpoint(checkpoint, episodes_before);
        let evaluation = loaded.evaluate_with_progress(settings, |done| {
            progress.at(episodes_before + done as u64);
        })?;
        write_outputs(&evaluation, &dir)?;
        if args.record > 0 {
            record_videos(
                &loaded,
                &evaluation,
                settings.seed,
                &dir,
                (args.record, args.record_format),
                progress,
            )?;
        }
        let report = args
            .grad_mode_report
            .then(|| grad_mode_report(checkpoint, settings, &self.base, args.counts.num_envs, &dir))
            .transpose()?;
        Ok((evaluation, report))
    }
}

/// Prints one checkpoint's result: a JSON line, or a table row (with the header first).
fn print_result(
    evaluation: &CheckpointEvaluation,
    report: Option<Speedup>,
    json: bool,
    first_row: bool,
) -> Result<()> {
    if json {
        return print_json_line(&EvaluationLine {
            evaluation,
            grad_mode_report: report,
        });
    }
    print_row(evaluation, first_row);
    if let Some(r) = report {
        println!(
            "  inference mode vs no_grad at batch {}: {:.2}x faster ({:.1} vs {:.1} us per policy step)",
            r.batch, r.inference_speedup, r.inference_us_per_step, r.no_grad_us_per_step
        );
    }
    Ok(())
}

/// A run's learning curves (SVG, PNG and TensorBoard) and its best checkpoint by IQM, from
/// the evaluations of its checkpoints (and the `training` evaluations it logged).
fn finish_run(
    run: &Path,
    evaluated: &[CheckpointEvaluation],
    training: &[(u64, f64)],
    figures: &FigureOptions,
    out: Option<&Path>,
    json: bool,
    progress: &EvalProgress,
) -> Result<()> {
    let Some(best) = evaluated
        .iter()
        .max_by(|a, b| a.summary.iqm.total_cmp(&b.summary.iqm))
    else {
        return Ok(());
    };
    let folder = match out {
        Some(out) => prepare_output_dir(out, Path::new(run.file_name().unwrap_or_default()))?,
        None => prepare_output_dir(run, Path::new("eval"))?,
    };
    let points: Vec<&CheckpointEvaluation> = evaluated.iter().collect();
    let name = run.file_name().unwrap_or(run.as_os_str()).to_string_lossy();
    let title = format!("{name} on {}", best.env);
    let stem = folder.join("learning_curve");
    for file in write_learning_curve(&points, training, &title, &stem, figures)? {
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
    Ok(())
}

/// A run evaluated whole, with the evaluations it logged while `training`, as a curve over
/// seeds takes it.
fn run_score(
    run: &Path,
    evaluated: &[CheckpointEvaluation],
    training: Vec<(u64, f64)>,
) -> Option<RunScore> {
    let last = evaluated.last()?;
    Some(RunScore {
        run: run.to_path_buf(),
        checkpoint: last.checkpoint.clone(),
        env: MakeArgs {
            id: last.env.clone(),
            options: last.env_kwargs,
        }
        .to_string(),
        score: last.summary.mean_return,
        curve: evaluated
            .iter()
            .filter_map(|e| Some((e.step?, e.summary.mean_return)))
            .collect(),
        training_curve: training,
        seed: None,
    })
}

/// What `learning_curve_over_seeds.json` holds.
#[derive(Serialize)]
struct CurveOverSeeds<'a> {
    group: &'a str,
    env: &'a str,
    runs: Vec<&'a Path>,
    reps: usize,
    seed: u64,
    curve: &'a Curve,
}

/// The IQM over the runs of a folder against steps with its stratified-bootstrap band, as
/// `compare` draws a group's: `learning_curve_over_seeds` (SVG, PNG, JSON) in the folder's
/// `eval` (or `--out`). Nothing for runs of several envs, or without two steps in common.
fn finish_folder(args: &EvalArgs, runs: &[RunScore], figures: &FigureOptions) -> Result<()> {
    let env = &runs[0].env;
    if runs.iter().any(|r| &r.env != env) {
        tracing::info!(
            "the runs are of several envs: no curve over seeds (compare draws one per group of runs)"
        );
        return Ok(());
    }
    let Some(curve) = curve_over_runs(runs, args.bootstrap.reps, args.acting.seed)? else {
        tracing::info!("the runs share fewer than two evaluated steps: no curve over seeds");
        return Ok(());
    };
    let folder = match args.out.as_deref() {
        Some(out) => prepare_output_dir(out, Path::new(""))?,
        None => prepare_output_dir(&args.path, Path::new("eval"))?,
    };
    let group = args
        .path
        .file_name()
        .unwrap_or(args.path.as_os_str())
        .to_string_lossy();
    let record = CurveOverSeeds {
        group: &group,
        env,
        runs: runs.iter().map(|r| r.run.as_path()).collect(),
        reps: args.bootstrap.reps,
        seed: args.acting.seed,
        curve: &curve,
    };
    let stem = folder.join("learning_curve_over_seeds");
    let json = serde_json::to_vec_pretty(&record).context("serialising the curve over seeds")?;
    write_atomically(&stem.with_extension("json"), &json)?;
    let title = format!("{group} on {env}: IQM over {} seeds", runs.len());
    for file in write_curve_over_runs(&group, &curve, &title, &stem, figures)? {
        tracing::info!(file = %file.display(), "learning curve over seeds written");
    }
    Ok(())
}

/// Runs `gradless eval`; a checkpoint that fails is reported and skipped, and the exit
/// status says so at the end.
pub fn run(args: &EvalArgs, json: bool) -> Result<()> {
    let eval = EvalRun::resolve(args)?;
    // After every flag is checked: a refused command leaves no --out behind.
    let _out_lock = args
        .out
        .as_deref()
        .map(|out| lock_out(out, eval.shard.is_some()))
        .transpose()?;
    let targets = eval.targets()?;
    if eval.shard.is_some() && targets.is_empty() {
        return Ok(());
    }
    let episodes = args.counts.episodes as u64;
    let total: usize = targets.iter().map(|t| t.checkpoints.len()).sum();
    let progress = EvalProgress::start(total as u64 * episodes);
    let (mut episodes_before, mut failed, mut rows_printed) = (0u64, 0, 0);
    let mut whole_runs = Vec::new();
    for target in &targets {
        let _lock = match eval.lock_run(target) {
            Ok(lock) => lock,
            Err(error) if targets.len() == 1 => return Err(error),
            Err(error) => {
                progress.suspend(|| eprintln!("error: {}", error_line(&error)));
                failed += target.checkpoints.len();
                episodes_before += target.checkpoints.len() as u64 * episodes;
                continue;
            }
        };
        let mut evaluated = Vec::new();
        for checkpoint in &target.checkpoints {
            let result = eval.evaluate(
                checkpoint,
                target.run.as_deref(),
                &progress,
                episodes_before,
            );
            episodes_before += episodes;
            match result {
                Ok((evaluation, report)) => {
                    progress
                        .suspend(|| print_result(&evaluation, report, json, rows_printed == 0))?;
                    rows_printed += 1;
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
        // A shard has only some of a run's checkpoints: the run's outputs wait for --merge.
        // An RL Zoo run has one model: no curve over its training.
        let whole_run = eval.shard.is_none() && target.zoo.is_none();
        if let Some(run) = target.run.as_ref().filter(|_| whole_run) {
            // Read once: the run's curve and the folder's curve over seeds both draw it.
            let training = logged_evaluations(run);
            finish_run(
                run,
                &evaluated,
                &training,
                &eval.figures,
                args.out.as_deref(),
                json,
                &progress,
            )?;
            whole_runs.extend(run_score(run, &evaluated, training));
        }
    }
    if whole_runs.len() >= 2 {
        finish_folder(args, &whole_runs, &eval.figures)?;
    }
    if failed > 0 {
        bail!("{failed} of {total} checkpoints could not be evaluated (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every checkpoint lands in exactly one shard, counted over runs in order.
    #[test]
    fn shards_split_the_checkpoints_of_every_run_between_them() {
        let targets = vec![
            EvalTarget {
                run: Some(PathBuf::from("a")),
                checkpoints: (0..3).map(|k| PathBuf::from(format!("a/{k}"))).collect(),
                zoo: None,
            },
            EvalTarget {
                run: Some(PathBuf::from("b")),
                checkpoints: (0..2).map(|k| PathBuf::from(format!("b/{k}"))).collect(),
                zoo: None,
            },
        ];
        let mut seen = Vec::new();
        for index in 0..2 {
            let mut mine = targets.clone();
            keep_shard(Shard { index, count: 2 }, &mut mine);
            seen.extend(mine.into_iter().flat_map(|t| t.checkpoints));
        }
        seen.sort();
        let mut all: Vec<PathBuf> = targets.into_iter().flat_map(|t| t.checkpoints).collect();
        all.sort();
        assert_eq!(seen, all);
        let mut first = vec![EvalTarget {
            run: None,
            checkpoints: vec![PathBuf::from("only")],
            zoo: None,
        }];
        keep_shard(Shard { index: 1, count: 2 }, &mut first);
        assert!(first.is_empty(), "a shard may get nothing");
    }
}
