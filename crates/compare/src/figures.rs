//! A comparison's figures, as SVG and PNG: the aggregates with their intervals, the
//! performance profiles with bands, and sample-efficiency curves with bands.

use std::path::{Path, PathBuf};

use gradless_plots::plotters::coord::Shift;
use gradless_plots::plotters::prelude::*;
use gradless_plots::{
    Figure, FigureOptions, GRID, Look, PlotError, compact, draw_title, padded, series_colour,
    steps_label, tick_count, titled_with_legend, write_svg_and_png,
};

use crate::{Comparison, Curve, CurveSource};

/// A value with its 95% interval.
type Estimate = (f64, [f64; 2]);

/// A group's line: its name, its colour (the group's in every figure) and its
/// `(x, value, [lo, hi])` points.
struct Line {
    name: String,
    colour: RGBColor,
    points: Vec<(f64, f64, [f64; 2])>,
}

/// The colour of group `k`, the same in every figure.
fn colour(k: usize) -> RGBColor {
    series_colour(k)
}

fn failed<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The value axis's name.
fn score_name(comparison: &Comparison) -> &'static str {
    if comparison.normalized {
        "normalised scores"
    } else {
        "scores (mean returns)"
    }
}

/// The margin around a value axis's data, as a fraction of its spread.
const MARGIN: f64 = 0.08;

struct AggregatesFigure<'a>(&'a Comparison);

impl AggregatesFigure<'_> {
    fn title(&self) -> String {
        // The score's name is on every panel's axis.
        "Aggregates, 95% stratified-bootstrap CIs".into()
    }
}

impl Figure for AggregatesFigure<'_> {
    /// One panel a metric, each group a row with its interval. Long because plotters wants
    /// every axis, series and label set in turn.
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        look: &Look<'_>,
    ) -> Result<(), String> {
        let comparison = self.0;
        root.fill(&WHITE).map_err(failed)?;
        let groups = &comparison.groups;
        let panels: [(&str, Vec<Estimate>); 4] = [
            ("IQM", groups.iter().map(|g| (g.iqm, g.iqm_ci95)).collect()),
            (
                "Median",
                groups.iter().map(|g| (g.median, g.median_ci95)).collect(),
            ),
            (
                "Mean",
                groups.iter().map(|g| (g.mean, g.mean_ci95)).collect(),
            ),
            (
                "Optimality gap",
                groups
                    .iter()
                    .map(|g| (g.optimality_gap, g.optimality_gap_ci95))
                    .collect(),
            ),
        ];
        let n = groups.len();
        let axis_name = if comparison.normalized {
            "normalised score"
        } else {
            "mean return"
        };
        let body = draw_title(&root, look.title(&self.title()), look)?;
        for (k, (area, (name, values))) in body
            .split_evenly((1, 4))
            .into_iter()
            .zip(panels)
            .enumerate()
        {
            let x = padded(values.iter().flat_map(|(v, ci)| [*v, ci[0], ci[1]]), MARGIN);
            let mut chart = ChartBuilder::on(&area)
                .caption(name, look.font(16))
                .margin(look.px(8))
                .x_label_area_size(look.px(45))
                .y_label_area_size(look.px(if k == 0 { 80 } else { 8 }))
                .build_cartesian_2d(x, 0.0..n as f64)
                .map_err(failed)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(n.max(1) * 2 + 1)
                .y_label_formatter(&|y| {
                    let slot = y - y.floor();
                    let index = y.floor() as usize;
                    match (
                        k,
                        (slot - 0.5).abs() < 1e-6,
                        groups.get(n.saturating_sub(index + 1)),
                    ) {
                        (0, true, Some(group)) => group.group.clone(),
                        _ => String::new(),
                    }
                })
                .disable_x_mesh()
                .x_labels(4)
                .x_label_formatter(&|v| compact(*v))
                .x_desc(axis_name)
                .axis_desc_style(look.font(13))
                .label_style(look.font(13))
                .draw()
                .map_err(failed)?;
            for (g, (value, ci)) in values.iter().enumerate() {
                // The first group at the top.
                let row = (n - 1 - g) as f64;
                let style = colour(g).mix(0.6).filled();
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(ci[0], row + 0.3), (ci[1], row + 0.7)],
                        style,
                    )))
                    .map_err(failed)?;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(*value, row + 0.25), (*value, row + 0.75)],
                        BLACK.stroke_width(look.px(2)),
                    )))
                    .map_err(failed)?;
            }
        }
        root.present().map_err(failed)
    }
}

/// A line per group with its band, against an `f64` x axis, the legend beside it.
struct BandFigure<'a> {
    title: &'a str,
    x_name: &'a str,
    y_name: &'a str,
    /// Whether x counts environment steps (ticks read 10k, 1M).
    x_steps: bool,
    /// One per group.
    lines: Vec<Line>,
}

impl Figure for BandFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        look: &Look<'_>,
    ) -> Result<(), String> {
        let entries: Vec<(String, RGBColor)> = self
            .lines
            .iter()
            .map(|line| (line.name.clone(), line.colour))
            .collect();
        let (plot, legend) = titled_with_legend(&root, look.title(self.title), &entries, look)?;
        let points = || self.lines.iter().flat_map(|line| line.points.iter());
        let x = padded(points().map(|p| p.0), MARGIN);
        let y = padded(points().flat_map(|p| [p.1, p.2[0], p.2[1]]), MARGIN);
        let mut chart = ChartBuilder::on(&plot)
            .margin(look.px(12))
            .x_label_area_size(look.px(40))
            .y_label_area_size(look.px(60))
            .build_cartesian_2d(x, y)
            .map_err(failed)?;
        let x_steps = self.x_steps;
        let x_ticks = tick_count(plot.dim_in_pixel().0, look);
        chart
            .configure_mesh()
            .x_labels(x_ticks)
            .x_desc(self.x_name)
            .y_desc(self.y_name)
            .x_label_formatter(&|x| {
                if x_steps {
                    steps_label(*x)
                } else {
                    compact(*x)
                }
            })
            .y_label_formatter(&|y| compact(*y))
            .label_style(look.font(14))
            .axis_desc_style(look.font(15))
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .draw()
            .map_err(failed)?;
        let width = look.px(2);
        for Line { colour, points, .. } in &self.lines {
            let band: Vec<(f64, f64)> = points
                .iter()
                .map(|p| (p.0, p.2[1]))
                .chain(points.iter().rev().map(|p| (p.0, p.2[0])))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    colour.mix(0.2).filled(),
                )))
                .map_err(failed)?;
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|p| (p.0, p.1)),
                    colour.stroke_width(width),
                ))
                .map_err(failed)?;
        }
        legend.draw(&entries, look)?;
        root.present().map_err(failed)
    }
}

/// Group `k`'s curve as a line, its name saying when the points are evaluations during
/// training.
fn curve_line(group: &str, curve: &Curve, k: usize) -> Line {
    let points = curve.steps.iter().zip(&curve.iqm).zip(&curve.ci95);
    Line {
        name: match curve.source {
            CurveSource::Checkpoints => group.to_string(),
            CurveSource::Training => format!("{group} (during training)"),
        },
        colour: colour(k),
        points: points.map(|((&s, &v), &ci)| (s as f64, v, ci)).collect(),
    }
}

/// Writes the curve of one group of runs (`gradless eval` of a folder of runs) as
/// `stem.svg` and `stem.png`, titled `title` unless `options` give one; returns the files.
pub fn write_curve_over_runs(
    group: &str,
    curve: &Curve,
    title: &str,
    stem: &Path,
    options: &FigureOptions,
) -> Result<Vec<PathBuf>, PlotError> {
    let figure = BandFigure {
        title,
        x_name: "environment steps",
        y_name: "IQM over seeds of mean return",
        x_steps: true,
        lines: vec![curve_line(group, curve, 0)],
    };
    write_svg_and_png(&figure, stem, options)
}

/// Writes `aggregates`, `performance_profile` and (when some group has one)
/// `sample_efficiency`, each as `.svg` and `.png`, into `dir`; returns the files.
pub fn write_figures(
    comparison: &Comparison,
    dir: &Path,
    options: &FigureOptions,
) -> Result<Vec<PathBuf>, PlotError> {
    // A title asked for heads every figure, each keeping its own after it.
    let titled = |own: &str| options.titled(own);
    let aggregates = AggregatesFigure(comparison);
    let mut files = write_svg_and_png(
        &aggregates,
        &dir.join("aggregates"),
        &titled(&aggregates.title()),
    )?;
    let profiles = BandFigure {
        title: "Performance profiles (95% CIs)",
        x_name: &format!("τ ({})", score_name(comparison)),
        y_name: "fraction of runs with score > τ",
        x_steps: false,
        lines: comparison
            .groups
            .iter()
            .zip(&comparison.profiles)
            .enumerate()
            .map(|(k, (group, p))| {
                let points = p.taus.iter().zip(&p.fraction).zip(&p.ci95);
                Line {
                    name: group.group.clone(),
                    colour: colour(k),
                    points: points.map(|((&t, &f), &ci)| (t, f, ci)).collect(),
                }
            })
            .collect(),
    };
    files.extend(write_svg_and_png(
        &profiles,
        &dir.join("performance_profile"),
        &titled(profiles.title),
    )?);
    let curves: Vec<Line> = comparison
        .groups
        .iter()
        .enumerate()
        .filter_map(|(k, group)| Some(curve_line(&group.group, group.curve.as_ref()?, k)))
        .collect();
    if !curves.is_empty() {
        let efficiency = BandFigure {
            title: "Sample efficiency (IQM over runs, 95% CIs)",
            x_name: "environment steps",
            y_name: score_name(comparison),
            x_steps: true,
            lines: curves,
        };
        files.extend(write_svg_and_png(
            &efficiency,
            &dir.join("sample_efficiency"),
            &titled(efficiency.title),
        )?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CompareSettings, EnvReference, Group, RunScore, compare};

    #[test]
    fn figures_are_written_for_every_part_of_a_comparison() {
        let run = |name: &str, score: f64, curve: Vec<(u64, f64)>| RunScore {
            run: PathBuf::from(name),
            checkpoint: PathBuf::from(name),
            env: "CartPole-v1".into(),
            score,
            curve,
            training_curve: Vec::new(),
            seed: None,
        };
        let groups = [
            Group {
                name: "a".into(),
                runs: vec![
                    run("a1", 480.0, vec![(100, 100.0), (200, 480.0)]),
                    run("a2", 420.0, vec![(100, 80.0), (200, 420.0)]),
                ],
            },
            Group {
                name: "b".into(),
                runs: vec![run("b1", 300.0, Vec::new()), run("b2", 350.0, Vec::new())],
            },
        ];
        let references = [EnvReference {
            env: "CartPole-v1".into(),
            target: Some(475.0),
            random: Some(22.0),
        }];
        let settings = CompareSettings {
            reps: 200,
            seed: 1,
            normalize: false,
        };
        let comparison = compare(&groups, &references, &settings).unwrap();
        let dir = std::env::temp_dir().join(format!("gradless-figures-{}", std::process::id()));
        let options = FigureOptions {
            title: Some("PPO against DQN".into()),
            ..FigureOptions::default()
        };
        let files = write_figures(&comparison, &dir, &options).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in [
            "aggregates.svg",
            "performance_profile.png",
            "sample_efficiency.svg",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing: {names:?}"
            );
        }
        let svg = std::fs::read_to_string(dir.join("aggregates.svg")).unwrap();
        assert!(
            // plotters writes each text on a line of its own.
            svg.contains("\nOptimality gap\n") && svg.contains("\nb\n"),
            "labels drawn"
        );
        let profile = std::fs::read_to_string(dir.join("performance_profile.svg")).unwrap();
        assert!(
            profile.contains("PPO against DQN: Performance profiles"),
            "the title heads each figure"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
