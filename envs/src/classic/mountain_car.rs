//! MountainCar: drive an under-powered car up a hill (Moore 1990), as Gymnasium's
//! `MountainCarEnv` (discrete) and `Continuous_MountainCarEnv`.

use crate::env::{Action, Dynamics, Observation, Transition};
use crate::rng::EnvRng;
use crate::space::Space;

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GRAVITY: f64 = 0.0025;

fn mountain_car_observation_space() -> Space {
    Space::Box {
        low: vec![MIN_POSITION as f32, -MAX_SPEED as f32],
        high: vec![MAX_POSITION as f32, MAX_SPEED as f32],
    }
}

/// Both variants start at rest somewhere in the valley.
fn valley_start(rng: &mut EnvRng) -> [f64; 2] {
    [rng.uniform(-0.6, -0.4), 0.0]
}

/// The car stops dead against the left wall.
fn stop_at_left_wall(position: f64, velocity: f64) -> f64 {
    if position == MIN_POSITION && velocity < 0.0 {
        0.0
    } else {
        velocity
    }
}

/// Discrete MountainCar's physics. State: `[position, velocity]`; actions: 0 accelerates
/// left, 1 coasts, 2 accelerates right; -1 reward per step until the flag at 0.5.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MountainCar;

impl Dynamics for MountainCar {
    type State = [f64; 2];

    fn observation_space(&self) -> Space {
        mountain_car_observation_space()
    }

    fn action_space(&self) -> Space {
        Space::Discrete { n: 3 }
    }

    fn initial_state(&self, rng: &mut EnvRng) -> [f64; 2] {
        valley_start(rng)
    }

    fn step(&self, state: &mut [f64; 2], action: Action<'_>) -> Transition {
        const FORCE: f64 = 0.001;
        const GOAL_POSITION: f64 = 0.5;
        let Action::Discrete(action) = action else {
            unreachable!("actions are checked against Discrete(3) before stepping")
        };
        let [mut position, mut velocity] = *state;
        velocity += (action - 1) as f64 * FORCE + (3.0 * position).cos() * (-GRAVITY);
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
        position += velocity;
        position = position.clamp(MIN_POSITION, MAX_POSITION);
        velocity = stop_at_left_wall(position, velocity);
        *state = [position, velocity];
        Transition {
            reward: -1.0,
            terminated: position >= GOAL_POSITION && velocity >= 0.0,
        }
    }

    fn observe(&self, state: &[f64; 2]) -> Observation {
        Observation::new(&state.map(|v| v as f32))
    }
}

/// Continuous MountainCar's physics. State: `[position, velocity]`; action: a force in
/// `[-1, 1]` (clipped); reward: +100 at the flag (0.45) minus `0.1 * action²` per step.
///
/// Gymnasium stores this env's state as float32 after every step, and so does this one. The
/// arithmetic of a step is float64 here, where NumPy 2's promotion rules do part of it in
/// float32; the two differ by float32 rounding (about 1e-8), well inside the 1e-5 to which
/// observations are compared. Rewards do not depend on it and agree exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MountainCarContinuous;

impl Dynamics for MountainCarContinuous {
    type State = [f64; 2];

    fn observation_space(&self) -> Space {
        mountain_car_observation_space()
    }

    fn action_space(&self) -> Space {
        Space::symmetric_box(&[1.0])
    }

    fn initial_state(&self, rng: &mut EnvRng) -> [f64; 2] {
        valley_start(rng)
    }

    fn step(&self, state: &mut [f64; 2], action: Action<'_>) -> Transition {
        const POWER: f64 = 0.0015;
        const GOAL_POSITION: f64 = 0.45;
        let Action::Continuous(&[action]) = action else {
            unreachable!("actions are checked against Box(1) before stepping")
        };
        let [mut position, mut velocity] = *state;
        let force = f64::from(action.clamp(-1.0, 1.0));
        velocity += force * POWER - GRAVITY * (3.0 * position).cos();
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
        position += velocity;
        position = position.clamp(MIN_POSITION, MAX_POSITION);
        velocity = stop_at_left_wall(position, velocity);
        let terminated = position >= GOAL_POSITION && velocity >= 0.0;
        *state = [f64::from(position as f32), f64::from(velocity as f32)];
        // The penalty uses the action as given, before clipping, as Gymnasium's does.
        let bonus = if terminated { 100.0 } else { 0.0 };
        Transition {
            reward: bonus - f64::from(action) * f64::from(action) * 0.1,
            terminated,
        }
    }

    fn observe(&self, state: &[f64; 2]) -> Observation {
        Observation::new(&state.map(|v| v as f32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn car_stops_at_the_left_wall() {
        let mut state = [MIN_POSITION + 0.01, -0.05];
        MountainCar.step(&mut state, Action::Discrete(0));
        assert_eq!(state, [MIN_POSITION, 0.0]);
    }

    #[test]
    fn reaching_the_flag_terminates() {
        let mut state = [0.49, 0.02];
        let t = MountainCar.step(&mut state, Action::Discrete(2));
        assert!(t.terminated);
        assert_eq!(t.reward, -1.0);
    }

    #[test]
    fn continuous_penalty_uses_the_unclipped_action() {
        let mut state = [-0.5, 0.0];
        let t = MountainCarContinuous.step(&mut state, Action::Continuous(&[2.0]));
        assert!((t.reward - -0.4).abs() < 1e-12);
        let mut clipped = [-0.5, 0.0];
        MountainCarContinuous.step(&mut clipped, Action::Continuous(&[1.0]));
        assert_eq!(state, clipped);
    }
}
