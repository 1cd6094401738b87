//! SAC's networks: a tanh-squashed Gaussian actor whose mean and log standard deviation both
//! depend on the state, and twin Q-networks of `(observation, action)`. Actions are
//! `tanh(u) * scale + bias` with `u ~ N(mean, std)`, so they always lie inside the action
//! box; the greedy action is `tanh(mean) * scale + bias`.

use burn::prelude::{Device, Module, Tensor, TensorData};
use burn::tensor::activation;
use gradless_envs::{EnvRng, Space};

use crate::network::{Activation, Mlp, TanhKernel};

/// The range the actor's log standard deviation is squashed into (CleanRL's bounds).
pub const LOG_STD_MIN: f64 = -5.0;
/// See [`LOG_STD_MIN`].
pub const LOG_STD_MAX: f64 = 2.0;
/// The range Stable-Baselines3 clamps its SAC actor's log standard deviation to.
const SB3_LOG_STD_RANGE: (f32, f32) = (-20.0, 2.0);
/// Keeps the squashing correction's logarithm finite where `tanh` saturates.
const SQUASH_EPSILON: f64 = 1e-6;
/// `ln(2 pi) / 2`.
const HALF_LOG_TWO_PI: f64 = 0.918_938_533_204_672_8;

/// How `tanh`'s `[-1, 1]` maps onto the action box: `action = y * scale + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionBounds {
    /// Half the box's width per component.
    pub scale: Vec<f32>,
    /// The box's centre per component.
    pub bias: Vec<f32>,
    /// Stable-Baselines3's ways with its actors, for one read from its file; `None` for
    /// gradless's own.
    pub sb3: Option<Sb3Conventions>,
}

/// How Stable-Baselines3's SAC, TQC, TD3 and DDPG actors differ from gradless's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Sb3Conventions {
    /// The box's low corner: actions are `low + 0.5 * (y + 1) * (high - low)`, computed in
    /// that order (the same box as `y * scale + bias`; the last bits differ).
    pub low: Vec<f32>,
    /// The box's high corner.
    pub high: Vec<f32>,
    /// Means clipped to `[-limit, limit]` before `tanh` (a gSDE actor's `Hardtanh`).
    pub mean_limit: Option<f32>,
}

impl ActionBounds {
    /// The bounds of a finite Box; `None` for any other space.
    pub fn of(space: &Space) -> Option<Self> {
        let Space::Box { low, high } = space else {
            return None;
        };
        let finite = low.iter().chain(high).all(|v| v.is_finite());
        (finite && low.iter().zip(high).all(|(l, h)| l < h)).then(|| Self {
            scale: low.iter().zip(high).map(|(l, h)| (h - l) / 2.0).collect(),
            bias: low.iter().zip(high).map(|(l, h)| (h + l) / 2.0).collect(),
            sb3: None,
        })
    }

    fn tensors(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let row = |values: &[f32]| {
            Tensor::<2>::from_data(TensorData::new(values.to_vec(), [1, values.len()]), device)
        };
        (row(&self.scale), row(&self.bias))
    }
}

/// The actor: one MLP whose `2 * dim` outputs are the mean and the unsquashed log standard
/// deviation.
#[derive(Module, Debug)]
pub struct SquashedGaussianActor {
    net: Mlp,
    #[module(skip)]
    bounds: ActionBounds,
}

impl SquashedGaussianActor {
    /// A freshly initialised actor (output gain 0.01: means near 0, log-std near its middle).
    pub fn new(
        observation_dim: usize,
        hidden: &[usize],
        activation: Activation,
        bounds: ActionBounds,
        rng: &mut EnvRng,
        device: &Device,
    ) -> Self {
        let outputs = 2 * bounds.scale.len();
        Self {
            net: Mlp::new(
                observation_dim,
                hidden,
                outputs,
                activation,
                0.01,
                rng,
                device,
            ),
            bounds,
        }
    }

    pub(crate) fn unset(
        observation_dim: usize,
        hidden: &[usize],
        activation: Activation,
        bounds: ActionBounds,
        device: &Device,
    ) -> Self {
        let outputs = 2 * bounds.scale.len();
        Self {
            net: Mlp::zeros(observation_dim, hidden, outputs, activation, device),
            bounds,
        }
    }

    /// An actor around `net`, whose `2 * dim` outputs are the means and the unsquashed
    /// log standard deviations.
    pub(crate) fn from_network(net: Mlp, bounds: ActionBounds) -> Self {
        Self { net, bounds }
    }

    /// Action dimensions.
    pub fn action_dim(&self) -> usize {
        self.bounds.scale.len()
    }

    /// The action box's mapping.
    pub fn bounds(&self) -> &ActionBounds {
        &self.bounds
    }

    /// The network (what `gradless export` writes out).
    pub fn network(&self) -> &Mlp {
        &self.net
    }

    /// Means and log standard deviations (within the bounds), each `[rows, dim]`.
    pub fn heads(&self, observations: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let dim = self.action_dim();
        let out = self.net.forward(observations);
        let mean = out.clone().narrow(1, 0, dim);
        let raw = out.narrow(1, dim, dim);
        if let Some(sb3) = &self.bounds.sb3 {
            // Its mean clipped where it ends in a `Hardtanh`, its log-std clamped.
            let mean = match sb3.mean_limit {
                Some(limit) => mean.clamp(-limit, limit),
                None => mean,
            };
            let (low, high) = SB3_LOG_STD_RANGE;
            return (mean, raw.clamp(low, high));
        }
        let log_std = activation::tanh(raw)
            .add_scalar(1.0)
            .mul_scalar(0.5 * (LOG_STD_MAX - LOG_STD_MIN))
            .add_scalar(LOG_STD_MIN);
        (mean, log_std)
    }

    /// `tanh`'s output `y` on the box: `y * scale + bias`, or as Stable-Baselines3 maps it.
    fn squash(&self, y: Tensor<2>) -> Tensor<2> {
        let device = y.device();
        if let Some(Sb3Conventions { low, high, .. }) = &self.bounds.sb3 {
            let range: Vec<f32> = high.iter().zip(low).map(|(h, l)| h - l).collect();
            let row = |values: &[f32]| {
                Tensor::<2>::from_data(TensorData::new(values.to_vec(), [1, values.len()]), &device)
            };
            return y.add_scalar(1.0).mul_scalar(0.5) * row(&range) + row(low);
        }
        let (scale, bias) = self.bounds.tensors(&device);
        y * scale + bias
    }

    /// The greedy actions, `[rows, dim]`.
    pub fn greedy(&self, observations: Tensor<2>) -> Tensor<2> {
        let (mean, _) = self.heads(observations);
        self.squash(activation::tanh(mean))
    }

    /// Reparameterised draws `tanh(mean + std * noise) * scale + bias` (`noise` standard
    /// normal, `[rows, dim]`) with their log-densities, `[rows]`, squashing included.
    pub fn sample(&self, observations: Tensor<2>, noise: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
        let (mean, log_std) = self.heads(observations);
        let u = mean + log_std.clone().exp() * noise.clone();
        let y = activation::tanh(u);
        let (scale, _) = self.bounds.tensors(&y.device());
        let gaussian = noise.powi_scalar(2).mul_scalar(-0.5) - log_std;
        let squashing = (y.clone().powi_scalar(2).neg().add_scalar(1.0) * scale)
            .add_scalar(SQUASH_EPSILON)
            .log();
        let log_prob = (gaussian - squashing)
            .sub_scalar(HALF_LOG_TWO_PI)
            .sum_dim(1)
            .squeeze_dim::<1>(1);
        (self.squash(y), log_prob)
    }

    /// The same network computing `tanh` with `kernel`.
    pub fn with_tanh_kernel(self, kernel: TanhKernel) -> Self {
        Self {
            net: self.net.with_tanh_kernel(kernel),
            bounds: self.bounds,
        }
    }
}

/// One draw on the host from a row's read-back heads, noise from `rng`, into `out`.
pub fn sample_squashed(
    mean: &[f32],
    log_std: &[f32],
    bounds: &ActionBounds,
    rng: &mut EnvRng,
    out: &mut [f32],
) {
    let noise: Vec<f64> = (0..out.len()).map(|_| rng.standard_normal()).collect();
    squash_with_noise(mean, log_std, bounds, &noise, out);
}

/// `tanh(mean + std * noise) * scale + bias` for one row, given standard normal `noise`
/// (white or, for the trainer's exploration, correlated in time).
pub fn squash_with_noise(
    mean: &[f32],
    log_std: &[f32],
    bounds: &ActionBounds,
    noise: &[f64],
    out: &mut [f32],
) {
    for (k, value) in out.iter_mut().enumerate() {
        let u = f64::from(mean[k]) + f64::from(log_std[k]).exp() * noise[k];
        *value = (u.tanh() as f32) * bounds.scale[k] + bounds.bias[k];
    }
}

/// Twin Q-networks of `(observation, action)`; SAC trusts the smaller of the two.
#[derive(Module, Debug)]
pub struct TwinQ {
    q1: Mlp,
    q2: Mlp,
}

impl TwinQ {
    /// Freshly initialised Q-networks (output gain 1.0), `q1` drawn first.
    pub fn new(
        observation_dim: usize,
        action_dim: usize,
        hidden: &[usize],
        activation: Activation,
        rng: &mut EnvRng,
        device: &Device,
    ) -> Self {
        let inputs = observation_dim + action_dim;
        let mut q = || Mlp::new(inputs, hidden, 1, activation, 1.0, rng, device);
        Self { q1: q(), q2: q() }
    }

    pub(crate) fn unset(
        observation_dim: usize,
        action_dim: usize,
        hidden: &[usize],
        activation: Activation,
        device: &Device,
    ) -> Self {
        let q = || Mlp::zeros(observation_dim + action_dim, hidden, 1, activation, device);
        Self { q1: q(), q2: q() }
    }

    /// Both networks' values of each row's pair, `[rows]` each.
    pub fn forward(&self, observations: Tensor<2>, actions: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
        let x = Tensor::cat(vec![observations, actions], 1);
        (
            self.q1.forward(x.clone()).squeeze_dim(1),
            self.q2.forward(x).squeeze_dim(1),
        )
    }

    /// The smaller of the two values per row, `[rows]`.
    pub fn min(&self, observations: Tensor<2>, actions: Tensor<2>) -> Tensor<1> {
        let (q1, q2) = self.forward(observations, actions);
        q1.min_pair(q2)
    }
}

/// What a SAC checkpoint's model file holds: the actor and the online critics.
#[derive(Module, Debug)]
pub struct SoftActorCritic {
    /// The actor.
    pub actor: SquashedGaussianActor,
    /// The online critics.
    pub critics: TwinQ,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pendulum_bounds() -> ActionBounds {
        ActionBounds::of(&Space::Box {
            low: vec![-2.0],
            high: vec![2.0],
        })
        .unwrap()
    }

    fn observations(rows: usize, dim: usize, device: &Device) -> Tensor<2> {
        let values: Vec<f32> = (0..rows * dim).map(|k| (k as f32 * 0.7).sin()).collect();
        Tensor::from_data(TensorData::new(values, [rows, dim]), device)
    }

    #[test]
    fn bounds_need_a_finite_box() {
        let bounds = ActionBounds::of(&Space::Box {
            low: vec![-1.0, 0.0],
            high: vec![1.0, 4.0],
        })
        .unwrap();
        assert_eq!(bounds.scale, vec![1.0, 2.0]);
        assert_eq!(bounds.bias, vec![0.0, 2.0]);
        assert!(ActionBounds::of(&Space::Discrete { n: 2 }).is_none());
        let unbounded = Space::Box {
            low: vec![f32::NEG_INFINITY],
            high: vec![1.0],
        };
        assert!(ActionBounds::of(&unbounded).is_none());
    }

    /// Actions stay inside the box, the greedy one is the squashed mean, and the
    /// log-density equals the change-of-variables formula computed on the host.
    #[test]
    fn draws_are_squashed_into_the_box_with_their_density() {
        let device = Device::flex();
        let mut rng = EnvRng::from_seed(3);
        let actor = SquashedGaussianActor::new(
            3,
            &[16],
            Activation::Relu,
            pendulum_bounds(),
            &mut rng,
            &device,
        );
        let x = observations(6, 3, &device);
        let noise_values: Vec<f32> = (0..6).map(|k| k as f32 - 2.5).collect();
        let noise = Tensor::<2>::from_data(TensorData::new(noise_values.clone(), [6, 1]), &device);
        let (actions, log_prob) = actor.sample(x.clone(), noise);
        let (mean, log_std) = actor.heads(x.clone());
        let read = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        let (mean, log_std, actions) = (read(mean), read(log_std), read(actions));
        let log_prob = log_prob.into_data().try_to_vec::<f32>().unwrap();
        let greedy = read(actor.greedy(x));
        for k in 0..6 {
            let z = f64::from(noise_values[k]);
            let std = f64::from(log_std[k]).exp();
            assert!((LOG_STD_MIN..=LOG_STD_MAX).contains(&f64::from(log_std[k])));
            let y = (f64::from(mean[k]) + std * z).tanh();
            assert!((f64::from(actions[k]) - 2.0 * y).abs() < 1e-5);
            assert!(actions[k].abs() <= 2.0);
            let expected = -0.5 * z * z
                - f64::from(log_std[k])
                - HALF_LOG_TWO_PI
                - (2.0 * (1.0 - y * y) + SQUASH_EPSILON).ln();
            assert!((f64::from(log_prob[k]) - expected).abs() < 1e-4, "{k}");
            assert!((f64::from(greedy[k]) - 2.0 * f64::from(mean[k]).tanh()).abs() < 1e-6);
        }
    }

    #[test]
    fn twin_critics_differ_and_take_the_smaller() {
        let device = Device::flex();
        let critics = TwinQ::new(
            3,
            1,
            &[8],
            Activation::Relu,
            &mut EnvRng::from_seed(5),
            &device,
        );
        let (x, a) = (observations(4, 3, &device), observations(4, 1, &device));
        let (q1, q2) = critics.forward(x.clone(), a.clone());
        let (q1, q2) = (
            q1.into_data().try_to_vec::<f32>().unwrap(),
            q2.into_data().try_to_vec::<f32>().unwrap(),
        );
        assert_ne!(q1, q2);
        let min = critics.min(x, a).into_data().try_to_vec::<f32>().unwrap();
        for k in 0..4 {
            assert_eq!(min[k], q1[k].min(q2[k]));
        }
    }
}
