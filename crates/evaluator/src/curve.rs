//! The learning curve of a run: IQM of the evaluation returns against training step, with
//! its 95% bootstrap interval shaded, as SVG and PNG.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::{CheckpointEvaluation, EvalError};

/// Where the text font is looked for (Debian's `fonts-dejavu-core`, which
/// `scripts/setup.sh` installs).
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = FONT_PATHS
                .iter()
                .find_map(|path| std::fs::read(path).ok())
                .ok_or_else(|| {
                    format!(
                        "no font for the plot text at {} (install fonts-dejavu-core)",
                        FONT_PATHS.join(" or ")
                    )
                })?;
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| "the font file could not be read".to_string())
        })
        .clone()
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    evaluations: &[&CheckpointEvaluation],
) -> Result<(), String> {
    let error = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(error)?;
    let max_step = evaluations.iter().map(|e| e.step).max().unwrap_or(1).max(1);
    let (low, high) = evaluations
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), e| {
            (lo.min(e.summary.iqm_ci95[0]), hi.max(e.summary.iqm_ci95[1]))
        });
    let margin = ((high - low) * 0.05).max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0u64..max_step, (low - margin)..(high + margin))
        .map_err(error)?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc("return (IQM, 95% CI)")
        .draw()
        .map_err(error)?;
    let band: Vec<(u64, f64)> = evaluations
        .iter()
        .map(|e| (e.step, e.summary.iqm_ci95[1]))
        .chain(
            evaluations
                .iter()
                .rev()
                .map(|e| (e.step, e.summary.iqm_ci95[0])),
        )
        .collect();
    chart
        .draw_series(std::iter::once(Polygon::new(band, BLUE.mix(0.2).filled())))
        .map_err(error)?;
    let line: Vec<(u64, f64)> = evaluations
        .iter()
        .map(|e| (e.step, e.summary.iqm))
        .collect();
    chart
        .draw_series(LineSeries::new(line.clone(), BLUE.stroke_width(2)))
        .map_err(error)?;
    chart
        .draw_series(line.into_iter().map(|p| Circle::new(p, 3, BLUE.filled())))
        .map_err(error)?;
    root.present().map_err(error)
}

/// Writes `<stem>.svg` and `<stem>.png` for a run's evaluations (in step order); returns
/// the files written.
pub fn write_learning_curve(
    evaluations: &[&CheckpointEvaluation],
    title: &str,
    stem: &Path,
) -> Result<Vec<PathBuf>, EvalError> {
    let failed = |path: &Path, reason: String| EvalError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(reason),
    };
    if let Some(folder) = stem.parent() {
        std::fs::create_dir_all(folder).map_err(|source| EvalError::Io {
            path: folder.to_path_buf(),
            source,
        })?;
    }
    let svg = stem.with_extension("svg");
    // Text is laid out with this font in both formats.
    register_font().map_err(|reason| failed(&svg, reason))?;
    draw(
        SVGBackend::new(&svg, (800, 500)).into_drawing_area(),
        title,
        evaluations,
    )
    .map_err(|reason| failed(&svg, reason))?;
    let png = stem.with_extension("png");
    draw(
        BitMapBackend::new(&png, (800, 500)).into_drawing_area(),
        title,
        evaluations,
    )
    .map_err(|reason| failed(&png, reason))?;
    Ok(vec![svg, png])
}
