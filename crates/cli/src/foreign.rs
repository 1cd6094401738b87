//! Foreign policies (Stable-Baselines3, CleanRL, safetensors) written as native checkpoints:
//! what `gradless import` makes, and the copy `gradless eval --grad-mode-report` times.

use std::path::Path;

use anyhow::{Context, Result};
use gradless_import::ForeignPolicy;
use gradless_policy::{Checkpoint, ImportedSpec, write_imported_checkpoint};

/// Writes a checked policy as a native checkpoint in `dir` (which must not exist).
pub fn write_native(
    file: &Path,
    policy: &ForeignPolicy,
    env_id: &str,
    dir: &Path,
) -> Result<Checkpoint> {
    let env = gradless_envs::make(env_id)?;
    let source = file.display().to_string();
    let spec = ImportedSpec {
        env_id,
        observation_space: env.observation_space(),
        action_space: env.action_space(),
        global_step: policy.step.unwrap_or(0),
        source: &source,
        format: policy.format.name(),
        observation_normalization: policy.normalizer.as_ref(),
    };
    write_imported_checkpoint(dir, &policy.network, spec)
        .with_context(|| format!("importing {}", file.display()))
}
