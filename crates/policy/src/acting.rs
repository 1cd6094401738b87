//! Acting: turning network outputs into actions on the inference device. An [`Agent`] can
//! only be built from a copy of a network moved off autodiff.

use std::sync::Arc;

use burn::prelude::{Device, Module, Tensor};
use gradless_device::InferenceDevice;
use gradless_device_envs::BatchObservations;
use gradless_device_envs::DeviceActions;
use serde::Serialize;

use gradless_kernels::HostForward;

pub use crate::actions::{
    ActError, ActionBatch, AgentActions, Selection, finite_f32, greedy_actions, observation_tensor,
    read_f32,
};
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::exact_actor::ExactActor;
use crate::network::{ActorCritic, QNetwork, TanhKernel};
use crate::normalization::ObservationNormalizer;
pub use crate::policy_network::PolicyNetwork;
use crate::sampling::{sample_categorical, sample_gaussian};
use crate::soft_actor_critic::{SquashedGaussianActor, sample_squashed};
use crate::weights::{ForeignHead, ForeignNetwork};

/// The inference device agents act on, as the evaluator holds it: it hands out neither the
/// device nor anything made on it, so code that holds one can load and run agents and
/// nothing else.
#[derive(Debug, Clone)]
pub struct AgentDevice(InferenceDevice);

impl AgentDevice {
    /// Agents on `device`.
    pub fn new(device: &InferenceDevice) -> Self {
        Self(device.clone())
    }
}

/// A network ready to act, with the inference device it acts on: moved off autodiff (burn's
/// `valid()`), so nothing it computes is recorded for backward, and free to use the
/// vectorised `tanh` on flex. It hands out neither its network nor its device: what holds an
/// agent can act, not train.
#[derive(Debug, Clone)]
pub struct Agent {
    network: PolicyNetwork,
    device: InferenceDevice,
    /// Frozen observation statistics the inputs are normalised with, if it was trained so.
    normalizer: Option<ObservationNormalizer>,
    /// The network as a host loop, on flex unless asked for tensor operations.
    host: Option<Arc<HostForward>>,
    /// A Q-network's exploration rate when sampling: a uniformly random action with this
    /// probability, else the argmax (0: the argmax always).
    epsilon: f64,
    /// The box (low, high) continuous actions are clipped to, for policies of other tools
    /// whose own evaluation clips them.
    action_clip: Option<(Vec<f32>, Vec<f32>)>,
    /// A Stable-Baselines3 squashed actor's greedy actions, computed in float64.
    exact: Option<Arc<ExactActor>>,
}

/// How an agent on flex computes its policy's outputs for host observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyForward {
    /// One host loop over blocks of rows, every layer in registers and cache (flex only;
    /// elsewhere the device's tensor operations run).
    Host,
    /// burn's tensor operations, layer by layer.
    TensorOps,
}

impl Agent {
    /// Acts with an inference copy of a PPO actor-critic on `device`.
    pub fn actor_critic(model: &ActorCritic, device: &InferenceDevice) -> Self {
        Self::new(PolicyNetwork::ActorCritic(model.valid()), device)
    }

    /// Acts with an inference copy of a DQN Q-network on `device`.
    pub fn q_network(model: &QNetwork, device: &InferenceDevice) -> Self {
        Self::new(PolicyNetwork::QNetwork(model.valid()), device)
    }

    /// Acts with an inference copy of a SAC actor on `device`.
    pub fn soft_actor(actor: &SquashedGaussianActor, device: &InferenceDevice) -> Self {
        Self::new(PolicyNetwork::SoftActor(actor.valid()), device)
    }

    fn new(network: PolicyNetwork, device: &InferenceDevice) -> Self {
        let network = match network {
            PolicyNetwork::ActorCritic(model) => PolicyNetwork::ActorCritic(
                model
                    .to_device(device.device())
                    .with_tanh_kernel(TanhKernel::Vectorised),
            ),
            PolicyNetwork::QNetwork(model) => PolicyNetwork::QNetwork(
                model
                    .to_device(device.device())
                    .with_tanh_kernel(TanhKernel::Vectorised),
            ),
            PolicyNetwork::SoftActor(model) => PolicyNetwork::SoftActor(
                model
                    .to_device(device.device())
                    .with_tanh_kernel(TanhKernel::Vectorised),
            ),
        };
        let exact = match &network {
            PolicyNetwork::SoftActor(actor) => match ExactActor::of(actor) {
                Ok(exact) => exact.map(Arc::new),
                Err(why) => {
                    tracing::debug!(reason = %why, "float64 actions not used");
                    None
                }
            },
            _ => None,
        };
        Self {
            network,
            device: device.clone(),
            normalizer: None,
            host: None,
            epsilon: 0.0,
            action_clip: None,
            exact,
        }
        .with_forward(PolicyForward::Host)
    }

    /// The same agent sampling ε-greedily: when asked to sample, a Q-network takes a
    /// uniformly random action with probability `epsilon` (each row's draws from its own
    /// generator), else its argmax; as Stable-Baselines3's exploration rate and CleanRL's
    /// `evaluate` do. Refused for any other network, and outside `[0, 1]`.
    pub fn with_epsilon(self, epsilon: f64) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&epsilon) {
            return Err(format!("ε must lie in [0, 1], got {epsilon}"));
        }
        if epsilon > 0.0 && !matches!(self.network, PolicyNetwork::QNetwork(_)) {
            return Err("only a Q-network (DQN, QR-DQN) acts ε-greedily".into());
        }
        Ok(Self { epsilon, ..self })
    }

    /// A Q-network's exploration rate when sampling (0 for every other agent).
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The same agent normalising its inputs with these (frozen) statistics.
    pub fn with_normalizer(self, normalizer: Option<ObservationNormalizer>) -> Self {
        let forward = self.forward();
        Self { normalizer, ..self }.with_forward(forward)
    }

    /// The same agent computing its outputs this way where it can: [`PolicyForward::Host`]
    /// only on flex (the default there), tensor operations everywhere else.
    pub fn with_forward(self, forward: PolicyForward) -> Self {
        let on_flex = *self.device.device() == Device::flex();
        let host = match (forward, on_flex) {
            (PolicyForward::Host, true) => match self.network().flat_mlp(self.normalizer()) {
                Ok(network) => Some(Arc::new(HostForward::new(network))),
                Err(why) => {
                    tracing::debug!(reason = %why, "host forward pass not used");
                    None
                }
            },
            _ => None,
        };
        Self { host, ..self }
    }

    /// How the agent computes its outputs for host observations.
    pub fn forward(&self) -> PolicyForward {
        match self.host {
            Some(_) => PolicyForward::Host,
            None => PolicyForward::TensorOps,
        }
    }

    /// Acts in `action_space` with a network read from another tool's file, built on the
    /// agents' device (its weights are checked first; the error names the tensor that does
    /// not fit).
    pub fn from_foreign(
        network: &ForeignNetwork,
        action_space: &gradless_envs::Space,
        device: &AgentDevice,
    ) -> Result<Self, String> {
        let agent = Self::new(network.build(action_space, device.0.device())?, &device.0);
        // Stable-Baselines3's `predict` and CleanRL's `ClipAction` clip a Gaussian policy's
        // actions (mean or draw) to the box before the env sees them; MountainCarContinuous
        // charges the unclipped action. Squashed actions are inside the box already.
        let clipped = matches!(
            network.head,
            ForeignHead::Gaussian { .. } | ForeignHead::Mean
        );
        let action_clip = match action_space {
            gradless_envs::Space::Box { low, high } if clipped => Some((low.clone(), high.clone())),
            _ => None,
        };
        Ok(Self {
            action_clip,
            ..agent
        })
    }

    /// Loads the policy a checkpoint holds onto the agents' device.
    pub fn load(checkpoint: &Checkpoint, device: &AgentDevice) -> Result<Self, CheckpointError> {
        Ok(Self::new(
            PolicyNetwork::load_for_inference(checkpoint, &device.0)?,
            &device.0,
        )
        .with_normalizer(checkpoint.metadata().observation_normalization.clone()))
    }

    /// How many float tensors the network holds, and how many of them are on a device with
    /// autodiff or require gradients (0 for every agent: tests check it).
    pub fn tensor_census(&self) -> (usize, usize) {
        struct Census(usize, usize);
        impl burn::module::ModuleVisitor for Census {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                let tensor = param.val();
                self.0 += 1;
                if tensor.is_autodiff() || tensor.is_require_grad() {
                    self.1 += 1;
                }
            }
        }
        let mut census = Census(0, 0);
        self.network.visit(&mut census);
        (census.0, census.1)
    }

    /// Whether the agent's own device has autodiff on (never).
    pub fn device_is_autodiff(&self) -> bool {
        self.device.device().is_autodiff()
    }

    /// Uploads `rows * dim` observations to the agent's device, normalised when it
    /// normalises its inputs.
    fn observation_tensor(&self, observations: &[f32], dim: usize) -> Tensor<2> {
        match &self.normalizer {
            None => observation_tensor(observations, dim, self.device.device()),
            Some(normalizer) => {
                let mut values = observations.to_vec();
                normalizer.apply(&mut values);
                observation_tensor(&values, dim, self.device.device())
            }
        }
    }

    /// The network it acts with, for the episode kernel's program.
    pub(crate) fn network(&self) -> &PolicyNetwork {
        &self.network
    }

    /// The frozen statistics its inputs are normalised with, if any.
    pub fn normalizer(&self) -> Option<&ObservationNormalizer> {
        self.normalizer.as_ref()
    }

    /// The agent's device, for the envs that step beside it in this crate.
    pub(crate) fn inference_device(&self) -> &InferenceDevice {
        &self.device
    }

    /// Greedy actions for a batch of observations already on the agent's device, left on
    /// the device: argmax of the logits or Q-values, or the Gaussian mean.
    pub fn greedy_device_actions(&self, observations: Tensor<2>) -> DeviceActions {
        let observations = match &self.normalizer {
            None => observations,
            Some(normalizer) => normalizer.apply_tensor(observations),
        };
        match self.network.action_outputs(observations) {
            (means, true) => DeviceActions::Continuous(means),
            (outputs, false) => DeviceActions::Discrete(outputs.argmax(1).squeeze_dim(1)),
        }
    }

    /// The actions for a batch's observations, computed where they are: host observations
    /// give host actions, device observations device actions (greedy only: sampling on the
    /// device is the trainer's, with its own generator).
    pub fn act_on(
        &self,
        observations: &BatchObservations<'_>,
        dim: usize,
        selection: Selection<'_>,
    ) -> Result<AgentActions, ActError> {
        match (observations, selection) {
            (BatchObservations::Host(values), selection) => {
                Ok(AgentActions::Host(self.act(values, dim, selection)?))
            }
            (BatchObservations::Device(x), Selection::Greedy) => {
                Ok(AgentActions::Device(self.greedy_device_actions(x.clone())))
            }
            (BatchObservations::Device(_), Selection::Sample(_)) => Err(ActError::Unsupported(
                "sampled actions with envs on the device (greedy only)",
            )),
        }
    }

    /// The actions for `observations` (`rows * dim` values).
    pub fn act(
        &self,
        observations: &[f32],
        dim: usize,
        selection: Selection<'_>,
    ) -> Result<ActionBatch, ActError> {
        let mut actions = self.unclipped_actions(observations, dim, selection)?;
        // Device envs take device actions unclipped: Pendulum, the one continuous env there,
        // clips its torque before anything reads it.
        if let (Some((low, high)), ActionBatch::Continuous(values)) =
            (&self.action_clip, &mut actions)
        {
            for (value, k) in values.iter_mut().zip((0..low.len()).cycle()) {
                *value = value.clamp(low[k], high[k]);
            }
        }
        Ok(actions)
    }

    /// [`act`](Self::act) before any clip to the action box.
    fn unclipped_actions(
        &self,
        observations: &[f32],
        dim: usize,
        selection: Selection<'_>,
    ) -> Result<ActionBatch, ActError> {
        let rows = observations.len() / dim;
        let rngs = match selection {
            Selection::Sample(rngs) => rngs,
            Selection::Greedy => return self.greedy(observations, dim),
        };
        match &self.network {
            // A Q-network samples ε-greedily: the argmax at ε = 0.
            PolicyNetwork::QNetwork(q) => {
                let mut actions = self.greedy(observations, dim)?;
                let n = q.network().layers().last().map(|l| l.weight.dims()[1]);
                if self.epsilon > 0.0
                    && let (ActionBatch::Discrete(actions), Some(n)) = (&mut actions, n)
                {
                    for (action, rng) in actions.iter_mut().zip(rngs.iter_mut()) {
                        // Two draws every step, random or not: an episode's draws do not
                        // depend on what its network chose.
                        let explore = rng.next_f64() < self.epsilon;
                        let random = rng.below(n as u64) as i64;
                        if explore {
                            *action = random;
                        }
                    }
                }
                Ok(actions)
            }
            PolicyNetwork::ActorCritic(model) => {
                let outputs = match &self.host {
                    Some(host) => host.outputs(observations)?,
                    None => read_f32(model.actor(self.observation_tensor(observations, dim)))?,
                };
                let n = outputs.len() / rows;
                let Some(log_std) = model.log_std() else {
                    return Ok(ActionBatch::Discrete(
                        outputs
                            .chunks(n)
                            .zip(rngs.iter_mut())
                            .map(|(row, rng)| sample_categorical(row, rng).0 as i64)
                            .collect(),
                    ));
                };
                let log_std = read_f32(log_std)?;
                let mut actions = vec![0.0; outputs.len()];
                for ((mean, out), rng) in outputs
                    .chunks(n)
                    .zip(actions.chunks_mut(n))
                    .zip(rngs.iter_mut())
                {
                    sample_gaussian(mean, &log_std, rng, out);
                }
                Ok(ActionBatch::Continuous(actions))
            }
            PolicyNetwork::SoftActor(actor) => {
                let (mean, log_std) = actor.heads(self.observation_tensor(observations, dim));
                let (mean, log_std) = (read_f32(mean)?, read_f32(log_std)?);
                let n = actor.action_dim();
                let mut actions = vec![0.0; mean.len()];
                for (((mean, log_std), out), rng) in mean
                    .chunks(n)
                    .zip(log_std.chunks(n))
                    .zip(actions.chunks_mut(n))
                    .zip(rngs.iter_mut())
                {
                    sample_squashed(mean, log_std, actor.bounds(), rng, out);
                }
                Ok(ActionBatch::Continuous(actions))
            }
        }
    }

    fn greedy(&self, observations: &[f32], dim: usize) -> Result<ActionBatch, ActError> {
        if let Some(exact) = &self.exact {
            let actions = match &self.normalizer {
                None => exact.greedy(observations),
                Some(normalizer) => {
                    let mut values = observations.to_vec();
                    normalizer.apply(&mut values);
                    exact.greedy(&values)
                }
            };
            if actions.iter().any(|a| !a.is_finite()) {
                return Err(ActError::NonFinite);
            }
            return Ok(ActionBatch::Continuous(actions));
        }
        if let Some(host) = &self.host {
            return Ok(host.greedy(observations)?);
        }
        let x = self.observation_tensor(observations, dim);
        let (outputs, continuous) = self.network.action_outputs(x);
        Ok(greedy_actions(
            read_f32(outputs)?,
            observations.len() / dim,
            continuous,
        ))
    }
}
