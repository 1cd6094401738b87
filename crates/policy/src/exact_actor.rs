//! Stable-Baselines3's squashed actors (SAC, TQC, TD3, DDPG) acting greedily in float64: each
//! layer's sums taken exactly enough that the action is the float32 rounding of the true one,
//! then mapped onto the box in float32 as SB3 maps it. PyTorch sums in float32, each layer a
//! few units in the last place off the true value in an order of its own; matching that order
//! is not possible, and the float64 action is the nearest a reimplementation gets to it on
//! average (docs/foreign-agents.md has the figures).

use crate::actions::ActError;
use crate::export::host_layers;
use crate::network::Activation;
use crate::soft_actor_critic::{Sb3Conventions, SquashedGaussianActor};

/// One layer's weights, `[outputs][inputs]` row-major, and biases, in float64.
#[derive(Debug)]
struct Layer {
    weight: Vec<f64>,
    bias: Vec<f64>,
    inputs: usize,
    outputs: usize,
}

/// An SB3 actor's mean network on the host in float64, with SB3's conventions.
#[derive(Debug)]
pub(crate) struct ExactActor {
    layers: Vec<Layer>,
    activation: Activation,
    /// Action dimensions: the mean half of the last layer's outputs.
    action_dim: usize,
    conventions: Sb3Conventions,
}

impl ExactActor {
    /// The actor's weights read back once; `None` for an actor of gradless's own.
    pub(crate) fn of(actor: &SquashedGaussianActor) -> Result<Option<Self>, ActError> {
        let Some(conventions) = actor.bounds().sb3.clone() else {
            return Ok(None);
        };
        let network = actor.network();
        let widen = |values: Vec<f32>| values.into_iter().map(f64::from).collect();
        let layers = host_layers(network)?
            .into_iter()
            .map(|layer| Layer {
                weight: widen(layer.weight),
                bias: widen(layer.bias),
                inputs: layer.inputs,
                outputs: layer.outputs,
            })
            .collect();
        Ok(Some(Self {
            layers,
            activation: network.activation(),
            action_dim: actor.action_dim(),
            conventions,
        }))
    }

    /// The greedy actions for `observations` (already normalised, `rows * inputs` values).
    pub(crate) fn greedy(&self, observations: &[f32]) -> Vec<f32> {
        let inputs = self.layers.first().map_or(1, |l| l.inputs);
        let mut actions = Vec::with_capacity(observations.len() / inputs * self.action_dim);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for row in observations.chunks(inputs) {
            x.clear();
            x.extend(row.iter().map(|&v| f64::from(v)));
            let last = self.layers.len() - 1;
            for (k, layer) in self.layers.iter().enumerate() {
                y.clear();
                // Only the means are needed of the last layer (its log-std rows follow).
                let outputs = if k == last {
                    self.action_dim
                } else {
                    layer.outputs
                };
                for o in 0..outputs {
                    let weights = &layer.weight[o * layer.inputs..][..layer.inputs];
                    let sum: f64 = weights.iter().zip(&x).map(|(w, v)| w * v).sum();
                    let z = sum + layer.bias[o];
                    y.push(match (k == last, self.activation) {
                        (true, _) => z,
                        (false, Activation::Tanh) => z.tanh(),
                        (false, Activation::Relu) => z.max(0.0),
                    });
                }
                std::mem::swap(&mut x, &mut y);
            }
            let Sb3Conventions {
                low,
                high,
                mean_limit,
            } = &self.conventions;
            for (k, &mean) in x.iter().enumerate() {
                let mean = match mean_limit {
                    Some(limit) => mean.clamp(-f64::from(*limit), f64::from(*limit)),
                    None => mean,
                };
                // SB3's `low + 0.5 * (y + 1) * (high - low)`, in float32 as NumPy computes it.
                let squashed = mean.tanh() as f32;
                actions.push(low[k] + 0.5 * (squashed + 1.0) * (high[k] - low[k]));
            }
        }
        actions
    }
}
