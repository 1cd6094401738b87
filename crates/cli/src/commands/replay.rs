//! `gradless replay FILE`: run reference trajectories through the envs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use gradless_envs::replay;
use serde_json::json;

use crate::output::write_atomically;

/// The largest replay input read: the committed fixtures are under 1 MB, and a classic-control
/// episode ends within 1000 actions, so this holds thousands of whole trajectories while
/// its parsed form (some 30 bytes a number) stays under a GiB.
const MAX_INPUT_BYTES: u64 = 32 << 20;

/// Arguments of `gradless replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Input file: `{"cases": [{"env", "init_state", "actions"}, ...]}`.
    file: PathBuf,
    /// Write the output here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Replays every case and writes `{"cases": [{"env", "steps": [...]}, ...]}`.
pub fn run(args: &ReplayArgs) -> Result<()> {
    let input = gradless_files::read_text_bounded(&args.file, MAX_INPUT_BYTES)
        .with_context(|| format!("{}", args.file.display()))?;
    let outcomes = replay::run(&input).with_context(|| args.file.display().to_string())?;
    let steps: usize = outcomes.iter().map(|o| o.steps.len()).sum();
    tracing::info!(file = %args.file.display(), cases = outcomes.len(), steps, "replayed");
    let document = serde_json::to_string(&json!({ "cases": outcomes }))?;
    match &args.out {
        Some(path) => write_atomically(path, format!("{document}\n").as_bytes()),
        None => {
            println!("{document}");
            Ok(())
        }
    }
}
