//! `gradless export`: write a checkpoint's policy in a format other tools load.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use gradless_device::{Backend, InferenceDevice};
use gradless_policy::Checkpoint;
use gradless_policy::export::export_safetensors;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// safetensors, keyed for `torch.nn.Sequential(Linear, Act, ..., Linear)`.
    Safetensors,
}

/// Arguments of `gradless export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The checkpoint directory.
    checkpoint: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Safetensors)]
    format: Format,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `gradless export` (on the CPU: exporting is a copy of the weights).
pub fn run(args: &ExportArgs) -> Result<()> {
    let checkpoint = Checkpoint::open(&args.checkpoint)?;
    let device = InferenceDevice::new(&gradless_device::open(Backend::Flex)?);
    match args.format {
        Format::Safetensors => export_safetensors(&checkpoint, &device, &args.out)
            .with_context(|| format!("exporting {}", args.checkpoint.display()))?,
    }
    tracing::info!(checkpoint = %args.checkpoint.display(), out = %args.out.display(), "exported");
    Ok(())
}
