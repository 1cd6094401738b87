//! The gym-rs adapter through `make`.
#![cfg(feature = "gym-rs")]

use gradless_envs::make as make_any;
use gradless_envs::*;

#[test]
fn cartpole_runs_and_truncates_at_the_added_limit() {
    let mut env = make_any("gym-rs/CartPole").unwrap();
    let obs = env.reset(Some(3));
    // gym-rs draws the start from ±0.5, ten times Gymnasium's range.
    assert!(obs.iter().all(|v| v.abs() <= 0.5));
    env.set_state(&[0.0; 4]).unwrap();
    let mut steps = 0;
    loop {
        // A bang-bang controller keeps the pole up until the limit.
        let state = env.state().unwrap();
        let push_right = i64::from(state[2] + 0.5 * state[3] > 0.0);
        let step = env.step(Action::Discrete(push_right)).unwrap();
        steps += 1;
        assert_eq!(step.reward, 1.0);
        if step.terminated || step.truncated {
            break;
        }
    }
    assert!(steps <= 500);
}

#[test]
fn cartpole_dynamics_differ_from_gymnasium() {
    let mut ours = make_any("CartPole-v1").unwrap();
    let mut theirs = make_any("gym-rs/CartPole").unwrap();
    let start = [0.0, 0.0, 0.1, 0.5];
    ours.set_state(&start).unwrap();
    theirs.set_state(&start).unwrap();
    let a = ours.step(Action::Discrete(1)).unwrap();
    let b = theirs.step(Action::Discrete(1)).unwrap();
    // Position integrates identically; the accelerations use another pole mass-length.
    assert_eq!(a.observation[0], b.observation[0]);
    assert_ne!(a.observation[3], b.observation[3]);
}

#[test]
fn mountain_car_matches_gymnasium_and_checks_actions() {
    let mut ours = make_any("MountainCar-v0").unwrap();
    let mut theirs = make_any("gym-rs/MountainCar").unwrap();
    ours.set_state(&[-0.5, 0.01]).unwrap();
    theirs.set_state(&[-0.5, 0.01]).unwrap();
    for action in [2, 2, 0, 1, 2] {
        let a = ours.step(Action::Discrete(action)).unwrap();
        let b = theirs.step(Action::Discrete(action)).unwrap();
        assert_eq!(a.observation, b.observation);
        assert_eq!(a.reward, b.reward);
    }
    let err = theirs.step(Action::Discrete(3)).unwrap_err().to_string();
    assert!(
        err.contains("gym-rs/MountainCar") && err.contains('3'),
        "{err}"
    );
}
