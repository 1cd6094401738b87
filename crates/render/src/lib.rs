//! Episode frames drawn as Gymnasium's `render_mode="rgb_array"` draws its classic-control
//! envs (the same canvas sizes, colours, geometry and frame rates), from the env's float64
//! state, and videos of them: animated GIFs in pure Rust (tiny-skia draws, the gif crate
//! encodes), MP4s through the system's `ffmpeg`.

mod canvas;
mod mp4;
mod scenes;
mod video;

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

pub use canvas::{Frame, Rgb};
pub use mp4::{Mp4Recorder, check_ffmpeg};
pub use scenes::Scene;
pub use video::{GifRecorder, decode_gif};

/// The file formats videos are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoFormat {
    /// Animated GIF, looping.
    #[default]
    Gif,
    /// MP4 (H.264), as Gymnasium's `RecordVideo`, RL Zoo and CleanRL write; needs `ffmpeg`.
    Mp4,
}

impl VideoFormat {
    /// The file name extension, which is also the name on the command line.
    pub fn extension(self) -> &'static str {
        match self {
            VideoFormat::Gif => "gif",
            VideoFormat::Mp4 => "mp4",
        }
    }

    /// Every format.
    pub const ALL: [VideoFormat; 2] = [VideoFormat::Gif, VideoFormat::Mp4];
}

impl fmt::Display for VideoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for VideoFormat {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        VideoFormat::ALL
            .into_iter()
            .find(|format| format.extension() == name)
            .ok_or_else(|| format!("`{name}` is not a video format (gif or mp4)"))
    }
}

/// Writes a scene's frames, in order, into a video of either format.
pub enum VideoRecorder {
    /// An animated GIF.
    Gif(GifRecorder),
    /// An MP4.
    Mp4(Mp4Recorder),
}

impl VideoRecorder {
    /// A video of `scene` in `format`, at the scene's frame rate.
    pub fn new(scene: &Scene, format: VideoFormat) -> Result<Self, RenderError> {
        Ok(match format {
            VideoFormat::Gif => Self::Gif(GifRecorder::new(scene)?),
            VideoFormat::Mp4 => Self::Mp4(Mp4Recorder::new(scene)?),
        })
    }

    /// Appends a frame of the scene's size.
    pub fn push(&mut self, frame: &Frame) -> Result<(), RenderError> {
        match self {
            Self::Gif(recorder) => recorder.push(frame),
            Self::Mp4(recorder) => recorder.push(frame),
        }
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        match self {
            Self::Gif(recorder) => recorder.frames(),
            Self::Mp4(recorder) => recorder.frames(),
        }
    }

    /// The finished file's bytes.
    pub fn finish(self) -> Result<Vec<u8>, RenderError> {
        match self {
            Self::Gif(recorder) => recorder.finish(),
            Self::Mp4(recorder) => recorder.finish(),
        }
    }
}

/// Why a frame or a video could not be made.
#[derive(Debug, Error)]
pub enum RenderError {
    /// No scene draws this env.
    #[error(
        "no renderer for env `{0}` (CartPole, MountainCar, MountainCarContinuous, Pendulum and Acrobot have one)"
    )]
    UnknownEnv(String),
    /// A state that does not fit the scene.
    #[error("cannot draw state {got:?}: expected {expected} finite components")]
    State {
        /// Components the scene reads.
        expected: usize,
        /// What it was given.
        got: Vec<f64>,
    },
    /// A frame of another size than the video's.
    #[error("frame of {got:?} pixels in a video of {expected:?}")]
    FrameSize {
        /// The video's width and height.
        expected: (u32, u32),
        /// The frame's.
        got: (u32, u32),
    },
    /// The GIF encoder failed.
    #[error("writing the GIF failed: {0}")]
    Encoding(#[from] gif::EncodingError),
    /// The bytes are not a GIF this reads.
    #[error("not a readable GIF: {0}")]
    Decoding(#[from] gif::DecodingError),
    /// `ffmpeg`, which writes MP4s, is missing or failed.
    #[error("{0}")]
    Ffmpeg(String),
}
