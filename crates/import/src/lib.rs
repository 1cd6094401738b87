//! Policies trained elsewhere, read as plain MLP weights: Stable-Baselines3 `.zip` files
//! (PPO, A2C, DQN with `MlpPolicy`; SAC, TD3 and DDPG actors) with the `VecNormalize`
//! statistics RL Zoo keeps beside them, CleanRL `.cleanrl_model` state dicts (`ppo.py`,
//! `ppo_continuous_action.py`, `dqn.py`), and state dicts in `gradless export`'s layout
//! (`.safetensors`, `.pt`). PyTorch files are read with burn's `pytorch-reader`, which parses
//! the pickle itself, and `vecnormalize.pkl` with this crate's own pickle reader: no Python,
//! and no pickle code is executed. Layer sizes come from the tensors' shapes; errors name
//! the file and the key.

mod cleanrl;
mod pickle;
mod safetensors;
mod sb3;
mod tensors;
mod torch_zip;
mod vecnormalize;
mod zoo_layout;

use std::path::{Path, PathBuf};

use gradless_envs::MakeArgs;
use gradless_policy::{Activation, ForeignHead, ForeignNetwork, ObservationNormalizer};
use thiserror::Error;

pub use tensors::{MAX_TENSOR_BYTES, Tensors, Values};
pub use zoo_layout::{ZooModel, ZooRun, zoo_run};

/// Why a file could not be read as a policy.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The file as a whole is unreadable or of the wrong kind.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A tensor or entry that is missing or does not fit.
    #[error("{path}: `{key}`: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// The tensor, zip entry or JSON field.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where a policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Stable-Baselines3 zip.
    StableBaselines3,
    /// A CleanRL `.cleanrl_model`.
    CleanRl,
    /// A state dict in `gradless export`'s layout.
    Export,
    /// A PyTorch module handed over in memory (`nn.Sequential` of `Linear` layers).
    TorchModule,
}

impl Format {
    /// The format's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::StableBaselines3 => "Stable-Baselines3",
            Format::CleanRl => "CleanRL",
            Format::Export => "gradless export",
            Format::TorchModule => "PyTorch module",
        }
    }
}

/// A policy read from another tool's file.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignPolicy {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// What it holds, in words (`PPO/A2C ActorCriticPolicy`, `dqn.py QNetwork`, ...).
    pub kind: String,
    /// The network (checked: its layers chain).
    pub network: ForeignNetwork,
    /// The frozen observation statistics its inputs are normalised with (an SB3 agent's
    /// `vecnormalize.pkl`), if it was trained on normalised observations.
    pub normalizer: Option<ObservationNormalizer>,
    /// The env the file names (`gradless export`'s files name one) or its RL Zoo run folder
    /// does (`args.yml`'s `env` and `env_kwargs`).
    pub env: Option<MakeArgs>,
    /// The training steps behind it, when the file says (SB3's `num_timesteps`).
    pub step: Option<u64>,
}

/// The file names policies of other tools have.
pub fn is_foreign_file(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    [".zip", ".cleanrl_model", ".safetensors", ".pt", ".pth"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Reads the policy in `path` (by its extension); `activation` replaces the one the file
/// says or its format's default (CleanRL files name none).
pub fn read_policy(
    path: &Path,
    activation: Option<Activation>,
) -> Result<ForeignPolicy, ImportError> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut policy = if name.ends_with(".zip") {
        sb3::read(path, activation)?
    } else if name.ends_with(".cleanrl_model") {
        cleanrl::read(path, activation)?
    } else if name.ends_with(".safetensors") {
        safetensors::read(path, activation)?
    } else if name.ends_with(".pt") || name.ends_with(".pth") {
        cleanrl::read_sequential(path, activation)?
    } else {
        return Err(ImportError::File {
            path: path.to_path_buf(),
            reason: "not a policy file this reads (.zip from Stable-Baselines3, .cleanrl_model, .safetensors, .pt)".into(),
        });
    };
    policy.path = path.to_path_buf();
    checked(policy)
}

/// The policy of a live Stable-Baselines3 model, from its `policy.state_dict()` (the
/// tensors its zip's `policy.pth` holds), built with `activation` (SB3's default for the
/// policy when `None`); `source` names the model in errors, `step` its training steps.
pub fn sb3_policy_from_state_dict(
    tensors: &Tensors,
    activation: Option<Activation>,
    source: &str,
    step: Option<u64>,
) -> Result<ForeignPolicy, ImportError> {
    let path = PathBuf::from(source);
    let saved = sb3::SavedSettings {
        activation,
        ..Default::default()
    };
    let (kind, network) = sb3::network_of(tensors, saved, &path)?;
    checked(ForeignPolicy {
        path,
        format: Format::StableBaselines3,
        kind,
        network,
        normalizer: None,
        env: None,
        step,
    })
}

/// How a PyTorch module's outputs become actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleAction {
    /// The index of the largest output (Q-values, logits taken greedily).
    Argmax,
    /// The outputs are the action (continuous, as many as the action's dimensions).
    Identity,
    /// `tanh` of the outputs mapped onto the action box.
    TanhScale,
}

impl std::str::FromStr for ModuleAction {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "argmax" => Ok(Self::Argmax),
            "identity" => Ok(Self::Identity),
            "tanh_scale" => Ok(Self::TanhScale),
            other => Err(format!(
                "action {other:?}: expected \"argmax\", \"identity\" or \"tanh_scale\""
            )),
        }
    }
}

/// The policy of a PyTorch `nn.Sequential` of `Linear` layers with `activation` between
/// them, from its `state_dict()` (`0.weight`, `0.bias`, `2.weight`, ...), whose outputs
/// become actions as `action` says; `source` names the module in errors. Only greedy
/// actions are defined for it.
pub fn sequential_policy(
    tensors: &Tensors,
    activation: Activation,
    action: ModuleAction,
    source: &str,
) -> Result<ForeignPolicy, ImportError> {
    let path = PathBuf::from(source);
    let layers = tensors.linear_layers(&path, "", None)?;
    let head = match action {
        ModuleAction::Argmax => ForeignHead::QValues,
        ModuleAction::Identity => ForeignHead::Mean,
        ModuleAction::TanhScale => ForeignHead::Squashed {
            mean_limit: None,
            log_std: None,
        },
    };
    let network = ForeignNetwork {
        layers,
        activation,
        head,
        critic: Vec::new(),
    };
    checked(ForeignPolicy {
        path,
        format: Format::TorchModule,
        kind: "nn.Sequential".into(),
        network,
        normalizer: None,
        env: None,
        step: None,
    })
}

/// The policy, once its network is checked (its layers chain, its values are finite) and
/// its observation statistics, if it has any, fit its inputs.
fn checked(mut policy: ForeignPolicy) -> Result<ForeignPolicy, ImportError> {
    policy.network.check().map_err(|reason| ImportError::File {
        path: policy.path.clone(),
        reason,
    })?;
    let normalizer = policy.normalizer.take();
    policy.with_normalizer(normalizer)
}

impl ForeignPolicy {
    /// The same policy normalising its inputs with `normalizer` (a live model's
    /// `VecNormalize`), checked to fit them.
    pub fn with_normalizer(
        mut self,
        normalizer: Option<ObservationNormalizer>,
    ) -> Result<Self, ImportError> {
        if let Some(normalizer) = &normalizer {
            normalizer
                .check(self.network.observation_dim())
                .map_err(|reason| ImportError::File {
                    path: self.path.clone(),
                    reason: format!("observation statistics: {reason}"),
                })?;
        }
        self.normalizer = normalizer;
        Ok(self)
    }
}

/// An activation named as the formats name them (`tanh`, `relu`, PyTorch's class names).
pub fn activation_named(name: &str) -> Option<Activation> {
    match name.to_ascii_lowercase().as_str() {
        "tanh" => Some(Activation::Tanh),
        "relu" => Some(Activation::Relu),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `tests/fixtures` (the crate's tests share it).
    pub(crate) fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// What each fixture holds, from its tensors' shapes and its format's conventions.
    #[test]
    fn fixtures_read_as_the_networks_they_hold() {
        let ppo = read_policy(&fixture("sb3_ppo_cartpole_relu32.zip"), None).unwrap();
        assert_eq!(
            (ppo.format, ppo.kind.as_str()),
            (Format::StableBaselines3, "PPO/A2C ActorCriticPolicy")
        );
        assert_eq!(ppo.network.hidden(), [32, 32]);
        assert_eq!(
            ppo.network.activation,
            Activation::Relu,
            "from policy_kwargs"
        );
        assert_eq!(
            (ppo.network.observation_dim(), ppo.network.outputs()),
            (4, 2)
        );
        assert_eq!(ppo.network.critic.last().unwrap().outputs, 1);
        assert!(ppo.step.unwrap() >= 30_000);
        let dqn = read_policy(&fixture("sb3_dqn_cartpole.zip"), None).unwrap();
        assert_eq!(
            (dqn.network.head.clone(), dqn.network.hidden()),
            (ForeignHead::QValues, vec![128, 128])
        );
        assert_eq!(dqn.network.activation, Activation::Relu);
        let pendulum = read_policy(&fixture("sb3_ppo_pendulum.zip"), None).unwrap();
        assert!(
            matches!(&pendulum.network.head, ForeignHead::Gaussian { log_std } if log_std.len() == 1)
        );
        assert_eq!(
            pendulum.network.activation,
            Activation::Tanh,
            "SB3's default"
        );

        // SAC's actor is its latent layers then `mu`; TD3's one Sequential.
        // SAC's `log_std` layer lets it sample; TD3 acts greedily only.
        for (name, kind, samples) in [
            ("sb3_sac_pendulum.zip", "SAC Actor", true),
            ("sb3_td3_pendulum.zip", "TD3/DDPG Actor", false),
        ] {
            let squashed = read_policy(&fixture(name), None).unwrap();
            assert_eq!(squashed.kind, kind);
            assert!(matches!(
                squashed.network.head,
                ForeignHead::Squashed {
                    mean_limit: None,
                    ..
                }
            ));
            assert_eq!(squashed.network.head.greedy_only().is_none(), samples);
            assert_eq!(squashed.network.hidden(), vec![64, 64]);
            assert_eq!(squashed.network.activation, Activation::Relu);
            assert_eq!(
                (
                    squashed.network.observation_dim(),
                    squashed.network.outputs()
                ),
                (3, 1)
            );
        }

        let cleanrl =
            read_policy(&fixture("cleanrl_ppo_cartpole_relu32.cleanrl_model"), None).unwrap();
        assert_eq!(cleanrl.kind, "ppo.py Agent");
        assert_eq!(
            cleanrl.network.activation,
            Activation::Tanh,
            "CleanRL files name none"
        );
        let relu = read_policy(
            &fixture("cleanrl_ppo_cartpole_relu32.cleanrl_model"),
            Some(Activation::Relu),
        )
        .unwrap();
        // The same weights as the SB3 zip they were copied from, under CleanRL's names.
        let renamed: Vec<_> = ppo
            .network
            .layers
            .iter()
            .enumerate()
            .map(|(k, layer)| gradless_policy::LayerWeights {
                name: format!("actor.{}", 2 * k),
                ..layer.clone()
            })
            .collect();
        assert_eq!(relu.network.layers, renamed);
        let continuous = read_policy(&fixture("cleanrl_ppo_pendulum.cleanrl_model"), None).unwrap();
        assert_eq!(continuous.kind, "ppo_continuous_action.py Agent");
        assert_eq!(continuous.network.head, pendulum.network.head);
        let q = read_policy(&fixture("cleanrl_dqn_cartpole.cleanrl_model"), None).unwrap();
        assert_eq!(
            (q.kind.as_str(), q.network.activation),
            ("dqn.py QNetwork", Activation::Relu)
        );
    }

    /// Statistics given a policy must fit its inputs, whether read beside its file or
    /// handed over with it.
    #[test]
    fn observation_statistics_must_fit_the_inputs() {
        let policy = read_policy(&fixture("sb3_ppo_cartpole_relu32.zip"), None).unwrap();
        let fits = ObservationNormalizer::new(4, 10.0, 1e-8);
        assert!(policy.clone().with_normalizer(Some(fits)).is_ok());
        let acrobot = ObservationNormalizer::new(6, 10.0, 1e-8);
        let error = policy
            .with_normalizer(Some(acrobot))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("sb3_ppo_cartpole_relu32.zip")
                && error.contains("observation statistics"),
            "{error}"
        );
    }

    #[test]
    fn only_policy_files_are_taken_for_them() {
        for name in ["a.zip", "b.cleanrl_model", "c.safetensors", "d.pt", "e.pth"] {
            assert!(is_foreign_file(Path::new(name)), "{name}");
        }
        for name in ["metadata.json", "model.bpk", "zip"] {
            assert!(!is_foreign_file(Path::new(name)), "{name}");
        }
        assert_eq!(activation_named("ReLU"), Some(Activation::Relu));
        assert_eq!(activation_named("GELU"), None);
    }
}
