//! What the trainer and the evaluator share: the networks (an actor-critic with a
//! categorical or Gaussian head for PPO, a Q-network for DQN, SAC's squashed Gaussian actor
//! and twin critics) and the checkpoint format that carries them from one to the other;
//! agents acting on the inference device (burn's tensor operations, or the host forward pass
//! on flex); seeded episodes on CPU or device envs (whole episodes in `gradless-kernels`'
//! episode kernel); PPO's rollout kernel; networks other tools trained, as MLP weights, and
//! export. The evaluator depends on this crate, never on the trainer.

pub mod acting;
mod actions;
mod checkpoint;
mod device_episodes;
mod episode_plan;
mod episodes;
mod exact_actor;
pub mod export;
mod network;
mod normalization;
mod policy_network;
mod rollout;
pub mod rollout_kernel;
pub mod run_layout;
pub mod sampling;
mod soft_actor_critic;
mod weights;

pub use acting::{
    ActError, ActionBatch, Agent, AgentActions, AgentDevice, PolicyForward, PolicyNetwork,
    Selection,
};
pub use checkpoint::{
    BURN_VERSION, Checkpoint, CheckpointError, FORMAT_VERSION, METADATA_FILE, MODEL_FILE, Metadata,
    replace_checkpoint, sha256_file, write_checkpoint,
};
pub use device_episodes::MAX_KERNEL_WIDTH;
pub use episode_plan::{EpisodePlan, Progress, SeededEpisode, Stoppable};
pub use episodes::{EpisodeRoute, run_episodes, run_episodes_per_step, run_routed, watch_episode};
pub use network::{
    ActionHead, Activation, ActorCritic, Architecture, MAX_HIDDEN_LAYERS, MAX_LAYER_WIDTH, Mlp,
    QNetwork, TanhKernel, check_hidden_sizes,
};
pub use normalization::{ObservationNormalizer, RunningMoments};
pub use rollout::Rollout;
pub use soft_actor_critic::{
    ActionBounds, LOG_STD_MAX, LOG_STD_MIN, Sb3Conventions, SoftActorCritic, SquashedGaussianActor,
    TwinQ, sample_squashed, squash_with_noise,
};
pub use weights::{
    ForeignHead, ForeignNetwork, ImportedSpec, LayerWeights, write_imported_checkpoint,
};
