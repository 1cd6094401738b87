//! What acting produces and how it fails: actions in the form the envs take, network outputs
//! read back to the host, and the greedy choice among them.

use burn::prelude::{Tensor, TensorData};
use gradless_device_envs::{BatchActions, DeviceActions};
use gradless_envs::{EnvError, EnvRng};
use gradless_kernels::NonFinite;
pub use gradless_kernels::{ActionBatch, greedy_actions};
use thiserror::Error;

/// Why acting failed.
#[derive(Debug, Error)]
pub enum ActError {
    /// The environment refused something (an action, a seed list).
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The device could not compute or return the network's outputs.
    #[error("reading network outputs from the device failed: {0}")]
    Device(String),
    /// The network produced NaN or infinite outputs.
    #[error("the network produced non-finite outputs")]
    NonFinite,
    /// Something this way of acting cannot do.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// An episode plan that cannot be run as asked.
    #[error("{0}")]
    Plan(String),
    /// The caller stopped the run before its episodes finished.
    #[error("stopped before the episodes finished")]
    Stopped,
}

/// Reads a tensor back to the host as `f32` values.
pub fn read_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, ActError> {
    finite_f32(
        tensor
            .try_into_data()
            .map_err(|e| ActError::Device(e.to_string()))?,
    )
}

/// Read-back data as `f32` values, refusing NaN and infinities.
pub fn finite_f32(data: TensorData) -> Result<Vec<f32>, ActError> {
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ActError::Device(format!("{e:?}")))?;
    if values.iter().all(|v| v.is_finite()) {
        Ok(values)
    } else {
        Err(ActError::NonFinite)
    }
}

/// Uploads `rows` observations of `dim` values each as a `[rows, dim]` tensor.
pub fn observation_tensor(values: &[f32], dim: usize, device: &burn::prelude::Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len() / dim, dim]),
        device,
    )
}

/// How an action is chosen from the network's output.
#[derive(Debug)]
pub enum Selection<'a> {
    /// The most likely action: argmax of the logits or Q-values, the Gaussian mean.
    Greedy,
    /// A draw from the policy's distribution, row `k` from generator `k` (for a Q-network,
    /// still the argmax).
    Sample(&'a mut [EnvRng]),
}

/// Actions computed where the observations were: host values for host observations, device
/// tensors for device ones.
// Made once a step and consumed at once: boxing the tensors would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum AgentActions {
    /// Read back to the host.
    Host(ActionBatch),
    /// Left on the device.
    Device(DeviceActions),
}

impl AgentActions {
    /// The actions as an env batch takes them.
    pub fn as_batch(&self) -> BatchActions<'_> {
        match self {
            AgentActions::Host(actions) => BatchActions::Host(actions.as_actions()),
            AgentActions::Device(actions) => BatchActions::Device(actions),
        }
    }
}

impl From<NonFinite> for ActError {
    fn from(_: NonFinite) -> Self {
        ActError::NonFinite
    }
}
