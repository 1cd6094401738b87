//! The policy's forward pass outside burn's tensor operations: an MLP and its head flattened
//! into plain floats ([`FlatMlp`]), what the host loop on flex ([`HostForward`]) and the
//! CubeCL episode kernel ([`episode_kernel`], whole evaluation episodes beside the device
//! envs) run; and the vectorised `tanh` flex's inference copies use. Plain values in, no networks or checkpoints: the policy crate turns
//! its networks into a `FlatMlp`.

mod actions;
mod activation;
// The `#[cube]` macros' generated expansion items carry no docs of their own.
#[allow(missing_docs)]
pub mod episode_kernel;
mod flat_mlp;
mod host_forward;
pub mod tanh;

pub use actions::{ActionBatch, NonFinite, argmax, greedy_actions};
pub use activation::Activation;
pub use flat_mlp::{FlatMlp, FrozenNormalization, Head};
pub use host_forward::HostForward;
