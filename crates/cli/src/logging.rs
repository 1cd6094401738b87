//! The one tracing subscriber of the process: stderr, `RUST_LOG` honoured.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per event, for machines.
    Json,
}

/// `info`, less the failed EGL probe that wgpu logs as an error on every start on machines
/// without OpenGL drivers, even when it goes on to use Vulkan.
const DEFAULT_FILTER: &str = "info,wgpu_hal::gles::egl=off";

/// Installs the subscriber; `RUST_LOG` replaces the default filter.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.compact().init(),
        LogFormat::Json => builder.json().init(),
    }
}
