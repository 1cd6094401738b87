//! The three grad modes and a checkpoint's policy loaded in one of them.

use std::fmt;

use burn::prelude::{Device, Module, Tensor};
use gradless_device::{InferenceDevice, TrainingDevice};
use gradless_policy::acting::{greedy_actions, observation_tensor, read_f32};
use gradless_policy::{ActError, ActionBatch, Checkpoint, CheckpointError, PolicyNetwork};
use serde::Serialize;

/// How a policy runs with respect to gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GradMode {
    /// On the autodiff device with every parameter requiring grad: PyTorch's default.
    Tracked,
    /// On the autodiff device after `model.no_grad()`: nothing requires grad, but every op
    /// still goes through the autodiff layer (PyTorch's `torch.no_grad()`).
    NoGrad,
    /// `model.valid()` on the device without autodiff (PyTorch's `torch.inference_mode()`).
    Inference,
}

impl GradMode {
    /// Every mode, most bookkeeping first.
    pub const ALL: [GradMode; 3] = [GradMode::Tracked, GradMode::NoGrad, GradMode::Inference];

    /// The name in output and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            GradMode::Tracked => "tracked",
            GradMode::NoGrad => "no_grad",
            GradMode::Inference => "inference",
        }
    }
}

impl fmt::Display for GradMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A checkpoint's policy (PPO's actor or DQN's Q-network) on one device in one grad mode.
/// Every mode computes with burn's own kernels, so that only the grad mode differs.
#[derive(Debug)]
pub struct ModedPolicy {
    mode: GradMode,
    device: Device,
    network: PolicyNetwork,
}

impl ModedPolicy {
    /// Loads the checkpoint's policy onto `base` (a device without autodiff) in `mode`.
    pub fn load(
        checkpoint: &Checkpoint,
        base: &Device,
        mode: GradMode,
    ) -> Result<Self, CheckpointError> {
        // Autodiff policies on purpose, through the training device's API.
        let (device, network) = match mode {
            GradMode::Tracked | GradMode::NoGrad => {
                let training = TrainingDevice::new(base);
                let network = PolicyNetwork::load_for_training(checkpoint, &training)?;
                (training.device().clone(), network)
            }
            GradMode::Inference => {
                let inference = InferenceDevice::new(base);
                let network = PolicyNetwork::load_for_inference(checkpoint, &inference)?;
                (inference.device().clone(), network)
            }
        };
        fn in_mode<M: Module>(module: M, mode: GradMode) -> M {
            match mode {
                GradMode::Tracked => module,
                GradMode::NoGrad => module.no_grad(),
                GradMode::Inference => module.valid(),
            }
        }
        let network = match network {
            PolicyNetwork::ActorCritic(model) => PolicyNetwork::ActorCritic(in_mode(model, mode)),
            PolicyNetwork::QNetwork(model) => PolicyNetwork::QNetwork(in_mode(model, mode)),
            PolicyNetwork::SoftActor(model) => PolicyNetwork::SoftActor(in_mode(model, mode)),
        };
        Ok(Self {
            mode,
            device,
            network,
        })
    }

    /// The mode it runs in.
    pub fn mode(&self) -> GradMode {
        self.mode
    }

    /// The device it runs on (an autodiff one unless in inference mode).
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    /// The network, in its mode.
    pub(crate) fn network(&self) -> &PolicyNetwork {
        &self.network
    }

    /// How many parameter tensors require grad (all of them when tracked, none otherwise).
    pub fn parameters_requiring_grad(&self) -> (usize, usize) {
        struct Count(usize, usize);
        impl burn::module::ModuleVisitor for Count {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                self.0 += usize::from(param.val().is_require_grad());
                self.1 += 1;
            }
        }
        let mut count = Count(0, 0);
        self.network.visit(&mut count);
        (count.0, count.1)
    }

    /// One policy step as the evaluator takes it: uploads `observations` (`rows * dim`
    /// values), runs the network, reads its outputs back and selects greedy actions (argmax,
    /// or the Gaussian mean).
    pub fn step(&self, observations: &[f32], dim: usize) -> Result<ActionBatch, ActError> {
        let x = observation_tensor(observations, dim, &self.device);
        let (outputs, continuous) = self.network.action_outputs(x);
        Ok(greedy_actions(
            read_f32(outputs)?,
            observations.len() / dim,
            continuous,
        ))
    }

    /// Waits for the device's queued work.
    pub fn sync(&self) -> Result<(), ActError> {
        sync_device(&self.device)
    }

    /// Bytes the device's allocator holds in live allocations, where the backend reports it.
    pub fn device_bytes_in_use(&self) -> Option<u64> {
        self.device
            .memory_pool_usage()
            .map(|usage| usage.bytes_in_use)
    }
}

/// Waits for `device`'s queued work.
pub(crate) fn sync_device(device: &Device) -> Result<(), ActError> {
    device.sync().map_err(|e| ActError::Device(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn shipped(name: &str) -> Checkpoint {
        Checkpoint::open(&gradless_test_support::shipped_checkpoint(name)).unwrap()
    }

    #[test]
    fn modes_differ_only_in_grad_bookkeeping() {
        let checkpoint = shipped("cartpole-v1-ppo");
        let base = Device::flex();
        let observations: Vec<f32> = (0..64).map(|k| ((k as f32) * 0.37).sin() * 0.2).collect();
        let mut actions = Vec::new();
        for mode in GradMode::ALL {
            let policy = ModedPolicy::load(&checkpoint, &base, mode).unwrap();
            let (requiring, total) = policy.parameters_requiring_grad();
            let on_autodiff = policy.device.is_autodiff();
            match mode {
                GradMode::Tracked => assert!(requiring == total && on_autodiff),
                GradMode::NoGrad => assert!(requiring == 0 && on_autodiff),
                GradMode::Inference => assert!(requiring == 0 && !on_autodiff),
            }
            actions.push(policy.step(&observations, 4).unwrap());
        }
        assert_eq!(actions[0], actions[1]);
        assert_eq!(actions[1], actions[2]);
    }
}
