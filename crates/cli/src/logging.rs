//! The one tracing subscriber of the process: stderr, `RUST_LOG` honoured.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use clap::ValueEnum;
use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per event, for machines.
    Json,
}

/// gradless's own events at `info`, every other crate at `warn` (cubecl's autotuner logs a
/// line per kernel it tunes at info), and not even that for the failed EGL probe that wgpu
/// logs as an error on every start on machines without OpenGL drivers, even when it goes on
/// to use Vulkan.
const DEFAULT_FILTER: &str = "warn,gradless=info,gradless_device=info,gradless_envs=info,\
gradless_evaluator=info,gradless_grad_modes=info,gradless_policy=info,gradless_trainer=info,\
wgpu_hal::gles::egl=off";

/// Installs the subscriber; `RUST_LOG` replaces the default filter.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(Stderr);
    match format {
        LogFormat::Pretty => builder.compact().init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The progress bar on stderr, if one is drawn: log lines are written above it.
static PROGRESS_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Routes log lines around `bar` (or straight to stderr with `None`).
pub fn show_progress_bar(bar: Option<ProgressBar>) {
    *PROGRESS_BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// stderr, suspending the progress bar while a line is written.
struct Stderr;

struct StderrLine;

impl Write for StderrLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let bar = PROGRESS_BAR
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(bytes))?,
            None => std::io::stderr().write_all(bytes)?,
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = StderrLine;
    fn make_writer(&'a self) -> StderrLine {
        StderrLine
    }
}
