//! Animated GIFs of a scene's frames: one palette for the whole video (the scene's colours
//! and the blends its anti-aliased edges make), each frame stored as the rectangle that
//! changed since the one before, delays that keep the env's frame rate on average.

use std::collections::HashMap;
use std::num::NonZeroU64;

use gif::{DecodeOptions, DisposalMethod, Encoder, MemoryLimit, Repeat};

use crate::RenderError;
use crate::canvas::{Frame, Rgb};
use crate::scenes::Scene;

/// Blend levels between two of a scene's colours in the palette (edges are drawn with 256
/// coverage levels; 16 keep them smooth and the palette within 256 entries).
const BLEND_LEVELS: u32 = 16;

/// The palette: a scene's colours first, then blends of every pair of them.
struct Palette {
    colours: Vec<Rgb>,
    index_of: HashMap<Rgb, u8>,
}

impl Palette {
    fn for_scene(scene: &Scene) -> Self {
        let base = scene.colours();
        let mut colours = base.to_vec();
        for (i, a) in base.iter().enumerate() {
            for b in &base[i + 1..] {
                for level in 1..BLEND_LEVELS {
                    let mix = |x: u8, y: u8| {
                        let (x, y) = (u32::from(x), u32::from(y));
                        ((x * (BLEND_LEVELS - level) + y * level + BLEND_LEVELS / 2) / BLEND_LEVELS)
                            as u8
                    };
                    colours.push([mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])]);
                }
            }
        }
        assert!(colours.len() <= 256, "a scene has at most six colours");
        let index_of = colours
            .iter()
            .enumerate()
            .rev()
            .map(|(k, &c)| (c, k as u8))
            .collect();
        Self { colours, index_of }
    }

    /// The entry nearest to `colour` (remembered: frames repeat their few edge colours).
    fn index(&mut self, colour: Rgb) -> u8 {
        if let Some(&k) = self.index_of.get(&colour) {
            return k;
        }
        let distance = |c: &Rgb| {
            c.iter()
                .zip(colour)
                .map(|(&a, b)| (i32::from(a) - i32::from(b)).pow(2))
                .sum::<i32>()
        };
        let nearest = (0..self.colours.len())
            .min_by_key(|&k| distance(&self.colours[k]))
            .expect("palettes are not empty") as u8;
        self.index_of.insert(colour, nearest);
        nearest
    }

    fn rgb_bytes(&self) -> Vec<u8> {
        self.colours.iter().flatten().copied().collect()
    }
}

/// Writes a scene's frames, in order, into an animated GIF held in memory.
pub struct GifRecorder {
    encoder: Encoder<Vec<u8>>,
    palette: Palette,
    width: u32,
    height: u32,
    fps: u32,
    // The last frame's RGB pixels.
    previous: Option<Vec<u8>>,
    frames: u64,
}

impl GifRecorder {
    /// A video of `scene`, looping, at the scene's frame rate.
    pub fn new(scene: &Scene) -> Result<Self, RenderError> {
        let (width, height) = scene.size();
        let palette = Palette::for_scene(scene);
        let mut encoder = Encoder::new(
            Vec::new(),
            width as u16,
            height as u16,
            &palette.rgb_bytes(),
        )?;
        encoder.set_repeat(Repeat::Infinite)?;
        Ok(Self {
            encoder,
            palette,
            width,
            height,
            fps: scene.fps(),
            previous: None,
            frames: 0,
        })
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// How long frame `k` shows, in GIF's hundredths of a second: rounded so that frame
    /// `k` starts at `k / fps` seconds to the nearest hundredth (30 fps: 3, 4, 3, 3, 4, ...).
    fn delay(&self, k: u64) -> u16 {
        let fps = u64::from(self.fps);
        let start = |k: u64| (k * 100 + fps / 2) / fps;
        (start(k + 1) - start(k)) as u16
    }

    /// Appends a frame of the scene's size.
    pub fn push(&mut self, frame: &Frame) -> Result<(), RenderError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(RenderError::FrameSize {
                expected: (self.width, self.height),
                got: (frame.width, frame.height),
            });
        }
        let (w, h) = (self.width as usize, self.height as usize);
        // The rectangle that changed; a frame like the one before still shows, as one pixel.
        let (left, top, right, bottom) = match &self.previous {
            None => (0, 0, w - 1, h - 1),
            Some(previous) => changed_rectangle(previous, &frame.rgb, w).unwrap_or((0, 0, 0, 0)),
        };
        let mut buffer = Vec::with_capacity((right - left + 1) * (bottom - top + 1));
        for row in top..=bottom {
            let pixels = &frame.rgb[3 * (row * w + left)..3 * (row * w + right + 1)];
            buffer.extend(
                pixels
                    .chunks_exact(3)
                    .map(|p| self.palette.index([p[0], p[1], p[2]])),
            );
        }
        let gif_frame = gif::Frame {
            delay: self.delay(self.frames),
            dispose: DisposalMethod::Keep,
            left: left as u16,
            top: top as u16,
            width: (right - left + 1) as u16,
            height: (bottom - top + 1) as u16,
            buffer: buffer.into(),
            ..gif::Frame::default()
        };
        self.encoder.write_frame(&gif_frame)?;
        self.previous = Some(frame.rgb.clone());
        self.frames += 1;
        Ok(())
    }

    /// The finished file's bytes.
    pub fn finish(self) -> Result<Vec<u8>, RenderError> {
        Ok(self.encoder.into_inner()?)
    }
}

/// The smallest `(left, top, right, bottom)` (inclusive, in pixels) holding every pixel in
/// which two RGB images `width` pixels wide differ.
fn changed_rectangle(a: &[u8], b: &[u8], width: usize) -> Option<(usize, usize, usize, usize)> {
    let row_bytes = 3 * width;
    let mut rect: Option<(usize, usize, usize, usize)> = None;
    for (row, (ra, rb)) in a
        .chunks_exact(row_bytes)
        .zip(b.chunks_exact(row_bytes))
        .enumerate()
    {
        // Most rows are unchanged: one slice comparison each.
        if ra == rb {
            continue;
        }
        let differs = |x: &usize| ra[3 * x..3 * x + 3] != rb[3 * x..3 * x + 3];
        let first = (0..width).find(differs).expect("the rows differ");
        let last = (0..width).rev().find(differs).expect("the rows differ");
        rect = Some(match rect {
            None => (first, row, last, row),
            Some((l, t, r, _)) => (l.min(first), t, r.max(last), row),
        });
    }
    rect
}

/// The largest canvas [`decode_gif`] accepts (sizes come from the file).
const MAX_DECODED_PIXELS: u64 = 4096 * 4096;

/// Every frame of an animated GIF as it shows (each frame drawn over the ones before),
/// with each frame's delay in hundredths of a second.
pub fn decode_gif(bytes: &[u8]) -> Result<Vec<(Frame, u16)>, RenderError> {
    let mut options = DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    options.set_memory_limit(MemoryLimit::Bytes(
        NonZeroU64::new(4 * MAX_DECODED_PIXELS).expect("non-zero"),
    ));
    let mut decoder = options.read_info(bytes)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    if u64::from(width) * u64::from(height) > MAX_DECODED_PIXELS {
        return Err(RenderError::FrameSize {
            expected: (4096, 4096),
            got: (width, height),
        });
    }
    let mut canvas = vec![255u8; width as usize * height as usize * 3];
    let mut frames = Vec::new();
    while let Some(frame) = decoder.read_next_frame()? {
        let (left, top) = (usize::from(frame.left), usize::from(frame.top));
        for (k, rgba) in frame.buffer.chunks_exact(4).enumerate() {
            let (x, y) = (
                left + k % usize::from(frame.width),
                top + k / usize::from(frame.width),
            );
            if rgba[3] == 0 || x >= width as usize || y >= height as usize {
                continue;
            }
            let at = 3 * (y * width as usize + x);
            canvas[at..at + 3].copy_from_slice(&rgba[..3]);
        }
        frames.push((
            Frame {
                width,
                height,
                rgb: canvas.clone(),
            },
            frame.delay,
        ));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cartpole_frames(n: usize) -> Vec<Frame> {
        (0..n)
            .map(|k| {
                let x = -1.0 + 0.05 * k as f64;
                Scene::CartPole
                    .draw(&[x, 0.0, 0.02 * k as f64, 0.0], None)
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn videos_decode_to_their_frames_at_the_scene_frame_rate() {
        let frames = cartpole_frames(7);
        let mut recorder = GifRecorder::new(&Scene::CartPole).unwrap();
        for frame in &frames {
            recorder.push(frame).unwrap();
        }
        // A repeated frame is kept as a frame of its own.
        recorder.push(&frames[6]).unwrap();
        assert_eq!(recorder.frames(), 8);
        let bytes = recorder.finish().unwrap();
        let decoded = decode_gif(&bytes).unwrap();
        assert_eq!(decoded.len(), 8);
        for ((shown, delay), drawn) in decoded.iter().zip(frames.iter().chain([&frames[6]])) {
            assert_eq!(*delay, 2, "50 fps");
            // Solid colours survive exactly; edge blends come back within a palette step.
            let worst = shown
                .rgb
                .iter()
                .zip(&drawn.rgb)
                .map(|(&a, &b)| a.abs_diff(b))
                .max()
                .unwrap();
            assert!(worst <= 40, "{worst}");
            let exact = shown
                .rgb
                .chunks_exact(3)
                .zip(drawn.rgb.chunks_exact(3))
                .filter(|(a, b)| a == b)
                .count();
            assert!(exact as f64 >= 0.995 * (600.0 * 400.0), "{exact}");
        }
    }

    #[test]
    fn delays_keep_the_frame_rate_on_average() {
        let recorder = GifRecorder::new(&Scene::Pendulum).unwrap();
        let delays: Vec<u16> = (0..6).map(|k| recorder.delay(k)).collect();
        assert_eq!(delays, [3, 4, 3, 3, 4, 3]);
        let total: u64 = (0..300).map(|k| u64::from(recorder.delay(k))).sum();
        assert_eq!(total, 1000, "300 frames at 30 fps last 10 s");
        let acrobot = GifRecorder::new(&Scene::Acrobot).unwrap();
        let total: u64 = (0..15).map(|k| u64::from(acrobot.delay(k))).sum();
        assert_eq!(total, 100);
    }

    #[test]
    fn frames_of_another_size_and_files_that_are_not_gifs_are_refused() {
        let mut recorder = GifRecorder::new(&Scene::Acrobot).unwrap();
        let frame = Scene::CartPole.draw(&[0.0; 4], None).unwrap();
        assert!(matches!(
            recorder.push(&frame),
            Err(RenderError::FrameSize { .. })
        ));
        assert!(decode_gif(b"GIF89a\x01").is_err());
        assert!(decode_gif(b"not a gif at all").is_err());
    }
}
