//! Vector envs through `make_vector`: autoreset modes, statistics and snapshots against single envs.

use gradless_envs::MakeOptions;
use gradless_envs::*;
use gradless_envs::{make, make_vector};

fn cartpole_vector(num_envs: usize, mode: AutoresetMode) -> Box<dyn VectorEnv> {
    make_vector("CartPole-v1", num_envs, mode, MakeOptions::default()).unwrap()
}

/// A CartPole vector env reset with `seed` and, beside it, single envs reset with
/// `seed + i`, after checking that they start from the same observations.
fn reset_beside_single_envs(
    num_envs: usize,
    mode: AutoresetMode,
    seed: u64,
) -> (Box<dyn VectorEnv>, Vec<Box<dyn gradless_envs::Env>>) {
    let mut vector = cartpole_vector(num_envs, mode);
    let first = vector.reset(Some(seed)).to_vec();
    let singles = (0..num_envs)
        .map(|i| {
            let mut single = make("CartPole-v1").unwrap();
            let obs = single.reset(Some(seed + i as u64));
            assert_eq!(
                &first[i * 4..(i + 1) * 4],
                &*obs,
                "env {i} starts elsewhere"
            );
            single
        })
        .collect();
    (vector, singles)
}

#[test]
fn explicit_seeds_seed_each_env() {
    let mut vector = cartpole_vector(2, AutoresetMode::NextStep);
    let obs = vector.reset_with_seeds(&[5, 9]).unwrap().to_vec();
    for (i, seed) in [5, 9].into_iter().enumerate() {
        let mut single = make("CartPole-v1").unwrap();
        assert_eq!(&obs[i * 4..(i + 1) * 4], &*single.reset(Some(seed)));
    }
    let err = vector.reset_with_seeds(&[1]).unwrap_err().to_string();
    assert!(err.contains("1 seeds for 2 envs"), "{err}");
}

/// Env `i` of a vector seeded with `s` runs the very episode a single env seeded with
/// `s + i` runs, step for step.
#[test]
fn sub_envs_match_single_envs_with_offset_seeds() {
    let num_envs = 3;
    let (mut vector, mut singles) = reset_beside_single_envs(num_envs, AutoresetMode::NextStep, 10);
    let mut rng = EnvRng::from_seed(0);
    for _ in 0..40 {
        let actions: Vec<i64> = (0..num_envs).map(|_| rng.below(2) as i64).collect();
        let step = vector.step(Actions::Discrete(&actions)).unwrap();
        for (i, single) in singles.iter_mut().enumerate() {
            let expected = single.step(Action::Discrete(actions[i])).unwrap();
            assert_eq!(
                &step.observations[i * 4..(i + 1) * 4],
                &*expected.observation
            );
            assert_eq!(step.rewards[i], expected.reward);
            assert_eq!(step.terminated[i], expected.terminated);
            if expected.terminated {
                return; // the single env would need a reset of its own from here
            }
        }
    }
}

#[test]
fn next_step_autoreset_returns_the_reset_observation_with_zero_reward() {
    let mut vector = cartpole_vector(1, AutoresetMode::NextStep);
    vector.reset(Some(3));
    let mut length = 0;
    let stats = loop {
        let step = vector.step(Actions::Discrete(&[1])).unwrap();
        length += 1;
        if step.terminated[0] || step.truncated[0] {
            assert_eq!(step.episodes.len(), 1);
            break step.episodes[0];
        }
        assert!(step.episodes.is_empty());
    };
    assert_eq!(stats.length, length);
    assert_eq!(stats.episode_return, f64::from(length));
    assert!(stats.terminated);
    let restart = vector.step(Actions::Discrete(&[0])).unwrap();
    assert_eq!(restart.rewards[0], 0.0);
    assert!(!restart.terminated[0] && !restart.truncated[0]);
    assert!(restart.episodes.is_empty());
    assert!(restart.observations.iter().all(|v| v.abs() <= 0.05));
}

#[test]
fn same_step_autoreset_reports_the_final_observation() {
    let mut vector = cartpole_vector(1, AutoresetMode::SameStep);
    vector.reset(Some(3));
    loop {
        let step = vector.step(Actions::Discrete(&[1])).unwrap();
        if step.terminated[0] {
            // The final observation is out of bounds; the returned one is a fresh start.
            let final_obs = &step.final_observations[..4];
            assert!(final_obs[0].abs() > 2.4 || final_obs[2].abs() > 0.2094);
            assert!(step.observations.iter().all(|v| v.abs() <= 0.05));
            assert_eq!(step.rewards[0], 1.0);
            break;
        }
    }
}

#[test]
fn truncates_at_the_registered_limit() {
    let mut vector = make_vector(
        "Pendulum-v1",
        2,
        AutoresetMode::NextStep,
        MakeOptions::default(),
    )
    .unwrap();
    vector.reset(Some(0));
    for step_index in 1..=200 {
        let step = vector.step(Actions::Continuous(&[0.0, 0.0])).unwrap();
        assert_eq!(step.truncated[0], step_index == 200);
        assert!(!step.terminated[0]);
    }
}

#[test]
fn invalid_actions_name_the_env_and_the_action() {
    let mut vector = cartpole_vector(2, AutoresetMode::NextStep);
    vector.reset(Some(0));
    let err = vector
        .step(Actions::Discrete(&[0, 2]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CartPole-v1") && err.contains("sub-env 1") && err.contains('2'),
        "{err}"
    );
    let err = vector
        .step(Actions::Discrete(&[0]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected 2"), "{err}");
    let mut pendulum = make_vector(
        "Pendulum-v1",
        1,
        AutoresetMode::NextStep,
        MakeOptions::default(),
    )
    .unwrap();
    pendulum.reset(Some(0));
    let err = pendulum
        .step(Actions::Continuous(&[f32::NAN]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Pendulum-v1") && err.contains("NaN"), "{err}");
}

#[test]
fn step_before_reset_is_an_error() {
    let mut vector = cartpole_vector(1, AutoresetMode::NextStep);
    assert!(matches!(
        vector.step(Actions::Discrete(&[0])),
        Err(EnvError::ResetNeeded { .. })
    ));
}

/// A snapshot taken mid-run, restored into a fresh env (through JSON, as checkpoints
/// store it), continues exactly as the original does, restarts and all.
#[test]
fn restored_snapshot_continues_identically() {
    for mode in [AutoresetMode::NextStep, AutoresetMode::SameStep] {
        let mut original = cartpole_vector(3, mode);
        assert!(original.snapshot().is_none());
        original.reset(Some(11));
        let mut rng = EnvRng::from_seed(5);
        let mut actions = || -> Vec<i64> { (0..3).map(|_| rng.below(2) as i64).collect() };
        for _ in 0..40 {
            original.step(Actions::Discrete(&actions())).unwrap();
        }
        let json = serde_json::to_string(&original.snapshot().unwrap()).unwrap();
        let mut restored = cartpole_vector(3, mode);
        restored
            .restore(&serde_json::from_str(&json).unwrap())
            .unwrap();
        let mut episodes = 0;
        for _ in 0..200 {
            let a = actions();
            let expected = original.step(Actions::Discrete(&a)).unwrap();
            let (observations, rewards, ended) = (
                expected.observations.to_vec(),
                expected.rewards.to_vec(),
                expected.episodes.to_vec(),
            );
            let got = restored.step(Actions::Discrete(&a)).unwrap();
            assert_eq!(got.observations, observations.as_slice());
            assert_eq!(got.rewards, rewards.as_slice());
            assert_eq!(got.episodes, ended.as_slice());
            episodes += ended.len();
        }
        assert!(episodes > 3, "the comparison should cover restarts");

        let mut other = cartpole_vector(2, mode);
        let err = other.restore(&original.snapshot().unwrap()).unwrap_err();
        assert!(err.to_string().contains("2 envs"), "{err}");
    }
}

/// CartPole's vector kernel computes sine and cosine its own way; over a million env
/// steps (thousands of episodes, both ends of them) its observations, rewards and flags
/// are still those of single envs run with the same seeds and actions.
#[test]
fn vector_cartpole_agrees_with_single_envs_over_a_million_steps() {
    let num_envs = 256;
    let (mut vector, mut singles) = reset_beside_single_envs(num_envs, AutoresetMode::SameStep, 0);
    let mut rng = EnvRng::from_seed(9);
    let mut actions = vec![0i64; num_envs];
    let mut episodes = 0;
    for _ in 0..4000 {
        actions.iter_mut().for_each(|a| *a = rng.below(2) as i64);
        let step = vector.step(Actions::Discrete(&actions)).unwrap();
        episodes += step.episodes.len();
        for (i, single) in singles.iter_mut().enumerate() {
            let expected = single.step(Action::Discrete(actions[i])).unwrap();
            let done = expected.terminated || expected.truncated;
            let observed = if done {
                step.final_observations
            } else {
                step.observations
            };
            assert_eq!(&observed[i * 4..(i + 1) * 4], &*expected.observation);
            assert_eq!(step.rewards[i], expected.reward);
            assert_eq!(
                (step.terminated[i], step.truncated[i]),
                (expected.terminated, expected.truncated)
            );
            if done {
                single.reset(None);
            }
        }
    }
    assert!(episodes > 10_000, "{episodes} episodes");
}
