//! Sessions end to end on flex: resumes are exact, bad resumes are refused, faults leave a
//! run that can continue.

use super::logging::Short;
use super::*;
use crate::profile::{Phase, Profile};
use gradless_test_support::scratch;

fn config(text: &str) -> TrainConfig {
    TrainConfig::from_toml(text, &[]).unwrap()
}

const PPO: &str = include_str!("test_configs/ppo.toml");

const DQN: &str = include_str!("test_configs/dqn.toml");

/// Pendulum (200-step episodes, truncation only) with every SAC feature on: delayed actor
/// steps, target updates every other step, several gradient steps a round, autotuning.
const SAC: &str = include_str!("test_configs/sac.toml");

fn episode_lines(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join(crate::run_dir::METRICS_FILE))
        .unwrap()
        .lines()
        .filter(|line| line.contains("\"episode\""))
        .map(str::to_string)
        .collect()
}

/// Training N iterations straight and N/2, a "kill", a resume from the latest checkpoint
/// and the rest gives the very same parameters, optimizer moments and episodes, on flex.
fn resume_matches_straight_run(name: &str, text: &str, halfway: u64) {
    let straight_dir = scratch(&format!("{name}-straight"));
    let mut straight = Session::start(config(text), Backend::Flex, &straight_dir).unwrap();
    let summary = straight.run(StopAt::End, &mut ()).unwrap();
    assert!(summary.episodes > 0);

    let resumed_dir = scratch(&format!("{name}-resumed"));
    let mut first = Session::start(config(text), Backend::Flex, &resumed_dir).unwrap();
    first.run(StopAt::Iterations(halfway), &mut ()).unwrap();
    // Steps taken after the checkpoint are lost with the process; they are redone.
    drop(first);
    let mut second = Session::resume(&resumed_dir, None, Some(config(text))).unwrap();
    second.run(StopAt::End, &mut ()).unwrap();

    let (parameters, moments) = straight.parameters_and_moments();
    let (resumed_parameters, resumed_moments) = second.parameters_and_moments();
    assert!(!moments.is_empty());
    assert_eq!(parameters, resumed_parameters);
    assert_eq!(moments, resumed_moments);
    assert_eq!(episode_lines(&straight_dir), episode_lines(&resumed_dir));
    // Only the newest `keep_last` checkpoints (and the best) remain.
    let kept = second.run_dir().checkpoints().unwrap();
    assert!((2..=3).contains(&kept.len()), "{kept:?}");
    Checkpoint::open(&second.run_dir().pointer(LATEST).unwrap().unwrap()).unwrap();
    std::fs::remove_dir_all(&straight_dir).unwrap();
    std::fs::remove_dir_all(&resumed_dir).unwrap();
}

#[test]
fn ppo_resume_is_exact() {
    // 4 updates of 64 transitions; checkpoints every update; killed after 3, one of
    // which is lost.
    resume_matches_straight_run("ppo", PPO, 3);
}

#[test]
fn gaussian_ppo_resume_is_exact() {
    // Pendulum only truncates (at 200 steps): this also covers the bootstrap there.
    let pendulum = PPO
        .replace("CartPole-v1", "Pendulum-v1")
        .replace("total_timesteps = 256", "total_timesteps = 512");
    resume_matches_straight_run("ppo-gaussian", &pendulum, 5);
}

/// Observation statistics and reward scaling are part of the state: a resumed run continues
/// with them exactly, and its checkpoints hand the statistics to the agent.
#[test]
fn normalised_ppo_resume_is_exact_and_checkpoints_carry_the_statistics() {
    let pendulum = PPO
        .replace("CartPole-v1", "Pendulum-v1")
        .replace("total_timesteps = 256", "total_timesteps = 512")
        .replace(
            "[ppo]",
            "[normalization]\n    observations = true\n    rewards = true\n    clip_observations = 5.0\n    [ppo]",
        );
    resume_matches_straight_run("ppo-normalised", &pendulum, 5);

    let dir = scratch("ppo-normalised-checkpoint");
    let mut session = Session::start(config(&pendulum), Backend::Flex, &dir).unwrap();
    session.run(StopAt::End, &mut ()).unwrap();
    let checkpoint =
        Checkpoint::open(&session.run_dir().pointer(LATEST).unwrap().unwrap()).unwrap();
    let saved = checkpoint
        .metadata()
        .observation_normalization
        .clone()
        .expect("the checkpoint records the statistics");
    assert_eq!(saved.clip, 5.0);
    // 512 observations of cos, sin and angular velocity: cos and sin within [-1, 1].
    assert!(
        (saved.moments.count - 512.0).abs() < 1.0,
        "{}",
        saved.moments.count
    );
    assert!(saved.moments.mean[..2].iter().all(|m| m.abs() <= 1.0));
    assert!(saved.moments.var.iter().all(|&v| v > 0.0 && v != 1.0));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The off-policy algorithms keep raw transitions and normalise what they sample: their
/// statistics resume exactly too.
#[test]
fn normalised_off_policy_resumes_are_exact() {
    let normalise = "[normalization]\n    observations = true\n    rewards = true\n";
    let dqn = DQN.replace("    [dqn]", &format!("    {normalise}    [dqn]"));
    resume_matches_straight_run("dqn-normalised", &dqn, 120);
    let sac = SAC.replace("    [sac]", &format!("    {normalise}    [sac]"));
    resume_matches_straight_run("sac-normalised", &sac, 170);
}

#[test]
fn dqn_resume_is_exact() {
    // 200 vector steps; checkpoints every 50; killed after 120 (20 lost).
    resume_matches_straight_run("dqn", DQN, 120);
}

#[test]
fn sac_resume_is_exact() {
    // 250 vector steps; checkpoints every 50; killed after 170 (20 lost).
    resume_matches_straight_run("sac", SAC, 170);
}

/// With the envs on the device the rollout reads back once; episodes are still logged,
/// and a run resumes from the device envs' snapshot (not bit for bit: the device's
/// generator state is not saved).
#[test]
fn ppo_with_device_envs_learns_logs_episodes_and_resumes() {
    let text = r#"
        env = "CartPole-v1"
        algorithm = "ppo"
        seed = 1
        total_timesteps = 16384
        checkpoint = { every_steps = 4096, keep_last = 2 }
        evaluation = { every_steps = 0 }
        [ppo]
        env_backend = "device"
    "#;
    let dir = scratch("device-envs");
    let mut first = Session::start(config(text), Backend::Flex, &dir).unwrap();
    first.run(StopAt::Iterations(10), &mut ()).unwrap();
    drop(first);
    let latest = RunDir::open(&dir)
        .unwrap()
        .unwrap()
        .pointer(LATEST)
        .unwrap()
        .unwrap();
    let checkpoint = Checkpoint::open(&latest).unwrap();
    let state = &checkpoint.metadata().trainer_state;
    assert!(
        state["algorithm"]["device_env"]["state"].is_array(),
        "{state}"
    );
    let mut second = Session::resume(&dir, None, Some(config(text))).unwrap();
    let summary = second.run(StopAt::End, &mut ()).unwrap();
    assert_eq!(summary.global_step, 16384);
    let episodes = episode_lines(&dir);
    assert!(episodes.len() > 100, "{}", episodes.len());
    // A random policy balances for about 22 steps; after 32 updates the last 100
    // episodes average 50-60 (seeds 1-4 measured).
    assert!(summary.training_return.unwrap() > 35.0, "{summary:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resume_refuses_another_config_and_non_runs() {
    let dir = scratch("mismatch");
    let mut session = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
    session.run(StopAt::Iterations(1), &mut ()).unwrap();
    drop(session);
    let other = TrainConfig::from_toml(PPO, &["ppo.clip_coef=0.3".into()]).unwrap();
    let err = Session::resume(&dir, None, Some(other))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("`ppo.clip_coef` (run: 0.2, given: 0.3)"),
        "{err}"
    );
    assert!(err.contains("step-0000000064"), "{err}");
    let err = Session::start(config(PPO), Backend::Flex, &dir)
        .err()
        .unwrap();
    assert!(matches!(err, TrainError::RunExists(_)), "{err}");
    let err = Session::resume(&dir.join("checkpoints"), None, None)
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a run directory"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A learning rate that blows the network up stops training with an error, and the
/// checkpoint written before stays the latest and intact; without one, the error says
/// none is kept, and the same run can be started again.
#[test]
fn divergence_stops_and_says_what_is_kept() {
    let dir = scratch("diverge");
    let text = DQN
        .replace(
            "learning_starts = 60",
            "learning_starts = 120\nlearning_rate = 1e30",
        )
        .replace("max_grad_norm = 10.0", "");
    let mut session = Session::start(config(&text), Backend::Flex, &dir).unwrap();
    let err = session.run(StopAt::End, &mut ()).err().unwrap();
    assert!(
        matches!(err, TrainError::Diverged { kept: Some(_), .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("the last good checkpoint")
            && err.to_string().contains("step-0000000100"),
        "{err}"
    );
    let latest = session.run_dir().pointer(LATEST).unwrap().unwrap();
    assert!(latest.ends_with("step-0000000100"), "{latest:?}");
    Checkpoint::open(&latest).unwrap();
    drop(session);
    std::fs::remove_dir_all(&dir).unwrap();

    let early = text.replace("every_steps = 100", "every_steps = 1000");
    let mut session = Session::start(config(&early), Backend::Flex, &dir).unwrap();
    let err = session.run(StopAt::End, &mut ()).err().unwrap().to_string();
    assert!(err.contains("no checkpoint was written"), "{err}");
    drop(session);
    // Not stuck: a new start into the same folder is accepted.
    let again = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
    drop(again);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Killed before its first checkpoint, a run is started again by `--resume` (from its
/// config.toml) and by a new `train` into the same folder.
#[test]
fn a_run_killed_before_its_first_checkpoint_can_be_continued() {
    let dir = scratch("unstarted");
    // Started, then killed before its first iteration ended.
    drop(Session::start(config(PPO), Backend::Flex, &dir).unwrap());
    assert!(dir.join(CONFIG_FILE).is_file());
    // On the device the run was started on (flex), recorded in the run directory.
    let mut resumed = Session::resume(&dir, None, None).unwrap();
    let summary = resumed.run(StopAt::End, &mut ()).unwrap();
    assert_eq!(summary.global_step, 256);
    assert_eq!(resumed.device.backend, Backend::Flex);
    drop(resumed);
    std::fs::remove_dir_all(&dir).unwrap();

    let first = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
    drop(first);
    Session::start(config(PPO), Backend::Flex, &dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A process killed after its last checkpoint was renamed into place but before
/// `latest` moved: the resumed run writes that checkpoint again and moves `latest`.
#[test]
fn a_checkpoint_newer_than_latest_is_redone() {
    let dir = scratch("orphan");
    let mut session = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
    session.run(StopAt::End, &mut ()).unwrap();
    let run = session.run_dir();
    let last = run.pointer(LATEST).unwrap().unwrap();
    assert!(last.ends_with("step-0000000256"), "{last:?}");
    // What the kill leaves: `latest` one checkpoint behind.
    run.set_pointer(LATEST, &run.checkpoint_path(192)).unwrap();
    drop(session);
    let mut resumed = Session::resume(&dir, None, None).unwrap();
    let summary = resumed.run(StopAt::End, &mut ()).unwrap();
    assert_eq!(summary.global_step, 256);
    assert_eq!(summary.latest_checkpoint.as_ref(), Some(&last));
    Checkpoint::open(&last).unwrap();
    drop(resumed);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn checkpoint_names(dir: &Path) -> Vec<String> {
    gradless_policy::run_layout::run_checkpoints(dir)
        .unwrap()
        .unwrap()
        .iter()
        .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// A `latest` that names a missing checkpoint, or one that does not open, fails the resume
/// before anything is removed; a `latest` moved back to an older sound checkpoint keeps the
/// newer ones until the resumed run has written their steps again.
#[test]
fn a_bad_latest_removes_no_checkpoint() {
    let dir = scratch("bad-latest");
    let text = PPO.replace("keep_last = 2", "keep_last = 3");
    let mut session = Session::start(config(&text), Backend::Flex, &dir).unwrap();
    session.run(StopAt::End, &mut ()).unwrap();
    drop(session);
    let before = checkpoint_names(&dir);
    assert_eq!(
        before,
        ["step-0000000128", "step-0000000192", "step-0000000256"]
    );
    std::fs::write(dir.join(LATEST), "checkpoints/step-0000000001\n").unwrap();
    let err = Session::resume(&dir, None, None).err().unwrap().to_string();
    assert!(err.contains("step-0000000001"), "{err}");
    assert_eq!(checkpoint_names(&dir), before);

    let broken = dir.join("checkpoints/step-0000000128");
    std::fs::write(dir.join(LATEST), "checkpoints/step-0000000128\n").unwrap();
    std::fs::write(broken.join(gradless_policy::METADATA_FILE), b"{").unwrap();
    Session::resume(&dir, None, None).err().unwrap();
    assert_eq!(checkpoint_names(&dir), before);

    // Pointed back at a sound checkpoint: the newer two stay while it redoes their steps.
    std::fs::write(dir.join(LATEST), "checkpoints/step-0000000192\n").unwrap();
    let mut resumed = Session::resume(&dir, None, None).unwrap();
    resumed.run(StopAt::Iterations(0), &mut ()).unwrap();
    assert_eq!(checkpoint_names(&dir), before);
    resumed.run(StopAt::End, &mut ()).unwrap();
    drop(resumed);
    assert_eq!(
        checkpoint_names(&dir),
        ["step-0000000128", "step-0000000192", "step-0000000256"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every file a resume reads is one the checkpoint lists and hashed: a state file left out
/// of the metadata (its hash sealed again) and replaced by a FIFO is refused by name, at
/// once, instead of being read forever; an oversized one is refused before it is read.
#[test]
fn a_resume_reads_only_listed_files_within_their_bound() {
    let dir = scratch("unlisted");
    let mut session = Session::start(config(DQN), Backend::Flex, &dir).unwrap();
    session.run(StopAt::End, &mut ()).unwrap();
    drop(session);
    let latest = dir.join("checkpoints/step-0000000400");
    let metadata_path = latest.join(gradless_policy::METADATA_FILE);
    let original = std::fs::read(&metadata_path).unwrap();
    let mut metadata: Metadata = serde_json::from_slice(&original).unwrap();
    metadata.files.remove("replay_buffer.bin");
    metadata.metadata_sha256 = metadata.content_sha256();
    std::fs::write(&metadata_path, serde_json::to_vec(&metadata).unwrap()).unwrap();
    let replay = latest.join("replay_buffer.bin");
    std::fs::remove_file(&replay).unwrap();
    gradless_test_support::make_fifo(&replay);
    let err = Session::resume(&dir, None, None).err().unwrap().to_string();
    assert!(err.contains("does not list replay_buffer.bin"), "{err}");

    // Listed and hashed, but larger than a buffer of this run can be.
    std::fs::remove_file(&replay).unwrap();
    let big = vec![0u8; 150 * (2 * 4 + 1 + 2) * 8 + 1024];
    std::fs::write(&replay, &big).unwrap();
    metadata.files.insert(
        "replay_buffer.bin".into(),
        gradless_policy::sha256_file(&replay).unwrap(),
    );
    metadata.metadata_sha256 = metadata.content_sha256();
    std::fs::write(&metadata_path, serde_json::to_vec(&metadata).unwrap()).unwrap();
    let err = Session::resume(&dir, None, None).err().unwrap().to_string();
    assert!(
        err.contains("replay_buffer.bin") && err.contains("bytes"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run directory removed while training stops the run instead of being made again.
#[test]
fn a_run_directory_removed_while_training_stops_the_run() {
    let dir = scratch("removed-run");
    let mut session = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
    session.run(StopAt::Iterations(1), &mut ()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let err = session.run(StopAt::End, &mut ()).unwrap_err().to_string();
    assert!(err.contains("removed"), "{err}");
    assert!(!dir.exists());
}

#[test]
fn a_run_in_use_is_refused_to_a_second_writer() {
    let dir = scratch("locked");
    let mut session = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
    session.run(StopAt::Iterations(1), &mut ()).unwrap();
    let err = Session::resume(&dir, None, None).err().unwrap().to_string();
    assert!(err.contains("in use by another gradless process"), "{err}");
    drop(session);
    Session::resume(&dir, None, None).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `latest` naming a checkpoint through a link (into another run) is refused.
#[test]
fn pointers_do_not_leave_the_run() {
    let dir = scratch("escape");
    let other = scratch("escape-other");
    let mut session = Session::start(config(PPO), Backend::Flex, &dir).unwrap();
    session.run(StopAt::Iterations(1), &mut ()).unwrap();
    drop(session);
    let mut foreign = Session::start(config(DQN), Backend::Flex, &other).unwrap();
    foreign.run(StopAt::Iterations(100), &mut ()).unwrap();
    drop(foreign);
    let checkpoints = dir.join("checkpoints");
    std::os::unix::fs::symlink(
        other.join("checkpoints/step-0000000100"),
        checkpoints.join("step-0000009999"),
    )
    .unwrap();
    std::fs::write(dir.join(LATEST), "checkpoints/step-0000009999\n").unwrap();
    let err = Session::resume(&dir, None, None).err().unwrap().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    std::fs::write(dir.join(LATEST), "x".repeat(100_000)).unwrap();
    let err = Session::resume(&dir, None, None).err().unwrap().to_string();
    assert!(err.len() < 300, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}

/// The same run's first update on wgpu (lavapipe without a GPU) and on flex: same
/// initial network (drawn on the host), same rollout, parameters after the update
/// agree to float32 rounding.
#[test]
fn first_update_on_wgpu_matches_flex() {
    let mut parameters = Vec::new();
    for backend in [Backend::Flex, Backend::Wgpu] {
        let dir = scratch(&format!("wgpu-{backend}"));
        let mut session = Session::start(config(PPO), backend, &dir).unwrap();
        session.run(StopAt::Iterations(1), &mut ()).unwrap();
        parameters.push(session.parameters_and_moments().0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let largest = parameters[0]
        .iter()
        .zip(&parameters[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(largest < 1e-4, "largest difference {largest}");
}

#[test]
fn log_numbers_keep_four_significant_digits() {
    let shown: Vec<String> = [
        43.767292,
        -0.0018129865,
        0.69297397,
        1.7e-5,
        287.0,
        0.0,
        1.5e7,
    ]
    .iter()
    .map(|&x| Short(x).to_string())
    .collect();
    assert_eq!(
        shown,
        [
            "43.77",
            "-0.001813",
            "0.6930",
            "1.700e-5",
            "287.0",
            "0",
            "1.500e7"
        ]
    );
}

#[test]
fn burn_version_is_the_locked_one() {
    let lock = std::fs::read_to_string(gradless_test_support::workspace_root().join("Cargo.lock"))
        .unwrap();
    assert!(
        lock.contains(&format!("name = \"burn\"\nversion = \"{BURN_VERSION}\"")),
        "Cargo.lock pins another burn than {BURN_VERSION}"
    );
}

/// A profiled run learns exactly what an unprofiled one does, and its profile names the
/// algorithm's phases, counts its updates and stays within the run's training time.
fn profiled_run_matches_and_reports(
    name: &str,
    text: &str,
    phases: &[Phase],
    updates: Option<u64>,
) {
    let plain_dir = scratch(&format!("{name}-plain"));
    let mut plain = Session::start(config(text), Backend::Flex, &plain_dir).unwrap();
    let plain_summary = plain.run(StopAt::End, &mut ()).unwrap();
    assert_eq!(plain_summary.profile, None);
    assert!(!plain_dir.join(crate::profile::PROFILE_FILE).exists());

    let profiled_dir = scratch(&format!("{name}-profiled"));
    let mut profiled = Session::start(config(text), Backend::Flex, &profiled_dir).unwrap();
    profiled.profile();
    let summary = profiled.run(StopAt::End, &mut ()).unwrap();
    assert_eq!(
        plain.parameters_and_moments(),
        profiled.parameters_and_moments()
    );
    assert_eq!(episode_lines(&plain_dir), episode_lines(&profiled_dir));

    let profile = summary.profile.expect("profiled");
    let saved: Profile = serde_json::from_str(
        &std::fs::read_to_string(profiled_dir.join(crate::profile::PROFILE_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(saved, profile);
    let seen: Vec<Phase> = profile.phases.iter().map(|p| p.phase).collect();
    for phase in phases {
        assert!(seen.contains(phase), "{name}: no {phase:?} in {seen:?}");
    }
    assert_eq!(profile.env_steps, summary.global_step);
    match updates {
        Some(updates) => assert_eq!(profile.updates, updates),
        None => assert!(profile.updates > 0),
    }
    assert!(
        profile.seconds > 0.0 && profile.seconds <= summary.train_seconds,
        "{name}: profiled {} s of {} s trained",
        profile.seconds,
        summary.train_seconds
    );
    std::fs::remove_dir_all(&plain_dir).unwrap();
    std::fs::remove_dir_all(&profiled_dir).unwrap();
}

#[test]
fn profiling_changes_nothing_and_times_every_phase() {
    use Phase::*;
    let update = [Minibatch, Forward, Backward, Optimizer, Readback];
    // 256 steps of 64 transitions: 4 updates.
    let ppo = [&update[..], &[Rollout, Advantages, GradClip]].concat();
    profiled_run_matches_and_reports("profile-ppo", PPO, &ppo, Some(4));
    let off_policy = [&update[..], &[Acting, EnvStep, NetworkCopy]].concat();
    profiled_run_matches_and_reports(
        "profile-dqn",
        DQN,
        &[&off_policy[..], &[GradClip]].concat(),
        None,
    );
    profiled_run_matches_and_reports("profile-sac", SAC, &off_policy, None);
}
