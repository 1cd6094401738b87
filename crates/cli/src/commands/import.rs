//! `gradless import`: a policy another tool saved, as a native checkpoint.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use gradless_evaluator::{EvalSettings, read_foreign_for_env};

use crate::foreign::write_native;
use crate::settings::parse_activation;

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
    let settings = EvalSettings {
        env: args.env.clone(),
        activation: parse_activation(args.activation.as_deref())?,
        ..EvalSettings::default()
    };
    let (policy, env) = read_foreign_for_env(&args.file, &settings)?;
    let env_id = crate::foreign::id_to_record(&args.file, &env)?;
    let checkpoint = write_native(&args.file, &policy, env_id, &args.out)?;
    println!("{}", checkpoint.dir().display());
    tracing::info!(file = %args.file.display(), checkpoint = %args.out.display(), kind = %policy.kind, "imported");
    Ok(())
}
