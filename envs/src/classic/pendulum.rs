//! Pendulum: swing a pendulum up and keep it upright, as Gymnasium's `PendulumEnv`.

use std::f64::consts::PI;

use super::{numpy_square, numpy_square_f32};
use crate::action::Action;
use crate::env::{Dynamics, Observation, Transition};
use crate::rng::EnvRng;
use crate::space::Space;

/// The largest angular speed either way.
pub const MAX_SPEED: f64 = 8.0;
/// The largest torque either way.
pub const MAX_TORQUE: f32 = 2.0;
/// Seconds between state updates.
pub const DT: f64 = 0.05;
/// Gravitational acceleration.
pub const GRAVITY: f64 = 10.0;
/// The pendulum's mass.
pub const MASS: f64 = 1.0;
/// The pendulum's length.
pub const LENGTH: f64 = 1.0;

/// Pendulum's physics. State: `[theta, theta_dot]` (theta 0 is upright); observation:
/// `[cos theta, sin theta, theta_dot]`; action: a torque in `[-2, 2]` (clipped). Never
/// terminates; the registered limit truncates it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pendulum {
    /// Gravitational acceleration (Gymnasium's `g`, [`GRAVITY`] unless `make` is told).
    pub gravity: f64,
}

impl Default for Pendulum {
    fn default() -> Self {
        Self { gravity: GRAVITY }
    }
}

impl Dynamics for Pendulum {
    type State = [f64; 2];

    fn observation_space(&self) -> Space {
        Space::symmetric_box(&[1.0, 1.0, MAX_SPEED as f32])
    }

    fn action_space(&self) -> Space {
        Space::symmetric_box(&[MAX_TORQUE])
    }

    fn initial_state(&self, rng: &mut EnvRng) -> [f64; 2] {
        [rng.uniform(-PI, PI), rng.uniform(-1.0, 1.0)]
    }

    fn step(&self, state: &mut [f64; 2], action: Action<'_>) -> Transition {
        let Action::Continuous(&[torque]) = action else {
            unreachable!("actions are checked against Box(1) before stepping")
        };
        let [theta, theta_dot] = *state;
        // The torque stays float32, as in Gymnasium, where `u**2` and `3.0 * u` are float32
        // operations under NumPy's promotion rules.
        let u = torque.clamp(-MAX_TORQUE, MAX_TORQUE);
        let costs = numpy_square(angle_normalize(theta))
            + 0.1 * numpy_square(theta_dot)
            + f64::from(0.001_f32 * numpy_square_f32(u));
        let new_theta_dot = theta_dot
            + (3.0 * self.gravity / (2.0 * LENGTH) * theta.sin()
                + f64::from((3.0 / (MASS * LENGTH * LENGTH)) as f32 * u))
                * DT;
        let new_theta_dot = new_theta_dot.clamp(-MAX_SPEED, MAX_SPEED);
        *state = [theta + new_theta_dot * DT, new_theta_dot];
        Transition {
            reward: -costs,
            terminated: false,
        }
    }

    fn observe(&self, state: &[f64; 2]) -> Observation {
        let [theta, theta_dot] = *state;
        Observation::new(&[theta.cos() as f32, theta.sin() as f32, theta_dot as f32])
    }
}

/// `((x + pi) % (2 pi)) - pi` with Python's floored modulo (the result takes the divisor's
/// sign).
fn angle_normalize(x: f64) -> f64 {
    python_mod(x + PI, 2.0 * PI) - PI
}

fn python_mod(a: f64, b: f64) -> f64 {
    let remainder = a % b;
    if remainder == 0.0 {
        0.0_f64.copysign(b)
    } else if (b < 0.0) != (remainder < 0.0) {
        remainder + b
    } else {
        remainder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulo_follows_python() {
        assert_eq!(python_mod(-1.0, 3.0), 2.0);
        assert_eq!(python_mod(4.0, 3.0), 1.0);
        assert!((angle_normalize(3.0 * PI) - -PI).abs() < 1e-12);
    }

    #[test]
    fn upright_and_still_costs_nothing() {
        let mut state = [0.0, 0.0];
        let t = Pendulum::default().step(&mut state, Action::Continuous(&[0.0]));
        assert_eq!(t.reward, 0.0);
        assert_eq!(state, [0.0, 0.0]);
    }

    #[test]
    fn torque_is_clipped_to_two() {
        let mut clipped = [1.0, 0.0];
        let mut limit = [1.0, 0.0];
        let a = Pendulum::default().step(&mut clipped, Action::Continuous(&[5.0]));
        let b = Pendulum::default().step(&mut limit, Action::Continuous(&[2.0]));
        assert_eq!(clipped, limit);
        assert_eq!(a.reward, b.reward);
    }
}
