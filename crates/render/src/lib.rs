//! Episode frames drawn as Gymnasium's `render_mode="rgb_array"` draws its classic-control
//! envs (the same canvas sizes, colours, geometry and frame rates), from the env's float64
//! state, and animated GIFs of them. Pure Rust: tiny-skia draws, the gif crate encodes.

mod canvas;
mod scenes;
mod video;

use thiserror::Error;

pub use canvas::{Frame, Rgb};
pub use scenes::Scene;
pub use video::{GifRecorder, decode_gif};

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
}
