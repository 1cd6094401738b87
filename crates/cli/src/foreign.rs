//! Foreign policies (Stable-Baselines3, CleanRL, safetensors) written as native checkpoints:
//! what `gradless import` makes, and the copy `gradless eval --grad-mode-report` times.

use std::path::Path;

use anyhow::{Context, Result, bail};
use gradless_envs::MakeArgs;
use gradless_import::ForeignPolicy;
use gradless_policy::{Checkpoint, ImportedSpec, write_imported_checkpoint};

/// The id of the env a policy read from `file` acts in, for a file that records its env by id
/// only (a native checkpoint, an export): an env made with keyword arguments (an RL Zoo
/// agent's `env_kwargs`) is refused, since the file would name another env.
pub fn id_to_record<'a>(file: &Path, env: &'a MakeArgs) -> Result<&'a str> {
    if !env.options.is_default() {
        bail!(
            "{}: its env is {env}, made with keyword arguments that gradless's checkpoints and \
             exports do not record; evaluate it where it is instead",
            file.display()
        );
    }
    Ok(&env.id)
}

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
