//! The policy's forward pass outside burn's tensor operations: an MLP and its head flattened
//! into plain floats ([`FlatMlp`]), what the CubeCL episode kernel ([`episode_kernel`]) runs
//! whole evaluation episodes of beside the device envs; and the vectorised `tanh` flex's
//! inference copies use. Plain values in, no networks or checkpoints: the policy crate turns
//! its networks into a `FlatMlp`.

mod activation;
// The `#[cube]` macros' generated expansion items carry no docs of their own.
#[allow(missing_docs)]
pub mod episode_kernel;
mod flat_mlp;
pub mod tanh;

pub use activation::Activation;
pub use flat_mlp::{FlatMlp, FrozenNormalization, Head};
