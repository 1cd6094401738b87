//! The networks: an MLP, an actor-critic with a categorical or Gaussian head, and a
//! Q-network. Sizes and activation come from [`Architecture`], which checkpoints record so
//! that a network can be rebuilt before its weights are loaded.

use burn::module::Param;
use burn::nn::{Initializer, Linear};
use burn::prelude::{Device, Module, Tensor};
use burn::tensor::activation;
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

impl Activation {
    fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Tanh => activation::tanh(x),
            Activation::Relu => activation::relu(x),
        }
    }
}

/// A fully connected network: `Linear, Act, Linear, Act, ..., Linear`.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    #[module(skip)]
    activation: Activation,
}

impl Mlp {
    /// Layers of sizes `input -> hidden... -> output`, weights orthogonal with gain `sqrt(2)`
    /// (the output layer with `output_gain`), biases zero, as CleanRL initialises them.
    pub fn new(
        input: usize,
        hidden: &[usize],
        output: usize,
        activation: Activation,
        output_gain: f64,
        device: &Device,
    ) -> Self {
        let sizes: Vec<usize> = std::iter::once(input)
            .chain(hidden.iter().copied())
            .chain(std::iter::once(output))
            .collect();
        let last = sizes.len() - 2;
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(k, pair)| {
                let gain = if k == last {
                    output_gain
                } else {
                    std::f64::consts::SQRT_2
                };
                Linear {
                    weight: Initializer::Orthogonal { gain }.init([pair[0], pair[1]], device),
                    bias: Some(Initializer::Zeros.init([pair[1]], device)),
                }
            })
            .collect();
        Self { layers, activation }
    }

    /// `[batch, input] -> [batch, output]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |x, (k, layer)| {
            let y = layer.forward(x);
            if k == last {
                y
            } else {
                self.activation.apply(y)
            }
        })
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// The activation between hidden layers.
    pub fn activation(&self) -> Activation {
        self.activation
    }
}

/// What an action head outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActionHead {
    /// Logits of a categorical distribution over `n` actions.
    Categorical {
        /// Number of actions.
        n: usize,
    },
    /// The mean of a diagonal Gaussian over `dim` components, with a state-independent
    /// learned log standard deviation.
    Gaussian {
        /// Action dimensions.
        dim: usize,
    },
}

impl ActionHead {
    /// Numbers the actor outputs per observation.
    pub fn outputs(self) -> usize {
        match self {
            ActionHead::Categorical { n } => n,
            ActionHead::Gaussian { dim } => dim,
        }
    }
}

/// Everything needed to rebuild a network before loading its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    /// PPO's separate actor and critic MLPs.
    ActorCritic {
        /// Observation size.
        observation_dim: usize,
        /// Hidden layer sizes (both networks).
        hidden: Vec<usize>,
        /// Activation between hidden layers.
        activation: Activation,
        /// The action distribution.
        head: ActionHead,
    },
    /// DQN's Q-network: one value per discrete action.
    QNetwork {
        /// Observation size.
        observation_dim: usize,
        /// Hidden layer sizes.
        hidden: Vec<usize>,
        /// Activation between hidden layers.
        activation: Activation,
        /// Number of actions.
        actions: usize,
    },
}

/// PPO's actor-critic: the actor gives logits (categorical) or means (Gaussian), the critic
/// a state value.
#[derive(Module, Debug)]
pub struct ActorCritic {
    actor: Mlp,
    critic: Mlp,
    /// `[1, dim]`, Gaussian heads only.
    log_std: Option<Param<Tensor<2>>>,
}

impl ActorCritic {
    /// A freshly initialised actor-critic (actor output gain 0.01, critic 1.0, log-std 0).
    pub fn new(
        observation_dim: usize,
        hidden: &[usize],
        activation: Activation,
        head: ActionHead,
        device: &Device,
    ) -> Self {
        let actor = Mlp::new(
            observation_dim,
            hidden,
            head.outputs(),
            activation,
            0.01,
            device,
        );
        let critic = Mlp::new(observation_dim, hidden, 1, activation, 1.0, device);
        let log_std = match head {
            ActionHead::Categorical { .. } => None,
            ActionHead::Gaussian { dim } => Some(Initializer::Zeros.init([1, dim], device)),
        };
        Self {
            actor,
            critic,
            log_std,
        }
    }

    /// Logits (categorical) or means (Gaussian), `[batch, outputs]`.
    pub fn actor(&self, observations: Tensor<2>) -> Tensor<2> {
        self.actor.forward(observations)
    }

    /// State values, `[batch]`.
    pub fn value(&self, observations: Tensor<2>) -> Tensor<1> {
        self.critic.forward(observations).squeeze_dim(1)
    }

    /// The learned log standard deviations, `[1, dim]`, for Gaussian heads.
    pub fn log_std(&self) -> Option<Tensor<2>> {
        self.log_std.as_ref().map(|p| p.val())
    }

    /// The actor network (what `gradless export` writes out).
    pub fn actor_network(&self) -> &Mlp {
        &self.actor
    }
}

/// DQN's Q-network.
#[derive(Module, Debug)]
pub struct QNetwork {
    net: Mlp,
}

impl QNetwork {
    /// A freshly initialised Q-network (output gain 1.0).
    pub fn new(
        observation_dim: usize,
        hidden: &[usize],
        activation: Activation,
        actions: usize,
        device: &Device,
    ) -> Self {
        Self {
            net: Mlp::new(observation_dim, hidden, actions, activation, 1.0, device),
        }
    }

    /// Q-values, `[batch, actions]`.
    pub fn forward(&self, observations: Tensor<2>) -> Tensor<2> {
        self.net.forward(observations)
    }

    /// The network.
    pub fn network(&self) -> &Mlp {
        &self.net
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::TensorData;

    fn observations(batch: usize, dim: usize, device: &Device) -> Tensor<2> {
        let values: Vec<f32> = (0..batch * dim).map(|k| (k as f32 * 0.37).sin()).collect();
        Tensor::from_data(TensorData::new(values, [batch, dim]), device)
    }

    /// CleanRL's CartPole network: 4 -> 64 -> 64 -> 2 (and -> 1 for the critic), tanh.
    fn cartpole_actor_critic(device: &Device) -> ActorCritic {
        ActorCritic::new(
            4,
            &[64, 64],
            Activation::Tanh,
            ActionHead::Categorical { n: 2 },
            device,
        )
    }

    #[test]
    fn shapes_follow_the_architecture() {
        let device = Device::flex();
        let model = cartpole_actor_critic(&device);
        let x = observations(5, 4, &device);
        assert_eq!(model.actor(x.clone()).dims(), [5, 2]);
        assert_eq!(model.value(x).dims(), [5]);
        assert!(model.log_std().is_none());
        assert_eq!(model.actor_network().layers().len(), 3);

        let gaussian = ActorCritic::new(
            3,
            &[16],
            Activation::Tanh,
            ActionHead::Gaussian { dim: 1 },
            &device,
        );
        assert_eq!(gaussian.log_std().unwrap().dims(), [1, 1]);
        let q = QNetwork::new(4, &[120, 84], Activation::Relu, 2, &device);
        assert_eq!(q.forward(observations(3, 4, &device)).dims(), [3, 2]);
    }

    #[test]
    fn output_layers_start_small_and_biases_at_zero() {
        let device = Device::flex();
        let model = cartpole_actor_critic(&device);
        let layers = model.actor_network().layers();
        let max_abs = |t: Tensor<2>| t.abs().max().into_scalar::<f32>();
        // Orthogonal rows with gain 0.01 vs sqrt(2).
        assert!(max_abs(layers[2].weight.val()) <= 0.011);
        assert!(max_abs(layers[0].weight.val()) > 0.1);
        let bias = layers[0].bias.as_ref().unwrap().val();
        assert_eq!(bias.abs().max().into_scalar::<f32>(), 0.0);
    }
}
