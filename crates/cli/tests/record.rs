//! `gradless record` and `gradless eval --record` end to end on flex.

mod common;

use common::*;
use gradless_render::decode_gif;

/// Every video decodes to one frame for the reset and one per step of its episode, and the
/// listing says which episode (and seed) each one shows.
#[test]
fn record_writes_one_gif_per_episode_and_a_listing() {
    let out = scratch("record");
    // A user's own GIF in --out, named as a video is: not this command's to remove.
    std::fs::write(out.join("episode-0007.gif"), b"mine").unwrap();
    // The shipped DQN agent on CartPole-v0 into `out`, from seed 7.
    let record = |episodes: &str| {
        on_flex(
            "record",
            &shipped("cartpole-v1-dqn"),
            &[
                "--json",
                "--episodes",
                episodes,
                "--seed",
                "7",
                "--env",
                "CartPole-v0",
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };
    let output = record("2");
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 2);
    for (k, line) in lines.iter().enumerate() {
        assert_eq!(line["episode"], k);
        assert_eq!(line["seed"], 7 + k as u64);
        let length = line["length"].as_u64().unwrap();
        assert_eq!(line["frames"], length + 1);
        let bytes = std::fs::read(line["video"].as_str().unwrap()).unwrap();
        let frames = decode_gif(&bytes).unwrap();
        assert_eq!(frames.len() as u64, length + 1);
        assert_eq!((frames[0].0.width, frames[0].0.height), (600, 400));
        assert!(
            frames.iter().all(|(_, delay)| *delay == 2),
            "CartPole renders at 50 fps"
        );
    }
    let listing = std::fs::read_to_string(out.join("videos.jsonl")).unwrap();
    assert_eq!(listing.lines().count(), 2);
    assert_eq!(
        std::fs::read(out.join("episode-0007.gif")).unwrap(),
        b"mine"
    );
    // A second, shorter recording removes the video the first listed and did not write
    // again, and still not the user's.
    let output = record("1");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(out.join("episode-0000.gif").is_file());
    assert!(!out.join("episode-0001.gif").exists());
    assert_eq!(
        std::fs::read(out.join("episode-0007.gif")).unwrap(),
        b"mine"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// `eval --record N` records the evaluation's first N episodes beside its files: the same
/// episodes (returns and lengths) the evaluation logged; here as MP4s.
#[test]
fn eval_records_its_first_episodes_into_its_folder() {
    let out = scratch("eval-record");
    let output = on_flex(
        "eval",
        &shipped("cartpole-v1-ppo"),
        &[
            "--episodes",
            "3",
            "--record",
            "2",
            "--record-format",
            "mp4",
            "--env",
            "CartPole-v0",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let folder = out.join("cartpole-v1-ppo");
    let read_lines = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(folder.join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let episodes = read_lines("episodes.jsonl");
    let videos = read_lines("videos/videos.jsonl");
    assert_eq!((episodes.len(), videos.len()), (3, 2));
    for (video, episode) in videos.iter().zip(&episodes) {
        for key in [
            "episode",
            "seed",
            "return",
            "length",
            "terminated",
            "truncated",
        ] {
            assert_eq!(video[key], episode[key], "{key}");
        }
        let name = video["video"].as_str().unwrap();
        assert!(name.ends_with(".mp4"), "{name}");
        let bytes = std::fs::read(folder.join("videos").join(name)).unwrap();
        assert_eq!(&bytes[4..8], b"ftyp", "an MP4 file");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_record_requests_are_one_line_errors() {
    let checkpoint = shipped("cartpole-v1-ppo");
    let path = checkpoint.to_str().unwrap();
    assert_clean_failure(
        &gradless(&["record", path, "--episodes", "0", "--device", "flex"]),
        &["--episodes"],
    );
    assert_clean_failure(
        &gradless(&["record", "/nonexistent", "--device", "flex"]),
        &["/nonexistent", "no checkpoint"],
    );
    assert_clean_failure(
        &gradless(&[
            "eval",
            path,
            "--record",
            "1",
            "--env-backend",
            "device",
            "--device",
            "flex",
        ]),
        &["--record", "--env-backend cpu"],
    );
    // MP4s need ffmpeg: without it on PATH, one line naming it and the flag, nothing written.
    let no_tools = scratch("record-no-ffmpeg");
    let out = no_tools.join("videos");
    // `record --format mp4` with PATH holding only `no_tools` (where a fake ffmpeg goes).
    let mp4_with_only_tools_in_path = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gradless"))
            .args([
                "record", path, "--format", "mp4", "--device", "flex", "--out",
            ])
            .arg(&out)
            .env("PATH", &no_tools)
            .output()
            .unwrap()
    };
    let without_ffmpeg = mp4_with_only_tools_in_path();
    assert_clean_failure(&without_ffmpeg, &["--format mp4", "ffmpeg", "not on PATH"]);
    assert!(!out.exists());
    // An ffmpeg without the H.264 encoder is refused before any episode runs.
    let fake = no_tools.join("ffmpeg");
    std::fs::write(&fake, "#!/bin/sh\necho ' V....D mpeg4  MPEG-4 part 2'\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let without_x264 = mp4_with_only_tools_in_path();
    assert_clean_failure(&without_x264, &["--format mp4", "no libx264"]);
    assert!(!out.exists());
    // An encoder that stops reading half way: one line with what it said, not a process
    // ended by SIGPIPE.
    std::fs::write(
        &fake,
        "#!/bin/sh\necho ' V....D libx264  H.264'\n[ \"$2\" = -encoders ] && exit 0\necho 'No space left on device' >&2\nexit 1\n",
    )
    .unwrap();
    let stopped = mp4_with_only_tools_in_path();
    assert_clean_failure(&stopped, &["ffmpeg failed", "No space left on device"]);
    std::fs::remove_dir_all(&no_tools).unwrap();
    assert_clean_failure(
        &gradless(&["record", path, "--format", "avi", "--device", "flex"]),
        &["--format", "avi", "gif or mp4"],
    );
    // An output folder that is a link is refused, not written through.
    let root = scratch("record-link");
    std::fs::create_dir_all(root.join("elsewhere")).unwrap();
    let copy = root.join("checkpoint");
    copy_dir(&checkpoint, &copy);
    std::os::unix::fs::symlink(root.join("elsewhere"), copy.join("videos")).unwrap();
    assert_clean_failure(&on_flex("record", &copy, &["--episodes", "1"]), &["videos"]);
    assert_eq!(
        std::fs::read_dir(root.join("elsewhere")).unwrap().count(),
        0
    );
    std::fs::remove_dir_all(&root).unwrap();
}
