//! An agent's policy network flattened into plain `f32` values, read back once, with its head:
//! what the loops that run it outside burn's tensor operations take (the episode kernel on
//! cubecl devices, greedy or drawing its actions; the host forward pass on flex).

use crate::Activation;

/// What the network's outputs become in a greedy step (a drawing kernel draws around it).
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// The index of the largest output (logits, Q-values), first on ties.
    Argmax,
    /// The outputs as they are (Gaussian means).
    Mean,
    /// `tanh(mean) * scale + bias` per action value, the means being the first
    /// `scale.len()` outputs (SAC's squashed mean; the rest are its log-std head).
    Squashed {
        /// Half the action box's width per value.
        scale: Vec<f32>,
        /// The box's centre per value.
        bias: Vec<f32>,
    },
}

/// A multilayer perceptron and its head, read off an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatMlp {
    /// Layer widths, input first.
    pub widths: Vec<usize>,
    /// Each layer's row-major `[in, out]` weights, then its bias, the layers in order.
    pub weights: Vec<f32>,
    /// Between hidden layers (none after the last).
    pub activation: Activation,
    /// Output to action.
    pub head: Head,
    /// Applied to observations first, if the agent was trained with it.
    pub normalization: Option<FrozenNormalization>,
}

impl FlatMlp {
    /// Values per observation.
    pub fn inputs(&self) -> usize {
        self.widths[0]
    }

    /// Values the last layer puts out.
    pub fn outputs(&self) -> usize {
        *self.widths.last().expect("a network has layers")
    }
}

/// A normaliser's statistics in `f32`: `(x - mean) / std` clipped to `[-clip, clip]` per
/// observation value, what every path that normalises inputs computes.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenNormalization {
    /// The running mean of each observation value.
    pub mean: Vec<f32>,
    /// `sqrt(var + epsilon)`, computed in `f32`.
    pub std: Vec<f32>,
    /// Normalised values are clipped to `[-clip, clip]`.
    pub clip: f32,
}

impl FrozenNormalization {
    /// Observation value `k` of a row, normalised.
    #[inline(always)]
    pub fn apply(&self, k: usize, value: f32) -> f32 {
        ((value - self.mean[k]) / self.std[k]).clamp(-self.clip, self.clip)
    }
}
