//! Stable-Baselines3 `.zip` files: the `data` JSON (read for `policy_kwargs`; its pickled
//! `:serialized:` blobs are never unpickled) and the `policy.pth` state dict.

use std::io::Read;
use std::path::Path;

use gradless_policy::{Activation, ForeignHead, ForeignNetwork};

use crate::cleanrl::names;
use crate::tensors::{MAX_TENSOR_BYTES, Tensors};
use crate::zoo_layout::Normaliser;
use crate::{ForeignPolicy, Format, ImportError, activation_named};

/// The largest `data` entry read (SB3's are a few KB).
const MAX_DATA_BYTES: u64 = 16 << 20;

/// What SB3 covers here.
const COVERED: &str = "PPO, A2C, DQN, SAC, TD3 and DDPG with MlpPolicy";

fn key_error(path: &Path, key: &str, reason: impl Into<String>) -> ImportError {
    ImportError::Key {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// An entry of the archive, at most `limit` bytes once inflated.
fn entry<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    path: &Path,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, ImportError> {
    let mut file = archive.by_name(name).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => key_error(
            path,
            name,
            "missing: a Stable-Baselines3 zip holds `data` and `policy.pth`",
        ),
        other => key_error(path, name, other.to_string()),
    })?;
    if file.size() > limit {
        return Err(key_error(
            path,
            name,
            format!("{} bytes inflated, more than {limit}", file.size()),
        ));
    }
    let mut bytes = Vec::with_capacity(file.size() as usize);
    file.by_ref()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| key_error(path, name, e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(key_error(
            path,
            name,
            format!("more than {limit} bytes inflated"),
        ));
    }
    Ok(bytes)
}

/// The activation `policy_kwargs` names, if it names one.
fn activation_of(data: &serde_json::Value, path: &Path) -> Result<Option<Activation>, ImportError> {
    let Some(text) = data
        .pointer("/policy_kwargs/activation_fn")
        .and_then(serde_json::Value::as_str)
    else {
        return Ok(None);
    };
    // "<class 'torch.nn.modules.activation.ReLU'>"
    let class = text
        .trim_end_matches("'>")
        .rsplit('.')
        .next()
        .unwrap_or(text);
    activation_named(class).map(Some).ok_or_else(|| {
        key_error(
            path,
            "data: policy_kwargs.activation_fn",
            format!("{text}: only Tanh and ReLU networks are covered"),
        )
    })
}

/// Reads an SB3 zip.
///
/// Long because the zip's entries are read in turn, each bounded and checked before the next
/// is opened.
pub fn read(path: &Path, activation: Option<Activation>) -> Result<ForeignPolicy, ImportError> {
    let file_error = |reason: String| ImportError::File {
        path: path.to_path_buf(),
        reason,
    };
    let env = crate::zoo_layout::zoo_env(path).map_err(file_error)?;
    let normalizer = match crate::zoo_layout::implied_normaliser(path) {
        None => None,
        Some(Normaliser::Statistics(statistics)) => crate::vecnormalize::read(&statistics)?,
        Some(Normaliser::Missing(why)) => {
            return Err(file_error(format!(
                "{why}: the agent was trained on VecNormalize-d observations, and their \
                 statistics (vecnormalize.pkl) are not where RL Zoo keeps them; evaluating it \
                 on raw observations would be wrong, so it is refused"
            )));
        }
    };
    let file = gradless_files::open_regular(path).map_err(|e| file_error(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| file_error(format!("not a Stable-Baselines3 zip: {e}")))?;
    let data = entry(&mut archive, path, "data", MAX_DATA_BYTES)?;
    let data: serde_json::Value = serde_json::from_slice(&data)
        .map_err(|e| key_error(path, "data", format!("not JSON: {e}")))?;
    match data.get("use_sde") {
        None | Some(serde_json::Value::Bool(_)) => {}
        Some(other) => {
            return Err(key_error(
                path,
                "data: use_sde",
                format!("must be true or false, got {other}"),
            ));
        }
    }
    let policy_bytes = entry(&mut archive, path, "policy.pth", MAX_TENSOR_BYTES)?;
    // pytorch-reader reads tensors from a path: the entry goes to a private file with no
    // name on disk, gone with this process whatever ends it.
    let (_copy, copy_path) = gradless_files::unnamed_file(&policy_bytes)
        .map_err(|e| file_error(format!("a private copy of policy.pth: {e}")))?;
    drop(policy_bytes);
    // Errors about the scratch copy or its tensors name the zip and its entry.
    let inside = |e: ImportError| match e {
        ImportError::File { reason, .. } => key_error(path, "policy.pth", reason),
        ImportError::Key { key, reason, .. } => {
            key_error(path, &format!("policy.pth: {key}"), reason)
        }
    };
    let tensors = Tensors::read_pytorch(&copy_path).map_err(inside)?;
    let named = activation.or(activation_of(&data, path)?);
    let (kind, network) = network_of(&tensors, named, path).map_err(inside)?;
    Ok(ForeignPolicy {
        path: path.to_path_buf(),
        format: Format::StableBaselines3,
        kind,
        network,
        normalizer,
        env,
        step: data
            .get("num_timesteps")
            .and_then(serde_json::Value::as_u64),
    })
}

/// What an SB3 policy's state dict (`policy.pth`, or a live model's
/// `model.policy.state_dict()`) holds, as a network: its kind in words and its layers.
/// `activation` is the one the model was built with, when known (else SB3's default for
/// the policy). Errors name `path` and the tensor.
pub(crate) fn network_of(
    tensors: &Tensors,
    activation: Option<Activation>,
    path: &Path,
) -> Result<(String, ForeignNetwork), ImportError> {
    for (prefix, what) in [
        ("features_extractor.cnn", "a CNN policy (CnnPolicy)"),
        ("pi_features_extractor.cnn", "a CNN policy (CnnPolicy)"),
        ("actor.features_extractor.cnn", "a CNN policy (CnnPolicy)"),
        ("lstm_actor", "a recurrent (LSTM) policy"),
        ("quantile_net", "a QR-DQN policy"),
    ] {
        if tensors.has_prefix(prefix) {
            return Err(key_error(
                path,
                prefix,
                format!("{what}; covered: {COVERED}"),
            ));
        }
    }
    let network = |layers, default, head| ForeignNetwork {
        layers,
        activation: activation.unwrap_or(default),
        head,
        critic: Vec::new(),
    };
    if tensors.has_prefix("q_net.q_net.") {
        let layers = tensors.linear_layers(path, "q_net.q_net.", None)?;
        Ok((
            "DQN DQNPolicy".into(),
            network(layers, Activation::Relu, ForeignHead::QValues),
        ))
    } else if tensors.has_prefix("action_net.") {
        let head = match tensors.by_name.get("log_std") {
            // gSDE's log-std is a `[latent, action]` matrix: its noise depends on the state.
            Some(log_std) if log_std.shape.len() == 2 => ForeignHead::Mean,
            Some(log_std) => ForeignHead::Gaussian {
                log_std: log_std.data.clone(),
            },
            None => ForeignHead::Categorical,
        };
        let layers =
            tensors.linear_layers(path, "mlp_extractor.policy_net.", Some("action_net"))?;
        let mut network = network(layers, Activation::Tanh, head);
        network.critic =
            tensors.linear_layers(path, "mlp_extractor.value_net.", Some("value_net"))?;
        Ok(("PPO/A2C ActorCriticPolicy".into(), network))
    } else if tensors.has_prefix("actor.latent_pi.") && tensors.has_prefix("actor.mu.0.") {
        Err(key_error(
            path,
            "actor.mu.0",
            format!("a gSDE SAC actor (its mean clipped by a Hardtanh); covered: {COVERED}"),
        ))
    } else if tensors.has_prefix("actor.latent_pi.") {
        // SAC's actor: `latent_pi` (an activation after every layer), then `mu`; its greedy
        // action is `tanh(mu)` on the box. The `log_std` layer only serves sampling.
        let layers = tensors.linear_layers(path, "actor.latent_pi.", Some("actor.mu"))?;
        Ok((
            "SAC Actor".into(),
            network(layers, Activation::Relu, ForeignHead::Squashed),
        ))
    } else if tensors.has_prefix("actor.mu.") {
        // TD3's and DDPG's actor: one Sequential ending in `Tanh`.
        let layers = tensors.linear_layers(path, "actor.mu.", None)?;
        Ok((
            "TD3/DDPG Actor".into(),
            network(layers, Activation::Relu, ForeignHead::Squashed),
        ))
    } else {
        Err(ImportError::File {
            path: path.to_path_buf(),
            reason: format!(
                "holds no policy this reads (covered: {COVERED}); its tensors: {}",
                names(tensors)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A small zip whose `policy.pth` inflates past what a policy can be is refused before
    /// it is inflated.
    #[test]
    fn an_entry_larger_than_a_policy_is_refused_before_it_is_read() {
        let dir = std::env::temp_dir().join(format!("gradless-sb3-bound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bomb.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("data", deflated).unwrap();
        zip.write_all(b"{}").unwrap();
        zip.start_file("policy.pth", deflated).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=(MAX_TENSOR_BYTES >> 20) {
            zip.write_all(&zeros).unwrap();
        }
        zip.finish().unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
        let err = read(&path, None).unwrap_err().to_string();
        assert!(
            err.contains("policy.pth") && err.contains("bytes inflated"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
