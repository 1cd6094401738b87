//! A policy step replayed from a graph captured with burn's `capture`: what is left of a
//! step's cost once the host stops tracing, fusing and launching its kernels one by one.
//!
//! burn 0.22.1 records a graph where the backend can (cubecl's wgpu and CUDA runtimes,
//! through fusion); elsewhere — flex, and every autodiff device, which does not implement
//! capture — [`Graph::replay`] runs the closure again, so a captured step there costs what
//! an ordinary one does plus the input refresh. [`CapturedPolicy::hardware_graph`] tells
//! which happened.

use std::cell::RefCell;
use std::rc::Rc;

use burn::prelude::{Device, Tensor};
use burn::tensor::{Graph, capture};
use gradless_policy::acting::{greedy_actions, observation_tensor, read_f32};
use gradless_policy::{ActError, ActionBatch};

use crate::mode::{ModedPolicy, sync_device};

/// The recorded step: the network's outputs for whatever the input buffer holds, and
/// whether they are a Gaussian's means (as
/// [`action_outputs`](gradless_policy::PolicyNetwork::action_outputs) gives them).
type PolicyGraph = Graph<(Tensor<2>, bool), Box<dyn FnMut() -> (Tensor<2>, bool)>>;

/// A [`ModedPolicy`]'s step for batches of one shape, captured once and replayed.
pub struct CapturedPolicy {
    device: Device,
    /// The observations the graph reads: rewritten in place before every replay, so the
    /// replay reads the buffer it was recorded with.
    input: Rc<RefCell<Tensor<2>>>,
    rows: usize,
    dim: usize,
    graph: PolicyGraph,
}

impl CapturedPolicy {
    /// Captures `policy`'s forward pass on batches shaped like `observations` (`rows * dim`
    /// values), which the warm-up and capture runs compute on.
    pub fn capture(policy: &ModedPolicy, observations: &[f32], dim: usize) -> Self {
        let device = policy.device().clone();
        let input = Rc::new(RefCell::new(observation_tensor(observations, dim, &device)));
        let network = policy.network().clone();
        let read = Rc::clone(&input);
        let step: Box<dyn FnMut() -> (Tensor<2>, bool)> =
            Box::new(move || network.action_outputs(read.borrow().clone()));
        Self {
            graph: capture(&device, step),
            device,
            input,
            rows: observations.len() / dim,
            dim,
        }
    }

    /// Whether replays run a recorded graph (`false`: burn re-runs the step instead).
    pub fn hardware_graph(&self) -> bool {
        self.graph.is_hardware()
    }

    /// One policy step as [`ModedPolicy::step`] takes it — upload, network, read-back,
    /// greedy actions — with the network's kernels replayed from the graph.
    pub fn step(&mut self, observations: &[f32], dim: usize) -> Result<ActionBatch, ActError> {
        if dim != self.dim || observations.len() != self.rows * dim {
            return Err(ActError::Plan(format!(
                "a graph captured for {} rows of {} values got {} values of width {dim}",
                self.rows,
                self.dim,
                observations.len()
            )));
        }
        let fresh = observation_tensor(observations, dim, &self.device);
        let (rows, width) = (self.rows, self.dim);
        // The only handle to the input buffer at this point, so the copy writes into it.
        self.input
            .borrow_mut()
            .inplace(|input| input.slice_assign([0..rows, 0..width], fresh));
        let (outputs, continuous) = self.replay().clone();
        Ok(greedy_actions(read_f32(outputs)?, rows, continuous))
    }

    /// Waits for the device's queued work.
    pub fn sync(&self) -> Result<(), ActError> {
        sync_device(&self.device)
    }

    #[allow(unsafe_code)]
    fn replay(&mut self) -> &(Tensor<2>, bool) {
        // SAFETY: the graph's closure owns every tensor it reads — a clone of the network
        // and a handle to `input`, whose buffer `step` only rewrites in place — so each
        // buffer the recording touched lives as long as `self`. `CapturedPolicy` is neither
        // `Send` nor `Sync` (it holds an `Rc`): refreshes, replays and read-backs are all
        // issued from this one thread, on the stream the graph was captured on.
        unsafe { self.graph.replay() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::GradMode;
    use crate::mode::tests::shipped;

    fn observations(rows: usize, phase: f32) -> Vec<f32> {
        (0..rows * 4)
            .map(|k| ((k as f32) * 0.37 + phase).sin() * 0.3)
            .collect()
    }

    /// On flex nothing is recorded; autodiff devices never record: every replay re-runs the
    /// step, which must still see each refreshed input.
    #[test]
    fn without_a_recorded_graph_replays_rerun_the_step_on_fresh_inputs() {
        let checkpoint = shipped("cartpole-v1-ppo");
        for mode in GradMode::ALL {
            let policy = ModedPolicy::load(&checkpoint, &Device::flex(), mode).unwrap();
            let mut captured = CapturedPolicy::capture(&policy, &observations(32, 0.0), 4);
            assert!(!captured.hardware_graph(), "{mode}");
            for phase in [1.0, 2.0, 3.0] {
                let input = observations(32, phase);
                assert_eq!(
                    captured.step(&input, 4).unwrap(),
                    policy.step(&input, 4).unwrap()
                );
            }
        }
    }

    #[test]
    fn batches_of_another_shape_are_refused() {
        let policy = ModedPolicy::load(
            &shipped("cartpole-v1-dqn"),
            &Device::flex(),
            GradMode::Inference,
        )
        .unwrap();
        let mut captured = CapturedPolicy::capture(&policy, &observations(8, 0.0), 4);
        let error = captured.step(&observations(9, 0.0), 4).unwrap_err();
        assert!(error.to_string().contains("captured for 8 rows"), "{error}");
    }
}
