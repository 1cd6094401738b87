//! `gradless import`: a policy another tool saved, as a native checkpoint.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use gradless_device::{Backend, InferenceDevice};
use gradless_evaluator::{AgentDevice, EvalSettings, LoadedCheckpoint};
use gradless_policy::{ImportedSpec, write_imported_checkpoint};

use crate::commands::eval::parse_activation;

/// Arguments of `gradless import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A Stable-Baselines3 .zip, a .cleanrl_model, or a .safetensors / .pt state dict in
    /// `gradless export`'s layout.
    file: PathBuf,
    /// The env the policy is for (its spaces are checked against the network).
    #[arg(long)]
    env: Option<String>,
    /// The activation, where the file names none (CleanRL) or to override it.
    #[arg(long, value_name = "tanh|relu")]
    activation: Option<String>,
    /// The checkpoint directory to make (must not exist).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `gradless import`.
pub fn run(args: &ImportArgs) -> Result<()> {
    if !args.file.is_file() {
        bail!("{}: not a policy file", args.file.display());
    }
    let activation = parse_activation(args.activation.as_deref())?;
    let settings = EvalSettings {
        env: args.env.clone(),
        activation,
        ..EvalSettings::default()
    };
    // Loading checks the file and that it fits the env, as `gradless eval` would.
    let device = AgentDevice::new(&InferenceDevice::new(&gradless_device::open(
        Backend::Flex,
    )?));
    let loaded = LoadedCheckpoint::load(&args.file, &settings, &device)?;
    let policy = gradless_import::read_policy(&args.file, activation)?;
    let env = gradless_envs::make(loaded.env_id())?;
    let source = args.file.display().to_string();
    let spec = ImportedSpec {
        env_id: loaded.env_id(),
        observation_space: env.observation_space(),
        action_space: env.action_space(),
        global_step: policy.step.unwrap_or(0),
        source: &source,
        format: policy.format.name(),
    };
    let checkpoint = write_imported_checkpoint(&args.out, &policy.network, spec)
        .with_context(|| format!("importing {}", args.file.display()))?;
    println!("{}", checkpoint.dir().display());
    tracing::info!(file = %args.file.display(), checkpoint = %args.out.display(), kind = %policy.kind, "imported");
    Ok(())
}
