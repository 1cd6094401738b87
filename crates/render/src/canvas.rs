//! A canvas addressed as Gymnasium's renderers address their pygame surface: pixels from
//! the top-left, y growing downwards while drawing, the whole image flipped vertically at
//! the end (Gymnasium flips its surface before returning it, so scenes read as y-up).

use tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

/// An RGB colour.
pub type Rgb = [u8; 3];

/// White, every scene's background.
pub const WHITE: Rgb = [255, 255, 255];
/// Black: tracks, carts, outlines.
pub const BLACK: Rgb = [0, 0, 0];

/// One rendered frame: `height` rows of `width` RGB pixels, top row first (the layout of
/// Gymnasium's `rgb_array`, shape `(height, width, 3)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// `width * height * 3` bytes, row by row.
    pub rgb: Vec<u8>,
}

impl Frame {
    /// The colour at column `x`, row `y` (row 0 at the top).
    pub fn pixel(&self, x: u32, y: u32) -> Rgb {
        let at = 3 * (y as usize * self.width as usize + x as usize);
        [self.rgb[at], self.rgb[at + 1], self.rgb[at + 2]]
    }
}

/// Where pygame's integer-pixel primitives land on a continuous canvas: a pixel `(i, j)` is
/// painted when the shape covers the point `(i, j)`, so shapes are moved by half a pixel to
/// put that point at the pixel's centre, where coverage is measured.
const PIXEL_CENTRE: f32 = 0.5;

/// `points` (a simple polygon) with every edge moved `by` outwards; sharp corners are cut
/// at twice `by` from the corner instead of growing into long spikes.
fn grown(points: &[(f64, f64)], by: f64) -> Vec<(f64, f64)> {
    let n = points.len();
    if n < 3 {
        return points.to_vec();
    }
    let twice_area: f64 = (0..n)
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    let outwards = if twice_area >= 0.0 { 1.0 } else { -1.0 };
    // The outward unit normal of the edge from `a` to `b`, if it has a length.
    let normal = |a: (f64, f64), b: (f64, f64)| {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let length = dx.hypot(dy);
        (length > 1e-12).then(|| (outwards * dy / length, -outwards * dx / length))
    };
    (0..n)
        .map(|i| {
            let (before, at, after) = (points[(i + n - 1) % n], points[i], points[(i + 1) % n]);
            let normals = match (normal(before, at), normal(at, after)) {
                (Some(a), Some(b)) => (a, b),
                (Some(a), None) | (None, Some(a)) => (a, a),
                (None, None) => return at,
            };
            let (mx, my) = (normals.0.0 + normals.1.0, normals.0.1 + normals.1.1);
            let length = mx.hypot(my);
            if length < 1e-12 {
                return at;
            }
            // Along the bisector, far enough to move both edges by `by`, at most 2 `by`.
            let cos_half = (mx * normals.0.0 + my * normals.0.1) / length;
            let reach = (by / cos_half.max(0.5)).min(2.0 * by);
            (at.0 + mx / length * reach, at.1 + my / length * reach)
        })
        .collect()
}

/// A white canvas drawn in pygame surface coordinates.
pub struct Canvas {
    pixmap: Pixmap,
    // Draws at surface coordinates and flips, as `pygame.transform.flip(surf, False, True)`.
    flip: Transform,
}

impl Canvas {
    /// A white canvas of `width` x `height` pixels (both non-zero).
    pub fn new(width: u32, height: u32) -> Self {
        let mut pixmap = Pixmap::new(width, height).expect("canvas sizes are non-zero");
        pixmap.fill(tiny_skia::Color::WHITE);
        Self {
            pixmap,
            flip: Transform::from_row(
                1.0,
                0.0,
                0.0,
                -1.0,
                PIXEL_CENTRE,
                height as f32 - PIXEL_CENTRE,
            ),
        }
    }

    fn paint(colour: Rgb) -> Paint<'static> {
        let mut paint = Paint::default();
        paint.set_color_rgba8(colour[0], colour[1], colour[2], 255);
        paint
    }

    /// A filled polygon with an anti-aliased one-pixel outline (`gfxdraw.aapolygon` then
    /// `filled_polygon`: the fill takes the pixels its edges pass through, the outline
    /// shades half a pixel beyond them), drawn as one shape grown by half a pixel so that
    /// edge pixels are blended once.
    pub fn polygon(&mut self, points: &[(f64, f64)], colour: Rgb) {
        // pygame takes the vertices as integers, truncated.
        let points: Vec<(f64, f64)> = points
            .iter()
            .map(|&(x, y)| (x.trunc(), y.trunc()))
            .collect();
        if let Some(path) = Self::path(&grown(&points, 0.5), true) {
            self.fill(&path, colour);
        }
    }

    fn fill(&mut self, path: &tiny_skia::Path, colour: Rgb) {
        self.pixmap.fill_path(
            path,
            &Self::paint(colour),
            FillRule::Winding,
            self.flip,
            None,
        );
    }

    fn path(points: &[(f64, f64)], closed: bool) -> Option<tiny_skia::Path> {
        let mut path = PathBuilder::new();
        for (k, &(x, y)) in points.iter().enumerate() {
            if k == 0 {
                path.move_to(x as f32, y as f32);
            } else {
                path.line_to(x as f32, y as f32);
            }
        }
        if closed {
            path.close();
        }
        path.finish()
    }

    /// A filled, anti-aliased circle centred on pixel `(x, y)` (`gfxdraw.aacircle` then
    /// `filled_circle`, which take integer centres and radii).
    pub fn circle(&mut self, x: i64, y: i64, radius: i64, colour: Rgb) {
        // The disc of integer radius r paints the pixels whose centres lie within r + 1/2.
        if let Some(path) = PathBuilder::from_circle(x as f32, y as f32, radius as f32 + 0.5) {
            self.fill(&path, colour);
        }
    }

    /// An anti-aliased one-pixel line through `points` (`pygame.draw.aalines`).
    pub fn polyline(&mut self, points: &[(f64, f64)], colour: Rgb) {
        if let Some(path) = Self::path(points, false) {
            // Width 0: tiny-skia's anti-aliased one-pixel hairline.
            let hairline = Stroke {
                width: 0.0,
                ..Stroke::default()
            };
            self.pixmap
                .stroke_path(&path, &Self::paint(colour), &hairline, self.flip, None);
        }
    }

    /// The pixels of row `y` from column `x1` to `x2`, both included (`gfxdraw.hline`).
    pub fn hline(&mut self, x1: i64, x2: i64, y: i64, colour: Rgb) {
        self.pixels(x1.min(x2), y, x1.max(x2), y, colour);
    }

    /// The pixels of column `x` from row `y1` to `y2`, both included (`gfxdraw.vline`).
    pub fn vline(&mut self, x: i64, y1: i64, y2: i64, colour: Rgb) {
        self.pixels(x, y1.min(y2), x, y1.max(y2), colour);
    }

    /// Every pixel from `(x1, y1)` to `(x2, y2)`, corners included, unblended.
    fn pixels(&mut self, x1: i64, y1: i64, x2: i64, y2: i64, colour: Rgb) {
        // Whole pixels: the rectangle's edges lie on pixel boundaries, around the centres.
        let rect = Rect::from_ltrb(
            x1 as f32 - PIXEL_CENTRE,
            y1 as f32 - PIXEL_CENTRE,
            x2 as f32 + 1.0 - PIXEL_CENTRE,
            y2 as f32 + 1.0 - PIXEL_CENTRE,
        );
        if let Some(rect) = rect {
            let mut paint = Self::paint(colour);
            paint.anti_alias = false;
            self.pixmap.fill_rect(rect, &paint, self.flip, None);
        }
    }

    /// The finished frame (every pixel is opaque: the alpha channel is dropped).
    pub fn into_frame(self) -> Frame {
        let (width, height) = (self.pixmap.width(), self.pixmap.height());
        let rgb = self
            .pixmap
            .data()
            .chunks_exact(4)
            .flat_map(|rgba| [rgba[0], rgba[1], rgba[2]])
            .collect();
        Frame { width, height, rgb }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surface_rows_are_flipped_and_lines_cover_whole_pixels() {
        let mut canvas = Canvas::new(10, 8);
        canvas.hline(2, 4, 1, BLACK);
        canvas.vline(7, 0, 2, [1, 2, 3]);
        let frame = canvas.into_frame();
        // Surface row 1 is the image's row 8 - 1 - 1 = 6.
        for x in 0..7 {
            let expected = if (2..=4).contains(&x) { BLACK } else { WHITE };
            assert_eq!(frame.pixel(x, 6), expected, "x = {x}");
        }
        for y in 0..8 {
            let expected = if y >= 5 { [1, 2, 3] } else { WHITE };
            assert_eq!(frame.pixel(7, y), expected, "y = {y}");
        }
    }

    #[test]
    fn a_polygon_paints_the_pixels_its_edges_pass_through() {
        let mut canvas = Canvas::new(20, 20);
        canvas.polygon(&[(4.0, 4.0), (4.0, 10.0), (12.0, 10.0), (12.0, 4.0)], BLACK);
        let frame = canvas.into_frame();
        // Surface pixels 4..=12 x 4..=10, as SDL_gfx fills them; image row = 19 - surface row.
        for (x, y) in [(4, 4), (12, 10), (8, 7), (12, 4)] {
            assert_eq!(frame.pixel(x, 19 - y), BLACK, "({x}, {y})");
        }
        for (x, y) in [(13, 7), (3, 7), (8, 11), (8, 3)] {
            assert_eq!(frame.pixel(x, 19 - y), WHITE, "({x}, {y})");
        }
    }

    #[test]
    fn grown_polygons_move_every_edge_out_whatever_their_orientation() {
        let square = [(0.0, 0.0), (0.0, 2.0), (2.0, 2.0), (2.0, 0.0)];
        let reversed: Vec<_> = square.iter().rev().copied().collect();
        for points in [square.to_vec(), reversed] {
            let mut grown = grown(&points, 0.5);
            grown.sort_by(|a, b| a.partial_cmp(b).unwrap());
            assert_eq!(grown, [(-0.5, -0.5), (-0.5, 2.5), (2.5, -0.5), (2.5, 2.5)]);
        }
        // A needle-sharp corner stays within twice the growth of where it was.
        let sliver = grown(&[(0.0, 0.0), (100.0, 1.0), (0.0, 2.0)], 0.5);
        assert!((sliver[1].0 - 100.0).hypot(sliver[1].1 - 1.0) <= 1.0 + 1e-9);
    }

    #[test]
    fn a_circle_of_integer_radius_reaches_that_many_pixels_from_its_centre() {
        let mut canvas = Canvas::new(21, 21);
        canvas.circle(10, 10, 5, BLACK);
        let frame = canvas.into_frame();
        let dark = |p: Rgb| p.iter().all(|&c| c < 64);
        assert_eq!(frame.pixel(10, 10), BLACK);
        assert!(dark(frame.pixel(15, 10)) && dark(frame.pixel(10, 5)));
        assert_eq!(frame.pixel(17, 10), WHITE);
        assert_eq!(frame.pixel(15, 15), WHITE);
    }
}
