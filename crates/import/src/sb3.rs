//! Stable-Baselines3 `.zip` files: the `data` JSON (read for `policy_kwargs`; its pickled
//! `:serialized:` blobs are never unpickled) and the `policy.pth` state dict.

use std::io::Read;
use std::path::Path;

use gradless_policy::{Activation, ForeignHead, ForeignNetwork, LayerWeights, MAX_LAYER_WIDTH};

use crate::cleanrl::names;
use crate::tensors::{MAX_TENSOR_BYTES, Tensors};
use crate::zoo_layout::Normaliser;
use crate::{ForeignPolicy, Format, ImportError, activation_named};

/// The largest `data` entry read (SB3's are a few KB).
const MAX_DATA_BYTES: u64 = 16 << 20;

/// What SB3 covers here.
const COVERED: &str =
    "PPO, A2C, DQN, SAC, TD3 and DDPG with MlpPolicy, and sb3-contrib's QR-DQN and TQC";

/// sb3-contrib's QR-DQN quantiles when `policy_kwargs` names no `n_quantiles`.
const DEFAULT_QUANTILES: usize = 200;

/// SB3's clip on a gSDE SAC actor's mean when `policy_kwargs` names no `clip_mean`.
const DEFAULT_CLIP_MEAN: f32 = 2.0;

/// The most quantiles read (sb3-contrib's default is 200).
const MAX_QUANTILES: u64 = 1 << 16;

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
    let mut saved = SavedSettings::of(&data, path)?;
    saved.activation = activation.or(saved.activation);
    let (kind, network) = network_of(&tensors, saved, path).map_err(inside)?;
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

/// What a model was built with, as its zip's `data` says (or a live model's attributes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SavedSettings {
    /// The activation, when named (else SB3's default for the policy).
    pub(crate) activation: Option<Activation>,
    /// A QR-DQN's quantiles per action, when named (else sb3-contrib's default).
    pub(crate) quantiles: Option<usize>,
    /// A gSDE SAC actor's clip on its mean, when named (else SB3's default).
    pub(crate) clip_mean: Option<f32>,
}

impl SavedSettings {
    /// What the zip's `data` JSON says.
    fn of(data: &serde_json::Value, path: &Path) -> Result<Self, ImportError> {
        let quantiles = match data.pointer("/policy_kwargs/n_quantiles") {
            None => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .filter(|n| (1..=MAX_QUANTILES).contains(n))
                    .ok_or_else(|| {
                        key_error(
                            path,
                            "data: policy_kwargs.n_quantiles",
                            format!(
                                "must be a whole number from 1 to {MAX_QUANTILES}, got {value}"
                            ),
                        )
                    })? as usize,
            ),
        };
        let clip_mean = match data.pointer("/policy_kwargs/clip_mean") {
            None => None,
            Some(value) => Some(value.as_f64().filter(|c| c.is_finite()).ok_or_else(|| {
                key_error(
                    path,
                    "data: policy_kwargs.clip_mean",
                    format!("must be a number, got {value}"),
                )
            })? as f32),
        };
        Ok(Self {
            activation: activation_of(data, path)?,
            quantiles,
            clip_mean,
        })
    }
}

/// A QR-DQN's last layer, whose outputs are `quantiles` rows of one value per action, as
/// two layers computing each action's sum of quantiles (sb3-contrib acts greedily on their
/// mean, whose argmax is the sum's). Computed as sb3-contrib computes it, quantiles first:
/// the layer twice, negated the second time, then ReLU, then weights of +1 and -1, since
/// `relu(z) - relu(-z)` is `z` exactly. Folding the mean into the weights instead rounds
/// them, and near-ties then flip actions.
fn quantile_sums(
    layer: &LayerWeights,
    quantiles: Option<usize>,
    path: &Path,
) -> Result<[LayerWeights; 2], ImportError> {
    let quantiles = quantiles.unwrap_or(DEFAULT_QUANTILES);
    if !layer.outputs.is_multiple_of(quantiles) {
        return Err(key_error(
            path,
            &format!("{}.weight", layer.name),
            format!(
                "{} outputs are not {quantiles} quantiles per action (policy_kwargs.n_quantiles)",
                layer.outputs
            ),
        ));
    }
    // The sums' weights are `actions x 2 * outputs`: bounded, as every layer is, before
    // anything is allocated.
    if 2 * layer.outputs > MAX_LAYER_WIDTH {
        return Err(key_error(
            path,
            &format!("{}.weight", layer.name),
            format!(
                "{} quantile outputs: read with their negation they pass the widest layer ({MAX_LAYER_WIDTH})",
                layer.outputs
            ),
        ));
    }
    let actions = layer.outputs / quantiles;
    let negated = |values: &[f32]| values.iter().map(|v| -v).collect::<Vec<f32>>();
    let both = LayerWeights {
        name: layer.name.clone(),
        weight: [layer.weight.clone(), negated(&layer.weight)].concat(),
        bias: [layer.bias.clone(), negated(&layer.bias)].concat(),
        inputs: layer.inputs,
        outputs: 2 * layer.outputs,
    };
    // Output q * actions + a is quantile q of action a (sb3-contrib's `view(-1, quantiles,
    // actions)`); the negated copy follows at `layer.outputs`.
    let mut weight = vec![0.0f32; actions * both.outputs];
    for a in 0..actions {
        for q in 0..quantiles {
            let k = q * actions + a;
            weight[a * both.outputs + k] = 1.0;
            weight[a * both.outputs + layer.outputs + k] = -1.0;
        }
    }
    let sums = LayerWeights {
        name: format!("{} (summed over quantiles)", layer.name),
        weight,
        bias: vec![0.0; actions],
        inputs: both.outputs,
        outputs: actions,
    };
    Ok([both, sums])
}

/// What an SB3 policy's state dict (`policy.pth`, or a live model's
/// `model.policy.state_dict()`) holds, as a network: its kind in words and its layers.
/// `saved` is what the model was built with, where known (else SB3's defaults for the
/// policy). Errors name `path` and the tensor.
pub(crate) fn network_of(
    tensors: &Tensors,
    saved: SavedSettings,
    path: &Path,
) -> Result<(String, ForeignNetwork), ImportError> {
    let (kind, network) = acting_network(tensors, saved, path)?;
    check_unused(tensors, &network, path)?;
    Ok((kind, network))
}

/// Target networks (a copy of the network they track: `q_net_target.` of `q_net.`, ...).
const TARGETS: [(&str, &str); 4] = [
    ("q_net.", "q_net_target."),
    ("quantile_net.", "quantile_net_target."),
    ("actor.", "actor_target."),
    ("critic.", "critic_target."),
];

/// Checks what acting does not read against what it does: every target network has the
/// shapes of the network it tracks, and an off-policy critic's first layers take an
/// observation and an action of the actor's sizes. A file failing these was not saved by
/// the algorithm it looks like.
fn check_unused(
    tensors: &Tensors,
    network: &ForeignNetwork,
    path: &Path,
) -> Result<(), ImportError> {
    for (online, target) in TARGETS {
        if !tensors.has_prefix(target) {
            continue;
        }
        for (name, values) in tensors.by_name.range(online.to_string()..) {
            let Some(rest) = name.strip_prefix(online) else {
                break;
            };
            let twin = format!("{target}{rest}");
            match tensors.by_name.get(&twin) {
                Some(copy) if copy.shape == values.shape => {}
                Some(copy) => {
                    return Err(key_error(
                        path,
                        &twin,
                        format!(
                            "shape {:?}, where {name} has {:?}",
                            copy.shape, values.shape
                        ),
                    ));
                }
                None => return Err(key_error(path, &twin, format!("missing beside {name}"))),
            }
        }
    }
    if matches!(network.head, ForeignHead::Squashed { .. }) {
        let inputs = network.observation_dim() + network.outputs();
        let first_layers = tensors.by_name.iter().filter(|(name, _)| {
            let Some(rest) = name.strip_prefix("critic.") else {
                return false;
            };
            let parts: Vec<&str> = rest.split('.').collect();
            matches!(
                parts.as_slice(),
                [_, "0", "weight"] | ["quantile_critics", _, "0", "weight"]
            )
        });
        for (name, values) in first_layers {
            if values.shape.get(1) != Some(&inputs) {
                return Err(key_error(
                    path,
                    name,
                    format!(
                        "a critic of {:?}, where the actor's observation and action make {inputs} inputs",
                        values.shape
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The network acting needs, read from the state dict.
fn acting_network(
    tensors: &Tensors,
    saved: SavedSettings,
    path: &Path,
) -> Result<(String, ForeignNetwork), ImportError> {
    let activation = saved.activation;
    for (prefix, what) in [
        ("features_extractor.cnn", "a CNN policy (CnnPolicy)"),
        ("pi_features_extractor.cnn", "a CNN policy (CnnPolicy)"),
        ("actor.features_extractor.cnn", "a CNN policy (CnnPolicy)"),
        ("lstm_actor", "a recurrent (LSTM) policy"),
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
    if tensors.has_prefix("quantile_net.quantile_net.") {
        let mut layers = tensors.linear_layers(path, "quantile_net.quantile_net.", None)?;
        let last = layers.pop().expect("linear_layers reads at least one");
        layers.extend(quantile_sums(&last, saved.quantiles, path)?);
        let network = network(layers, Activation::Relu, ForeignHead::QValues);
        if network.activation != Activation::Relu {
            return Err(key_error(
                path,
                "data: policy_kwargs.activation_fn",
                format!(
                    "a QR-DQN with {:?} layers; covered: ReLU (its default)",
                    network.activation
                ),
            ));
        }
        Ok(("QR-DQN QRDQNPolicy".into(), network))
    } else if tensors.has_prefix("q_net.q_net.") {
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
    } else if tensors.has_prefix("actor.latent_pi.") {
        // SAC's (and TQC's) actor: `latent_pi` (an activation after every layer), then `mu`
        // and `log_std` side by side; its greedy action is `tanh(mu)` on the box. With gSDE,
        // `mu` is a `Linear` and a `Hardtanh` clipping the mean to `clip_mean`, and
        // `log_std` a matrix of state-dependent noise, which is not read (greedy only).
        let gsde = tensors.has_prefix("actor.mu.0.");
        let mu = if gsde { "actor.mu.0" } else { "actor.mu" };
        let layers = tensors.linear_layers(path, "actor.latent_pi.", Some(mu))?;
        // SB3 adds the `Hardtanh` only for a positive `clip_mean`.
        let mean_limit = gsde.then_some(saved.clip_mean.unwrap_or(DEFAULT_CLIP_MEAN));
        if let Some(limit) = mean_limit.filter(|limit| *limit <= 0.0) {
            return Err(key_error(
                path,
                "data: policy_kwargs.clip_mean",
                format!("{limit}, yet the actor's mean ends in a clip (actor.mu.0)"),
            ));
        }
        // Without its `log_std` layer an actor still acts greedily.
        let log_std = match gsde || !tensors.by_name.contains_key("actor.log_std.weight") {
            true => None,
            false => Some(tensors.linear(path, "actor.log_std")?),
        };
        let kind = match tensors.has_prefix("critic.quantile_critics.") {
            true => "TQC Actor",
            false => "SAC Actor",
        };
        Ok((
            kind.into(),
            network(
                layers,
                Activation::Relu,
                ForeignHead::Squashed {
                    mean_limit,
                    log_std,
                },
            ),
        ))
    } else if tensors.has_prefix("actor.mu.") {
        // TD3's and DDPG's actor: one Sequential ending in `Tanh`.
        let layers = tensors.linear_layers(path, "actor.mu.", None)?;
        Ok((
            "TD3/DDPG Actor".into(),
            network(
                layers,
                Activation::Relu,
                ForeignHead::Squashed {
                    mean_limit: None,
                    log_std: None,
                },
            ),
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
    use crate::Values;
    use std::io::Write;

    /// A state dict of `nn.Linear` layers: `(name, outputs, inputs)`, weights 0.5.
    fn state_dict(layers: &[(&str, usize, usize)]) -> Tensors {
        let mut tensors = Tensors::default();
        for &(name, outputs, inputs) in layers {
            let values = |shape: Vec<usize>| Values {
                data: vec![0.5; shape.iter().product()],
                shape,
            };
            tensors
                .by_name
                .insert(format!("{name}.weight"), values(vec![outputs, inputs]));
            tensors
                .by_name
                .insert(format!("{name}.bias"), values(vec![outputs]));
        }
        tensors
    }

    /// Target networks and critics must fit the actor they were saved beside.
    #[test]
    fn what_acting_does_not_read_must_fit_what_it_does() {
        let path = Path::new("td3.zip");
        let actor = [("actor.mu.0", 8, 3), ("actor.mu.2", 1, 8)];
        let fits = state_dict(&[
            actor[0],
            actor[1],
            ("critic.qf0.0", 8, 4),
            ("critic.qf0.2", 1, 8),
        ]);
        assert!(network_of(&fits, SavedSettings::default(), path).is_ok());
        let wide = state_dict(&[
            actor[0],
            actor[1],
            ("critic.qf0.0", 8, 5),
            ("critic.qf0.2", 1, 8),
        ]);
        let error = network_of(&wide, SavedSettings::default(), path)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("critic.qf0.0.weight") && error.contains("4 inputs"),
            "{error}"
        );
        let target = state_dict(&[
            actor[0],
            actor[1],
            ("actor_target.mu.0", 9, 3),
            ("actor_target.mu.2", 1, 9),
        ]);
        let error = network_of(&target, SavedSettings::default(), path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("actor_target.mu.0."), "{error}");
    }

    /// A QR-DQN acts on the sum of its quantiles, each action's computed exactly.
    #[test]
    fn quantiles_are_summed_per_action() {
        let path = Path::new("qrdqn.zip");
        let mut tensors = state_dict(&[("quantile_net.quantile_net.0", 6, 4)]);
        // 3 quantiles of 2 actions: output q * 2 + a; action 1's quantiles are 1, 2, 3.
        let bias = &mut tensors
            .by_name
            .get_mut("quantile_net.quantile_net.0.bias")
            .unwrap()
            .data;
        bias.copy_from_slice(&[0.0, 1.0, 0.0, 2.0, 0.0, 3.0]);
        let saved = SavedSettings {
            quantiles: Some(3),
            ..Default::default()
        };
        let (kind, network) = network_of(&tensors, saved, path).unwrap();
        assert_eq!(
            (kind.as_str(), network.outputs()),
            ("QR-DQN QRDQNPolicy", 2)
        );
        let sums = network.layers.last().unwrap();
        // Action 1 sums rows 1, 3, 5 and subtracts their negations.
        let row: Vec<f32> = sums.weight[sums.inputs..].to_vec();
        assert_eq!(row, [0., 1., 0., 1., 0., 1., 0., -1., 0., -1., 0., -1.]);
        let odd = SavedSettings {
            quantiles: Some(4),
            ..Default::default()
        };
        let error = network_of(&tensors, odd, path).unwrap_err().to_string();
        assert!(error.contains("n_quantiles"), "{error}");
        // A last layer too wide to read with its negation is refused before it is copied.
        let wide = state_dict(&[("quantile_net.quantile_net.0", MAX_LAYER_WIDTH, 1)]);
        let one = SavedSettings {
            quantiles: Some(1),
            ..Default::default()
        };
        let error = network_of(&wide, one, path).unwrap_err().to_string();
        assert!(error.contains("widest layer"), "{error}");
    }

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
