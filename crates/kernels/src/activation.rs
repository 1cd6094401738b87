//! The nonlinearity between an MLP's hidden layers.

use serde::{Deserialize, Serialize};

/// The nonlinearity between hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `tanh`, CleanRL's choice for PPO.
    Tanh,
    /// `relu`, CleanRL's choice for DQN.
    Relu,
}
