//! The learning curve of a run: IQM of the evaluation returns against training step, with
//! its 95% bootstrap interval shaded, and the greedy evaluations the run logged while it
//! trained (its checkpoints may have been pruned since) as a second line, as SVG and PNG.

use std::path::{Path, PathBuf};

use gradless_plots::plotters::prelude::*;
use gradless_plots::{
    Figure, FigureOptions, GRID, Look, compact, steps_label, tick_count, titled_with_legend,
    write_svg_and_png,
};

use crate::{CheckpointEvaluation, EvalError};

struct LearningCurve<'a> {
    title: &'a str,
    evaluations: &'a [&'a CheckpointEvaluation],
    training: &'a [(u64, f64)],
}

/// The colour of the evaluations logged during training.
const TRAINING_COLOUR: RGBColor = RGBColor(110, 110, 110);

impl Figure for LearningCurve<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, gradless_plots::plotters::coord::Shift>,
        look: &Look<'_>,
    ) -> Result<(), String> {
        draw(root, look, self)
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, gradless_plots::plotters::coord::Shift>,
    look: &Look<'_>,
    curve: &LearningCurve<'_>,
) -> Result<(), String> {
    let error = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (title, evaluations, training) = (curve.title, curve.evaluations, curve.training);
    let mut entries = vec![("evaluated checkpoints (IQM, 95% CI)".to_string(), BLUE)];
    if !training.is_empty() {
        entries.push(("during training (mean)".to_string(), TRAINING_COLOUR));
    }
    let (root, legend) = titled_with_legend(&root, look.title(title), &entries, look)?;
    // A curve is over training steps: an evaluation whose step is unknown has no place on it.
    let evaluations: Vec<(u64, &CheckpointEvaluation)> = evaluations
        .iter()
        .filter_map(|e| Some((e.step?, *e)))
        .collect();
    let max_step = evaluations
        .iter()
        .map(|(step, _)| *step)
        .chain(training.iter().map(|(step, _)| *step))
        .max()
        .unwrap_or(1)
        .max(1);
    let (low, high) = evaluations
        .iter()
        .flat_map(|(_, e)| e.summary.iqm_ci95)
        .chain(training.iter().map(|(_, mean)| *mean))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let margin = ((high - low) * 0.05).max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .margin(look.px(12))
        .x_label_area_size(look.px(40))
        .y_label_area_size(look.px(60))
        // A little room past the last step, so that its point is not cut by the frame.
        .build_cartesian_2d(
            0u64..max_step + max_step / 40,
            (low - margin)..(high + margin),
        )
        .map_err(error)?;
    let x_ticks = tick_count(root.dim_in_pixel().0, look);
    chart
        .configure_mesh()
        .x_labels(x_ticks)
        .x_desc("environment steps")
        .y_desc("IQM return (95% CI over one seed's episodes)")
        .x_label_formatter(&|steps| steps_label(*steps as f64))
        .y_label_formatter(&|value| compact(*value))
        .label_style(look.font(14))
        .axis_desc_style(look.font(15))
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .draw()
        .map_err(error)?;
    let band: Vec<(u64, f64)> = evaluations
        .iter()
        .map(|(step, e)| (*step, e.summary.iqm_ci95[1]))
        .chain(
            evaluations
                .iter()
                .rev()
                .map(|(step, e)| (*step, e.summary.iqm_ci95[0])),
        )
        .collect();
    chart
        .draw_series(std::iter::once(Polygon::new(band, BLUE.mix(0.2).filled())))
        .map_err(error)?;
    let line: Vec<(u64, f64)> = evaluations
        .iter()
        .map(|(step, e)| (*step, e.summary.iqm))
        .collect();
    chart
        .draw_series(LineSeries::new(line.clone(), BLUE.stroke_width(look.px(2))))
        .map_err(error)?;
    chart
        .draw_series(
            line.into_iter()
                .map(|p| Circle::new(p, look.px(3), BLUE.filled())),
        )
        .map_err(error)?;
    chart
        .draw_series(LineSeries::new(
            training.iter().copied(),
            TRAINING_COLOUR.stroke_width(look.px(1)),
        ))
        .map_err(error)?;
    chart
        .draw_series(
            training
                .iter()
                .map(|&p| Circle::new(p, look.px(2), TRAINING_COLOUR.filled())),
        )
        .map_err(error)?;
    legend.draw(&entries, look)?;
    root.present().map_err(error)
}

/// What ends the name of an evaluation's event file.
const EVALUATION_EVENTS_MARK: &str = "gradless-eval";

/// Writes a run's evaluation curve as TensorBoard scalars in `dir` (`eval/mean_return`,
/// `eval/iqm` and its interval's ends, `eval/truncated_fraction`, against each checkpoint's
/// step), in a new event file that replaces the ones an earlier evaluation wrote there (they
/// are removed once it is complete; other event files are left alone). Returns the file.
pub fn write_tensorboard_curve(
    evaluations: &[&CheckpointEvaluation],
    dir: &Path,
) -> Result<PathBuf, EvalError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvalError::Io { path, source }
    };
    // Only event files an evaluation wrote are replaced: `--out` may hold someone else's.
    let mark = format!(".{EVALUATION_EVENTS_MARK}");
    let earlier: Vec<PathBuf> = gradless_tensorboard::event_files(dir)
        .map_err(io(dir))?
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(&mark))
        .collect();
    let mut writer =
        gradless_tensorboard::EventWriter::create_marked(dir, Some(EVALUATION_EVENTS_MARK))
            .map_err(io(dir))?;
    let path = writer.path().to_path_buf();
    for evaluation in evaluations {
        let s = &evaluation.summary;
        let Some(step) = evaluation.step else {
            continue;
        };
        let step = step as i64;
        for (tag, value) in [
            ("eval/mean_return", s.mean_return),
            ("eval/iqm", s.iqm),
            ("eval/iqm_ci95_lo", s.iqm_ci95[0]),
            ("eval/iqm_ci95_hi", s.iqm_ci95[1]),
            ("eval/truncated_fraction", s.truncated_fraction),
        ] {
            writer.scalar(tag, step, value as f32).map_err(io(&path))?;
        }
    }
    writer.flush().map_err(io(&path))?;
    for old in earlier {
        std::fs::remove_file(&old).map_err(io(&old))?;
    }
    Ok(path)
}

/// Writes `<stem>.svg` and `<stem>.png` for a run's evaluations (in step order) and the
/// `(step, mean return)` of the greedy evaluations it logged while training (may be
/// empty), as `options` say; returns the files written.
pub fn write_learning_curve(
    evaluations: &[&CheckpointEvaluation],
    training: &[(u64, f64)],
    title: &str,
    stem: &Path,
    options: &FigureOptions,
) -> Result<Vec<PathBuf>, EvalError> {
    let curve = LearningCurve {
        title,
        evaluations,
        training,
    };
    write_svg_and_png(&curve, stem, options).map_err(|e| EvalError::Io {
        source: std::io::Error::other(e.reason),
        path: e.path,
    })
}
