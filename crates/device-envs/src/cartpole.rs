//! CartPole's physics over a batch: the CPU env's explicit Euler step and constants, column
//! by column.

use burn::prelude::{Device, Tensor};

use super::{
    Columns, DeviceActions, Physics, StepColumns, TensorDynamics, stack, uniform, wrong_action_kind,
};
use gradless_envs::EnvError;
use gradless_envs::Space;
use gradless_envs::constants::cartpole::{
    FORCE_MAG, GRAVITY, HALF_LENGTH, MASS_POLE, POLE_MASS_LENGTH, TAU, THETA_THRESHOLD, TOTAL_MASS,
    X_THRESHOLD,
};

/// CartPole (`CartPole-v0`/`-v1`, Gymnasium's reward of 1 per step) as tensor operations.
/// State columns: `x, x_dot, theta, theta_dot`; actions: 0 pushes left, 1 right.
#[derive(Debug, Clone, Copy, Default)]
pub struct CartPoleTensors;

impl TensorDynamics for CartPoleTensors {
    fn name(&self) -> &'static str {
        "CartPole"
    }

    fn observation_dim(&self) -> usize {
        4
    }

    fn action_space(&self) -> Space {
        Space::Discrete { n: 2 }
    }

    fn initial_state(&self, n: usize, device: &Device) -> Tensor<2> {
        uniform([4, n], -0.05, 0.05, device)
    }

    fn fused_physics(&self) -> Option<Physics> {
        Some(Physics::CartPole)
    }

    fn step(&self, state: &Columns, actions: &DeviceActions) -> Result<StepColumns, EnvError> {
        let [x, x_dot, theta, theta_dot] = [0, 1, 2, 3].map(|k| state[k].clone());
        let DeviceActions::Discrete(actions) = actions else {
            return Err(wrong_action_kind(self.name()));
        };
        // 0 -> -FORCE_MAG, 1 -> +FORCE_MAG.
        let force = actions.clone().float() * (2.0 * FORCE_MAG) - FORCE_MAG;
        let (sin, cos) = (theta.clone().sin(), theta.clone().cos());
        let temp =
            (force + theta_dot.clone().square() * sin.clone() * POLE_MASS_LENGTH) / TOTAL_MASS;
        let theta_acc = (sin * GRAVITY - cos.clone() * temp.clone())
            / ((cos.clone().square() * (-MASS_POLE / TOTAL_MASS) + 4.0 / 3.0) * HALF_LENGTH);
        let x_acc = temp - theta_acc.clone() * cos * (POLE_MASS_LENGTH / TOTAL_MASS);
        let x = x + x_dot.clone() * TAU;
        let x_dot = x_dot + x_acc * TAU;
        let theta = theta + theta_dot.clone() * TAU;
        let theta_dot = theta_dot + theta_acc * TAU;
        let terminated = x
            .clone()
            .abs()
            .greater_elem(X_THRESHOLD)
            .bool_or(theta.clone().abs().greater_elem(THETA_THRESHOLD));
        Ok(StepColumns {
            reward: Tensor::ones_like(&x),
            state: vec![x, x_dot, theta, theta_dot],
            terminated,
        })
    }

    fn observe(&self, state: &Columns) -> Tensor<2> {
        stack(state.clone())
    }
}
