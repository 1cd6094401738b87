//! MountainCar: drive an under-powered car up a hill (Moore 1990), as Gymnasium's
//! `MountainCarEnv` (discrete) and `Continuous_MountainCarEnv`.

use crate::action::Action;
use crate::env::{Dynamics, Observation, Transition};
use crate::rng::EnvRng;
use crate::space::Space;

/// The left end of the track.
pub const MIN_POSITION: f64 = -1.2;
/// The right end of the track.
pub const MAX_POSITION: f64 = 0.6;
/// The largest speed either way.
pub const MAX_SPEED: f64 = 0.07;
/// The hill's pull per step, times `cos(3 * position)`.
pub const GRAVITY: f64 = 0.0025;
/// Discrete MountainCar's push per action step.
pub const FORCE: f64 = 0.001;
/// Where discrete MountainCar's flag stands.
pub const GOAL_POSITION: f64 = 0.5;

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
/// Gymnasium stores this env's state as a float32 array after every step, and NumPy 2's
/// promotion rules then do part of the next step's arithmetic in float32: a float32 scalar
/// combined with a Python float stays float32 (the Python float is rounded first), while a
/// Python float assigned by a clip stays float64 until the state is stored. This step
/// follows those rules operation by operation. A state whose components are all float32
/// values is taken to be such a stored state; any other (a reset or an explicit float64
/// start) takes the float64 path Gymnasium takes on an episode's first step.
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
        const GOAL_POSITION: f64 = 0.45;
        let Action::Continuous(&[action]) = action else {
            unreachable!("actions are checked against Box(1) before stepping")
        };
        let [position, velocity] = *state;
        // `min(max(action, -1.0), 1.0)`: the float32 action, or a Python float at a bound.
        let force = if action < -1.0 {
            Number::Python(-1.0)
        } else if 1.0 < action {
            Number::Python(1.0)
        } else {
            Number::Float32(action)
        };
        let float32_state = is_float32(position) && is_float32(velocity);
        let (position, velocity) = if float32_state {
            step_float32_state(position as f32, velocity as f32, force)
        } else {
            step_float64_state(position, velocity, force)
        };
        let terminated = position.at_least(GOAL_POSITION) && velocity.at_least(0.0);
        *state = [position.stored(), velocity.stored()];
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

const POWER: f64 = 0.0015;

/// A number as NumPy 2 sees it inside Continuous MountainCar's step.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    /// A `np.float32` scalar (read from the float32 state or the action).
    Float32(f32),
    /// A float64 value: a Python float, or a `np.float64` scalar on the float64 path.
    Python(f64),
}

impl Number {
    /// `self >= bound` with `bound` a Python float: compared in float32 against a float32.
    fn at_least(self, bound: f64) -> bool {
        match self {
            Number::Float32(x) => x >= bound as f32,
            Number::Python(x) => x >= bound,
        }
    }

    /// The value as it lands in the float32 state array.
    fn stored(self) -> f64 {
        match self {
            Number::Float32(x) => f64::from(x),
            Number::Python(x) => f64::from(x as f32),
        }
    }
}

fn is_float32(x: f64) -> bool {
    f64::from(x as f32) == x
}

/// `force * power - 0.0025 * cos(3 * position)`, given the cosine term as a float64.
fn acceleration(force: Number, gravity_term: f64) -> Number {
    match force {
        // float32 * Python float and float32 - Python float stay float32.
        Number::Float32(f) => Number::Float32(f * POWER as f32 - gravity_term as f32),
        Number::Python(f) => Number::Python(f * POWER - gravity_term),
    }
}

/// A step from a float64 state: only the acceleration term may be float32.
fn step_float64_state(position: f64, velocity: f64, force: Number) -> (Number, Number) {
    let delta = match acceleration(force, GRAVITY * (3.0 * position).cos()) {
        Number::Float32(d) => f64::from(d),
        Number::Python(d) => d,
    };
    let velocity = (velocity + delta).clamp(-MAX_SPEED, MAX_SPEED);
    let position = (position + velocity).clamp(MIN_POSITION, MAX_POSITION);
    let velocity = stop_at_left_wall(position, velocity);
    (Number::Python(position), Number::Python(velocity))
}

/// A step from the float32 state Gymnasium keeps between steps.
fn step_float32_state(position: f32, velocity: f32, force: Number) -> (Number, Number) {
    let gravity_term = GRAVITY * f64::from(3.0 * position).cos();
    let velocity = Number::Float32(match acceleration(force, gravity_term) {
        Number::Float32(d) => velocity + d,
        Number::Python(d) => velocity + d as f32,
    });
    // The clips assign Python floats.
    let velocity = match velocity {
        Number::Float32(v) if v > MAX_SPEED as f32 => Number::Python(MAX_SPEED),
        Number::Float32(v) if v < -MAX_SPEED as f32 => Number::Python(-MAX_SPEED),
        v => v,
    };
    let step = match velocity {
        Number::Float32(v) => v,
        Number::Python(v) => v as f32,
    };
    let position = match position + step {
        p if p > MAX_POSITION as f32 => Number::Python(MAX_POSITION),
        p if p < MIN_POSITION as f32 => Number::Python(MIN_POSITION),
        p => Number::Float32(p),
    };
    let at_wall = match position {
        Number::Float32(p) => p == MIN_POSITION as f32,
        Number::Python(p) => p == MIN_POSITION,
    };
    let moving_left = match velocity {
        Number::Float32(v) => v < 0.0,
        Number::Python(v) => v < 0.0,
    };
    let velocity = if at_wall && moving_left {
        Number::Python(0.0)
    } else {
        velocity
    };
    (position, velocity)
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

    /// Gymnasium 1.4 / NumPy 2.4 from `[-0.5234567, 0.0123]` (float64), actions 0.3, -0.7,
    /// 1.5 (clipped), 0.9 as float32: the first step runs in float64, the later ones from
    /// the float32 state, and every observation and reward matches bit for bit.
    #[test]
    fn continuous_steps_follow_numpy_promotion_exactly() {
        let expected = [
            (
                [-0.510_707_736_015_319_8, 0.012_748_934_328_556_06],
                -0.009_000_000_715_255_752,
            ),
            (
                [-0.499_105_453_491_210_94, 0.011_602_276_004_850_864],
                -0.048_999_998_331_069_966,
            ),
            (
                [-0.486_186_712_980_270_4, 0.012_918_741_442_263_126],
                -0.225,
            ),
            (
                [-0.472_197_979_688_644_4, 0.013_988_739_810_883_999],
                -0.080_999_995_708_465_64,
            ),
        ];
        let mut state = [-0.523_456_7, 0.0123];
        for (action, (observation, reward)) in [0.3_f32, -0.7, 1.5, 0.9].into_iter().zip(expected) {
            let t = MountainCarContinuous.step(&mut state, Action::Continuous(&[action]));
            assert_eq!(state, observation);
            assert_eq!(t.reward, reward);
        }
    }

    /// The same start, 300 steps of `1.3 sin(k)` (float32): Gymnasium ends at exactly this
    /// state; float64 arithmetic throughout would drift from it in the last bits.
    #[test]
    fn continuous_long_run_ends_at_gymnasiums_exact_state() {
        let mut state = [-0.523_456_7, 0.0123];
        for k in 0..300 {
            let action = ((k as f64).sin() * 1.3) as f32;
            MountainCarContinuous.step(&mut state, Action::Continuous(&[action]));
        }
        assert_eq!(state, [-0.447_369_545_698_165_9, 0.013_361_552_730_202_675]);
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
