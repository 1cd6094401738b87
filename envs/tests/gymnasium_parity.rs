//! Compares gradless-envs with trajectories recorded from Gymnasium 1.4 by
//! `benchmarks/gymnasium/make_fixtures.py`: observations to 1e-5 absolute, rewards and
//! flags exactly.

use gradless_envs::{Actions, AutoresetMode, MakeOptions, make, make_vector, replay};
use serde_json::Value;

const OBS_TOLERANCE: f64 = 1e-5;

/// Read when the test runs, not baked in at build time: a build cached from another
/// checkout would otherwise look for that checkout's fixtures.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", manifest_dir());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect()
}

fn assert_close(got: &[f32], want: &[f64], context: &str) {
    assert_eq!(got.len(), want.len(), "{context}: observation size");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (f64::from(*g) - w).abs() <= OBS_TOLERANCE,
            "{context}: observation {got:?} vs Gymnasium's {want:?}"
        );
    }
}

#[test]
fn replayed_cases_match_gymnasium() {
    let input = std::fs::read_to_string(format!(
        "{}/tests/fixtures/replay_input.json",
        manifest_dir()
    ))
    .unwrap();
    let expected = fixture("replay_expected.json");
    let outcomes = replay::run(&input).expect("fixtures replay without errors");
    let expected_cases = expected["cases"].as_array().unwrap();
    assert_eq!(outcomes.len(), expected_cases.len());
    for (index, (outcome, want)) in outcomes.iter().zip(expected_cases).enumerate() {
        let want_steps = want["steps"].as_array().unwrap();
        let context = format!("case {index} ({})", outcome.env);
        assert_eq!(
            outcome.steps.len(),
            want_steps.len(),
            "{context}: episode length"
        );
        for (t, (step, want_step)) in outcome.steps.iter().zip(want_steps).enumerate() {
            let context = format!("{context}, step {t}");
            assert_close(&step.obs, &floats(&want_step["obs"]), &context);
            assert_eq!(
                step.reward,
                want_step["reward"].as_f64().unwrap(),
                "{context}: reward"
            );
            assert_eq!(
                step.terminated,
                want_step["terminated"].as_bool().unwrap(),
                "{context}: terminated"
            );
            assert_eq!(
                step.truncated,
                want_step["truncated"].as_bool().unwrap(),
                "{context}: truncated"
            );
        }
    }
}

#[test]
fn seeded_resets_match_gymnasium_exactly() {
    let resets = fixture("resets.json");
    for case in resets["resets"].as_array().unwrap() {
        let id = case["env"].as_str().unwrap();
        let seed = case["seed"].as_u64().unwrap();
        let mut env = make(id).unwrap();
        let obs = env.reset(Some(seed));
        let want: Vec<f32> = floats(&case["obs"]).iter().map(|v| *v as f32).collect();
        assert_eq!(
            &*obs,
            want.as_slice(),
            "{id} seed {seed}: reset observation"
        );
        let state_after_first = env.state().unwrap();
        let next = env.reset(None);
        let want_next: Vec<f32> = floats(&case["next_reset_obs"])
            .iter()
            .map(|v| *v as f32)
            .collect();
        assert_eq!(
            &*next,
            want_next.as_slice(),
            "{id} seed {seed}: second reset"
        );
        // Gymnasium's state after the second reset.
        assert_eq!(
            env.state().unwrap(),
            floats(&case["state"]),
            "{id} seed {seed}: state"
        );
        assert_ne!(state_after_first, env.state().unwrap());
    }
}

#[test]
fn seeded_vector_envs_match_gymnasium_sync_vector_env() {
    let document = fixture("vector.json");
    for run in document["runs"].as_array().unwrap() {
        let id = run["env"].as_str().unwrap();
        let num_envs = run["num_envs"].as_u64().unwrap() as usize;
        let mut envs = make_vector(
            id,
            num_envs,
            AutoresetMode::NextStep,
            MakeOptions::default(),
        )
        .unwrap();
        let reset_obs = envs.reset(Some(run["seed"].as_u64().unwrap())).to_vec();
        let want: Vec<f64> = run["reset_obs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        assert_close(&reset_obs, &want, &format!("{id} reset"));
        let mut episodes_seen = 0;
        for (t, step) in run["steps"].as_array().unwrap().iter().enumerate() {
            let context = format!("{id} step {t}");
            let discrete: Vec<i64>;
            let continuous: Vec<f32>;
            let actions = if step["actions"][0].is_i64() {
                discrete = step["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_i64().unwrap())
                    .collect();
                Actions::Discrete(&discrete)
            } else {
                continuous = floats(&step["actions"]).iter().map(|a| *a as f32).collect();
                Actions::Continuous(&continuous)
            };
            let got = envs.step(actions).unwrap();
            let want_obs: Vec<f64> = step["obs"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(floats)
                .collect();
            assert_close(got.observations, &want_obs, &context);
            assert_eq!(
                got.rewards,
                floats(&step["rewards"]).as_slice(),
                "{context}: rewards"
            );
            let flags = |key: &str| -> Vec<bool> {
                step[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b.as_bool().unwrap())
                    .collect()
            };
            assert_eq!(
                got.terminated,
                flags("terminated").as_slice(),
                "{context}: terminated"
            );
            assert_eq!(
                got.truncated,
                flags("truncated").as_slice(),
                "{context}: truncated"
            );
            let want_episodes = step["episodes"].as_array().unwrap();
            assert_eq!(
                got.episodes.len(),
                want_episodes.len(),
                "{context}: finished episodes"
            );
            for (episode, want) in got.episodes.iter().zip(want_episodes) {
                assert_eq!(
                    episode.env_index as u64,
                    want["env_index"].as_u64().unwrap()
                );
                assert_eq!(u64::from(episode.length), want["length"].as_u64().unwrap());
                let want_return = want["return"].as_f64().unwrap();
                assert!(
                    (episode.episode_return - want_return).abs()
                        <= 1e-6 * want_return.abs().max(1.0),
                    "{context}: return {} vs {want_return}",
                    episode.episode_return
                );
            }
            episodes_seen += got.episodes.len();
        }
        assert!(episodes_seen > 0, "{id}: the run should cover autoresets");
    }
}
