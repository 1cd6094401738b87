//! Training curves from runs' metrics logs (`gradless plot`): each run's episodic return
//! against step, smoothed over a window of episodes with the raw returns faint behind it,
//! and the updates' statistics (losses, entropy, gradient norm, ...) in small panels, the
//! runs overlaid, each in its own colour in every panel.

use std::path::{Path, PathBuf};

use gradless_plots::plotters::coord::Shift;
use gradless_plots::plotters::prelude::*;
use gradless_plots::{
    Figure, FigureOptions, GRID, Look, PlotError, padded, series_colour, steps_label, tick_count,
    tick_label, titled_with_legend, write_svg_and_png,
};

use crate::metrics_log::MetricsLog;

/// Update fields that are bookkeeping, not statistics of the learning: not drawn.
const BOOKKEEPING: [&str; 7] = [
    "update",
    "gradient_steps",
    "sps",
    "rollout_seconds",
    "iteration_seconds",
    "buffer",
    "training_return",
];

/// The most raw returns drawn per run: beyond, every k-th (the smoothed line uses them all).
const MAX_RAW_POINTS: usize = 4000;

/// The most points a smoothed line or a statistic's line has per run.
const MAX_LINE_POINTS: usize = 2000;

/// One run's log, named as the figures' legends show it.
pub struct TrainingRun {
    /// Its name in legends.
    pub name: String,
    /// What its metrics log holds.
    pub log: MetricsLog,
}

/// Every `k`-th of `points` so that at most `most` remain, the last always kept.
fn thinned<T: Copy>(points: &[T], most: usize) -> Vec<T> {
    let stride = points.len().div_ceil(most.max(1)).max(1);
    let mut kept: Vec<T> = points.iter().copied().step_by(stride).collect();
    if let Some(&last) = points.last()
        && !(points.len() - 1).is_multiple_of(stride)
    {
        kept.push(last);
    }
    kept
}

/// The mean of each episode's return and the `window - 1` before it, at its step.
pub fn smoothed(episodes: &[(u64, f64)], window: usize) -> Vec<(u64, f64)> {
    let window = window.max(1);
    let mut sum = 0.0;
    episodes
        .iter()
        .enumerate()
        .map(|(i, &(step, value))| {
            sum += value;
            if i >= window {
                sum -= episodes[i - window].1;
            }
            (step, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

/// The margin around a value axis's data, as a fraction of its spread.
const MARGIN: f64 = 0.05;

/// The runs' legend entries, in run order.
fn legend_entries(runs: &[TrainingRun]) -> Vec<(String, RGBColor)> {
    runs.iter()
        .enumerate()
        .map(|(k, run)| (run.name.clone(), series_colour(k)))
        .collect()
}

fn failed<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The episodic return of every run.
struct ReturnsFigure<'a> {
    runs: &'a [TrainingRun],
    window: usize,
}

impl ReturnsFigure<'_> {
    fn title(&self) -> String {
        format!(
            "Episodic return during training (mean of the last {} episodes)",
            self.window
        )
    }
}

impl Figure for ReturnsFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        look: &Look<'_>,
    ) -> Result<(), String> {
        let entries = legend_entries(self.runs);
        let (plot, legend) = titled_with_legend(&root, look.title(&self.title()), &entries, look)?;
        let episodes: Vec<Vec<(u64, f64)>> = self
            .runs
            .iter()
            .map(|run| {
                run.log
                    .episodes
                    .iter()
                    .map(|e| (e.global_step, e.episode_return))
                    .collect()
            })
            .collect();
        let all = || episodes.iter().flatten();
        let last_step = all().map(|p| p.0).max().unwrap_or(1).max(1) as f64;
        let returns = padded(all().map(|p| p.1), MARGIN);
        let span = returns.end - returns.start;
        let mut chart = ChartBuilder::on(&plot)
            .margin(look.px(12))
            .x_label_area_size(look.px(40))
            .y_label_area_size(look.px(60))
            .build_cartesian_2d(0.0..last_step * 1.02, returns)
            .map_err(failed)?;
        let x_ticks = tick_count(plot.dim_in_pixel().0, look);
        chart
            .configure_mesh()
            .x_labels(x_ticks)
            .x_desc("environment steps")
            .y_desc("episodic return")
            .x_label_formatter(&|x| steps_label(*x))
            .y_label_formatter(&|y| tick_label(*y, span))
            .label_style(look.font(14))
            .axis_desc_style(look.font(15))
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .draw()
            .map_err(failed)?;
        let dot = look.px(2);
        for (k, points) in episodes.iter().enumerate() {
            let colour = series_colour(k);
            let raw = thinned(points, MAX_RAW_POINTS);
            chart
                .draw_series(
                    raw.iter()
                        .map(|&(s, r)| Circle::new((s as f64, r), dot, colour.mix(0.15).filled())),
                )
                .map_err(failed)?;
            let line = thinned(&smoothed(points, self.window), MAX_LINE_POINTS);
            chart
                .draw_series(LineSeries::new(
                    line.iter().map(|&(s, r)| (s as f64, r)),
                    colour.stroke_width(look.px(2)),
                ))
                .map_err(failed)?;
        }
        legend.draw(&entries, look)?;
        root.present().map_err(failed)
    }
}

const UPDATES_TITLE: &str = "Update statistics";

/// The updates' statistics, one panel each.
struct UpdatesFigure<'a> {
    runs: &'a [TrainingRun],
    names: Vec<String>,
}

/// The statistics some run logged, losses first, then the rest by name.
fn statistic_names(runs: &[TrainingRun]) -> Vec<String> {
    let mut names: Vec<String> = runs
        .iter()
        .flat_map(|run| run.log.updates.iter().flat_map(|u| u.values.keys()))
        .filter(|name| !BOOKKEEPING.contains(&name.as_str()))
        .cloned()
        .collect();
    names.sort_by_key(|name| (!name.contains("loss"), name.clone()));
    names.dedup();
    names
}

impl Figure for UpdatesFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        look: &Look<'_>,
    ) -> Result<(), String> {
        let entries = legend_entries(self.runs);
        let (panels_area, legend) =
            titled_with_legend(&root, look.title(UPDATES_TITLE), &entries, look)?;
        let columns = self.names.len().clamp(1, 3);
        let rows = self.names.len().div_ceil(columns).max(1);
        let panels = panels_area.split_evenly((rows, columns));
        for (name, panel) in self.names.iter().zip(&panels) {
            let lines: Vec<Vec<(f64, f64)>> = self
                .runs
                .iter()
                .map(|run| {
                    let points: Vec<(f64, f64)> = run
                        .log
                        .updates
                        .iter()
                        .filter_map(|u| Some((u.global_step as f64, *u.values.get(name)?)))
                        .collect();
                    thinned(&points, MAX_LINE_POINTS)
                })
                .collect();
            let all = || lines.iter().flatten();
            let last_step = all().map(|p| p.0).fold(1.0, f64::max);
            let values = padded(all().map(|p| p.1), MARGIN);
            let span = values.end - values.start;
            let mut chart = ChartBuilder::on(panel)
                .caption(name, look.font(14))
                .margin(look.px(8))
                .x_label_area_size(look.px(24))
                .y_label_area_size(look.px(48))
                .build_cartesian_2d(0.0..last_step * 1.02, values)
                .map_err(failed)?;
            chart
                .configure_mesh()
                .x_labels(4)
                .y_labels(4)
                .x_label_formatter(&|x| steps_label(*x))
                .y_label_formatter(&|y| tick_label(*y, span))
                .label_style(look.font(11))
                .light_line_style(TRANSPARENT)
                .bold_line_style(GRID)
                .draw()
                .map_err(failed)?;
            for (k, points) in lines.iter().enumerate() {
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        series_colour(k).stroke_width(look.px(2)),
                    ))
                    .map_err(failed)?;
            }
        }
        legend.draw(&entries, look)?;
        root.present().map_err(failed)
    }
}

/// Writes `returns` (when some run finished an episode) and `updates` (when some run
/// logged an update), each as `.svg` and `.png`, into `dir`; returns the files.
pub fn write_training_curves(
    runs: &[TrainingRun],
    window: usize,
    dir: &Path,
    options: &FigureOptions,
) -> Result<Vec<PathBuf>, PlotError> {
    let mut files = Vec::new();
    if runs.iter().any(|run| !run.log.episodes.is_empty()) {
        let figure = ReturnsFigure { runs, window };
        files.extend(write_svg_and_png(
            &figure,
            &dir.join("returns"),
            &options.titled(&figure.title()),
        )?);
    }
    let names = statistic_names(runs);
    if !names.is_empty() {
        let figure = UpdatesFigure { runs, names };
        files.extend(write_svg_and_png(
            &figure,
            &dir.join("updates"),
            &options.titled(UPDATES_TITLE),
        )?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics_log::{LoggedEpisode, LoggedUpdate};

    #[test]
    fn smoothing_is_the_mean_of_the_window_so_far() {
        let episodes = [(10, 1.0), (20, 3.0), (30, 5.0), (40, 7.0)];
        assert_eq!(
            smoothed(&episodes, 2),
            [(10, 1.0), (20, 2.0), (30, 4.0), (40, 6.0)]
        );
        assert_eq!(smoothed(&episodes, 100)[3], (40, 4.0));
    }

    #[test]
    fn thinning_keeps_the_ends_and_at_most_the_limit() {
        let points: Vec<u32> = (0..10).collect();
        assert_eq!(thinned(&points, 4), [0, 3, 6, 9]);
        assert_eq!(thinned(&points, 3), [0, 4, 8, 9]);
        assert_eq!(thinned(&points, 20), points);
    }

    #[test]
    fn statistics_exclude_bookkeeping_and_put_losses_first() {
        let update = |names: &[&str]| LoggedUpdate {
            global_step: 1,
            values: names.iter().map(|n| (n.to_string(), 1.0)).collect(),
        };
        let run = |updates| TrainingRun {
            name: "r".into(),
            log: MetricsLog {
                updates,
                ..MetricsLog::default()
            },
        };
        let runs = [
            run(vec![update(&["sps", "entropy", "value_loss", "update"])]),
            run(vec![update(&["td_loss", "epsilon", "buffer"])]),
        ];
        assert_eq!(
            statistic_names(&runs),
            ["td_loss", "value_loss", "entropy", "epsilon"]
        );
    }

    #[test]
    fn both_figures_are_written_with_every_statistic_and_run() {
        let dir = gradless_test_support::scratch("training-curves");
        let runs: Vec<TrainingRun> = ["ppo/seed-1", "ppo/seed-2"]
            .iter()
            .enumerate()
            .map(|(k, name)| TrainingRun {
                name: name.to_string(),
                log: MetricsLog {
                    episodes: (1..50)
                        .map(|i| LoggedEpisode {
                            global_step: i * 20,
                            episode_return: (i * (k as u64 + 1)) as f64,
                        })
                        .collect(),
                    updates: (1..10)
                        .map(|i| LoggedUpdate {
                            global_step: i * 100,
                            values: [("value_loss".to_string(), 10.0 / i as f64)].into(),
                        })
                        .collect(),
                    evaluations: Vec::new(),
                },
            })
            .collect();
        let options = FigureOptions {
            title: Some("PPO".into()),
            ..FigureOptions::default()
        };
        let files = write_training_curves(&runs, 10, &dir, &options).unwrap();
        assert_eq!(files.len(), 4, "{files:?}");
        let returns = std::fs::read_to_string(dir.join("returns.svg")).unwrap();
        assert!(
            returns.contains("PPO: Episodic return during training"),
            "the title"
        );
        assert!(returns.contains("ppo/seed-2"), "the legend");
        let updates = std::fs::read_to_string(dir.join("updates.svg")).unwrap();
        assert!(updates.contains("value_loss"), "a panel per statistic");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
