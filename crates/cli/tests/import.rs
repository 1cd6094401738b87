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
    // A file's evaluation folder is named without its extension.
    let name = file.file_stem().unwrap();
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
        out.join("g/sb3_dqn_cartpole/grad_mode_report.json")
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
    assert!(
        !fixtures().join("sb3_ppo_pendulum.zip-eval").exists(),
        "a refused policy leaves no output folder beside it"
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
    // RL Zoo's `env_kwargs` that gradless's envs take are applied: with Sutton & Barto's
    // reward a CartPole episode returns 0 (truncated) or -1 (fallen).
    std::fs::write(
        root.join("args.yml"),
        "env: CartPole-v1\nenv_kwargs:\n  sutton_barto_reward: true\n  max_episode_steps: 20\n",
    )
    .unwrap();
    let output = on_flex(
        "eval",
        &root.join("agent.zip"),
        &[
            "--json",
            "--episodes",
            "3",
            "--out",
            root.join("sb").to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = &json_lines(&output)[0];
    assert_eq!(
        summary["env_kwargs"]["sutton_barto_reward"], true,
        "{summary}"
    );
    assert_eq!(summary["env_kwargs"]["max_episode_steps"], 20, "{summary}");
    assert!(
        [0.0, -1.0].contains(&summary["mean_return"].as_f64().unwrap()),
        "{summary}"
    );
    // Others, and settings gradless does not reproduce, refuse the zip naming them; a
    // checkpoint or an export would not record the keyword arguments, so neither is made.
    std::fs::write(
        root.join("args.yml"),
        "env: MountainCar-v0\nenv_kwargs:\n  goal_velocity: 0.1\n",
    )
    .unwrap();
    assert_clean_failure(
        &on_flex("eval", &root.join("agent.zip"), &[]),
        &["args.yml", "env_kwargs", "goal_velocity", "refused"],
    );
    std::fs::write(
        root.join("args.yml"),
        "env: CartPole-v1\nenv_kwargs: {sutton_barto_reward: true}\n",
    )
    .unwrap();
    for command in ["import", "export"] {
        let out = root.join(format!("{command}ed"));
        let agent = root.join("agent.zip");
        let output = gradless(&[
            command,
            agent.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_clean_failure(
            &output,
            &["agent.zip", "sutton_barto_reward", "do not record"],
        );
        assert!(!out.exists(), "{command}");
    }
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
    // TD3's actor acts greedily only; SAC's samples too. Both are evaluated from their
    // files: SB3's conventions are not gradless's actor's.
    let td3 = fixtures().join("sb3_td3_pendulum.zip");
    assert_clean_failure(
        &on_flex(
            "eval",
            &td3,
            &["--env", "Pendulum-v1", "--stochastic", "--episodes", "1"],
        ),
        &[
            "sb3_td3_pendulum.zip",
            "TD3/DDPG Actor",
            "deterministically",
        ],
    );
    let sac = fixtures().join("sb3_sac_pendulum.zip");
    let sampled = |num_envs: &str| {
        let out = root.join(format!("sampled-{num_envs}"));
        let extra = ["--stochastic", "--num-envs", num_envs];
        eval_returns(&sac, "Pendulum-v1", &extra, &out, 6, 3)
    };
    let greedy = eval_returns(&sac, "Pendulum-v1", &[], &root.join("greedy"), 6, 3);
    assert_eq!(
        sampled("1"),
        sampled("4"),
        "each episode draws from its own generator"
    );
    assert_ne!(sampled("1"), greedy);
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
        assert_clean_failure(&output, &["clamps its log-std", "not covered"]);
        assert!(!out.exists(), "{command} leaves nothing behind");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// RL Zoo's fixtures (`benchmarks/rl_zoo/make_zoo_fixtures.py`): per model, relative to the
/// zoo folder, its env, first seed and the returns SB3 gave it with RL Zoo's saved
/// normalisation.
fn zoo_expected() -> Vec<(String, String, u64, Vec<f64>)> {
    let zoo = fixtures().join("zoo");
    let text = std::fs::read_to_string(zoo.join("expected_returns.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    expected
        .as_object()
        .unwrap()
        .iter()
        .map(|(file, entry)| {
            let returns = entry["returns"].as_array().unwrap();
            (
                file.clone(),
                entry["env"].as_str().unwrap().to_string(),
                entry["first_seed"].as_u64().unwrap(),
                returns.iter().map(|r| r.as_f64().unwrap()).collect(),
            )
        })
        .collect()
}

/// Episode returns of one env, as gradless and SB3 computed them: equal where actions are
/// discrete; within `1e-6` relative where float32 actions from two libraries' arithmetic
/// step continuous envs (measured figures in docs).
fn assert_zoo_returns(file: &str, env: &str, ours: &[f64], theirs: &[f64]) {
    let continuous = ["Pendulum-v1", "MountainCarContinuous-v0"].contains(&env);
    if !continuous {
        assert_eq!(ours, theirs, "{file}");
        return;
    }
    assert_eq!(ours.len(), theirs.len(), "{file}");
    for (k, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs(),
            "{file}, episode {k}: {a} vs {b}"
        );
    }
}

/// `gradless eval logs/<algo>` finds every RL Zoo run in it, its model (`--checkpoint`), env
/// and statistics, and each run's episodes are the ones SB3 gave the same model.
#[test]
fn rl_zoo_run_folders_evaluate_as_sb3_does() {
    let zoo = fixtures().join("zoo");
    let expected = zoo_expected();
    let out = scratch("import-zoo-runs");
    let mut algos: Vec<&str> = expected
        .iter()
        .map(|(file, ..)| file.split('/').next().unwrap())
        .collect();
    algos.dedup();
    let (episodes, seed) = (expected[0].3.len().to_string(), expected[0].2.to_string());
    let eval = |path: &Path, checkpoint: &str, out: &Path| {
        on_flex(
            "eval",
            path,
            &[
                "--json",
                "--checkpoint",
                checkpoint,
                "--episodes",
                &episodes,
                "--seed",
                &seed,
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };
    for algo in &algos {
        let output = eval(&zoo.join(algo), "final", &out.join("final").join(algo));
        assert!(output.status.success(), "{algo}: {}", stderr(&output));
    }
    // Only runs that evaluated during training have a best model: asked of a folder where
    // one lacks it, the command names it before evaluating anything.
    let refused = eval(&zoo.join("ppo"), "best", &out.join("refused"));
    assert_clean_failure(&refused, &["best_model.zip", "--eval-freq"]);
    assert!(!out.join("refused").join("CartPole-v1_1").exists());
    let best = eval(
        &zoo.join("ppo/CartPole-v1_1"),
        "best",
        &out.join("best").join("ppo"),
    );
    assert!(best.status.success(), "{}", stderr(&best));
    // `compare` takes RL Zoo runs as runs, each one seed (from args.yml); its evaluations go
    // beside the zips, so into a copy.
    let copy = out.join("zoo");
    copy_tree(&zoo, &copy);
    let group = |name: &str| format!("{name}={}", copy.join(name).display());
    let comparison = out.join("comparison");
    let compared = gradless(&[
        "compare",
        &group("ppo"),
        &group("dqn"),
        "--episodes",
        "5",
        "--reps",
        "1000",
        "--device",
        "flex",
        "--out",
        comparison.to_str().unwrap(),
    ]);
    assert!(compared.status.success(), "{}", stderr(&compared));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(comparison.join("comparison.json")).unwrap())
            .unwrap();
    let runs = |k: usize| report["groups"][k]["runs"].as_array().unwrap().clone();
    assert_eq!((runs(0).len(), runs(1).len()), (3, 2), "{report}");
    assert!(runs(0).iter().all(|run| run["seed"] == 1), "{report}");
    for (file, env, _, theirs) in &expected {
        // `<algo>/<run>/<model>.zip`
        let parts: Vec<&str> = file.split('/').collect();
        let (run, stem) = (parts[1], parts[2].trim_end_matches(".zip"));
        let checkpoint = if stem == "best_model" {
            "best"
        } else {
            "final"
        };
        let episodes = out
            .join(checkpoint)
            .join(parts[0])
            .join(run)
            .join(stem)
            .join("episodes.jsonl");
        let ours: Vec<f64> = std::fs::read_to_string(&episodes)
            .unwrap_or_else(|e| panic!("{}: {e}", episodes.display()))
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["return"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        assert_zoo_returns(file, env, &ours, theirs);
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(episodes.with_file_name("summary.json")).unwrap(),
        )
        .unwrap();
        let statistics = zoo.join(file).with_file_name(env).join("vecnormalize.pkl");
        assert_eq!(
            summary["observation_normalization"].is_object(),
            statistics.exists(),
            "{file}: {summary}"
        );
        assert!(
            summary["step"].as_u64().is_some(),
            "{file}: SB3 saves num_timesteps"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// A normalised RL Zoo agent: its statistics are applied (without them the episodes
/// differ), and go with it into `gradless import`'s checkpoint and `gradless export`'s file.
#[test]
fn rl_zoo_agents_evaluate_with_their_saved_normalisation() {
    let zoo = fixtures().join("zoo");
    let out = scratch("import-zoo");
    let file = "ppo/Acrobot-v1_1/Acrobot-v1.zip";
    let (_, env, seed, theirs) = zoo_expected()
        .into_iter()
        .find(|(name, ..)| name == file)
        .unwrap();
    let env = env.as_str();
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
    std::fs::remove_dir_all(&out).unwrap();
}

/// `--epsilon` acts ε-greedily for Q-networks only, each episode from its own generator:
/// the same episodes on any number of envs, worse than greedy on CartPole at ε = 0.5.
#[test]
fn q_networks_evaluate_epsilon_greedily() {
    let zoo = fixtures().join("zoo");
    let out = scratch("import-epsilon");
    let dqn = zoo.join("dqn/CartPole-v1_1/CartPole-v1.zip");
    let greedy = eval_returns(&dqn, "CartPole-v1", &[], &out.join("greedy"), 20, 5);
    let one = eval_returns(
        &dqn,
        "CartPole-v1",
        &["--epsilon", "0.5", "--num-envs", "1"],
        &out.join("one"),
        20,
        5,
    );
    let many = eval_returns(
        &dqn,
        "CartPole-v1",
        &["--epsilon", "0.5", "--num-envs", "7"],
        &out.join("many"),
        20,
        5,
    );
    assert_eq!(one, many, "each episode draws from its own generator");
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    assert!(mean(&one) < mean(&greedy), "{one:?} vs {greedy:?}");
    for (path, flag, words) in [
        (
            zoo.join("ppo/CartPole-v1_1/CartPole-v1.zip"),
            "0.1",
            &["--epsilon", "Q-network"][..],
        ),
        (dqn.clone(), "1.5", &["--epsilon", "[0, 1]"][..]),
    ] {
        let output = on_flex(
            "eval",
            &path,
            &[
                "--epsilon",
                flag,
                "--out",
                out.join("refused").to_str().unwrap(),
            ],
        );
        assert_clean_failure(&output, words);
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// An exported SAC actor reads back as the actor it was: the same episodes, greedy and
/// sampled, as the checkpoint it came from. It exports again, but holds no critics for
/// `gradless import` to write a SAC checkpoint with.
#[test]
fn exported_sac_actors_read_back_as_themselves() {
    let out = scratch("import-sac-export");
    let native = shipped("pendulum-v1-sac");
    let exported = out.join("actor.safetensors");
    let export = |from: &Path, to: &Path| {
        gradless(&[
            "export",
            from.to_str().unwrap(),
            "--out",
            to.to_str().unwrap(),
        ])
    };
    let output = export(&native, &exported);
    assert!(output.status.success(), "{}", stderr(&output));
    for extra in [&[][..], &["--stochastic"][..]] {
        let theirs = eval_returns(&native, "Pendulum-v1", extra, &out.join("native"), 5, 9);
        let ours = eval_returns(&exported, "Pendulum-v1", extra, &out.join("read"), 5, 9);
        assert_eq!(ours, theirs, "{extra:?}");
    }
    let again = export(&exported, &out.join("again.safetensors"));
    assert!(again.status.success(), "{}", stderr(&again));
    let import = gradless(&[
        "import",
        exported.to_str().unwrap(),
        "--out",
        out.join("checkpoint").to_str().unwrap(),
    ]);
    assert_clean_failure(&import, &["actor.safetensors", "critics"]);
    std::fs::remove_dir_all(&out).unwrap();
}

fn copy_file(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
}
