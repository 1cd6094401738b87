//! Episode videos: a checkpoint's first evaluation episodes played again, each on one CPU
//! env from its seed (the same episode the evaluation ran), drawn frame by frame as
//! Gymnasium's `rgb_array` renderer draws the env and written as animated GIFs or MP4s.

use std::path::{Path, PathBuf};

use gradless_envs::Action;
use gradless_policy::{SeededEpisode, watch_episode};
use gradless_render::{RenderError, Scene, VideoFormat, VideoRecorder};
use serde::Serialize;

use crate::{EvalError, LoadedCheckpoint};

/// The listing of a folder's videos: one JSON object per video.
pub const VIDEOS_FILE: &str = "videos.jsonl";

/// Which episodes to record: episode `i` from seed `first_seed + i`, as the evaluation's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPlan {
    /// Seed of episode 0.
    pub first_seed: u64,
    /// Episodes to record.
    pub episodes: usize,
    /// Sample actions (as a stochastic evaluation does) instead of taking the greedy ones.
    pub stochastic: bool,
    /// The videos' file format.
    pub format: VideoFormat,
}

/// An action as a trajectory lists it: an integer, or a list of floats.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TrajectoryAction {
    /// A discrete action.
    Discrete(i64),
    /// A continuous action.
    Continuous(Vec<f32>),
}

/// One recorded episode: its result, its video, and the trajectory that replays it (the
/// start state and the actions, as `gradless replay` and Gymnasium take them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedVideo {
    /// The episode, as the evaluation reports it.
    #[serde(flatten)]
    pub episode: SeededEpisode,
    /// The env it ran on.
    pub env: String,
    /// The video's file name, in the folder beside this listing.
    pub video: String,
    /// Frames in the video: the episode's length + 1 (the reset, then every step).
    pub frames: u64,
    /// The internal float64 state after the reset.
    pub init_state: Vec<f64>,
    /// Every action, in order.
    pub actions: Vec<TrajectoryAction>,
}

impl RecordPlan {
    /// The most videos one recording writes (each of up to thousands of frames).
    pub const MAX_EPISODES: usize = 10_000;
}

/// Where a recording's files go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoFolder {
    /// A folder gradless keeps for videos alone (`videos` inside a checkpoint or an
    /// evaluation folder): the GIFs and the listing are one [`gradless_files::OutputSet`],
    /// shown together or not at all.
    Owned,
    /// A folder the user named (`record --out`) that holds files of theirs, and so is never
    /// swapped for another: each file is replaced atomically, the listing last.
    Given,
}

impl VideoFolder {
    /// How to record into a folder a user named: whole ([`Owned`](Self::Owned)) while it
    /// holds nothing but what recordings write (it is new or empty, or holds a listing and
    /// videos), else file by file ([`Given`](Self::Given)), so that files of theirs stay
    /// where they are.
    pub fn of_named(dir: &Path) -> Self {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Self::Given;
        };
        let a_recordings = |name: &str| {
            name == VIDEOS_FILE || name == gradless_files::LOCK_FILE || is_video_name(name)
        };
        let only_recordings = entries.flatten().all(|entry| {
            entry.file_type().is_ok_and(|t| t.is_file())
                && entry.file_name().to_str().is_some_and(a_recordings)
        });
        // A folder named `.` or `/` has no name to stage beside.
        if only_recordings && dir.file_name().is_some() {
            Self::Owned
        } else {
            Self::Given
        }
    }
}

/// The files of one recording on their way into their folder.
enum VideoWriter {
    Set(gradless_files::OutputSet),
    Files(PathBuf),
}

impl VideoWriter {
    fn write(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Set(set) => set.write(name, bytes),
            Self::Files(dir) => gradless_files::write_atomically(&dir.join(name), bytes),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Self::Set(set) => set.commit(),
            Self::Files(_) => Ok(()),
        }
    }
}

impl LoadedCheckpoint {
    /// Records the plan's episodes into `dir` (made by [`crate::prepare_output_dir`]): one
    /// `episode-NNNN.gif` (or `.mp4`) each, written as it finishes, then the listing [`VIDEOS_FILE`];
    /// `on_video` hears of each video once written (in an [`VideoFolder::Owned`] folder it
    /// shows when the whole recording does).
    pub fn record_videos(
        &self,
        plan: &RecordPlan,
        dir: &Path,
        folder: VideoFolder,
        mut on_video: impl FnMut(&RecordedVideo, &Path),
    ) -> Result<Vec<RecordedVideo>, EvalError> {
        let scene = Scene::for_env(&self.env.id).map_err(|source| self.render_error(source))?;
        if plan.format == VideoFormat::Mp4 {
            gradless_render::check_ffmpeg().map_err(|source| self.render_error(source))?;
        }
        let io = |source| EvalError::Io {
            path: dir.to_path_buf(),
            source,
        };
        // Read before anything is written: the videos an earlier recording listed here are
        // the only files this recording may remove.
        let listed_before = listed_videos(dir);
        let mut writer = match folder {
            VideoFolder::Owned => {
                let mut names: Vec<String> = (0..plan.episodes)
                    .map(|episode| video_name(episode, plan.format))
                    .collect();
                names.push(VIDEOS_FILE.to_string());
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                VideoWriter::Set(gradless_files::OutputSet::begin(dir, &names).map_err(io)?)
            }
            VideoFolder::Given => VideoWriter::Files(dir.to_path_buf()),
        };
        let mut videos = Vec::new();
        for episode in 0..plan.episodes {
            let seed = plan.first_seed.checked_add(episode as u64).ok_or_else(|| {
                EvalError::Incompatible {
                    path: self.dir.clone(),
                    reason: format!("seed {} + {episode} passes {}", plan.first_seed, u64::MAX),
                }
            })?;
            let (bytes, video) = self.record_one(&scene, episode, seed, plan)?;
            writer.write(&video.video, &bytes).map_err(io)?;
            on_video(&video, &dir.join(&video.video));
            videos.push(video);
        }
        let listing: String = videos
            .iter()
            .map(|v| serde_json::to_string(v).expect("videos serialise") + "\n")
            .collect();
        writer.write(VIDEOS_FILE, listing.as_bytes()).map_err(io)?;
        writer.finish().map_err(io)?;
        remove_stale_videos(dir, &listed_before, &videos);
        Ok(videos)
    }

    /// One episode's video bytes and listing entry.
    fn record_one(
        &self,
        scene: &Scene,
        episode: usize,
        seed: u64,
        plan: &RecordPlan,
    ) -> Result<(Vec<u8>, RecordedVideo), EvalError> {
        let mut recorder =
            VideoRecorder::new(scene, plan.format).map_err(|source| self.render_error(source))?;
        let mut init_state = Vec::new();
        let mut actions = Vec::new();
        // The first drawing error; the episode runs on, its frames are no longer drawn.
        let mut failure: Option<RenderError> = None;
        let watched = watch_episode(
            self.agent(),
            &self.env,
            episode,
            seed,
            plan.stochastic,
            |state, action| {
                let continuous = match action {
                    None => {
                        init_state = state.to_vec();
                        None
                    }
                    Some(Action::Discrete(a)) => {
                        actions.push(TrajectoryAction::Discrete(a));
                        None
                    }
                    Some(Action::Continuous(values)) => {
                        actions.push(TrajectoryAction::Continuous(values.to_vec()));
                        Some(values)
                    }
                };
                if failure.is_none()
                    && let Err(error) = scene
                        .draw(state, continuous)
                        .and_then(|frame| recorder.push(&frame))
                {
                    failure = Some(error);
                }
            },
        )
        .map_err(|source| EvalError::Act {
            path: self.dir.clone(),
            source,
        })?;
        if let Some(error) = failure {
            return Err(self.render_error(error));
        }
        let frames = recorder.frames();
        let bytes = recorder
            .finish()
            .map_err(|source| self.render_error(source))?;
        let video = RecordedVideo {
            episode: watched,
            env: self.env.id.clone(),
            video: video_name(episode, plan.format),
            frames,
            init_state,
            actions,
        };
        Ok((bytes, video))
    }

    fn render_error(&self, source: RenderError) -> EvalError {
        EvalError::Render {
            path: self.dir.clone(),
            source,
        }
    }
}

/// The largest listing read back (a recording's entries hold every action).
const MAX_LISTING_BYTES: u64 = 256 << 20;

/// The video file names the listing in `dir` names (none if it is missing or unreadable).
fn listed_videos(dir: &Path) -> Vec<String> {
    let Ok(text) = gradless_files::read_text_bounded(&dir.join(VIDEOS_FILE), MAX_LISTING_BYTES)
    else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|entry| entry.get("video")?.as_str().map(str::to_string))
        .filter(|name| is_video_name(name))
        .collect()
}

/// The file name of episode `episode`'s video in `format`.
fn video_name(episode: usize, format: VideoFormat) -> String {
    format!("episode-{episode:04}.{}", format.extension())
}

/// Whether `name` is a video file name as [`LoadedCheckpoint::record_videos`] writes them
/// (in either format).
fn is_video_name(name: &str) -> bool {
    let Some((stem, extension)) = name.rsplit_once('.') else {
        return false;
    };
    extension.parse::<VideoFormat>().is_ok()
        && stem
            .strip_prefix("episode-")
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the videos an earlier recording listed in `dir` that this one did not write
/// again: only regular files named in that listing; nothing else is touched.
fn remove_stale_videos(dir: &Path, listed_before: &[String], videos: &[RecordedVideo]) {
    for name in listed_before {
        if videos.iter().any(|v| &v.video == name) {
            continue;
        }
        let path = dir.join(name);
        let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if regular && let Err(error) = std::fs::remove_file(&path) {
            tracing::warn!(file = %path.display(), %error, "could not remove an old video");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EvalSettings, LoadedCheckpoint};
    use burn::prelude::Device;
    use gradless_device::InferenceDevice;
    use gradless_policy::AgentDevice;
    use gradless_render::decode_gif;
    use gradless_test_support::{scratch, shipped_checkpoint as shipped};

    fn loaded(name: &str, env: Option<&str>) -> LoadedCheckpoint {
        let device = AgentDevice::new(&InferenceDevice::new(&Device::flex()));
        let settings = EvalSettings {
            env: env.map(str::to_string),
            ..EvalSettings::default()
        };
        LoadedCheckpoint::load(&shipped(name), &settings, &device).unwrap()
    }

    /// Recorded episodes are the evaluation's episodes of the same seeds; every video has
    /// one frame for the reset and one per step, and the cart drawn in each frame stands
    /// where the replayed state puts it.
    /// A recording that fails half way shows nothing of itself in a folder gradless owns;
    /// in a folder the user named, the videos finished before the failure stay.
    #[test]
    fn a_recording_in_its_own_folder_shows_whole_or_not_at_all() {
        let checkpoint = loaded("cartpole-v1-ppo", None);
        // Episode 1's seed would pass u64::MAX: the recording fails after episode 0.
        let plan = RecordPlan {
            first_seed: u64::MAX,
            episodes: 2,
            stochastic: false,
            format: VideoFormat::Gif,
        };
        let owned = scratch("record-owned");
        let err = checkpoint
            .record_videos(&plan, &owned, VideoFolder::Owned, |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("passes"), "{err}");
        assert!(gradless_test_support::sorted_names(&owned).is_empty());
        assert!(
            !gradless_test_support::sorted_names(owned.parent().unwrap())
                .iter()
                .any(|name| name.contains("record-owned.staging")),
            "no staging folder is left"
        );
        // A folder someone put a file of theirs in is written file by file; one holding only
        // a recording's files is written whole.
        assert_eq!(VideoFolder::of_named(&owned), VideoFolder::Owned);
        let given = scratch("record-given");
        std::fs::write(given.join("notes.txt"), b"mine").unwrap();
        assert_eq!(VideoFolder::of_named(&given), VideoFolder::Given);
        checkpoint
            .record_videos(&plan, &given, VideoFolder::Given, |_, _| {})
            .unwrap_err();
        assert_eq!(
            gradless_test_support::sorted_names(&given),
            ["episode-0000.gif", "notes.txt"]
        );
        std::fs::remove_dir_all(&owned).unwrap();
        std::fs::remove_dir_all(&given).unwrap();
    }

    /// An MP4 (through ffmpeg, which `scripts/setup.sh` installs) holds the GIF's frames:
    /// as many, each within H.264's rounding of the same picture.
    #[test]
    fn mp4_videos_hold_the_gif_frames() {
        let checkpoint = loaded("pendulum-v1-sac", None);
        let dir = scratch("record-mp4");
        let plan = |format| RecordPlan {
            first_seed: 7,
            episodes: 1,
            stochastic: false,
            format,
        };
        let gif = checkpoint
            .record_videos(&plan(VideoFormat::Gif), &dir, VideoFolder::Owned, |_, _| {})
            .unwrap();
        let mp4 = checkpoint
            .record_videos(&plan(VideoFormat::Mp4), &dir, VideoFolder::Owned, |_, _| {})
            .unwrap();
        assert_eq!(mp4[0].video, "episode-0000.mp4");
        assert_eq!(mp4[0].episode, gif[0].episode);
        assert!(
            !dir.join("episode-0000.gif").exists(),
            "the listing's old video is removed"
        );
        // Re-recorded as GIF to compare with: the same episode, the same frames.
        let gif_dir = scratch("record-mp4-gif");
        checkpoint
            .record_videos(
                &plan(VideoFormat::Gif),
                &gif_dir,
                VideoFolder::Owned,
                |_, _| {},
            )
            .unwrap();
        let gif_frames =
            decode_gif(&std::fs::read(gif_dir.join("episode-0000.gif")).unwrap()).unwrap();
        let decoded = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-i"])
            .arg(dir.join("episode-0000.mp4"))
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
            .output()
            .expect("ffmpeg runs (scripts/setup.sh installs it)");
        assert!(
            decoded.status.success(),
            "{}",
            String::from_utf8_lossy(&decoded.stderr)
        );
        let (width, height) = (
            gif_frames[0].0.width as usize,
            gif_frames[0].0.height as usize,
        );
        let frame_bytes = width * height * 3;
        assert_eq!(decoded.stdout.len() % frame_bytes, 0);
        assert_eq!(decoded.stdout.len() / frame_bytes, gif_frames.len());
        assert_eq!(gif_frames.len() as u64, mp4[0].frames);
        for (k, ((gif_frame, _), mp4_frame)) in gif_frames
            .iter()
            .zip(decoded.stdout.chunks_exact(frame_bytes))
            .enumerate()
        {
            let total: u64 = gif_frame
                .rgb
                .iter()
                .zip(mp4_frame)
                .map(|(&a, &b)| u64::from(a.abs_diff(b)))
                .sum();
            let mean = total as f64 / frame_bytes as f64;
            assert!(mean < 2.0, "frame {k}: mean difference {mean} levels");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&gif_dir).unwrap();
    }

    #[test]
    fn videos_show_the_evaluated_episodes_frame_by_frame() {
        let checkpoint = loaded("cartpole-v1-ppo", Some("CartPole-v0"));
        let settings = EvalSettings {
            episodes: 2,
            num_envs: 2,
            env: Some("CartPole-v0".into()),
            ..EvalSettings::default()
        };
        let evaluation = checkpoint.evaluate(&settings).unwrap();
        let dir = scratch("record");
        let plan = RecordPlan {
            first_seed: settings.seed,
            episodes: 2,
            stochastic: false,
            format: VideoFormat::Gif,
        };
        let mut heard = 0;
        let videos = checkpoint
            .record_videos(&plan, &dir, VideoFolder::Owned, |_, _| heard += 1)
            .unwrap();
        assert_eq!(heard, 2);
        for (video, evaluated) in videos.iter().zip(&evaluation.episodes) {
            assert_eq!(&video.episode, evaluated);
            assert_eq!(video.frames, u64::from(video.episode.length) + 1);
            let frames = decode_gif(&std::fs::read(dir.join(&video.video)).unwrap()).unwrap();
            assert_eq!(frames.len() as u64, video.frames);
            // Replays the trajectory and finds the cart in image row 305 of each frame.
            let mut env = gradless_envs::make("CartPole-v0").unwrap();
            env.reset(Some(video.episode.seed));
            assert_eq!(env.state().unwrap(), video.init_state);
            let mut cart_x = vec![video.init_state[0]];
            for action in &video.actions {
                let TrajectoryAction::Discrete(a) = action else {
                    panic!("{action:?}")
                };
                env.step(Action::Discrete(*a)).unwrap();
                cart_x.push(env.state().unwrap()[0]);
            }
            for ((frame, _), x) in frames.iter().zip(&cart_x) {
                let black: Vec<u32> = (0..frame.width)
                    .filter(|&column| frame.pixel(column, 305) == [0, 0, 0])
                    .collect();
                let drawn = f64::from(black[0] + black[black.len() - 1]) / 2.0;
                let expected = x * 125.0 + 300.0;
                assert!((drawn - expected).abs() <= 1.0, "{drawn} vs {expected}");
            }
        }
        // Recording fewer episodes again leaves no video the listing does not name.
        let plan = RecordPlan {
            episodes: 1,
            ..plan
        };
        checkpoint
            .record_videos(&plan, &dir, VideoFolder::Owned, |_, _| {})
            .unwrap();
        assert!(!dir.join("episode-0001.gif").exists());
        assert!(dir.join("episode-0000.gif").exists());
        let listing = std::fs::read_to_string(dir.join(VIDEOS_FILE)).unwrap();
        let first: serde_json::Value =
            serde_json::from_str(listing.lines().next().unwrap()).unwrap();
        for key in [
            "episode",
            "seed",
            "return",
            "length",
            "video",
            "frames",
            "init_state",
            "actions",
        ] {
            assert!(first.get(key).is_some(), "{key} missing: {first}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
