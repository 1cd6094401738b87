//! The network a checkpoint's policy acts with, loaded onto an inference or a training device.

use burn::prelude::{Device, Module, Tensor};
use gradless_device::{InferenceDevice, TrainingDevice};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::network::{ActorCritic, Architecture, QNetwork};
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
}
