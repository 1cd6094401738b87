//! MP4 videos (H.264 in yuv420p, which every player reads, at the scene's frame rate)
//! through the system's `ffmpeg`: the frames go to its standard input as raw RGB as they are
//! drawn, and it writes the file into a private folder, read back when the video ends.
//!
//! Its standard input is one end of a socket pair, not a pipe: gradless lets SIGPIPE end the
//! process (as `head` ends other tools), and a socket write to an encoder that stopped
//! reading returns an error instead (std sends with `MSG_NOSIGNAL`), which is reported.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

use gradless_files::PrivateDir;

use crate::RenderError;
use crate::canvas::Frame;
use crate::scenes::Scene;

/// The program run to encode.
const FFMPEG: &str = "ffmpeg";

/// The most bytes of an encoded video read back (hours of a classic-control scene).
const MAX_VIDEO_BYTES: u64 = 4 << 30;

/// Why `ffmpeg` could not be used, as one line naming it.
fn ffmpeg_error(what: impl std::fmt::Display) -> RenderError {
    RenderError::Ffmpeg(what.to_string())
}

/// The most bytes of `ffmpeg -encoders`' listing read.
const MAX_LISTING_BYTES: usize = 1 << 20;

/// Checks that `ffmpeg` runs and has the H.264 encoder (`libx264`), so that a recording asked
/// for as MP4 is refused before any episode runs rather than after (an encoder missing
/// half way would end the stream the frames are written to).
pub fn check_ffmpeg() -> Result<(), RenderError> {
    let output = Command::new(FFMPEG)
        .args(["-hide_banner", "-encoders"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let listing = match output {
        Ok(output) if output.status.success() => output.stdout,
        Ok(output) => {
            return Err(ffmpeg_error(format!(
                "`{FFMPEG} -encoders` exited with {}",
                output.status
            )));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ffmpeg_error(format!(
                "MP4 videos are written by {FFMPEG}, which is not on PATH (install it, e.g. \
                 `apt-get install ffmpeg`, or record GIFs)"
            )));
        }
        Err(error) => return Err(ffmpeg_error(format!("could not run {FFMPEG}: {error}"))),
    };
    let listing = String::from_utf8_lossy(&listing[..listing.len().min(MAX_LISTING_BYTES)]);
    if !listing
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some("libx264"))
    {
        return Err(ffmpeg_error(format!(
            "this {FFMPEG} has no libx264 (H.264) encoder, which MP4 videos are written with \
             (install an {FFMPEG} built with it, or record GIFs)"
        )));
    }
    Ok(())
}

/// Writes a scene's frames, in order, into an MP4 encoded by `ffmpeg`.
pub struct Mp4Recorder {
    child: Child,
    frames_in: Option<UnixStream>,
    folder: PrivateDir,
    width: u32,
    height: u32,
    frames: u64,
}

impl Mp4Recorder {
    /// A video of `scene` at the scene's frame rate; starts `ffmpeg`.
    pub fn new(scene: &Scene) -> Result<Self, RenderError> {
        let (width, height) = scene.size();
        let folder = PrivateDir::create("gradless-mp4")
            .map_err(|e| ffmpeg_error(format!("a private folder for {FFMPEG}'s output: {e}")))?;
        let log = std::fs::File::create(folder.path().join("ffmpeg.log"))
            .map_err(|e| ffmpeg_error(format!("{FFMPEG}'s log: {e}")))?;
        let (frames_in, encoder_end) =
            UnixStream::pair().map_err(|e| ffmpeg_error(format!("a socket to {FFMPEG}: {e}")))?;
        let child = Command::new(FFMPEG)
            .args(["-hide_banner", "-loglevel", "error", "-f", "rawvideo"])
            .args([
                "-pix_fmt",
                "rgb24",
                "-video_size",
                &format!("{width}x{height}"),
            ])
            .args(["-framerate", &scene.fps().to_string(), "-i", "pipe:0"])
            // yuv420p halves the chroma planes: an odd side gets a pixel of padding.
            .args(["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264"])
            .args([
                "-pix_fmt",
                "yuv420p",
                "-crf",
                "18",
                "-movflags",
                "+faststart",
            ])
            .arg(folder.path().join("video.mp4"))
            .stdin(Stdio::from(OwnedFd::from(encoder_end)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    check_ffmpeg().err().unwrap_or_else(|| ffmpeg_error(e))
                }
                _ => ffmpeg_error(format!("could not start {FFMPEG}: {e}")),
            })?;
        Ok(Self {
            child,
            frames_in: Some(frames_in),
            folder,
            width,
            height,
            frames: 0,
        })
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Appends a frame of the scene's size.
    pub fn push(&mut self, frame: &Frame) -> Result<(), RenderError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(RenderError::FrameSize {
                expected: (self.width, self.height),
                got: (frame.width, frame.height),
            });
        }
        let frames_in = self.frames_in.as_mut().expect("open until finish");
        if frames_in.write_all(&frame.rgb).is_err() {
            // ffmpeg stopped reading: it says why in its log.
            return Err(self.failure());
        }
        self.frames += 1;
        Ok(())
    }

    /// The finished file's bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, RenderError> {
        drop(self.frames_in.take());
        let status = self
            .child
            .wait()
            .map_err(|e| ffmpeg_error(format!("waiting for {FFMPEG}: {e}")))?;
        if !status.success() {
            return Err(self.failure());
        }
        gradless_files::read_bounded(&self.folder.path().join("video.mp4"), MAX_VIDEO_BYTES)
            .map_err(|e| ffmpeg_error(format!("reading {FFMPEG}'s video: {e}")))
    }

    /// The error `ffmpeg` reported: the last line of its log.
    fn failure(&mut self) -> RenderError {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log =
            std::fs::read_to_string(self.folder.path().join("ffmpeg.log")).unwrap_or_default();
        let last = log
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("no message");
        ffmpeg_error(format!("{FFMPEG} failed: {}", gradless_files::quoted(last)))
    }
}

impl Drop for Mp4Recorder {
    fn drop(&mut self) {
        // A video abandoned half way: its encoder stops, its folder goes with `folder`.
        if self.frames_in.take().is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
