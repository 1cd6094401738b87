//! The physics of Gymnasium's classic-control tasks.

mod acrobot;
pub(crate) mod cartpole;
pub(crate) mod mountain_car;
pub(crate) mod pendulum;
mod small_angle_trig;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
pub use mountain_car::{MountainCar, MountainCarContinuous};
pub use pendulum::Pendulum;

/// `x ** 2` on a NumPy float64 scalar. NumPy calls libm's `pow` there, which is not always
/// the correctly rounded `x * x`; the exponent is opaque because LLVM would rewrite
/// `powf(x, 2.0)` into `x * x`.
pub(crate) fn numpy_square(x: f64) -> f64 {
    x.powf(std::hint::black_box(2.0))
}

/// `x ** 2` on a NumPy float32 scalar: libm's `powf`, off by up to 0.82 ulp from `x * x`.
pub(crate) fn numpy_square_f32(x: f32) -> f32 {
    x.powf(std::hint::black_box(2.0))
}
