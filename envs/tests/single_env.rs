//! One env through `make`: the runner's errors, checks and step limits.

use gradless_envs::make;
use gradless_envs::*;

#[test]
fn step_before_reset_is_an_error() {
    let mut env = make("Acrobot-v1").unwrap();
    assert!(matches!(
        env.step(Action::Discrete(0)),
        Err(EnvError::ResetNeeded { .. })
    ));
}

#[test]
fn invalid_actions_name_the_env_and_the_action() {
    let mut cartpole = make("CartPole-v1").unwrap();
    cartpole.reset(Some(0));
    let err = cartpole.step(Action::Discrete(2)).unwrap_err().to_string();
    assert!(
        err.contains("CartPole-v1") && err.contains("action 2"),
        "{err}"
    );
    let err = cartpole
        .step(Action::Continuous(&[1.0]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("got a vector"), "{err}");
    let mut pendulum = make("Pendulum-v1").unwrap();
    pendulum.reset(Some(0));
    let err = pendulum
        .step(Action::Continuous(&[f32::NAN]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Pendulum-v1") && err.contains("NaN"), "{err}");
    let err = pendulum
        .step(Action::Continuous(&[0.0, 1.0]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected 1 values, got 2"), "{err}");
}

#[test]
fn the_same_seed_gives_the_same_episode() {
    let run = || {
        let mut env = make("MountainCarContinuous-v0").unwrap();
        let mut trajectory = vec![env.reset(Some(5)).to_vec()];
        for k in 0..50 {
            let action = [((k % 7) as f32 - 3.0) / 3.0];
            trajectory.push(
                env.step(Action::Continuous(&action))
                    .unwrap()
                    .observation
                    .to_vec(),
            );
        }
        trajectory
    };
    assert_eq!(run(), run());
}

#[test]
fn explicit_states_are_checked() {
    let mut env = make("CartPole-v1").unwrap();
    assert!(
        env.set_state(&[0.0; 3])
            .unwrap_err()
            .to_string()
            .contains("expected 4")
    );
    assert!(env.set_state(&[0.0, f64::NAN, 0.0, 0.0]).is_err());
    let obs = env.set_state(&[0.1, 0.2, 0.03, 0.04]).unwrap();
    assert_eq!(&*obs, &[0.1, 0.2, 0.03, 0.04]);
    assert_eq!(env.state().unwrap(), vec![0.1, 0.2, 0.03, 0.04]);
}

#[test]
fn time_limit_truncates_at_the_limit_and_after() {
    let mut limit = TimeLimit::new(Some(2));
    assert!(!limit.tick());
    assert!(limit.tick());
    assert!(limit.tick());
    limit.restart();
    assert!(!limit.tick());
    assert!(!TimeLimit::new(None).tick());
}
