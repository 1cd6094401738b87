//! CartPole: balance a pole on a cart (Barto, Sutton & Anderson 1983), as Gymnasium's
//! `CartPoleEnv`.

use super::small_angle_trig::{SMALL_ANGLE_LIMIT, small_angle_sin_cos};
use crate::action::Action;
use crate::action::Actions;
use crate::env::{BatchStep, Dynamics, Observation, Transition};
use crate::rng::EnvRng;
use crate::space::Space;

/// Gravitational acceleration (m/s²).
pub const GRAVITY: f64 = 9.8;
/// Mass of the cart (kg).
pub const MASS_CART: f64 = 1.0;
/// Mass of the pole (kg).
pub const MASS_POLE: f64 = 0.1;
/// Cart and pole together.
pub const TOTAL_MASS: f64 = MASS_POLE + MASS_CART;
/// Half the pole's length.
pub const HALF_LENGTH: f64 = 0.5;
/// The pole's mass times its half length.
pub const POLE_MASS_LENGTH: f64 = MASS_POLE * HALF_LENGTH;
/// The push of each action (N).
pub const FORCE_MAG: f64 = 10.0;
/// Seconds between state updates.
pub const TAU: f64 = 0.02;
/// 12 degrees, computed in Gymnasium's order so that the threshold is the same double.
pub const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
/// How far the cart may go from the centre before the episode ends.
pub const X_THRESHOLD: f64 = 2.4;

/// CartPole's physics. State: `[x, x_dot, theta, theta_dot]`; actions: 0 pushes left,
/// 1 pushes right.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CartPole {
    /// Sutton & Barto's reward: 0 per step and -1 on failure, instead of 1 per step.
    pub sutton_barto_reward: bool,
}

impl CartPole {
    #[inline(always)]
    fn reward(&self, terminated: bool) -> f64 {
        match (self.sutton_barto_reward, terminated) {
            (false, _) => 1.0,
            (true, false) => 0.0,
            (true, true) => -1.0,
        }
    }
}

impl Dynamics for CartPole {
    type State = [f64; 4];

    fn observation_space(&self) -> Space {
        Space::symmetric_box(&[
            (X_THRESHOLD * 2.0) as f32,
            f32::INFINITY,
            (THETA_THRESHOLD * 2.0) as f32,
            f32::INFINITY,
        ])
    }

    fn action_space(&self) -> Space {
        Space::Discrete { n: 2 }
    }

    fn initial_state(&self, rng: &mut EnvRng) -> [f64; 4] {
        rng.uniform_array(-0.05, 0.05)
    }

    fn step(&self, state: &mut [f64; 4], action: Action<'_>) -> Transition {
        let push_right = matches!(action, Action::Discrete(1));
        let terminated = step_cartpole(state, push_right);
        Transition {
            reward: self.reward(terminated),
            terminated,
        }
    }

    fn observe(&self, state: &[f64; 4]) -> Observation {
        Observation::new(&state.map(|v| v as f32))
    }

    /// The physics of many envs as one loop the compiler turns into SIMD code: sine and
    /// cosine come from branch-free polynomials instead of libm (see `small_angle_trig` for
    /// how closely they agree). Angles beyond their range, which CartPole's termination at
    /// 12 degrees never lets an episode reach, take the libm path.
    fn step_batch(&self, batch: BatchStep<'_>) {
        let (stride, rewards, terminated) = (batch.stride, batch.rewards, batch.terminated);
        let Actions::Discrete(actions) = batch.actions else {
            unreachable!("actions are checked against Discrete(2) before stepping")
        };
        let n = rewards.len();
        let (x, rest) = batch.states.split_at_mut(stride);
        let (x_dot, rest) = rest.split_at_mut(stride);
        let (theta, theta_dot) = rest.split_at_mut(stride);
        let (x, x_dot, theta, theta_dot) = (
            &mut x[..n],
            &mut x_dot[..n],
            &mut theta[..n],
            &mut theta_dot[..n],
        );
        let small_angles = theta.iter().all(|t| t.abs() <= SMALL_ANGLE_LIMIT);
        for i in 0..n {
            let mut state = [x[i], x_dot[i], theta[i], theta_dot[i]];
            let push_right = actions[i] == 1;
            let done = if small_angles {
                step_cartpole_with(&mut state, push_right, small_angle_sin_cos)
            } else {
                step_cartpole(&mut state, push_right)
            };
            [x[i], x_dot[i], theta[i], theta_dot[i]] = state;
            terminated[i] = done;
            rewards[i] = self.reward(done);
        }
    }

    fn observe_batch(&self, states: &[f64], stride: usize, n: usize, out: &mut [f32]) {
        let (x, rest) = states.split_at(stride);
        let (x_dot, rest) = rest.split_at(stride);
        let (theta, theta_dot) = rest.split_at(stride);
        for (i, slot) in out.chunks_exact_mut(4).take(n).enumerate() {
            slot.copy_from_slice(&[
                x[i] as f32,
                x_dot[i] as f32,
                theta[i] as f32,
                theta_dot[i] as f32,
            ]);
        }
    }

    fn reward_after_termination(&self) -> Option<f64> {
        Some(if self.sutton_barto_reward { -1.0 } else { 0.0 })
    }
}

/// One explicit-Euler step; returns whether the new state is out of bounds. The operations
/// follow Gymnasium's expression order so that every double comes out the same.
#[inline(always)]
fn step_cartpole(state: &mut [f64; 4], push_right: bool) -> bool {
    step_cartpole_with(state, push_right, f64::sin_cos)
}

#[inline(always)]
fn step_cartpole_with(
    state: &mut [f64; 4],
    push_right: bool,
    sin_cos: impl Fn(f64) -> (f64, f64),
) -> bool {
    let [x, x_dot, theta, theta_dot] = *state;
    let force = if push_right { FORCE_MAG } else { -FORCE_MAG };
    let (sin_theta, cos_theta) = sin_cos(theta);
    let temp = (force + POLE_MASS_LENGTH * (theta_dot * theta_dot) * sin_theta) / TOTAL_MASS;
    let theta_acc = (GRAVITY * sin_theta - cos_theta * temp)
        / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * (cos_theta * cos_theta) / TOTAL_MASS));
    let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos_theta / TOTAL_MASS;
    let x = x + TAU * x_dot;
    let x_dot = x_dot + TAU * x_acc;
    let theta = theta + TAU * theta_dot;
    let theta_dot = theta_dot + TAU * theta_acc;
    *state = [x, x_dot, theta, theta_dot];
    // Gymnasium's four strict comparisons (a NaN state does not terminate there either).
    #[allow(clippy::manual_range_contains)]
    let out_of_bounds =
        x < -X_THRESHOLD || x > X_THRESHOLD || theta < -THETA_THRESHOLD || theta > THETA_THRESHOLD;
    out_of_bounds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn termination_thresholds_are_strict() {
        let mut state = [X_THRESHOLD, 0.0, 0.0, 0.0];
        // x does not move in the first Euler step (x_dot = 0), so the pole is not out.
        assert!(!step_cartpole(&mut state, true));
        let mut state = [X_THRESHOLD, 1e-3, 0.0, 0.0];
        assert!(step_cartpole(&mut state, true));
    }

    #[test]
    fn sutton_barto_reward_is_minus_one_on_failure_only() {
        let env = CartPole {
            sutton_barto_reward: true,
        };
        let mut alive = [0.0; 4];
        assert_eq!(env.step(&mut alive, Action::Discrete(0)).reward, 0.0);
        let mut failing = [0.0, 0.0, THETA_THRESHOLD, 1.0];
        let t = env.step(&mut failing, Action::Discrete(0));
        assert!(t.terminated);
        assert_eq!(t.reward, -1.0);
    }
}
