//! The networks: an MLP, an actor-critic with a categorical or Gaussian head, and a
//! Q-network. Sizes and activation come from [`Architecture`], which checkpoints record so
//! that a network can be rebuilt before its weights are loaded.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::{Device, Module, Tensor, TensorData};
use burn::tensor::activation;
use gradless_envs::EnvRng;
use serde::{Deserialize, Serialize};

pub use gradless_kernels::Activation;

/// `function` applied to `x`, `tanh` as `kernel` says.
fn activate<const D: usize>(function: Activation, x: Tensor<D>, kernel: TanhKernel) -> Tensor<D> {
    match (function, kernel) {
        (Activation::Tanh, TanhKernel::Burn) => activation::tanh(x),
        (Activation::Tanh, TanhKernel::Vectorised) => gradless_kernels::tanh::vectorised_tanh(x),
        (Activation::Relu, _) => activation::relu(x),
    }
}

/// How `tanh` is computed. Only inference copies choose: what the trainer differentiates, and
/// what `gradless bench grad-modes` compares across grad modes, always runs burn's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TanhKernel {
    /// burn's `tanh` on every device.
    #[default]
    Burn,
    /// On a flex device without autodiff, a vectorised approximation within 6 ULP (burn-flex
    /// calls libm one element at a time); burn's `tanh` everywhere else.
    Vectorised,
}

/// A fully connected network: `Linear, Act, Linear, Act, ..., Linear`.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    tanh: TanhKernel,
}

impl Mlp {
    /// Layers of sizes `input -> hidden... -> output`, weights orthogonal with gain `sqrt(2)`
    /// (the output layer with `output_gain`), biases zero, as CleanRL initialises them. The
    /// weights are drawn on the host from `rng`, so that a seed gives the same network on
    /// every device and whatever else the process draws meanwhile.
    pub fn new(
        input: usize,
        hidden: &[usize],
        output: usize,
        activation: Activation,
        output_gain: f64,
        rng: &mut EnvRng,
        device: &Device,
    ) -> Self {
        let sizes = layer_sizes(input, hidden, output);
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
                let weight = orthogonal(pair[0], pair[1], gain, rng);
                linear(weight, pair[0], pair[1], device)
            })
            .collect();
        Self::from_linears(layers, activation)
    }

    /// Given layers, input first, an activation between each two.
    pub(crate) fn from_linears(layers: Vec<Linear>, activation: Activation) -> Self {
        Self {
            layers,
            activation,
            tanh: TanhKernel::default(),
        }
    }

    /// Layers of sizes `input -> hidden... -> output` with zero weights, without running any
    /// initialiser: the shape to load saved weights into.
    pub(crate) fn zeros(
        input: usize,
        hidden: &[usize],
        output: usize,
        activation: Activation,
        device: &Device,
    ) -> Self {
        let layers = layer_sizes(input, hidden, output)
            .windows(2)
            .map(|pair| linear(vec![0.0; pair[0] * pair[1]], pair[0], pair[1], device))
            .collect();
        Self::from_linears(layers, activation)
    }

    /// `[batch, input] -> [batch, output]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |x, (k, layer)| {
            let y = layer.forward(x);
            if k == last {
                y
            } else {
                activate(self.activation, y, self.tanh)
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

    /// The same network computing `tanh` with `kernel`.
    pub fn with_tanh_kernel(self, kernel: TanhKernel) -> Self {
        Self {
            tanh: kernel,
            ..self
        }
    }
}

/// A `rows -> cols` layer with these (row-major, `[rows, cols]`) weights and zero biases.
fn linear(weight: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Linear {
    linear_with_bias(weight, vec![0.0f32; cols], rows, cols, device)
}

/// A `rows -> cols` layer with these (row-major, `[rows, cols]`) weights and biases.
pub(crate) fn linear_with_bias(
    weight: Vec<f32>,
    bias: Vec<f32>,
    rows: usize,
    cols: usize,
    device: &Device,
) -> Linear {
    Linear {
        weight: Param::from_data(TensorData::new(weight, [rows, cols]), device),
        bias: Some(Param::from_data(TensorData::new(bias, [cols]), device)),
    }
}

fn layer_sizes(input: usize, hidden: &[usize], output: usize) -> Vec<usize> {
    std::iter::once(input)
        .chain(hidden.iter().copied())
        .chain(std::iter::once(output))
        .collect()
}

/// The widest layer a network may have (inputs and outputs included): far beyond what the
/// classic-control tasks need, small enough that a layer's weights stay under 64 MiB.
pub const MAX_LAYER_WIDTH: usize = 4096;
/// The most hidden layers a network may have.
pub const MAX_HIDDEN_LAYERS: usize = 16;

/// Checks hidden layer sizes against the bounds every network keeps: at least one layer, none
/// empty, none wider than [`MAX_LAYER_WIDTH`], at most [`MAX_HIDDEN_LAYERS`].
pub fn check_hidden_sizes(hidden: &[usize]) -> Result<(), String> {
    if hidden.is_empty() || hidden.contains(&0) {
        return Err(format!(
            "needs at least one layer and no empty ones, got {hidden:?}"
        ));
    }
    if hidden.len() > MAX_HIDDEN_LAYERS {
        return Err(format!(
            "{} layers; at most {MAX_HIDDEN_LAYERS} are allowed",
            hidden.len()
        ));
    }
    if let Some(width) = hidden.iter().find(|&&w| w > MAX_LAYER_WIDTH) {
        return Err(format!(
            "a layer of {width} units; layers may have at most {MAX_LAYER_WIDTH}"
        ));
    }
    Ok(())
}

/// A `rows x cols` matrix (row-major) with orthonormal rows or columns, whichever are fewer,
/// times `gain`: PyTorch's `orthogonal_` (QR of a standard normal matrix, signs fixed by
/// R's diagonal), with QR done by modified Gram-Schmidt in `f64`.
fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut EnvRng) -> Vec<f32> {
    // Orthonormalise the longer dimension's vectors: `count` vectors of length `len`.
    let (len, count) = (rows.max(cols), rows.min(cols));
    let mut vectors: Vec<Vec<f64>> = (0..count)
        .map(|_| (0..len).map(|_| rng.standard_normal()).collect())
        .collect();
    for k in 0..count {
        let (done, rest) = vectors.split_at_mut(k);
        let v = &mut rest[0];
        for q in done.iter() {
            let projection: f64 = q.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(q).for_each(|(x, q)| *x -= projection * q);
        }
        // R's diagonal entry is the norm, positive: Gram-Schmidt already gives PyTorch's
        // sign convention.
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
    }
    let mut matrix = vec![0.0f32; rows * cols];
    for (k, v) in vectors.iter().enumerate() {
        for (i, x) in v.iter().enumerate() {
            // Vectors are columns when rows >= cols, else rows.
            let (r, c) = if rows >= cols { (i, k) } else { (k, i) };
            matrix[r * cols + c] = (x * gain) as f32;
        }
    }
    matrix
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

/// Where SAC's model file keeps its critics.
const CRITICS: &str = "critics";

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
    /// SAC's tanh-squashed Gaussian actor and twin Q-networks (same hidden sizes).
    SoftActorCritic {
        /// Observation size.
        observation_dim: usize,
        /// Hidden layer sizes (actor and both critics).
        hidden: Vec<usize>,
        /// Activation between hidden layers.
        activation: Activation,
        /// Action dimensions.
        action_dim: usize,
    },
}

impl Architecture {
    /// Its hidden layer sizes.
    pub fn hidden(&self) -> &[usize] {
        match self {
            Architecture::ActorCritic { hidden, .. }
            | Architecture::QNetwork { hidden, .. }
            | Architecture::SoftActorCritic { hidden, .. } => hidden,
        }
    }

    /// Its activation.
    pub fn activation(&self) -> Activation {
        match self {
            Architecture::ActorCritic { activation, .. }
            | Architecture::QNetwork { activation, .. }
            | Architecture::SoftActorCritic { activation, .. } => *activation,
        }
    }

    /// Its input size and its number of outputs (the critic's value aside).
    pub fn input_output(&self) -> (usize, usize) {
        match self {
            Architecture::ActorCritic {
                observation_dim,
                head,
                ..
            } => (*observation_dim, head.outputs()),
            Architecture::QNetwork {
                observation_dim,
                actions,
                ..
            } => (*observation_dim, *actions),
            Architecture::SoftActorCritic {
                observation_dim,
                action_dim,
                ..
            } => (*observation_dim, *action_dim),
        }
    }

    /// Checks every size against the bounds networks keep (see [`check_hidden_sizes`]).
    pub fn check_sizes(&self) -> Result<(), String> {
        let (input, output) = self.input_output();
        check_hidden_sizes(self.hidden()).map_err(|reason| format!("hidden: {reason}"))?;
        for (name, size) in [("inputs", input), ("outputs", output)] {
            if size == 0 || size > MAX_LAYER_WIDTH {
                return Err(format!(
                    "{size} {name}; a network has 1 to {MAX_LAYER_WIDTH}"
                ));
            }
        }
        Ok(())
    }

    /// The name and shape of every parameter the network has, as burn saves them.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        fn mlp(prefix: &str, sizes: &[usize], out: &mut Vec<(String, Vec<usize>)>) {
            for (k, pair) in sizes.windows(2).enumerate() {
                out.push((
                    format!("{prefix}.layers.{k}.weight"),
                    vec![pair[0], pair[1]],
                ));
                out.push((format!("{prefix}.layers.{k}.bias"), vec![pair[1]]));
            }
        }
        let mut shapes = Vec::new();
        match self {
            Architecture::ActorCritic {
                observation_dim,
                hidden,
                head,
                ..
            } => {
                mlp(
                    "actor",
                    &layer_sizes(*observation_dim, hidden, head.outputs()),
                    &mut shapes,
                );
                mlp(
                    "critic",
                    &layer_sizes(*observation_dim, hidden, 1),
                    &mut shapes,
                );
                if let ActionHead::Gaussian { dim } = head {
                    shapes.push(("log_std".into(), vec![1, *dim]));
                }
            }
            Architecture::QNetwork {
                observation_dim,
                hidden,
                actions,
                ..
            } => mlp(
                "net",
                &layer_sizes(*observation_dim, hidden, *actions),
                &mut shapes,
            ),
            Architecture::SoftActorCritic {
                observation_dim,
                hidden,
                action_dim,
                ..
            } => {
                mlp(
                    "actor.net",
                    &layer_sizes(*observation_dim, hidden, 2 * action_dim),
                    &mut shapes,
                );
                let critic = layer_sizes(observation_dim + action_dim, hidden, 1);
                mlp(&format!("{CRITICS}.q1"), &critic, &mut shapes);
                mlp(&format!("{CRITICS}.q2"), &critic, &mut shapes);
            }
        }
        shapes
    }

    /// The parameters of a file that holds only the critics (SAC's target networks): those
    /// under `critics.`, named without it. Empty for other architectures.
    pub fn critic_parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let prefix = format!("{CRITICS}.");
        self.parameter_shapes()
            .into_iter()
            .filter_map(|(name, shape)| Some((name.strip_prefix(&prefix)?.to_string(), shape)))
            .collect()
    }
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
        rng: &mut EnvRng,
        device: &Device,
    ) -> Self {
        let actor = Mlp::new(
            observation_dim,
            hidden,
            head.outputs(),
            activation,
            0.01,
            rng,
            device,
        );
        let critic = Mlp::new(observation_dim, hidden, 1, activation, 1.0, rng, device);
        let log_std = match head {
            ActionHead::Categorical { .. } => None,
            ActionHead::Gaussian { dim } => Some(Param::from_data(
                TensorData::new(vec![0.0f32; dim], [1, dim]),
                device,
            )),
        };
        Self {
            actor,
            critic,
            log_std,
        }
    }

    /// An actor-critic of this shape with zero weights, without running any initialiser.
    pub(crate) fn unset(
        observation_dim: usize,
        hidden: &[usize],
        activation: Activation,
        head: ActionHead,
        device: &Device,
    ) -> Self {
        Self {
            actor: Mlp::zeros(observation_dim, hidden, head.outputs(), activation, device),
            critic: Mlp::zeros(observation_dim, hidden, 1, activation, device),
            log_std: match head {
                ActionHead::Categorical { .. } => None,
                ActionHead::Gaussian { dim } => Some(Param::from_data(
                    TensorData::new(vec![0.0f32; dim], [1, dim]),
                    device,
                )),
            },
        }
    }

    /// An actor-critic of given parts.
    pub(crate) fn from_parts(actor: Mlp, critic: Mlp, log_std: Option<Param<Tensor<2>>>) -> Self {
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

    /// The same networks computing `tanh` with `kernel`.
    pub fn with_tanh_kernel(self, kernel: TanhKernel) -> Self {
        Self {
            actor: self.actor.with_tanh_kernel(kernel),
            critic: self.critic.with_tanh_kernel(kernel),
            log_std: self.log_std,
        }
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
        rng: &mut EnvRng,
        device: &Device,
    ) -> Self {
        Self {
            net: Mlp::new(
                observation_dim,
                hidden,
                actions,
                activation,
                1.0,
                rng,
                device,
            ),
        }
    }

    /// A Q-network of this shape with zero weights, without running any initialiser.
    pub(crate) fn unset(
        observation_dim: usize,
        hidden: &[usize],
        activation: Activation,
        actions: usize,
        device: &Device,
    ) -> Self {
        Self {
            net: Mlp::zeros(observation_dim, hidden, actions, activation, device),
        }
    }

    /// A Q-network computing `network`.
    pub(crate) fn from_network(network: Mlp) -> Self {
        Self { net: network }
    }

    /// Q-values, `[batch, actions]`.
    pub fn forward(&self, observations: Tensor<2>) -> Tensor<2> {
        self.net.forward(observations)
    }

    /// The network.
    pub fn network(&self) -> &Mlp {
        &self.net
    }

    /// The same network computing `tanh` with `kernel`.
    pub fn with_tanh_kernel(self, kernel: TanhKernel) -> Self {
        Self {
            net: self.net.with_tanh_kernel(kernel),
        }
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
            &mut EnvRng::from_seed(1),
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
            &mut EnvRng::from_seed(2),
            &device,
        );
        assert_eq!(gaussian.log_std().unwrap().dims(), [1, 1]);
        let q = QNetwork::new(
            4,
            &[120, 84],
            Activation::Relu,
            2,
            &mut EnvRng::from_seed(3),
            &device,
        );
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

    /// W^T W = gain^2 I for tall matrices, W W^T for wide ones; the same seed gives the
    /// same matrix.
    #[test]
    fn orthogonal_weights_are_orthogonal_and_seeded() {
        for (rows, cols) in [(4, 64), (64, 64), (64, 2)] {
            let gain = 1.5;
            let w = orthogonal(rows, cols, gain, &mut EnvRng::from_seed(9));
            assert_eq!(w, orthogonal(rows, cols, gain, &mut EnvRng::from_seed(9)));
            let n = rows.min(cols);
            for a in 0..n {
                for b in 0..n {
                    let dot: f64 = if rows >= cols {
                        (0..rows)
                            .map(|r| f64::from(w[r * cols + a] * w[r * cols + b]))
                            .sum()
                    } else {
                        (0..cols)
                            .map(|c| f64::from(w[a * cols + c] * w[b * cols + c]))
                            .sum()
                    };
                    let expected = if a == b { gain * gain } else { 0.0 };
                    assert!(
                        (dot - expected).abs() < 1e-4,
                        "{rows}x{cols} {a},{b}: {dot}"
                    );
                }
            }
        }
    }
}
