//! An agent's policy network flattened into plain `f32` values, read back once, with its head:
//! what the loops that run it outside burn's tensor operations take (the episode kernel on
//! cubecl devices, greedy or drawing its actions; the host forward pass on flex).

use burn::prelude::Tensor;

use crate::actions::read_f32;
use crate::network::{Activation, Mlp};
use crate::normalization::{FrozenNormalization, ObservationNormalizer};
use crate::policy_network::PolicyNetwork;

/// What the network's outputs become in a greedy step (a drawing kernel draws around it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Head {
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
pub(crate) struct FlatMlp {
    /// Layer widths, input first.
    pub(crate) widths: Vec<usize>,
    /// Each layer's row-major `[in, out]` weights, then its bias, the layers in order.
    pub(crate) weights: Vec<f32>,
    /// Between hidden layers (none after the last).
    pub(crate) activation: Activation,
    /// Output to action.
    pub(crate) head: Head,
    /// Applied to observations first, if the agent was trained with it.
    pub(crate) normalization: Option<FrozenNormalization>,
}

impl FlatMlp {
    /// The network an agent acts with (and the statistics it normalises its inputs with),
    /// read back from its device, or why it cannot be.
    pub(crate) fn of(
        network: &PolicyNetwork,
        normalizer: Option<&ObservationNormalizer>,
    ) -> Result<Self, String> {
        let (net, head) = match network {
            PolicyNetwork::QNetwork(q) => (q.network(), Head::Argmax),
            PolicyNetwork::ActorCritic(model) => {
                let head = match model.log_std() {
                    Some(_) => Head::Mean,
                    None => Head::Argmax,
                };
                (model.actor_network(), head)
            }
            PolicyNetwork::SoftActor(actor) => {
                let bounds = actor.bounds();
                let head = Head::Squashed {
                    scale: bounds.scale.clone(),
                    bias: bounds.bias.clone(),
                };
                (actor.network(), head)
            }
        };
        let (widths, weights) = flatten(net)?;
        let normalization = normalizer.map(ObservationNormalizer::frozen);
        Ok(Self {
            widths,
            weights,
            activation: net.activation(),
            head,
            normalization,
        })
    }

    /// Values per observation.
    pub(crate) fn inputs(&self) -> usize {
        self.widths[0]
    }

    /// Values the last layer puts out.
    pub(crate) fn outputs(&self) -> usize {
        *self.widths.last().expect("a network has layers")
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
