//! The classic-control scenes, with the canvas sizes, colours, geometry and frame rates of
//! Gymnasium's `render_mode="rgb_array"` (its `render()` methods and `metadata`).

use std::f64::consts::FRAC_PI_2;

use crate::RenderError;
use crate::canvas::{BLACK, Canvas, Frame, Rgb, WHITE};

/// What an env looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scene {
    /// CartPole (v0, v1): 600x400 at 50 fps.
    CartPole,
    /// MountainCar and MountainCarContinuous: 600x400 at 30 fps, the flag at the goal.
    MountainCar {
        /// Where the flag stands (0.5 for the discrete task, 0.45 for the continuous one).
        goal_position: f64,
    },
    /// Pendulum: 500x500 at 30 fps, with the last torque drawn as an arrow.
    Pendulum,
    /// Acrobot: 500x500 at 15 fps.
    Acrobot,
}

const CART_COLOUR: Rgb = BLACK;
const POLE_COLOUR: Rgb = [202, 152, 101];
const AXLE_COLOUR: Rgb = [129, 132, 203];
const WHEEL_COLOUR: Rgb = [128, 128, 128];
const FLAG_COLOUR: Rgb = [204, 204, 0];
const ROD_COLOUR: Rgb = [204, 77, 77];
const LINK_COLOUR: Rgb = [0, 204, 204];
const JOINT_COLOUR: Rgb = [204, 204, 0];

/// Pendulum's torque limit: the arrow is drawn for the torque the env applied.
const MAX_TORQUE: f64 = 2.0;

/// A point rotated by `angle` radians, counter-clockwise in y-up terms
/// (`pygame.math.Vector2.rotate_rad`).
fn rotate((x, y): (f64, f64), angle: f64) -> (f64, f64) {
    let (sin, cos) = angle.sin_cos();
    (x * cos - y * sin, x * sin + y * cos)
}

/// The corners of the box `l..r` x `b..t`, rotated by `angle` and moved to `origin`, in
/// Gymnasium's corner order.
fn rotated_box(
    (l, r, t, b): (f64, f64, f64, f64),
    angle: f64,
    origin: (f64, f64),
) -> Vec<(f64, f64)> {
    [(l, b), (l, t), (r, t), (r, b)]
        .into_iter()
        .map(|corner| {
            let (x, y) = rotate(corner, angle);
            (x + origin.0, y + origin.1)
        })
        .collect()
}

impl Scene {
    /// The scene of an env id (Gymnasium's classic-control ids and the gym-rs adapters').
    pub fn for_env(env_id: &str) -> Result<Self, RenderError> {
        Ok(match env_id {
            "CartPole-v0" | "CartPole-v1" | "gym-rs/CartPole" => Scene::CartPole,
            "MountainCar-v0" | "gym-rs/MountainCar" => Scene::MountainCar { goal_position: 0.5 },
            "MountainCarContinuous-v0" => Scene::MountainCar {
                goal_position: 0.45,
            },
            "Pendulum-v1" => Scene::Pendulum,
            "Acrobot-v1" => Scene::Acrobot,
            other => return Err(RenderError::UnknownEnv(other.to_string())),
        })
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Scene::CartPole | Scene::MountainCar { .. } => (600, 400),
            Scene::Pendulum | Scene::Acrobot => (500, 500),
        }
    }

    /// Gymnasium's `metadata["render_fps"]`.
    pub fn fps(&self) -> u32 {
        match self {
            Scene::CartPole => 50,
            Scene::MountainCar { .. } | Scene::Pendulum => 30,
            Scene::Acrobot => 15,
        }
    }

    /// The solid colours the scene is drawn in (its edges blend pairs of them).
    pub fn colours(&self) -> &'static [Rgb] {
        match self {
            Scene::CartPole => &[WHITE, CART_COLOUR, POLE_COLOUR, AXLE_COLOUR],
            Scene::MountainCar { .. } => &[WHITE, BLACK, WHEEL_COLOUR, FLAG_COLOUR],
            Scene::Pendulum => &[WHITE, BLACK, ROD_COLOUR],
            Scene::Acrobot => &[WHITE, BLACK, LINK_COLOUR, JOINT_COLOUR],
        }
    }

    /// Components of the float64 state the scene is drawn from.
    pub fn state_dim(&self) -> usize {
        match self {
            Scene::CartPole | Scene::Acrobot => 4,
            Scene::MountainCar { .. } | Scene::Pendulum => 2,
        }
    }

    /// The frame of `state` (the env's internal float64 state); `last_action` is the
    /// continuous action of the step that led there (Pendulum draws it), `None` after a reset.
    pub fn draw(&self, state: &[f64], last_action: Option<&[f32]>) -> Result<Frame, RenderError> {
        if state.len() != self.state_dim() || state.iter().any(|v| !v.is_finite()) {
            return Err(RenderError::State {
                expected: self.state_dim(),
                got: state.to_vec(),
            });
        }
        let (width, height) = self.size();
        let mut canvas = Canvas::new(width, height);
        match *self {
            Scene::CartPole => draw_cartpole(&mut canvas, state),
            Scene::MountainCar { goal_position } => {
                draw_mountain_car(&mut canvas, state[0], goal_position)
            }
            Scene::Pendulum => {
                let torque = last_action
                    .and_then(|a| a.first())
                    .map(|&u| f64::from(u).clamp(-MAX_TORQUE, MAX_TORQUE));
                draw_pendulum(&mut canvas, state[0], torque)
            }
            Scene::Acrobot => draw_acrobot(&mut canvas, state),
        }
        Ok(canvas.into_frame())
    }
}

/// CartPole: the track, the cart, the pole from the axle, the axle.
fn draw_cartpole(canvas: &mut Canvas, state: &[f64]) {
    let (x, theta) = (state[0], state[2]);
    let x_threshold = 2.4;
    let scale = 600.0 / (2.0 * x_threshold);
    let pole_width = 10.0;
    let pole_length = scale * (2.0 * 0.5);
    let (cart_width, cart_height) = (50.0, 30.0);
    let cart_x = x * scale + 300.0;
    let cart_y = 100.0;
    let axle_offset = cart_height / 4.0;

    let half = (cart_width / 2.0, cart_height / 2.0);
    let cart = rotated_box((-half.0, half.0, half.1, -half.1), 0.0, (cart_x, cart_y));
    canvas.polygon(&cart, CART_COLOUR);
    let pole = rotated_box(
        (
            -pole_width / 2.0,
            pole_width / 2.0,
            pole_length - pole_width / 2.0,
            -pole_width / 2.0,
        ),
        -theta,
        (cart_x, cart_y + axle_offset),
    );
    canvas.polygon(&pole, POLE_COLOUR);
    canvas.circle(
        cart_x as i64,
        (cart_y + axle_offset) as i64,
        (pole_width / 2.0) as i64,
        AXLE_COLOUR,
    );
    canvas.hline(0, 600, cart_y as i64, BLACK);
}

/// MountainCar: the hill, the car tilted with the slope, its wheels, the flag at the goal.
fn draw_mountain_car(canvas: &mut Canvas, position: f64, goal_position: f64) {
    let (min_position, max_position) = (-1.2, 0.6);
    let scale = 600.0 / (max_position - min_position);
    let height = |x: f64| (3.0 * x).sin() * 0.45 + 0.55;
    let (car_width, car_height) = (40.0, 20.0);
    let clearance = 10.0;

    let hill: Vec<(f64, f64)> = (0..100)
        .map(|k| {
            let x = min_position + (max_position - min_position) * k as f64 / 99.0;
            ((x - min_position) * scale, height(x) * scale)
        })
        .collect();
    canvas.polyline(&hill, BLACK);

    let tilt = (3.0 * position).cos();
    let origin = (
        (position - min_position) * scale,
        clearance + height(position) * scale,
    );
    let car = rotated_box(
        (-car_width / 2.0, car_width / 2.0, car_height, 0.0),
        tilt,
        origin,
    );
    canvas.polygon(&car, BLACK);
    for offset in [car_width / 4.0, -car_width / 4.0] {
        let (x, y) = rotate((offset, 0.0), tilt);
        canvas.circle(
            (x + origin.0) as i64,
            (y + origin.1) as i64,
            (car_height / 2.5) as i64,
            WHEEL_COLOUR,
        );
    }

    let flag_x = ((goal_position - min_position) * scale) as i64;
    let flag_y1 = (height(goal_position) * scale) as i64;
    let flag_y2 = flag_y1 + 50;
    canvas.vline(flag_x, flag_y1, flag_y2, BLACK);
    let (x, y) = (flag_x as f64, flag_y2 as f64);
    canvas.polygon(&[(x, y), (x, y - 10.0), (x + 25.0, y - 5.0)], FLAG_COLOUR);
}

/// Pendulum: the rod from the pivot, round at both ends, the last torque as an arrow
/// around the pivot (sized by its magnitude, turning its way), the axle.
fn draw_pendulum(canvas: &mut Canvas, theta: f64, torque: Option<f64>) {
    let bound = 2.2;
    let scale = 500.0 / (2.0 * bound);
    let offset = 250.0;
    let rod_length = scale;
    let rod_width = 0.2 * scale;
    let angle = theta + FRAC_PI_2;

    let rod = rotated_box(
        (0.0, rod_length, rod_width / 2.0, -rod_width / 2.0),
        angle,
        (offset, offset),
    );
    canvas.polygon(&rod, ROD_COLOUR);
    let joint_radius = (rod_width / 2.0) as i64;
    canvas.circle(offset as i64, offset as i64, joint_radius, ROD_COLOUR);
    let (end_x, end_y) = rotate((rod_length, 0.0), angle);
    canvas.circle(
        (end_x + offset) as i64,
        (end_y + offset) as i64,
        joint_radius,
        ROD_COLOUR,
    );
    if let Some(torque) = torque {
        draw_torque_arrow(
            canvas,
            (offset, offset),
            scale * torque.abs() / 2.0,
            torque > 0.0,
        );
    }
    canvas.circle(offset as i64, offset as i64, (0.05 * scale) as i64, BLACK);
}

/// A round arrow in a `size`-pixel square around `centre`: a thin circle open on one
/// side, its head on the right turning up for a positive (counter-clockwise) torque, on
/// the left for a negative one (Gymnasium blits an image of the same size and sense).
fn draw_torque_arrow(canvas: &mut Canvas, centre: (f64, f64), size: f64, counter_clockwise: bool) {
    use std::f64::consts::PI;
    if size < 4.0 {
        return;
    }
    let radius = 0.45 * size;
    let thickness = (0.025 * size).max(1.0);
    // Angles are y-up (the canvas is flipped); a clockwise arrow is the mirror image.
    let (start, sweep) = if counter_clockwise {
        (PI / 3.0, 5.0 * PI / 3.0)
    } else {
        (2.0 * PI / 3.0, -5.0 * PI / 3.0)
    };
    let at = |angle: f64, r: f64| (centre.0 + r * angle.cos(), centre.1 + r * angle.sin());
    let steps = 64;
    let along = |k: usize| start + sweep * k as f64 / steps as f64;
    let band: Vec<(f64, f64)> = (0..=steps)
        .map(|k| at(along(k), radius + thickness / 2.0))
        .chain(
            (0..=steps)
                .rev()
                .map(|k| at(along(k), radius - thickness / 2.0)),
        )
        .collect();
    canvas.polygon(&band, BLACK);
    let (end, head) = (start + sweep, 0.06 * size);
    let ahead = sweep.signum() * 1.6 * head / radius;
    canvas.polygon(
        &[
            at(end, radius + head),
            at(end + ahead, radius),
            at(end, radius - head),
        ],
        BLACK,
    );
}

/// Acrobot: the bar at the height the tip must pass, both links, a joint at each link's
/// base.
fn draw_acrobot(canvas: &mut Canvas, state: &[f64]) {
    let (link_1, link_2) = (1.0, 1.0);
    let bound = link_1 + link_2 + 0.2;
    let scale = 500.0 / (2.0 * bound);
    let offset = 250.0;
    let (theta_1, theta_2) = (state[0], state[1]);
    // Link bases in surface coordinates (Gymnasium computes them y-first, then swaps).
    let elbow = (
        link_1 * theta_1.sin() * scale,
        -link_1 * theta_1.cos() * scale,
    );
    let bases = [(0.0, 0.0), elbow];
    let angles = [theta_1 - FRAC_PI_2, theta_1 + theta_2 - FRAC_PI_2];
    let lengths = [link_1 * scale, link_2 * scale];

    let bar_y = (scale + offset) as i64;
    canvas.hline(
        (-bound * scale + offset) as i64,
        (bound * scale + offset) as i64,
        bar_y,
        BLACK,
    );
    for ((base, angle), length) in bases.into_iter().zip(angles).zip(lengths) {
        let (x, y) = (base.0 + offset, base.1 + offset);
        let link = rotated_box((0.0, length, 0.1 * scale, -0.1 * scale), angle, (x, y));
        canvas.polygon(&link, LINK_COLOUR);
        canvas.circle(x as i64, y as i64, (0.1 * scale) as i64, JOINT_COLOUR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns in `row` whose colour is `colour`.
    fn columns_of(frame: &Frame, row: u32, colour: Rgb) -> Vec<u32> {
        (0..frame.width)
            .filter(|&x| frame.pixel(x, row) == colour)
            .collect()
    }

    #[test]
    fn the_cart_is_drawn_where_the_state_puts_it() {
        for x in [-2.0, -0.5, 0.0, 1.3] {
            let frame = Scene::CartPole.draw(&[x, 0.0, 0.0, 0.0], None).unwrap();
            assert_eq!((frame.width, frame.height), (600, 400));
            // Row 290 crosses the cart's body below the axle (the cart spans surface rows
            // 85-115, image rows 284-314).
            let black = columns_of(&frame, 305, BLACK);
            let centre = (black[0] + black[black.len() - 1]) as f64 / 2.0;
            let expected = x * 125.0 + 300.0;
            assert!(
                (centre - expected).abs() <= 1.0,
                "x = {x}: {centre} vs {expected}"
            );
            assert!(
                (49..=51).contains(&black.len()),
                "cart width {}",
                black.len()
            );
            // The track is the full width of image row 299.
            assert!(columns_of(&frame, 299, BLACK).len() + 60 >= 600);
        }
    }

    #[test]
    fn the_pole_leans_the_way_theta_says() {
        let upright = Scene::CartPole.draw(&[0.0; 4], None).unwrap();
        let leaning = Scene::CartPole.draw(&[0.0, 0.0, 0.3, 0.0], None).unwrap();
        // Near the pole's tip (surface y ~ 100 + 7.5 + 118), image row ~ 175.
        let row = 180;
        let upright_cols = columns_of(&upright, row, POLE_COLOUR);
        let leaning_cols = columns_of(&leaning, row, POLE_COLOUR);
        let mid = |c: &[u32]| c.iter().sum::<u32>() as f64 / c.len() as f64;
        assert!((mid(&upright_cols) - 300.0).abs() < 1.0);
        // Positive theta leans the pole to the right (Gymnasium's rotation by -theta).
        assert!(mid(&leaning_cols) > 330.0, "{}", mid(&leaning_cols));
    }

    #[test]
    fn every_scene_draws_its_colours_and_refuses_bad_states() {
        // Env id, state, last action.
        type Case<'a> = (&'a str, &'a [f64], Option<&'a [f32]>);
        let cases: [Case; 5] = [
            ("CartPole-v1", &[0.1, 0.0, -0.1, 0.0], None),
            ("MountainCar-v0", &[-0.5, 0.0], None),
            ("MountainCarContinuous-v0", &[0.3, 0.01], Some(&[0.5])),
            ("Pendulum-v1", &[1.0, 0.0], Some(&[-1.5])),
            ("Acrobot-v1", &[0.3, -0.4, 0.0, 0.0], None),
        ];
        for (id, state, action) in cases {
            let scene = Scene::for_env(id).unwrap();
            let frame = scene.draw(state, action).unwrap();
            assert_eq!((frame.width, frame.height), scene.size(), "{id}");
            for colour in scene.colours() {
                assert!(
                    frame.rgb.chunks_exact(3).any(|p| p == colour),
                    "{id}: no pixel of {colour:?}"
                );
            }
            assert!(scene.draw(&state[1..], action).is_err(), "{id}");
            let mut bad = state.to_vec();
            bad[0] = f64::NAN;
            assert!(scene.draw(&bad, action).is_err(), "{id}");
        }
        assert!(Scene::for_env("Humanoid-v5").is_err());
    }

    #[test]
    fn the_torque_arrow_grows_with_the_torque() {
        let dark = |frame: &Frame| frame.rgb.chunks_exact(3).filter(|p| p == &BLACK).count();
        let reset = Scene::Pendulum.draw(&[0.0, 0.0], None).unwrap();
        let small = Scene::Pendulum.draw(&[0.0, 0.0], Some(&[0.5])).unwrap();
        let large = Scene::Pendulum.draw(&[0.0, 0.0], Some(&[-2.0])).unwrap();
        let clipped = Scene::Pendulum.draw(&[0.0, 0.0], Some(&[-7.0])).unwrap();
        assert!(dark(&reset) < dark(&small) && dark(&small) < dark(&large));
        assert_eq!(large, clipped);
    }
}
