//! CleanRL's saved agents (`torch.save(agent.state_dict())`) and plain sequential state
//! dicts (`0.weight`, `0.bias`, `2.weight`, ...).

use std::path::{Path, PathBuf};

use gradless_policy::{Activation, ForeignHead, ForeignNetwork};

use crate::tensors::Tensors;
use crate::{ForeignPolicy, Format, ImportError};

fn policy(format: Format, kind: &str, network: ForeignNetwork) -> ForeignPolicy {
    ForeignPolicy {
        path: PathBuf::new(),
        format,
        kind: kind.to_string(),
        network,
        normalizer: None,
        env: None,
        step: None,
    }
}

/// A `.cleanrl_model`: `ppo.py`'s Agent (`actor.*`, `critic.*`; tanh by default),
/// `ppo_continuous_action.py`'s (`actor_mean.*`, `actor_logstd`; tanh) or `dqn.py`'s
/// QNetwork (`network.*`; relu).
pub fn read(path: &Path, activation: Option<Activation>) -> Result<ForeignPolicy, ImportError> {
    let tensors = Tensors::read_pytorch(path)?;
    if tensors.has_prefix("actor_mean.") {
        let log_std = tensors.get(path, "actor_logstd")?;
        let network = ForeignNetwork {
            layers: tensors.linear_layers(path, "actor_mean.", None)?,
            activation: activation.unwrap_or(Activation::Tanh),
            head: ForeignHead::Gaussian {
                log_std: log_std.data.clone(),
            },
            critic: tensors.linear_layers(path, "critic.", None)?,
        };
        return Ok(policy(
            Format::CleanRl,
            "ppo_continuous_action.py Agent",
            network,
        ));
    }
    if tensors.has_prefix("actor.") {
        let network = ForeignNetwork {
            layers: tensors.linear_layers(path, "actor.", None)?,
            activation: activation.unwrap_or(Activation::Tanh),
            head: ForeignHead::Categorical,
            critic: tensors.linear_layers(path, "critic.", None)?,
        };
        return Ok(policy(Format::CleanRl, "ppo.py Agent", network));
    }
    if tensors.has_prefix("network.") {
        let network = ForeignNetwork {
            layers: tensors.linear_layers(path, "network.", None)?,
            activation: activation.unwrap_or(Activation::Relu),
            head: ForeignHead::QValues,
            critic: Vec::new(),
        };
        return Ok(policy(Format::CleanRl, "dqn.py QNetwork", network));
    }
    Err(ImportError::File {
        path: path.to_path_buf(),
        reason: format!(
            "not a CleanRL agent this reads (ppo.py: actor.*, critic.*; ppo_continuous_action.py: actor_mean.*, actor_logstd; dqn.py: network.*); its tensors: {}",
            names(&tensors)
        ),
    })
}

/// A plain sequential state dict (`0.weight`, ..., and `log_std` for a Gaussian policy),
/// as `gradless export` lays out its networks; tanh unless `activation` says otherwise.
pub fn read_sequential(
    path: &Path,
    activation: Option<Activation>,
) -> Result<ForeignPolicy, ImportError> {
    let tensors = Tensors::read_pytorch(path)?;
    tensors.refuse_observation_statistics(path)?;
    if !tensors.by_name.contains_key("0.weight") {
        return Err(ImportError::Key {
            path: path.to_path_buf(),
            key: "0.weight".into(),
            reason: format!(
                "missing: not a state dict in `gradless export`'s layout (0.weight, 0.bias, 2.weight, ...); its tensors: {}",
                names(&tensors)
            ),
        });
    }
    let head = match tensors.by_name.get("log_std") {
        Some(log_std) => ForeignHead::Gaussian {
            log_std: log_std.data.clone(),
        },
        None => ForeignHead::Categorical,
    };
    let network = ForeignNetwork {
        layers: tensors.linear_layers(path, "", None)?,
        activation: activation.unwrap_or(Activation::Tanh),
        head,
        critic: Vec::new(),
    };
    Ok(policy(Format::Export, "sequential state dict", network))
}

/// The first tensor names, for messages.
pub fn names(tensors: &Tensors) -> String {
    let mut names: Vec<&str> = tensors.by_name.keys().map(String::as_str).take(8).collect();
    if tensors.by_name.len() > names.len() {
        names.push("...");
    }
    names.join(", ")
}
