//! Networks given as plain weights (a policy trained elsewhere, read from its file): checked
//! to be a plain MLP whose layers chain, then built into the networks gradless acts with.

use burn::module::Param;
use burn::prelude::{Device, TensorData};

use crate::network::{
    ActionHead, Activation, ActorCritic, Architecture, MAX_HIDDEN_LAYERS, MAX_LAYER_WIDTH, Mlp,
    QNetwork, linear_with_bias,
};
use crate::policy_network::PolicyNetwork;
use crate::soft_actor_critic::{ActionBounds, Sb3Conventions, SquashedGaussianActor};
use gradless_envs::Space;

/// One fully connected layer as PyTorch's `nn.Linear` stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// The tensor's name in its file (for errors).
    pub name: String,
    /// `[outputs, inputs]`, row-major (PyTorch's `weight`).
    pub weight: Vec<f32>,
    /// `[outputs]`.
    pub bias: Vec<f32>,
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
}

/// What the network computes from an observation.
#[derive(Debug, Clone, PartialEq)]
pub enum ForeignHead {
    /// Logits of a categorical policy.
    Categorical,
    /// Means of a Gaussian policy with a state-independent log-std (`[dim]`).
    Gaussian {
        /// The log standard deviations.
        log_std: Vec<f32>,
    },
    /// Q-values (greedy: their argmax).
    QValues,
    /// Pre-`tanh` actions of a Stable-Baselines3 actor: the action is `tanh(output)` mapped
    /// onto the env's action box as SB3 maps it (the greedy action of SAC's actor, and TD3's
    /// and DDPG's deterministic one), the output first clipped to `[-limit, limit]` where
    /// `mean_limit` is set (a gSDE SAC actor's `Hardtanh`). With `log_std`, SAC's layer of
    /// raw log standard deviations (clamped as SB3 clamps them), actions can be sampled;
    /// without, it acts greedily only.
    Squashed {
        /// The clip on the output before `tanh`, if any.
        mean_limit: Option<f32>,
        /// The layer from the last hidden features to the raw log-stds, if any.
        log_std: Option<LayerWeights>,
    },
    /// The means of continuous actions whose spread is not modelled here (a gSDE policy's
    /// state-dependent noise, a module's outputs taken as the action): greedy actions only.
    Mean,
    /// gradless's own SAC actor as `gradless export` writes it: the last layer gives the
    /// means, then the raw log standard deviations, and it acts (greedily or sampling) as
    /// the native actor does.
    SoftActor,
}

impl ForeignHead {
    /// Why only greedy actions are defined for this head, if so.
    pub fn greedy_only(&self) -> Option<&'static str> {
        match self {
            Self::Squashed { log_std: None, .. } => Some(
                "it acts with tanh of its output mapped onto the box, and has no log-std \
                 layer to sample with (TD3, DDPG, a gSDE SAC actor's state-dependent noise)",
            ),
            Self::Squashed { .. } => None,
            Self::Mean => Some(
                "its outputs are the action's mean, and its spread (a gSDE policy's \
                 state-dependent noise) is not modelled",
            ),
            Self::Categorical | Self::Gaussian { .. } | Self::QValues | Self::SoftActor => None,
        }
    }

    /// Why a network with this head cannot be written in gradless's own layouts (a native
    /// checkpoint, an export), if so.
    pub fn unwritable(&self) -> Option<&'static str> {
        match self {
            Self::Squashed { .. } => Some(
                "a Stable-Baselines3 actor clamps its log-std, maps actions from the box's \
                 corners and may clip its mean, which gradless's SAC actor does not",
            ),
            Self::Mean => self.greedy_only(),
            Self::Categorical | Self::Gaussian { .. } | Self::QValues | Self::SoftActor => None,
        }
    }
}

/// A plain MLP policy read from another tool's file.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignNetwork {
    /// The layers from observation to output, an activation between each two.
    pub layers: Vec<LayerWeights>,
    /// The activation.
    pub activation: Activation,
    /// What the outputs are.
    pub head: ForeignHead,
    /// The value function's layers, when the file has them (PPO, A2C); evaluation does not
    /// use them.
    pub critic: Vec<LayerWeights>,
}

impl ForeignNetwork {
    /// Checks every layer's sizes and values and that the layers chain; the error names the
    /// first tensor that does not fit.
    pub fn check(&self) -> Result<(), String> {
        for layers in [&self.layers, &self.critic] {
            for (k, layer) in layers.iter().enumerate() {
                if layer.inputs == 0
                    || layer.outputs == 0
                    || layer.inputs > MAX_LAYER_WIDTH
                    || layer.outputs > MAX_LAYER_WIDTH
                {
                    return Err(format!(
                        "{}: a {}x{} layer (each side must lie in 1..={MAX_LAYER_WIDTH})",
                        layer.name, layer.outputs, layer.inputs
                    ));
                }
                if layer.weight.len() != layer.inputs * layer.outputs
                    || layer.bias.len() != layer.outputs
                {
                    return Err(format!(
                        "{}: the weight and bias sizes do not match",
                        layer.name
                    ));
                }
                if let Some(next) = layers.get(k + 1)
                    && next.inputs != layer.outputs
                {
                    return Err(format!(
                        "{}: shapes do not chain: {} outputs {} features, {} takes {}",
                        next.name, layer.name, layer.outputs, next.name, next.inputs
                    ));
                }
                if layer
                    .weight
                    .iter()
                    .chain(&layer.bias)
                    .any(|v| !v.is_finite())
                {
                    return Err(format!("{}: holds NaN or infinite values", layer.name));
                }
            }
        }
        let (Some(first), Some(last)) = (self.layers.first(), self.layers.last()) else {
            return Err("the network has no layers".into());
        };
        if self.layers.len() > MAX_HIDDEN_LAYERS + 1 {
            return Err(format!(
                "{} layers (at most {MAX_HIDDEN_LAYERS} hidden ones)",
                self.layers.len()
            ));
        }
        if let Some(critic) = self.critic.first()
            && critic.inputs != first.inputs
        {
            return Err(format!(
                "{}: the value network takes {} features, the policy {}",
                critic.name, critic.inputs, first.inputs
            ));
        }
        if let Some(critic) = self.critic.last()
            && critic.outputs != 1
        {
            return Err(format!(
                "{}: a value network has one output, not {}",
                critic.name, critic.outputs
            ));
        }
        if self.head == ForeignHead::SoftActor && !last.outputs.is_multiple_of(2) {
            return Err(format!(
                "{}: a SAC actor's {} outputs are not means and log-stds, as many of each",
                last.name, last.outputs
            ));
        }
        if let ForeignHead::Gaussian { log_std } = &self.head {
            if log_std.len() != last.outputs {
                return Err(format!(
                    "log_std holds {} values for {} action dimensions",
                    log_std.len(),
                    last.outputs
                ));
            }
            if log_std.iter().any(|v| !v.is_finite()) {
                return Err("log_std holds NaN or infinite values".into());
            }
        }
        Ok(())
    }

    /// Observation features the network takes.
    pub fn observation_dim(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Outputs: actions (categorical, Q-values) or action dimensions (Gaussian).
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// The actions (discrete) or action dimensions (continuous) the network acts in: its
    /// outputs, half of them for a SAC actor (the other half its log-stds).
    pub fn action_outputs(&self) -> usize {
        match self.head {
            ForeignHead::SoftActor => self.outputs() / 2,
            _ => self.outputs(),
        }
    }

    /// The hidden layers' widths.
    pub fn hidden(&self) -> Vec<usize> {
        self.layers[..self.layers.len().saturating_sub(1)]
            .iter()
            .map(|l| l.outputs)
            .collect()
    }

    /// The architecture gradless would give this network.
    pub fn architecture(&self) -> Architecture {
        let hidden = self.hidden();
        let observation_dim = self.observation_dim();
        match &self.head {
            ForeignHead::QValues => Architecture::QNetwork {
                observation_dim,
                hidden,
                activation: self.activation,
                actions: self.outputs(),
            },
            ForeignHead::Categorical => Architecture::ActorCritic {
                observation_dim,
                hidden,
                activation: self.activation,
                head: ActionHead::Categorical { n: self.outputs() },
            },
            ForeignHead::Gaussian { .. } | ForeignHead::Mean => Architecture::ActorCritic {
                observation_dim,
                hidden,
                activation: self.activation,
                head: ActionHead::Gaussian {
                    dim: self.outputs(),
                },
            },
            ForeignHead::Squashed { .. } | ForeignHead::SoftActor => {
                Architecture::SoftActorCritic {
                    observation_dim,
                    hidden,
                    activation: self.activation,
                    action_dim: self.action_outputs(),
                }
            }
        }
    }

    /// The network built on `device` (checked first), acting in `action_space`.
    pub(crate) fn build(
        &self,
        action_space: &Space,
        device: &Device,
    ) -> Result<PolicyNetwork, String> {
        self.check()?;
        match self.head {
            ForeignHead::Squashed {
                mean_limit,
                ref log_std,
            } => {
                return self.squashed_actor(action_space, mean_limit, log_std.as_ref(), device);
            }
            ForeignHead::SoftActor => {
                let bounds = self.bounds_of(action_space)?;
                let net = mlp(&self.layers, self.activation, device);
                return Ok(PolicyNetwork::SoftActor(
                    SquashedGaussianActor::from_network(net, bounds),
                ));
            }
            _ => {}
        }
        let actor = mlp(&self.layers, self.activation, device);
        Ok(match &self.head {
            ForeignHead::QValues => PolicyNetwork::QNetwork(QNetwork::from_network(actor)),
            head => {
                // Without a value network in the file, a zero one of the right shape: acting
                // never reads it.
                let critic = if self.critic.is_empty() {
                    Mlp::zeros(self.observation_dim(), &[], 1, self.activation, device)
                } else {
                    mlp(&self.critic, self.activation, device)
                };
                // A mean head's log-std is zeros: acting greedily never reads it.
                let zeros = vec![0.0; self.outputs()];
                let log_std = match head {
                    ForeignHead::Gaussian { log_std } => Some(log_std),
                    ForeignHead::Mean => Some(&zeros),
                    _ => None,
                }
                .map(|log_std| {
                    Param::from_data(TensorData::new(log_std.clone(), [1, log_std.len()]), device)
                });
                PolicyNetwork::ActorCritic(ActorCritic::from_parts(actor, critic, log_std))
            }
        })
    }

    /// The box a squashed network's actions are mapped onto: the env's, which must be finite
    /// and of its action dimensions.
    fn bounds_of(&self, action_space: &Space) -> Result<ActionBounds, String> {
        ActionBounds::of(action_space)
            .filter(|bounds| bounds.scale.len() == self.action_outputs())
            .ok_or_else(|| {
                format!(
                    "a squashed policy of {} action dimensions acts in a finite box of as many; the env's action space is {}",
                    self.action_outputs(),
                    action_space.describe()
                )
            })
    }

    /// A Stable-Baselines3 squashed network as gradless's SAC actor, with SB3's
    /// conventions, whose outputs are the means and then the raw log standard deviations:
    /// the means are the network's outputs, the log-std half the `log_std` layer's rows (it
    /// takes the same features) or, without one, zero rows that greedy acting never reads.
    fn squashed_actor(
        &self,
        action_space: &Space,
        mean_limit: Option<f32>,
        log_std: Option<&LayerWeights>,
        device: &Device,
    ) -> Result<PolicyNetwork, String> {
        let mut bounds = self.bounds_of(action_space)?;
        if let Space::Box { low, high } = action_space {
            bounds.sb3 = Some(Sb3Conventions {
                low: low.clone(),
                high: high.clone(),
                mean_limit,
            });
        }
        let mut layers = self.layers.clone();
        if let Some(last) = layers.last_mut() {
            match log_std {
                Some(log_std)
                    if (log_std.inputs, log_std.outputs) == (last.inputs, last.outputs) =>
                {
                    last.weight.extend_from_slice(&log_std.weight);
                    last.bias.extend_from_slice(&log_std.bias);
                }
                Some(log_std) => {
                    return Err(format!(
                        "{}: a {}x{} log-std layer beside a {}x{} mean layer",
                        log_std.name, log_std.outputs, log_std.inputs, last.outputs, last.inputs
                    ));
                }
                None => {
                    last.weight.resize(2 * last.weight.len(), 0.0);
                    last.bias.resize(2 * last.outputs, 0.0);
                }
            }
            last.outputs *= 2;
        }
        let net = mlp(&layers, self.activation, device);
        Ok(PolicyNetwork::SoftActor(
            SquashedGaussianActor::from_network(net, bounds),
        ))
    }
}

/// The layers as burn `Linear`s (which keep weights `[inputs, outputs]`).
fn mlp(layers: &[LayerWeights], activation: Activation, device: &Device) -> Mlp {
    let linears = layers
        .iter()
        .map(|layer| {
            let mut transposed = vec![0.0f32; layer.weight.len()];
            for o in 0..layer.outputs {
                for i in 0..layer.inputs {
                    transposed[i * layer.outputs + o] = layer.weight[o * layer.inputs + i];
                }
            }
            linear_with_bias(
                transposed,
                layer.bias.clone(),
                layer.inputs,
                layer.outputs,
                device,
            )
        })
        .collect();
    Mlp::from_linears(linears, activation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, inputs: usize, outputs: usize) -> LayerWeights {
        LayerWeights {
            name: name.into(),
            weight: (0..inputs * outputs).map(|k| k as f32 * 0.01).collect(),
            bias: vec![0.5; outputs],
            inputs,
            outputs,
        }
    }

    fn network(layers: Vec<LayerWeights>, head: ForeignHead) -> ForeignNetwork {
        ForeignNetwork {
            layers,
            activation: Activation::Relu,
            head,
            critic: Vec::new(),
        }
    }

    #[test]
    fn layers_must_chain_and_fit() {
        let good = network(
            vec![layer("0", 4, 8), layer("2", 8, 2)],
            ForeignHead::Categorical,
        );
        assert!(good.check().is_ok());
        assert_eq!(
            (good.observation_dim(), good.outputs(), good.hidden()),
            (4, 2, vec![8])
        );
        let broken = network(
            vec![layer("0", 4, 8), layer("2", 7, 2)],
            ForeignHead::Categorical,
        );
        let error = broken.check().unwrap_err();
        assert!(error.contains("2: shapes do not chain"), "{error}");
        let huge = network(vec![layer("0", 4, 5000)], ForeignHead::QValues);
        assert!(huge.check().unwrap_err().contains("5000x4"));
        let gaussian = network(
            vec![layer("0", 3, 1)],
            ForeignHead::Gaussian {
                log_std: vec![0.0, 0.0],
            },
        );
        assert!(
            gaussian
                .check()
                .unwrap_err()
                .contains("log_std holds 2 values")
        );
        let mut nan = good.clone();
        nan.layers[1].bias[0] = f32::NAN;
        assert!(nan.check().unwrap_err().contains("NaN"));
    }

    /// A layer computes `x W^T + b` as PyTorch's `nn.Linear` does.
    #[test]
    fn built_layers_compute_what_pytorch_computes() {
        let device = Device::flex();
        let mut single = layer("0", 3, 2);
        single.weight = vec![1.0, 2.0, 3.0, -1.0, 0.0, 1.0];
        single.bias = vec![0.5, -0.5];
        let net = network(vec![single], ForeignHead::QValues);
        let PolicyNetwork::QNetwork(q) = net.build(&Space::Discrete { n: 2 }, &device).unwrap()
        else {
            panic!("a Q-network")
        };
        let x = burn::prelude::Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 1.0, 2.0], [1, 3]),
            &device,
        );
        let y = crate::actions::read_f32(q.forward(x)).unwrap();
        assert_eq!(y, [1.0 + 2.0 + 6.0 + 0.5, -1.0 + 0.0 + 2.0 - 0.5]);
    }

    /// A squashed network's greedy action is `tanh(output)` mapped onto the box, whose size
    /// must be the network's outputs.
    #[test]
    fn squashed_networks_act_inside_the_box() {
        let device = Device::flex();
        let mut single = layer("mu", 2, 1);
        single.weight = vec![0.5, -1.0];
        single.bias = vec![0.25];
        let net = network(
            vec![single],
            ForeignHead::Squashed {
                mean_limit: None,
                log_std: None,
            },
        );
        let pendulum = Space::Box {
            low: vec![-2.0],
            high: vec![2.0],
        };
        let built = net.build(&pendulum, &device).unwrap();
        let x = burn::prelude::Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 0.5, -3.0, 0.0], [2, 2]),
            &device,
        );
        let (actions, continuous) = built.action_outputs(x);
        assert!(continuous);
        let actions = crate::actions::read_f32(actions).unwrap();
        let expected = [0.25f32.tanh() * 2.0, (-1.25f32).tanh() * 2.0];
        for (a, e) in actions.iter().zip(expected) {
            assert!((a - e).abs() < 1e-6, "{actions:?} vs {expected:?}");
        }
        let wide = Space::Box {
            low: vec![-1.0; 2],
            high: vec![1.0; 2],
        };
        let error = net.build(&wide, &device).unwrap_err();
        assert!(error.contains("1 action dimensions"), "{error}");
        assert!(net.build(&Space::Discrete { n: 2 }, &device).is_err());
    }
}

/// Writes `network` as a native checkpoint in `dir` (which must not exist): its weights in
/// burn's format and metadata naming the env and spaces it was checked against and where
/// it came from (`config.imported_from`). It evaluates and exports like a trained
/// checkpoint; it cannot be resumed (it holds no optimizer or trainer state).
pub fn write_imported_checkpoint(
    dir: &std::path::Path,
    network: &ForeignNetwork,
    spec: ImportedSpec<'_>,
) -> Result<crate::Checkpoint, crate::CheckpointError> {
    use burn::module::Module;
    let device = Device::flex();
    if let Some(why) = network.head.unwritable() {
        return Err(crate::CheckpointError::Weights {
            path: dir.to_path_buf(),
            reason: format!(
                "{why}; it is evaluated from its own file, and writing it as a gradless \
                 checkpoint is not covered"
            ),
        });
    }
    if network.head == ForeignHead::SoftActor {
        return Err(crate::CheckpointError::Weights {
            path: dir.to_path_buf(),
            reason: "an exported SAC actor holds no critics, which a gradless SAC checkpoint \
                     does; evaluate or export it from its file"
                .into(),
        });
    }
    let built = network
        .build(spec.action_space, &device)
        .map_err(|reason| crate::CheckpointError::Weights {
            path: dir.to_path_buf(),
            reason,
        })?;
    let algorithm = match network.head {
        ForeignHead::QValues => "dqn",
        _ => "ppo",
    };
    let metadata = crate::Metadata {
        format_version: crate::FORMAT_VERSION,
        algorithm: algorithm.to_string(),
        env_id: spec.env_id.to_string(),
        observation_space: spec.observation_space.clone(),
        action_space: spec.action_space.clone(),
        architecture: network.architecture(),
        global_step: spec.global_step,
        episodes: 0,
        burn_version: crate::BURN_VERSION.to_string(),
        device: gradless_device::DeviceReport {
            backend: gradless_device::Backend::Flex,
            adapter: None,
            target: None,
            hardware: false,
        },
        config: serde_json::json!({
            "algorithm": algorithm,
            "env": spec.env_id,
            "imported_from": spec.source,
            "format": spec.format,
        }),
        trainer_state: serde_json::json!({ "imported": true }),
        observation_normalization: spec.observation_normalization.cloned(),
        files: Default::default(),
        metadata_sha256: String::new(),
    };
    crate::write_checkpoint(dir, metadata, |staging| {
        let path = staging.join(crate::MODEL_FILE);
        let saved = match built {
            PolicyNetwork::ActorCritic(model) => model.save_file(&path),
            PolicyNetwork::QNetwork(model) => model.save_file(&path),
            PolicyNetwork::SoftActor(_) => {
                unreachable!("squashed networks act greedily only, refused above")
            }
        };
        saved.map_err(|e| crate::CheckpointError::Weights {
            path,
            reason: e.to_string(),
        })
    })
}

/// What an imported checkpoint records besides its network.
#[derive(Debug, Clone, Copy)]
pub struct ImportedSpec<'a> {
    /// The env it was checked against.
    pub env_id: &'a str,
    /// That env's observation space.
    pub observation_space: &'a gradless_envs::Space,
    /// That env's action space.
    pub action_space: &'a gradless_envs::Space,
    /// Training steps behind it, if known (else 0).
    pub global_step: u64,
    /// The file it came from.
    pub source: &'a str,
    /// That file's format.
    pub format: &'a str,
    /// The observation statistics the policy normalises its inputs with, if any.
    pub observation_normalization: Option<&'a crate::ObservationNormalizer>,
}
