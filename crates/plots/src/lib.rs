//! Figures written as SVG and PNG side by side. plotters lays out text with a font it is
//! given, even in SVG, so the font is loaded once from the system (Debian's
//! `fonts-dejavu-core`, which `scripts/setup.sh` installs).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};
use plotters::style::FontStyle;

pub use plotters;

/// Where the text font is looked for.
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// The family name figures use for text.
pub const FONT: &str = "sans-serif";

/// Width and height of every figure, in pixels.
const SIZE: (u32, u32) = (800, 500);

/// Something that can draw itself on any plotters backend.
pub trait Figure {
    /// Draws onto `root`; errors are plotters' messages.
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>;
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

/// Writes `<stem>.svg` and `<stem>.png` (creating the folder); returns the files written.
/// Each is drawn into a staging file and moved into place under [`gradless_files`]' rules: a
/// link, FIFO or device at either path is refused, not written through.
pub fn write_svg_and_png(figure: &impl Figure, stem: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |reason: String| PlotError { path, reason }
    };
    if let Some(folder) = stem.parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| failed(folder)(e.to_string()))?;
    }
    register_font().map_err(failed(&svg))?;
    for path in [&svg, &png] {
        gradless_files::check_replaceable(path).map_err(|e| failed(path)(e.to_string()))?;
    }
    staged(&svg, |staging| {
        figure.draw(SVGBackend::new(staging, SIZE).into_drawing_area())
    })?;
    staged(&png, |staging| {
        figure.draw(BitMapBackend::new(staging, SIZE).into_drawing_area())
    })?;
    Ok(vec![svg, png])
}
