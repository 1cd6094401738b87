//! Pendulum's physics over a batch.

use std::f64::consts::PI;

use burn::prelude::{Device, Tensor};

use super::{
    Columns, DeviceActions, Physics, StepColumns, TensorDynamics, stack, uniform, wrong_action_kind,
};
use gradless_envs::EnvError;
use gradless_envs::Space;
use gradless_envs::constants::pendulum::{DT, GRAVITY, LENGTH, MASS, MAX_SPEED, MAX_TORQUE};

/// `Pendulum-v1` as tensor operations. State columns: `theta, theta_dot`; observation
/// `cos theta, sin theta, theta_dot`; action: a torque, clipped to `[-2, 2]`. Never
/// terminates; the time limit truncates it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PendulumTensors;

/// `((x + pi) mod 2 pi) - pi`, the modulo floored as Python's.
fn angle_normalize(x: Tensor<1>) -> Tensor<1> {
    let shifted = x + PI;
    let turns = (shifted.clone() / (2.0 * PI)).floor();
    shifted - turns * (2.0 * PI) - PI
}

impl TensorDynamics for PendulumTensors {
    fn name(&self) -> &'static str {
        "Pendulum"
    }

    fn observation_dim(&self) -> usize {
        3
    }

    fn action_space(&self) -> Space {
        Space::symmetric_box(&[MAX_TORQUE])
    }

    fn initial_state(&self, n: usize, device: &Device) -> Tensor<2> {
        // theta uniform in [-pi, pi), theta_dot in [-1, 1): one draw, scaled per column.
        let scale = Tensor::<1>::from_floats([PI as f32, 1.0], device).unsqueeze_dim::<2>(1);
        uniform([2, n], -1.0, 1.0, device) * scale
    }

    fn step(&self, state: &Columns, actions: &DeviceActions) -> Result<StepColumns, EnvError> {
        let [theta, theta_dot] = [0, 1].map(|k| state[k].clone());
        let DeviceActions::Continuous(actions) = actions else {
            return Err(wrong_action_kind(self.name()));
        };
        let u = actions
            .clone()
            .squeeze_dim::<1>(1)
            .clamp(-f64::from(MAX_TORQUE), f64::from(MAX_TORQUE));
        let costs = angle_normalize(theta.clone()).square()
            + theta_dot.clone().square() * 0.1
            + u.clone().square() * 0.001;
        let theta_dot = (theta_dot
            + (theta.clone().sin() * (3.0 * GRAVITY / (2.0 * LENGTH))
                + u * (3.0 / (MASS * LENGTH * LENGTH)))
                * DT)
            .clamp(-MAX_SPEED, MAX_SPEED);
        let theta = theta + theta_dot.clone() * DT;
        Ok(StepColumns {
            terminated: costs.clone().lower_elem(f64::NEG_INFINITY),
            reward: costs.neg(),
            state: vec![theta, theta_dot],
        })
    }

    fn fused_physics(&self) -> Option<Physics> {
        Some(Physics::Pendulum)
    }

    fn observe(&self, state: &Columns) -> Tensor<2> {
        stack(vec![
            state[0].clone().cos(),
            state[0].clone().sin(),
            state[1].clone(),
        ])
    }
}
