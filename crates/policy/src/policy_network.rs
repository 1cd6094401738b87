//! The network a checkpoint's policy acts with, loaded onto an inference or a training device.

use burn::prelude::{Device, Module, Tensor};
use gradless_device::{InferenceDevice, TrainingDevice};

use gradless_kernels::{FlatMlp, Head};

use crate::actions::read_f32;
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::network::{ActorCritic, Architecture, Mlp, QNetwork};
use crate::normalization::ObservationNormalizer;
use crate::soft_actor_critic::SquashedGaussianActor;

/// The network a checkpoint's policy acts with: PPO's actor-critic (its actor acts), DQN's
/// Q-network or SAC's actor, on whatever device and in whatever grad mode it was loaded.
#[derive(Debug, Clone)]
pub enum PolicyNetwork {
    /// PPO's actor-critic.
    ActorCritic(ActorCritic),
    /// DQN's Q-network.
    QNetwork(QNetwork),
    /// SAC's squashed Gaussian actor.
    SoftActor(SquashedGaussianActor),
}

impl PolicyNetwork {
    /// Loads the network a checkpoint holds onto an inference device.
    pub fn load_for_inference(
        checkpoint: &Checkpoint,
        device: &InferenceDevice,
    ) -> Result<Self, CheckpointError> {
        Self::load(checkpoint, device.device())
    }

    /// Loads the network a checkpoint holds onto a training device, where every operation
    /// is recorded for backward (what the grad-mode benchmark measures on purpose).
    pub fn load_for_training(
        checkpoint: &Checkpoint,
        device: &TrainingDevice,
    ) -> Result<Self, CheckpointError> {
        Self::load(checkpoint, device.device())
    }

    /// Loads the network a checkpoint holds (as its metadata says) onto `device`.
    fn load(checkpoint: &Checkpoint, device: &Device) -> Result<Self, CheckpointError> {
        Ok(match checkpoint.metadata().architecture {
            Architecture::ActorCritic { .. } => {
                Self::ActorCritic(checkpoint.load_actor_critic(device)?)
            }
            Architecture::QNetwork { .. } => Self::QNetwork(checkpoint.load_q_network(device)?),
            Architecture::SoftActorCritic { .. } => {
                Self::SoftActor(checkpoint.load_soft_actor_critic(device)?.actor)
            }
        })
    }

    /// `[rows, outputs]`: logits or Q-values, or the greedy continuous actions (then `true`):
    /// Gaussian means, squashed ones for SAC.
    pub fn action_outputs(&self, observations: Tensor<2>) -> (Tensor<2>, bool) {
        match self {
            Self::QNetwork(q) => (q.forward(observations), false),
            Self::ActorCritic(model) => (model.actor(observations), model.log_std().is_some()),
            Self::SoftActor(actor) => (actor.greedy(observations), true),
        }
    }

    /// Visits every parameter.
    pub fn visit<V: burn::module::ModuleVisitor>(&self, visitor: &mut V) {
        match self {
            Self::ActorCritic(model) => model.visit(visitor),
            Self::QNetwork(model) => model.visit(visitor),
            Self::SoftActor(model) => model.visit(visitor),
        }
    }

    /// The network flattened into plain floats with the statistics it normalises its inputs
    /// with, read back from its device, or why it cannot be.
    pub(crate) fn flat_mlp(
        &self,
        normalizer: Option<&ObservationNormalizer>,
    ) -> Result<FlatMlp, String> {
        let (net, head) = match self {
            Self::QNetwork(q) => (q.network(), Head::Argmax),
            Self::ActorCritic(model) => {
                let head = match model.log_std() {
                    Some(_) => Head::Mean,
                    None => Head::Argmax,
                };
                (model.actor_network(), head)
            }
            Self::SoftActor(actor) => {
                let bounds = actor.bounds();
                if bounds.sb3.is_some() {
                    return Err(
                        "another tool's squashed actions are computed with tensor operations"
                            .into(),
                    );
                }
                let head = Head::Squashed {
                    scale: bounds.scale.clone(),
                    bias: bounds.bias.clone(),
                };
                (actor.network(), head)
            }
        };
        let (widths, weights) = flatten(net)?;
        let normalization = normalizer.map(ObservationNormalizer::frozen);
        Ok(FlatMlp {
            widths,
            weights,
            activation: net.activation(),
            head,
            normalization,
        })
    }
}

/// The layer widths and the weights.
fn flatten(net: &Mlp) -> Result<(Vec<usize>, Vec<f32>), String> {
    let read = |t: Tensor<2>| read_f32(t).map_err(|e| e.to_string());
    let mut widths = Vec::new();
    let mut weights = Vec::new();
    for layer in net.layers() {
        let [inputs, outputs] = layer.weight.dims();
        if widths.is_empty() {
            widths.push(inputs);
        }
        widths.push(outputs);
        weights.extend(read(layer.weight.val())?);
        match &layer.bias {
            Some(bias) => weights.extend(read(bias.val().unsqueeze_dim(0))?),
            None => weights.extend(std::iter::repeat_n(0.0, outputs)),
        }
    }
    if widths.len() < 2 {
        return Err("the network has no layers".into());
    }
    Ok((widths, weights))
}
