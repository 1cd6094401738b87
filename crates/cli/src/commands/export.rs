//! `gradless export`: write a checkpoint's policy in a format other tools load.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use gradless_device::{Backend, InferenceDevice};
use gradless_evaluator::{EvalSettings, read_foreign_for_env};
use gradless_policy::Checkpoint;
use gradless_policy::export::{export_foreign_safetensors, export_safetensors};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// safetensors, keyed for `torch.nn.Sequential(Linear, Act, ..., Linear)`.
    Safetensors,
}

/// Arguments of `gradless export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The checkpoint directory, or a policy another tool saved (a Stable-Baselines3 .zip,
    /// a .cleanrl_model, a .pt state dict), converted to gradless's safetensors.
    checkpoint: PathBuf,
    /// The env a foreign policy is for (its file names none; its spaces are checked).
    #[arg(long)]
    env: Option<String>,
    /// The activation of a foreign policy, where its file names none (CleanRL).
    #[arg(long, value_name = "tanh|relu")]
    activation: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Safetensors)]
    format: Format,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `gradless export` (on the CPU: exporting is a copy of the weights).
pub fn run(args: &ExportArgs) -> Result<()> {
    if args.checkpoint.is_file() {
        return export_foreign(args);
    }
    let checkpoint = Checkpoint::open(&args.checkpoint)?;
    let device = InferenceDevice::new(&gradless_device::open(Backend::Flex)?);
    match args.format {
        Format::Safetensors => export_safetensors(&checkpoint, &device, &args.out)
            .with_context(|| format!("exporting {}", args.checkpoint.display()))?,
    }
    tracing::info!(checkpoint = %args.checkpoint.display(), out = %args.out.display(), "exported");
    Ok(())
}

/// Converts another tool's policy file, after checking it against the env.
fn export_foreign(args: &ExportArgs) -> Result<()> {
    let settings = EvalSettings {
        env: args.env.clone(),
        activation: crate::settings::parse_activation(args.activation.as_deref())?,
        ..EvalSettings::default()
    };
    let (policy, env) = read_foreign_for_env(&args.checkpoint, &settings)?;
    let env_id = crate::foreign::id_to_record(&args.checkpoint, &env)?;
    match args.format {
        Format::Safetensors => export_foreign_safetensors(
            &policy.network,
            policy.normalizer.as_ref(),
            env_id,
            policy.step.unwrap_or(0),
            &args.out,
        )
        .with_context(|| format!("exporting {}", args.checkpoint.display()))?,
    }
    tracing::info!(file = %args.checkpoint.display(), out = %args.out.display(), "converted");
    Ok(())
}
