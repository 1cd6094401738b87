//! Bar chart of a device's measurements: time per policy step in each mode relative to
//! inference mode, one group of bars per batch size.

use std::path::{Path, PathBuf};

use gradless_plots::plotters::coord::Shift;
use gradless_plots::plotters::prelude::*;
use gradless_plots::{
    Figure, FigureOptions, GRID, Look, PlotError, titled_with_legend, write_svg_and_png,
};

use crate::measure::Measurement;
use crate::mode::GradMode;

struct GradModeChart<'a> {
    device: &'a str,
    /// Per batch, in plan order: the time of each mode relative to inference mode.
    groups: Vec<(usize, Vec<(GradMode, f64)>)>,
}

fn colour(mode: GradMode) -> RGBColor {
    match mode {
        GradMode::Tracked => RGBColor(214, 39, 40),
        GradMode::NoGrad => RGBColor(255, 127, 14),
        GradMode::Inference => RGBColor(31, 119, 180),
    }
}

impl Figure for GradModeChart<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        look: &Look<'_>,
    ) -> Result<(), String> {
        let error = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let highest = self
            .groups
            .iter()
            .flat_map(|(_, bars)| bars.iter().map(|(_, r)| *r))
            .fold(1.0f64, f64::max);
        let groups = self.groups.len();
        let own_title = format!(
            "Time per policy step relative to inference mode ({})",
            self.device
        );
        let entries: Vec<(String, RGBColor)> = GradMode::ALL
            .iter()
            .map(|&mode| (mode.name().to_string(), colour(mode)))
            .collect();
        let (plot, legend) = titled_with_legend(&root, look.title(&own_title), &entries, look)?;
        let mut chart = ChartBuilder::on(&plot)
            .margin(look.px(12))
            .x_label_area_size(look.px(40))
            .y_label_area_size(look.px(60))
            .build_cartesian_2d(0f64..groups as f64, 0f64..highest * 1.15)
            .map_err(error)?;
        let labels: Vec<usize> = self.groups.iter().map(|(batch, _)| *batch).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups * 2 + 1)
            .x_label_formatter(&|x| {
                // Label the centre of each group with its batch size.
                let k = x.floor() as usize;
                let centre = (x - x.floor() - 0.5).abs() < 1e-9;
                match labels.get(k) {
                    Some(batch) if centre => format!("batch {batch}"),
                    _ => String::new(),
                }
            })
            .y_desc("time / inference-mode time")
            .label_style(look.font(14))
            .axis_desc_style(look.font(15))
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .draw()
            .map_err(error)?;
        for mode in GradMode::ALL {
            let slot = GradMode::ALL.iter().position(|m| *m == mode).unwrap_or(0) as f64;
            let bars = self.groups.iter().enumerate().filter_map(|(k, (_, bars))| {
                let ratio = bars.iter().find(|(m, _)| *m == mode)?.1;
                let left = k as f64 + 0.15 + slot * 0.24;
                Some(Rectangle::new(
                    [(left, 0.0), (left + 0.22, ratio)],
                    colour(mode).filled(),
                ))
            });
            chart.draw_series(bars).map_err(error)?;
        }
        legend.draw(&entries, look)?;
        root.present().map_err(error)
    }
}

/// Writes `<folder>/grad-modes-<device>.{svg,png}` for each device measured, as `options`
/// say; returns the files written.
pub fn write_charts(
    measurements: &[Measurement],
    folder: &Path,
    options: &FigureOptions,
) -> Result<Vec<PathBuf>, PlotError> {
    let mut devices: Vec<&str> = measurements.iter().map(|m| m.device.as_str()).collect();
    devices.dedup();
    let mut written = Vec::new();
    for device in devices {
        let mine: Vec<&Measurement> = measurements.iter().filter(|m| m.device == device).collect();
        let mut batches: Vec<usize> = mine.iter().map(|m| m.batch).collect();
        batches.dedup();
        let groups = batches
            .into_iter()
            .filter_map(|batch| {
                let at: Vec<&&Measurement> = mine.iter().filter(|m| m.batch == batch).collect();
                let inference = at
                    .iter()
                    .find(|m| m.mode == GradMode::Inference)?
                    .us_per_step;
                let bars = at
                    .iter()
                    .map(|m| (m.mode, m.us_per_step / inference))
                    .collect();
                Some((batch, bars))
            })
            .collect();
        let chart = GradModeChart { device, groups };
        written.extend(write_svg_and_png(
            &chart,
            &folder.join(format!("grad-modes-{device}")),
            options,
        )?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(device: &str, batch: usize, mode: GradMode, us_per_step: f64) -> Measurement {
        Measurement {
            device: device.into(),
            batch,
            mode,
            us_per_step,
            steps_per_sec: batch as f64 * 1e6 / us_per_step,
            windows: 3,
            memory_steps: 10,
            memory_growth_bytes: 0,
            device_memory_growth_bytes: None,
            actions_identical: true,
            graph_capture: None,
        }
    }

    #[test]
    fn one_svg_and_png_per_device() {
        let folder = std::env::temp_dir().join(format!("gradless-chart-{}", std::process::id()));
        let measurements: Vec<Measurement> = ["flex", "wgpu"]
            .into_iter()
            .flat_map(|device| {
                [1, 256].into_iter().flat_map(move |batch| {
                    GradMode::ALL
                        .into_iter()
                        .zip([30.0, 20.0, 10.0])
                        .map(move |(mode, us)| measurement(device, batch, mode, us))
                })
            })
            .collect();
        let files = write_charts(&measurements, &folder, &FigureOptions::default()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "grad-modes-flex.svg",
                "grad-modes-flex.png",
                "grad-modes-wgpu.svg",
                "grad-modes-wgpu.png"
            ]
        );
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        assert!(svg.contains("batch 256") && svg.contains("no_grad"));
        std::fs::remove_dir_all(folder).unwrap();
    }
}
