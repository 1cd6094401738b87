//! Acrobot: swing a two-link pendulum's tip above a line (Sutton 1996), as Gymnasium's
//! `AcrobotEnv` with its default "book" dynamics and no torque noise.

use std::f64::consts::PI;

use super::numpy_square;
use crate::action::Action;
use crate::env::{Dynamics, Observation, Transition};
use crate::rng::EnvRng;
use crate::space::Space;

/// Integration time step in seconds.
const DT: f64 = 0.2;
const LINK_LENGTH_1: f64 = 1.0;
const LINK_MASS_1: f64 = 1.0;
const LINK_MASS_2: f64 = 1.0;
const LINK_COM_POS_1: f64 = 0.5;
const LINK_COM_POS_2: f64 = 0.5;
/// Moment of inertia of both links.
const LINK_MOI: f64 = 1.0;
const MAX_VEL_1: f64 = 4.0 * PI;
const MAX_VEL_2: f64 = 9.0 * PI;
const AVAILABLE_TORQUE: [f64; 3] = [-1.0, 0.0, 1.0];
const GRAVITY: f64 = 9.8;

/// Acrobot's physics. State: `[theta1, theta2, dtheta1, dtheta2]`; observation: the cosines
/// and sines of both angles and both angular velocities; actions: torque -1, 0 or +1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Acrobot;

impl Dynamics for Acrobot {
    type State = [f64; 4];

    fn observation_space(&self) -> Space {
        Space::symmetric_box(&[1.0, 1.0, 1.0, 1.0, MAX_VEL_1 as f32, MAX_VEL_2 as f32])
    }

    fn action_space(&self) -> Space {
        Space::Discrete { n: 3 }
    }

    fn initial_state(&self, rng: &mut EnvRng) -> [f64; 4] {
        // Gymnasium stores the drawn state as float32.
        rng.uniform_array::<4>(-0.1, 0.1)
            .map(|v| f64::from(v as f32))
    }

    fn step(&self, state: &mut [f64; 4], action: Action<'_>) -> Transition {
        let Action::Discrete(index) = action else {
            unreachable!("actions are checked against Discrete(3) before stepping")
        };
        let torque = AVAILABLE_TORQUE[index as usize];
        let mut next = rk4_step(*state, torque);
        next[0] = wrap(next[0], -PI, PI);
        next[1] = wrap(next[1], -PI, PI);
        next[2] = next[2].clamp(-MAX_VEL_1, MAX_VEL_1);
        next[3] = next[3].clamp(-MAX_VEL_2, MAX_VEL_2);
        *state = next;
        let terminated = -state[0].cos() - (state[1] + state[0]).cos() > 1.0;
        Transition {
            reward: if terminated { 0.0 } else { -1.0 },
            terminated,
        }
    }

    fn observe(&self, state: &[f64; 4]) -> Observation {
        let [theta1, theta2, dtheta1, dtheta2] = *state;
        Observation::new(&[
            theta1.cos() as f32,
            theta1.sin() as f32,
            theta2.cos() as f32,
            theta2.sin() as f32,
            dtheta1 as f32,
            dtheta2 as f32,
        ])
    }
}

/// Time derivative of the state under a constant torque ("book" equations of motion).
fn derivatives(s: [f64; 4], torque: f64) -> [f64; 4] {
    let (m1, m2) = (LINK_MASS_1, LINK_MASS_2);
    let l1 = LINK_LENGTH_1;
    let (lc1, lc2) = (LINK_COM_POS_1, LINK_COM_POS_2);
    let (i1, i2) = (LINK_MOI, LINK_MOI);
    let g = GRAVITY;
    let [theta1, theta2, dtheta1, dtheta2] = s;
    let d1 =
        m1 * (lc1 * lc1) + m2 * ((l1 * l1) + (lc2 * lc2) + 2.0 * l1 * lc2 * theta2.cos()) + i1 + i2;
    let d2 = m2 * ((lc2 * lc2) + l1 * lc2 * theta2.cos()) + i2;
    let phi2 = m2 * lc2 * g * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -m2 * l1 * lc2 * numpy_square(dtheta2) * theta2.sin()
        - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * theta2.sin()
        + (m1 * lc1 + m2 * l1) * g * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 =
        (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * numpy_square(dtheta1) * theta2.sin() - phi2)
            / (m2 * (lc2 * lc2) + i2 - numpy_square(d2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2]
}

/// One classical Runge-Kutta step of length `DT`, in Gymnasium's operation order.
fn rk4_step(y0: [f64; 4], torque: f64) -> [f64; 4] {
    let half = DT / 2.0;
    let offset = |k: [f64; 4], h: f64| std::array::from_fn(|i| y0[i] + h * k[i]);
    let k1 = derivatives(y0, torque);
    let k2 = derivatives(offset(k1, half), torque);
    let k3 = derivatives(offset(k2, half), torque);
    let k4 = derivatives(offset(k3, DT), torque);
    std::array::from_fn(|i| y0[i] + DT / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// Wraps an angle into `[low, high]` by whole turns, as Gymnasium's `wrap`.
fn wrap(mut x: f64, low: f64, high: f64) -> f64 {
    // A step turns a link a few times at most, and a turn at a time rounds as Gymnasium's
    // loop does; an angle far out (a state set by hand, as `replay` takes) is brought back
    // in one step instead of a loop of as many turns, and one that is not finite stays so
    // (the loop would never end).
    const FEW_TURNS: f64 = 64.0;
    let turn = high - low;
    if !x.is_finite() {
        return x;
    }
    if x > high + FEW_TURNS * turn || x < low - FEW_TURNS * turn {
        x = low + (x - low).rem_euclid(turn);
    }
    while x > high {
        x -= turn;
    }
    while x < low {
        x += turn;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hanging_still_is_an_equilibrium() {
        let mut state = [0.0; 4];
        let t = Acrobot.step(&mut state, Action::Discrete(1));
        // cos(-pi/2) is 6e-17, not 0, so the links drift by rounding error only.
        assert!(state.iter().all(|v| v.abs() < 1e-12), "{state:?}");
        assert_eq!(t.reward, -1.0);
        assert!(!t.terminated);
    }

    #[test]
    fn tip_above_the_line_terminates_with_zero_reward() {
        let mut state = [PI, 0.0, 0.0, 0.0];
        let t = Acrobot.step(&mut state, Action::Discrete(1));
        assert!(t.terminated);
        assert_eq!(t.reward, 0.0);
    }

    #[test]
    fn wrap_keeps_angles_in_range() {
        assert!((wrap(3.0 * PI, -PI, PI) - PI).abs() < 1e-12);
        assert!((wrap(-2.5 * PI, -PI, PI) + 0.5 * PI).abs() < 1e-12);
        // Far out or not finite: an answer at once, not a loop of 1e29 turns.
        let far = wrap(1e30, -PI, PI);
        assert!((-PI..=PI).contains(&far), "{far}");
        assert!(wrap(f64::INFINITY, -PI, PI).is_infinite());
        assert!(wrap(f64::NAN, -PI, PI).is_nan());
    }
}
