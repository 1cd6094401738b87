//! `gradless plot`: training curves from runs' metrics logs, the runs overlaid.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use gradless_evaluator::prepare_output_dir;
use gradless_trainer::metrics_log::read_metrics;
use gradless_trainer::run_dir::METRICS_FILE;
use gradless_trainer::training_curves::{TrainingRun, write_training_curves};
use serde::Serialize;

use crate::output::print_json_line;
use crate::settings::{FigureArgs, check_count};

/// Arguments of `gradless plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Training runs (folders holding a `metrics.jsonl`), or folders of runs (`train
    /// --seeds` output): every run is drawn in its own colour.
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// The smoothed return is the mean of this many episodes (the trainer's training return
    /// is over 100).
    #[arg(long, default_value_t = 100)]
    window: usize,
    /// Where `returns` and `updates` (SVG and PNG) are written.
    #[arg(long, default_value = "plots")]
    out: PathBuf,
    #[command(flatten)]
    figures: FigureArgs,
}

/// The most runs one figure overlays (beyond, the colours and the legend stop telling them
/// apart).
const MAX_RUNS: usize = 64;

/// The longest smoothing window.
const MAX_WINDOW: usize = 1_000_000;

/// `path` as runs: itself when it holds a metrics log, else its sub-folders that do (in
/// name order, symbolic links skipped), named `folder/run`.
fn runs_in(path: &Path) -> Result<Vec<(String, PathBuf)>> {
    let name = |p: &Path| {
        p.file_name()
            .unwrap_or(p.as_os_str())
            .to_string_lossy()
            .into_owned()
    };
    if path.join(METRICS_FILE).is_file() {
        return Ok(vec![(name(path), path.to_path_buf())]);
    }
    let entries = std::fs::read_dir(path).with_context(|| path.display().to_string())?;
    let mut children: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.path())
        .filter(|child| child.join(METRICS_FILE).is_file())
        .collect();
    children.sort();
    if children.is_empty() {
        bail!(
            "{}: no {METRICS_FILE} here or in its folders (plot draws training runs)",
            path.display()
        );
    }
    Ok(children
        .into_iter()
        .map(|child| (format!("{}/{}", name(path), name(&child)), child))
        .collect())
}

/// What `--json` prints.
#[derive(Serialize)]
struct Written {
    runs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

/// Runs `gradless plot`.
pub fn run(args: &PlotArgs, json: bool) -> Result<()> {
    check_count("--window", args.window, MAX_WINDOW)?;
    let figures = args.figures.options()?;
    let mut found = Vec::new();
    for path in &args.runs {
        found.extend(runs_in(path)?);
        if found.len() > MAX_RUNS {
            bail!("more than {MAX_RUNS} runs to overlay: plot fewer at a time");
        }
    }
    // Names that would read alike in the legend are spelled out as paths.
    let names: Vec<String> = found
        .iter()
        .map(|(name, path)| {
            let twice = found.iter().filter(|(other, _)| other == name).count() > 1;
            if twice {
                path.display().to_string()
            } else {
                name.clone()
            }
        })
        .collect();
    let runs: Vec<TrainingRun> = found
        .iter()
        .zip(names)
        .map(|((_, path), name)| {
            Ok(TrainingRun {
                name,
                log: read_metrics(path)?,
            })
        })
        .collect::<Result<_>>()?;
    let out = prepare_output_dir(&args.out, Path::new(""))?;
    let files = write_training_curves(&runs, args.window, &out, &figures)?;
    if files.is_empty() {
        bail!("the runs logged no episode and no update yet: nothing to draw");
    }
    if json {
        print_json_line(&Written {
            runs: found.into_iter().map(|(_, path)| path).collect(),
            files,
        })?;
    } else {
        for file in &files {
            println!("{}", file.display());
        }
    }
    Ok(())
}
