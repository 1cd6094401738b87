//! Discrete MountainCar's physics over a batch.

use burn::prelude::{Device, Tensor};

use super::{
    Columns, DeviceActions, Physics, StepColumns, TensorDynamics, stack, uniform, wrong_action_kind,
};
use gradless_envs::EnvError;
use gradless_envs::Space;
use gradless_envs::constants::mountain_car::{
    FORCE, GOAL_POSITION, GRAVITY, MAX_POSITION, MAX_SPEED, MIN_POSITION,
};

/// `MountainCar-v0` as tensor operations. State columns: `position, velocity`; actions:
/// 0 accelerates left, 1 coasts, 2 accelerates right; -1 per step until the flag.
#[derive(Debug, Clone, Copy, Default)]
pub struct MountainCarTensors;

impl TensorDynamics for MountainCarTensors {
    fn name(&self) -> &'static str {
        "MountainCar"
    }

    fn observation_dim(&self) -> usize {
        2
    }

    fn action_space(&self) -> Space {
        Space::Discrete { n: 3 }
    }

    fn initial_state(&self, n: usize, device: &Device) -> Tensor<2> {
        // Position uniform in [-0.6, -0.4), velocity 0.
        Tensor::cat(
            vec![
                uniform([1, n], -0.6, -0.4, device),
                Tensor::zeros([1, n], device),
            ],
            0,
        )
    }

    fn step(&self, state: &Columns, actions: &DeviceActions) -> Result<StepColumns, EnvError> {
        let [position, velocity] = [0, 1].map(|k| state[k].clone());
        let DeviceActions::Discrete(actions) = actions else {
            return Err(wrong_action_kind(self.name()));
        };
        let push = (actions.clone().float() - 1.0) * FORCE;
        let velocity = (velocity + push + (position.clone() * 3.0).cos() * (-GRAVITY))
            .clamp(-MAX_SPEED, MAX_SPEED);
        let position = (position + velocity.clone()).clamp(MIN_POSITION, MAX_POSITION);
        // The car stops dead against the left wall.
        let at_wall = position
            .clone()
            .lower_equal_elem(MIN_POSITION)
            .bool_and(velocity.clone().lower_elem(0.0));
        let velocity = velocity.mask_fill(at_wall, 0.0);
        let terminated = position
            .clone()
            .greater_equal_elem(GOAL_POSITION)
            .bool_and(velocity.clone().greater_equal_elem(0.0));
        Ok(StepColumns {
            reward: Tensor::ones_like(&position).neg(),
            state: vec![position, velocity],
            terminated,
        })
    }

    fn fused_physics(&self) -> Option<Physics> {
        Some(Physics::MountainCar)
    }

    fn observe(&self, state: &Columns) -> Tensor<2> {
        stack(state.clone())
    }
}
