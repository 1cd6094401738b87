//! `gradless eval`, `record` and `export` on policies other tools saved: Stable-Baselines3
//! zips, CleanRL models and exported state dicts (fixtures made by
//! `benchmarks/sb3/make_import_fixtures.py`, with the returns PyTorch + Gymnasium give).

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn fixtures() -> PathBuf {
    workspace_root().join("crates/import/tests/fixtures")
}

/// A fixture: its file, env, activation flag, expected greedy returns and first seed.
type Fixture = (String, String, Option<String>, Vec<f64>, u64);

/// Every fixture expected_returns.json lists.
fn expected() -> Vec<Fixture> {
    let text = std::fs::read_to_string(fixtures().join("expected_returns.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json.as_object()
        .unwrap()
        .iter()
        .map(|(file, entry)| {
            (
                file.clone(),
                entry["env"].as_str().unwrap().to_string(),
                entry["activation"].as_str().map(str::to_string),
                entry["returns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_f64().unwrap())
                    .collect(),
                entry["first_seed"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `gradless eval FILE --env ENV` on flex, episodes as the fixtures ran them; returns the
/// episodes' returns from episodes.jsonl.
fn eval_returns(
    file: &Path,
    env: &str,
    extra: &[&str],
    out: &Path,
    episodes: usize,
    seed: u64,
) -> Vec<f64> {
    let episodes = episodes.to_string();
    let seed = seed.to_string();
    let mut args = vec![
        "eval",
        file.to_str().unwrap(),
        "--env",
        env,
        "--device",
        "flex",
        "--episodes",
        &episodes,
        "--seed",
        &seed,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = gradless(&args);
    assert!(
        output.status.success(),
        "{}: {}",
        file.display(),
        stderr(&output)
    );
    let name = file.file_name().unwrap();
    std::fs::read_to_string(out.join(name).join("episodes.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["return"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

fn assert_same_returns(file: &str, ours: &[f64], theirs: &[f64]) {
    assert_eq!(ours.len(), theirs.len(), "{file}");
    for (k, (a, b)) in ours.iter().zip(theirs).enumerate() {
        // CartPole's returns are step counts (exact); Pendulum's sum float64 costs of actions
        // computed in float32 by two libraries.
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "{file}, episode {k}: {a} vs {b}"
        );
    }
}

/// Every fixture gives, episode by episode, the returns PyTorch + Gymnasium gave.
#[test]
fn foreign_policies_return_what_pytorch_and_gymnasium_return() {
    let out = scratch("import-returns");
    for (file, env, activation, returns, seed) in expected() {
        let mut extra = Vec::new();
        if let Some(activation) = &activation {
            extra.extend(["--activation", activation.as_str()]);
        }
        let ours = eval_returns(
            &fixtures().join(&file),
            &env,
            &extra,
            &out,
            returns.len(),
            seed,
        );
        assert_same_returns(&file, &ours, &returns);
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// A foreign policy evaluates as a native one does: the same episodes at any --num-envs,
/// sampled actions, and `gradless export` makes a safetensors file that names its env and
/// gives the same returns.
#[test]
fn foreign_policies_get_everything_eval_does() {
    let out = scratch("import-features");
    let zip = fixtures().join("sb3_ppo_pendulum.zip");
    let one = eval_returns(
        &zip,
        "Pendulum-v1",
        &["--num-envs", "1"],
        &out.join("a"),
        6,
        3,
    );
    let many = eval_returns(
        &zip,
        "Pendulum-v1",
        &["--num-envs", "4"],
        &out.join("b"),
        6,
        3,
    );
    assert_eq!(one, many);
    let sampled = eval_returns(&zip, "Pendulum-v1", &["--stochastic"], &out.join("c"), 3, 3);
    assert!(sampled.iter().all(|r| r.is_finite()) && sampled != one[..3]);

    // The exported file names its env (no --env needed), and `gradless import` makes a
    // native checkpoint: both evaluate the same.
    let exported = out.join("pendulum.safetensors");
    let native = out.join("native");
    for (command, copy) in [("export", &exported), ("import", &native)] {
        let output = gradless(&[
            command,
            zip.to_str().unwrap(),
            "--env",
            "Pendulum-v1",
            "--out",
            copy.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{command}: {}", stderr(&output));
    }
    let mean = one.iter().sum::<f64>() / 6.0;
    for (copy, folder) in [(&exported, "d"), (&native, "e")] {
        let output = on_flex(
            "eval",
            copy,
            &[
                "--json",
                "--episodes",
                "6",
                "--seed",
                "3",
                "--out",
                out.join(folder).to_str().unwrap(),
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let line = &json_lines(&output)[0];
        assert_eq!(line["env"], "Pendulum-v1");
        assert!(
            (line["mean_return"].as_f64().unwrap() - mean).abs() < 1e-3,
            "{line} vs {mean}"
        );
        assert!(
            line["step"].as_u64().unwrap() > 0,
            "SB3's num_timesteps is kept"
        );
    }
    let again = gradless(&[
        "import",
        zip.to_str().unwrap(),
        "--env",
        "Pendulum-v1",
        "--out",
        native.to_str().unwrap(),
    ]);
    assert!(
        !again.status.success(),
        "an existing checkpoint is not replaced"
    );

    // A folder of policy files: each is evaluated.
    let folder = out.join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    for file in ["sb3_dqn_cartpole.zip", "cleanrl_dqn_cartpole.cleanrl_model"] {
        std::fs::copy(fixtures().join(file), folder.join(file)).unwrap();
    }
    let output = on_flex(
        "eval",
        &folder,
        &["--json", "--env", "CartPole-v1", "--episodes", "2"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json_lines(&output).len(), 2);
    assert!(
        folder
            .join("sb3_dqn_cartpole.zip-eval/summary.json")
            .is_file()
    );

    // The grad-mode report measures it as it measures native policies.
    let output = on_flex(
        "eval",
        &folder.join("sb3_dqn_cartpole.zip"),
        &[
            "--json",
            "--env",
            "CartPole-v1",
            "--episodes",
            "1",
            "--grad-mode-report",
            "--out",
            out.join("g").to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report = &json_lines(&output)[0]["grad_mode_report"];
    assert!(
        report["inference_speedup"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        out.join("g/sb3_dqn_cartpole.zip/grad_mode_report.json")
            .is_file()
    );

    // And it can be watched.
    let output = on_flex(
        "record",
        &folder.join("sb3_dqn_cartpole.zip"),
        &["--env", "CartPole-v1", "--episodes", "1"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        folder
            .join("sb3_dqn_cartpole.zip-videos/episode-0000.gif")
            .is_file()
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_policy_files_are_one_line_errors_naming_the_file_and_key() {
    let bad = fixtures().join("bad");
    let eval = |file: &Path, env: &str| {
        on_flex(
            "eval",
            file,
            &[
                "--env",
                env,
                "--episodes",
                "1",
                "--out",
                std::env::temp_dir()
                    .join("gradless-bad-import")
                    .to_str()
                    .unwrap(),
            ],
        )
    };
    for (file, words) in [
        (
            "sb3_cnn.zip",
            &[
                "sb3_cnn.zip",
                "features_extractor.cnn",
                "CNN",
                "covered: PPO, A2C, DQN, SAC, TD3 and DDPG",
            ][..],
        ),
        (
            "sb3_sac.zip",
            &[
                "sb3_sac.zip",
                "SAC Actor",
                "maps 3 observations to 1 squashed action dimensions",
                "CartPole-v1 has",
            ],
        ),
        (
            "sb3_without_policy.zip",
            &["sb3_without_policy.zip", "`policy.pth`", "missing"],
        ),
        (
            "cleanrl_unchained.cleanrl_model",
            &["cleanrl_unchained.cleanrl_model", "actor.2", "do not chain"],
        ),
    ] {
        assert_clean_failure(&eval(&bad.join(file), "CartPole-v1"), words);
    }
    let root = scratch("import-bad");
    let not_torch = root.join("noise.cleanrl_model");
    std::fs::write(&not_torch, b"these bytes are no PyTorch archive").unwrap();
    assert_clean_failure(
        &eval(&not_torch, "CartPole-v1"),
        &["noise.cleanrl_model", "not a readable PyTorch file"],
    );
    let not_zip = root.join("noise.zip");
    std::fs::write(&not_zip, b"nor a zip").unwrap();
    assert_clean_failure(
        &eval(&not_zip, "CartPole-v1"),
        &["noise.zip", "not a Stable-Baselines3 zip"],
    );
    // The spaces must fit, and a file that names no env needs --env.
    let pendulum = fixtures().join("sb3_ppo_pendulum.zip");
    assert_clean_failure(
        &eval(&pendulum, "CartPole-v1"),
        &["sb3_ppo_pendulum.zip", "CartPole-v1", "Gaussian"],
    );
    assert_clean_failure(
        &on_flex("eval", &pendulum, &[]),
        &["sb3_ppo_pendulum.zip", "--env"],
    );
    // VecNormalize statistics beside a zip are applied: damaged ones refuse it, never
    // silently ignored.
    copy_file(
        &fixtures().join("sb3_ppo_cartpole_relu32.zip"),
        &root.join("agent.zip"),
    );
    std::fs::write(root.join("vecnormalize.pkl"), b"pickled statistics").unwrap();
    assert_clean_failure(
        &eval(&root.join("agent.zip"), "CartPole-v1"),
        &["vecnormalize.pkl", "not a readable pickle"],
    );
    // A config saying it normalised, without the statistics: refused.
    std::fs::remove_file(root.join("vecnormalize.pkl")).unwrap();
    std::fs::write(root.join("config.yml"), "normalize: true\n").unwrap();
    assert_clean_failure(
        &eval(&root.join("agent.zip"), "CartPole-v1"),
        &["config.yml", "normalize: true", "refused"],
    );
    std::fs::remove_file(root.join("config.yml")).unwrap();
    // RL Zoo's env settings gradless does not reproduce refuse the zip.
    std::fs::write(
        root.join("args.yml"),
        "env: CartPole-v1\nenv_kwargs:\n  sutton_barto_reward: true\n",
    )
    .unwrap();
    assert_clean_failure(
        &on_flex("eval", &root.join("agent.zip"), &[]),
        &["args.yml", "env_kwargs", "refused"],
    );
    std::fs::remove_file(root.join("args.yml")).unwrap();
    // And where RL Zoo keeps them, for the run's final zip and its best model alike.
    let zoo_run = root.join("CartPole-v1_1");
    std::fs::create_dir_all(zoo_run.join("CartPole-v1")).unwrap();
    std::fs::write(zoo_run.join("CartPole-v1/vecnormalize.pkl"), b"statistics").unwrap();
    for zip in ["CartPole-v1.zip", "best_model.zip"] {
        copy_file(
            &fixtures().join("sb3_ppo_cartpole_relu32.zip"),
            &zoo_run.join(zip),
        );
        assert_clean_failure(
            &eval(&zoo_run.join(zip), "CartPole-v1"),
            &["CartPole-v1/vecnormalize.pkl", "not a readable pickle"],
        );
    }
    assert_clean_failure(
        &on_flex(
            "eval",
            &pendulum,
            &["--env", "Pendulum-v1", "--activation", "gelu"],
        ),
        &["--activation", "gelu"],
    );
    // A squashed (SAC, TD3) actor acts greedily only, and is evaluated from its file.
    let sac = fixtures().join("sb3_sac_pendulum.zip");
    assert_clean_failure(
        &on_flex(
            "eval",
            &sac,
            &["--env", "Pendulum-v1", "--stochastic", "--episodes", "1"],
        ),
        &["sb3_sac_pendulum.zip", "SAC Actor", "deterministically"],
    );
    for (command, out) in [
        ("import", root.join("sac-checkpoint")),
        ("export", root.join("sac.safetensors")),
    ] {
        let output = gradless(&[
            command,
            sac.to_str().unwrap(),
            "--env",
            "Pendulum-v1",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_clean_failure(&output, &["greedily only", "not covered"]);
        assert!(!out.exists(), "{command} leaves nothing behind");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// RL Zoo's runs (`benchmarks/rl_zoo/make_zoo_fixtures.py`): the VecNormalize statistics it
/// keeps in `<EnvId>/vecnormalize.pkl` are applied, and the episodes are the ones SB3 gives
/// the same model with RL Zoo's saved normalisation; without them the episodes differ.
#[test]
fn rl_zoo_agents_evaluate_with_their_saved_normalisation() {
    let zoo = fixtures().join("zoo");
    let text = std::fs::read_to_string(zoo.join("expected_returns.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let out = scratch("import-zoo");
    for (file, entry) in expected.as_object().unwrap() {
        let env = entry["env"].as_str().unwrap();
        let seed = entry["first_seed"].as_u64().unwrap();
        let theirs: Vec<f64> = entry["returns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_f64().unwrap())
            .collect();
        let zip = zoo.join(file);
        let ours = eval_returns(&zip, env, &[], &out.join("with"), theirs.len(), seed);
        assert_eq!(ours, theirs, "{file}");
        let bare = out.join("bare.zip");
        copy_file(&zip, &bare);
        let raw = eval_returns(&bare, env, &[], &out.join("without"), theirs.len(), seed);
        assert_ne!(raw, theirs, "{file}: the statistics change the episodes");
        // RL Zoo's args.yml names the env: no --env needed.
        let named = on_flex(
            "eval",
            &zip,
            &[
                "--json",
                "--episodes",
                "2",
                "--out",
                out.join("named").to_str().unwrap(),
            ],
        );
        assert!(named.status.success(), "{}", stderr(&named));
        assert_eq!(json_lines(&named)[0]["env"], env);
        // The statistics go with the agent into a native checkpoint and an export.
        let native = out.join("native");
        let exported = out.join("exported.safetensors");
        for (command, copy) in [("import", &native), ("export", &exported)] {
            let output = gradless(&[
                command,
                zip.to_str().unwrap(),
                "--env",
                env,
                "--out",
                copy.to_str().unwrap(),
            ]);
            assert!(output.status.success(), "{command}: {}", stderr(&output));
            let again = eval_returns(copy, env, &[], &out.join(command), theirs.len(), seed);
            assert_eq!(again, theirs, "{file} after {command}");
        }
    }
    std::fs::remove_dir_all(&out).unwrap();
}

fn copy_file(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
}
