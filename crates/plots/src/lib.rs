//! Figures written as SVG and PNG side by side. plotters lays out text with a font it is
//! given, even in SVG, so the font is loaded once from the system (Debian's
//! `fonts-dejavu-core`, which `scripts/setup.sh` installs).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};
use plotters::style::{FontStyle, IntoFont};

pub use plotters;

/// Where the text font is looked for.
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// The family name figures use for text.
pub const FONT: &str = "sans-serif";

/// The grid's lines: one light line per labelled tick, none between.
pub const GRID: plotters::style::RGBAColor = plotters::style::RGBAColor(0, 0, 0, 0.12);

/// The colour of the `k`-th series (group, run) of a figure: the same `k` has the same
/// colour in every figure.
pub fn series_colour(k: usize) -> plotters::style::RGBColor {
    use plotters::style::RGBColor;
    const COLOURS: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    COLOURS[k % COLOURS.len()]
}

/// How figures are written: their size, the PNG's resolution and a title that replaces the
/// one a figure gives itself (`--title`, `--width`, `--height`, `--dpi`).
#[derive(Debug, Clone, PartialEq)]
pub struct FigureOptions {
    /// Replaces the figure's own title.
    pub title: Option<String>,
    /// Width in inches.
    pub width: f64,
    /// Height in inches.
    pub height: f64,
    /// The PNG's pixels per inch (the SVG is drawn at [`SVG_DPI`], as browsers show it).
    pub dpi: u32,
}

/// The pixels per inch an SVG's sizes are in (CSS pixels).
pub const SVG_DPI: u32 = 96;

/// The resolution every size (fonts, margins, lines) a figure names is given at: a figure
/// drawn at another is scaled, so its text keeps its size relative to the page.
const DESIGN_DPI: f64 = 100.0;

/// The largest side accepted, in inches.
const MAX_INCHES: f64 = 100.0;

/// The resolutions accepted.
const DPI_RANGE: std::ops::RangeInclusive<u32> = 10..=1200;

/// The most pixels a PNG may have (its buffer is three bytes a pixel).
const MAX_PIXELS: u64 = 100_000_000;

impl Default for FigureOptions {
    fn default() -> Self {
        Self {
            title: None,
            width: 8.0,
            height: 5.0,
            dpi: 100,
        }
    }
}

impl FigureOptions {
    /// Checks the sizes (naming the flag at fault) before anything is drawn or allocated.
    pub fn check(&self) -> Result<(), String> {
        for (flag, inches) in [("--width", self.width), ("--height", self.height)] {
            if !(inches > 0.0 && inches <= MAX_INCHES) {
                return Err(format!(
                    "{flag} {inches}: a figure's side is in inches, more than 0 and at most \
                     {MAX_INCHES}"
                ));
            }
        }
        if !DPI_RANGE.contains(&self.dpi) {
            return Err(format!(
                "--dpi {}: must lie in {}..={}",
                self.dpi,
                DPI_RANGE.start(),
                DPI_RANGE.end()
            ));
        }
        let (w, h) = self.pixels(self.dpi);
        if u64::from(w) * u64::from(h) > MAX_PIXELS {
            return Err(format!(
                "--width {} --height {} --dpi {}: a {w} x {h} PNG is more than {MAX_PIXELS} \
                 pixels",
                self.width, self.height, self.dpi
            ));
        }
        Ok(())
    }

    /// These options for one of several figures written together: a title asked for heads
    /// it, the figure's own title (`own`) after it.
    pub fn titled(&self, own: &str) -> FigureOptions {
        FigureOptions {
            title: self.title.as_ref().map(|title| format!("{title}: {own}")),
            ..self.clone()
        }
    }

    /// The figure's size in pixels at `dpi`.
    fn pixels(&self, dpi: u32) -> (u32, u32) {
        let side = |inches: f64| (inches * f64::from(dpi)).round().max(1.0) as u32;
        (side(self.width), side(self.height))
    }
}

/// What a figure draws with on one file: its scale and title.
#[derive(Debug, Clone, Copy)]
pub struct Look<'a> {
    scale: f64,
    title: Option<&'a str>,
}

impl<'a> Look<'a> {
    /// `size` (a font size, a margin, a line width given at 100 pixels per inch) at this
    /// file's resolution.
    pub fn px(&self, size: u32) -> u32 {
        (f64::from(size) * self.scale).round().max(1.0) as u32
    }

    /// The text font at `size` (given at 100 pixels per inch).
    pub fn font(&self, size: u32) -> (&'static str, u32) {
        (FONT, self.px(size))
    }

    /// The title: the one asked for, else the figure's own.
    pub fn title(&self, own: &'a str) -> &'a str {
        self.title.unwrap_or(own)
    }
}

/// A value as a tick label: whole numbers from 10 up, two decimals below.
pub fn compact(value: f64) -> String {
    if value.abs() >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// A tick label on an axis spanning `span`: as many decimals as the span needs to tell
/// ticks apart (an entropy of 0.6912 to 0.6931 reads 0.6915, not 0.69), a value that is zero
/// but for rounding as 0, and scientific notation for very small or large magnitudes.
pub fn tick_label(value: f64, span: f64) -> String {
    if !(span.is_finite() && span > 0.0) {
        return compact(value);
    }
    let value = if value.abs() < span * 1e-6 {
        0.0
    } else {
        value
    };
    let magnitude = value.abs().max(span);
    if !(1e-3..1e6).contains(&magnitude) {
        return format!("{value:.1e}");
    }
    let decimals = (1.0 - span.log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{value:.decimals$}")
}

/// A count of environment steps as a tick label: `500`, `10k`, `2.5M`.
pub fn steps_label(steps: f64) -> String {
    let (value, unit) = match steps.abs() {
        s if s >= 1e9 => (steps / 1e9, "G"),
        s if s >= 1e6 => (steps / 1e6, "M"),
        s if s >= 1e3 => (steps / 1e3, "k"),
        _ => (steps, ""),
    };
    // One decimal where it says something (2.5M), none where it does not (10k).
    let shown = format!("{value:.1}");
    let shown = shown.strip_suffix(".0").unwrap_or(&shown);
    format!("{shown}{unit}")
}

/// The font of a figure's title `text` over `area`: 20 (at 100 pixels per inch), smaller
/// where the title would not fit the area's width (a figure at a paper's column width), but
/// not below half.
pub fn title_font<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    look: &Look<'_>,
) -> (&'static str, u32) {
    fitted_font(
        area,
        text,
        look.px(20),
        area.dim_in_pixel().0.saturating_sub(look.px(16)),
    )
}

/// Draws the title `text` across the top of `root` (the whole figure's width, the font
/// fitted to it) and returns the area below it.
pub fn draw_title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
    look: &Look<'_>,
) -> Result<DrawingArea<DB, Shift>, String> {
    let font = title_font(root, text, look);
    let (strip, rest) = root.split_vertically(font.1 * 2);
    strip.titled(text, font).map_err(|e| e.to_string())?;
    Ok(rest)
}

/// `size`, or smaller (down to half) so that `text` fits `width` pixels.
fn fitted_font<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    size: u32,
    width: u32,
) -> (&'static str, u32) {
    let needed = area
        .estimate_text_size(text, &(FONT, size).into_font().into())
        .map_or(0, |(w, _)| w);
    if needed <= width || needed == 0 {
        return (FONT, size);
    }
    let scaled = (u64::from(size) * u64::from(width) / u64::from(needed)) as u32;
    (FONT, scaled.max(size / 2).max(1))
}

/// A range holding `values` with a margin of `margin` of their spread on each side (and a
/// little room when they are all equal); `0..1` when there are none.
pub fn padded(values: impl Iterator<Item = f64>, margin: f64) -> std::ops::Range<f64> {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !low.is_finite() {
        return 0.0..1.0;
    }
    let margin = ((high - low) * margin).max(1e-3 * high.abs().max(1.0));
    (low - margin)..(high + margin)
}

/// How many labelled ticks an axis `extent` pixels long carries: one per 90 pixels (at 100
/// per inch), between 2 and 10, so that labels such as `100k` never run into each other.
pub fn tick_count(extent: u32, look: &Look<'_>) -> usize {
    (extent / look.px(90)).clamp(2, 10) as usize
}

/// Lays out a figure that has a legend: a white page, `title` across its top, a legend
/// column for `entries` at its right; returns the chart's area and the legend.
pub fn titled_with_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    entries: &[(String, plotters::style::RGBColor)],
    look: &Look<'_>,
) -> Result<(DrawingArea<DB, Shift>, Legend<DB>), String> {
    root.fill(&plotters::style::WHITE)
        .map_err(|e| e.to_string())?;
    let body = draw_title(root, title, look)?;
    Ok(split_for_legend(&body, entries, look))
}

/// A legend's column beside a chart (never over its data), with the font its names fit in.
pub struct Legend<DB: DrawingBackend> {
    area: DrawingArea<DB, Shift>,
    font: u32,
}

/// Splits `root` into the chart's area and, at its right, a legend column as wide as the
/// longest of `entries`' names needs, at most two fifths of the figure (the names' font
/// shrinks, down to half, to fit a narrow figure).
fn split_for_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[(String, plotters::style::RGBColor)],
    look: &Look<'_>,
) -> (DrawingArea<DB, Shift>, Legend<DB>) {
    let (swatch, gap) = (look.px(18), look.px(6));
    let width = root.dim_in_pixel().0;
    let room = (width * 2 / 5).saturating_sub(3 * gap + swatch);
    let longest = entries
        .iter()
        .map(|(name, _)| name.as_str())
        .max_by_key(|name| name.chars().count())
        .unwrap_or("");
    let (_, font) = fitted_font(root, longest, look.px(14), room);
    let text = root
        .estimate_text_size(longest, &(FONT, font).into_font().into())
        .map_or(0, |(w, _)| w);
    let column = (3 * gap + swatch + text).min(width * 2 / 5);
    let (plot, area) = root.split_horizontally(width - column);
    (plot, Legend { area, font })
}

impl<DB: DrawingBackend> Legend<DB> {
    /// Draws `entries`: a swatch of each one's colour and its name, one a line from the top.
    pub fn draw(
        &self,
        entries: &[(String, plotters::style::RGBColor)],
        look: &Look<'_>,
    ) -> Result<(), String> {
        use plotters::element::{PathElement, Text};
        use plotters::style::Color;
        let line = (self.font * 22 / 14) as i32;
        let (swatch, gap) = (look.px(18) as i32, look.px(6) as i32);
        let top = look.px(48) as i32;
        for (k, (name, colour)) in entries.iter().enumerate() {
            let y = top + k as i32 * line;
            self.area
                .draw(&PathElement::new(
                    vec![(gap, y), (gap + swatch, y)],
                    colour.stroke_width(look.px(3)),
                ))
                .map_err(|e| e.to_string())?;
            let font = (FONT, self.font).into_font();
            self.area
                .draw(&Text::new(
                    name.clone(),
                    (2 * gap + swatch, y - (self.font / 2) as i32),
                    font,
                ))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Something that can draw itself on any plotters backend.
pub trait Figure {
    /// Draws onto `root` with `look`'s sizes and title; errors are plotters' messages.
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        look: &Look<'_>,
    ) -> Result<(), String>;
}

/// A figure could not be written.
#[derive(Debug)]
pub struct PlotError {
    /// The file that was being written.
    pub path: PathBuf,
    /// Why it failed.
    pub reason: String,
}

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for PlotError {}

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
            plotters::style::register_font(FONT, FontStyle::Normal, bytes)
                .map_err(|_| "the font file could not be read".to_string())
        })
        .clone()
}

/// Has `draw` write a new staging file beside `path`, then moves it over `path`; the staging
/// file is removed if anything fails.
fn staged(path: &Path, draw: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), PlotError> {
    let failed = |reason: String| PlotError {
        path: path.to_path_buf(),
        reason,
    };
    let staging = gradless_files::create_staging(path).map_err(|e| failed(e.to_string()))?;
    if let Err(reason) = draw(&staging) {
        let _ = std::fs::remove_file(&staging);
        return Err(failed(reason));
    }
    gradless_files::replace_with(&staging, path).map_err(|e| failed(e.to_string()))
}

/// Writes `<stem>.svg` and `<stem>.png` (creating the folder) as `options` say; returns
/// the files written. Each is drawn into a staging file and moved into place under
/// [`gradless_files`]' rules: a link, FIFO or device at either path is refused, not written
/// through. The PNG records its resolution (a `pHYs` chunk).
pub fn write_svg_and_png(
    figure: &impl Figure,
    stem: &Path,
    options: &FigureOptions,
) -> Result<Vec<PathBuf>, PlotError> {
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |reason: String| PlotError { path, reason }
    };
    options.check().map_err(failed(&svg))?;
    if let Some(folder) = stem.parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| failed(folder)(e.to_string()))?;
    }
    register_font().map_err(failed(&svg))?;
    for path in [&svg, &png] {
        gradless_files::check_replaceable(path).map_err(|e| failed(path)(e.to_string()))?;
    }
    let look = |dpi: u32| Look {
        scale: f64::from(dpi) / DESIGN_DPI,
        title: options.title.as_deref(),
    };
    staged(&svg, |staging| {
        let root = SVGBackend::new(staging, options.pixels(SVG_DPI)).into_drawing_area();
        figure.draw(root, &look(SVG_DPI))
    })?;
    staged(&png, |staging| {
        let root = BitMapBackend::new(staging, options.pixels(options.dpi)).into_drawing_area();
        figure.draw(root, &look(options.dpi))?;
        record_resolution(staging, options.dpi)
    })?;
    Ok(vec![svg, png])
}

/// Adds a `pHYs` chunk (pixels per metre) after the PNG's header chunk, so that a viewer or
/// a typesetter sizes the image as `--dpi` says.
fn record_resolution(png: &Path, dpi: u32) -> Result<(), String> {
    // The signature (8 bytes), then IHDR: length, type, 13 bytes of data, CRC.
    const AFTER_HEADER: usize = 8 + 4 + 4 + 13 + 4;
    let bytes = std::fs::read(png).map_err(|e| e.to_string())?;
    if bytes.len() < AFTER_HEADER || &bytes[12..16] != b"IHDR" {
        return Err("the PNG encoder wrote no header chunk".into());
    }
    let per_metre = (f64::from(dpi) / 0.0254).round() as u32;
    let mut chunk = Vec::with_capacity(21);
    chunk.extend_from_slice(&9u32.to_be_bytes());
    chunk.extend_from_slice(b"pHYs");
    chunk.extend_from_slice(&per_metre.to_be_bytes());
    chunk.extend_from_slice(&per_metre.to_be_bytes());
    chunk.push(1); // the unit: the metre
    let crc = crc32fast::hash(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    let mut out = Vec::with_capacity(bytes.len() + chunk.len());
    out.extend_from_slice(&bytes[..AFTER_HEADER]);
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&bytes[AFTER_HEADER..]);
    std::fs::write(png, out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    struct Titled;

    impl Figure for Titled {
        fn draw<DB: DrawingBackend>(
            &self,
            root: DrawingArea<DB, Shift>,
            look: &Look<'_>,
        ) -> Result<(), String> {
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            root.titled(look.title("its own title"), look.font(20))
                .map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gradless-plots-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A PNG's width and height (IHDR) and its pixels per metre (pHYs).
    fn png_size_and_resolution(bytes: &[u8]) -> ((u32, u32), Option<u32>) {
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let size = (be(16), be(20));
        let mut at = 8;
        while at + 8 <= bytes.len() {
            let length = be(at) as usize;
            if &bytes[at + 4..at + 8] == b"pHYs" {
                assert_eq!(be(at + 8), be(at + 12), "square pixels");
                let crc = crc32fast::hash(&bytes[at + 4..at + 8 + length]);
                assert_eq!(be(at + 8 + length), crc, "the chunk's CRC");
                return (size, Some(be(at + 8)));
            }
            at += 12 + length;
        }
        (size, None)
    }

    #[test]
    fn size_resolution_and_title_reach_both_files() {
        let dir = scratch("options");
        let options = FigureOptions {
            title: Some("PPO on CartPole-v1".into()),
            width: 3.5,
            height: 2.5,
            dpi: 300,
        };
        let files = write_svg_and_png(&Titled, &dir.join("figure"), &options).unwrap();
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        assert!(
            svg.contains(r#"width="336" height="240""#),
            "{}",
            &svg[..200]
        );
        assert!(svg.contains("PPO on CartPole-v1") && !svg.contains("its own title"));
        let png = std::fs::read(&files[1]).unwrap();
        assert_eq!(png_size_and_resolution(&png), ((1050, 750), Some(11811)));
        // The default size and the figure's own title.
        let files =
            write_svg_and_png(&Titled, &dir.join("plain"), &FigureOptions::default()).unwrap();
        assert!(
            std::fs::read_to_string(&files[0])
                .unwrap()
                .contains("its own title")
        );
        let png = std::fs::read(&files[1]).unwrap();
        assert_eq!(png_size_and_resolution(&png), ((800, 500), Some(3937)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn step_counts_read_as_papers_write_them() {
        let labels: Vec<String> = [0.0, 500.0, 2000.0, 10_000.0, 51_200.0, 2_500_000.0, 1e6]
            .into_iter()
            .map(steps_label)
            .collect();
        assert_eq!(labels, ["0", "500", "2k", "10k", "51.2k", "2.5M", "1M"]);
    }

    #[test]
    fn narrow_figures_get_fewer_ticks_and_titles_that_fit() {
        let at = |dpi: f64| Look {
            scale: dpi / DESIGN_DPI,
            title: None,
        };
        // 8 inches at 100 dpi; a paper's column, 3.5 inches, at 200.
        assert_eq!(tick_count(800, &at(100.0)), 8);
        assert_eq!(tick_count(700, &at(200.0)), 3);
        assert_eq!(tick_count(100, &at(100.0)), 2);
        register_font().unwrap();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (700, 500)).into_drawing_area();
            let long = "CartPole-v1: Sample efficiency (IQM over runs, 95% CIs)";
            let (_, size) = title_font(&root, long, &at(200.0));
            assert!((20..40).contains(&size), "{size}");
            assert_eq!(title_font(&root, "Short", &at(200.0)).1, 40);
        }
    }

    #[test]
    fn tick_labels_carry_the_decimals_their_axis_needs() {
        assert_eq!(tick_label(0.6915, 0.002), "0.6915");
        assert_eq!(tick_label(35.0, 40.0), "35");
        assert_eq!(tick_label(-1e-17, 0.2), "0.00");
        assert_eq!(tick_label(2e-5, 4e-5), "2.0e-5");
        assert_eq!(tick_label(3e7, 1e7), "3.0e7");
    }

    #[test]
    fn sizes_are_bounded_before_anything_is_drawn() {
        let dir = scratch("bounds");
        for (options, flag) in [
            (
                FigureOptions {
                    width: 0.0,
                    ..FigureOptions::default()
                },
                "--width",
            ),
            (
                FigureOptions {
                    height: f64::NAN,
                    ..FigureOptions::default()
                },
                "--height",
            ),
            (
                FigureOptions {
                    dpi: 5,
                    ..FigureOptions::default()
                },
                "--dpi",
            ),
            (
                FigureOptions {
                    width: 90.0,
                    height: 90.0,
                    dpi: 1200,
                    ..FigureOptions::default()
                },
                "pixels",
            ),
        ] {
            let error = write_svg_and_png(&Titled, &dir.join("figure"), &options)
                .unwrap_err()
                .to_string();
            assert!(error.contains(flag), "{error}");
        }
        assert!(!dir.exists(), "nothing written");
    }
}
