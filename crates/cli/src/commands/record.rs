//! `gradless record`: a checkpoint's evaluation episodes as videos (animated GIFs or MP4s),
//! drawn as Gymnasium's `rgb_array` renderer draws the env.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use gradless_device::InferenceDevice;
use gradless_evaluator::{
    AgentDevice, EvalSettings, LoadedCheckpoint, RecordPlan, RecordedVideo, VideoFolder,
    enclosing_run, one_checkpoint, prepare_output_dir,
};
use gradless_policy::SeededEpisode;
use gradless_render::{VideoFormat, check_ffmpeg};
use serde::Serialize;

use crate::output::print_json_line;
use crate::settings::{ActingArgs, check_count, check_first_seed};

/// Arguments of `gradless record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// A checkpoint directory, or a run directory (its last checkpoint).
    path: PathBuf,
    /// Episodes to record; episode i runs from seed SEED + i, as in `gradless eval`.
    #[arg(long, default_value_t = 3)]
    episodes: usize,
    #[command(flatten)]
    acting: ActingArgs,
    /// Where to write the videos and videos.jsonl; default: a `videos` folder inside the
    /// checkpoint.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The videos' format: `gif`, or `mp4` (H.264 at the env's frame rate, written by the
    /// system's ffmpeg).
    #[arg(long, default_value = "gif", value_name = "gif|mp4")]
    format: VideoFormat,
}

/// A recorded video as printed with `--json`.
#[derive(Serialize)]
struct VideoLine<'a> {
    #[serde(flatten)]
    episode: &'a SeededEpisode,
    video: &'a Path,
    frames: u64,
}

/// Prints a video as a line of text or JSON.
pub fn print_video(video: &RecordedVideo, path: &Path, json: bool) -> Result<()> {
    let e = &video.episode;
    if json {
        return print_json_line(&VideoLine {
            episode: e,
            video: path,
            frames: video.frames,
        });
    }
    let ending = if e.terminated {
        "terminated"
    } else {
        "truncated"
    };
    println!(
        "episode {} (seed {}): return {:.1} over {} steps, {ending} -> {} ({} frames)",
        e.episode,
        e.seed,
        e.episode_return,
        e.length,
        path.display(),
        video.frames
    );
    Ok(())
}

/// Runs `gradless record`.
pub fn run(args: &RecordArgs, json: bool) -> Result<()> {
    check_count("--episodes", args.episodes, RecordPlan::MAX_EPISODES)?;
    check_first_seed(args.acting.seed, args.episodes)?;
    if args.format == VideoFormat::Mp4 {
        check_ffmpeg().context("--format mp4")?;
    }
    let checkpoint = one_checkpoint(&args.path)?;
    let (base, relative) = match &args.out {
        Some(out) => (out.clone(), PathBuf::new()),
        // Another tool's policy file: `<file name>-videos` beside it.
        None if checkpoint.is_file() => gradless_evaluator::beside_file(&checkpoint, "videos"),
        None => (checkpoint.clone(), PathBuf::from("videos")),
    };
    // Videos written into a run's checkpoint: no trainer may write (or prune) it meanwhile;
    // into --out: no other gradless process may write there meanwhile.
    let _lock = match (&args.out, enclosing_run(&checkpoint)?) {
        (Some(out), _) => Some(crate::settings::lock_out(out, false)?),
        (None, Some(run)) => Some(
            gradless_files::DirLock::acquire(&run)
                .map_err(|e| anyhow::Error::from(e).context(run.display().to_string()))?,
        ),
        (None, None) => None,
    };
    let dir = prepare_output_dir(&base, &relative)?;
    let device = AgentDevice::new(&InferenceDevice::new(&args.acting.base_device()?));
    let settings = EvalSettings {
        env: args.acting.env.clone(),
        activation: crate::settings::parse_activation(args.acting.activation.as_deref())?,
        stochastic: args.acting.stochastic,
        epsilon: args.acting.checked_epsilon()?,
        ..EvalSettings::default()
    };
    let loaded = LoadedCheckpoint::load(&checkpoint, &settings, &device)?;
    let plan = RecordPlan {
        first_seed: args.acting.seed,
        episodes: args.episodes,
        stochastic: settings.samples(),
        format: args.format,
    };
    let mut printed = Ok(());
    // The default `videos` folder is gradless's own; a folder named by --out is the user's,
    // written whole only while it holds nothing but recordings.
    let folder = match args.out {
        Some(_) => VideoFolder::of_named(&dir),
        None => VideoFolder::Owned,
    };
    loaded.record_videos(&plan, &dir, folder, |video, path| {
        if printed.is_ok() {
            printed = print_video(video, path, json);
        }
    })?;
    printed
}
