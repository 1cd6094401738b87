//! CartPole's whole step (physics, next-step autoreset, time limit and episode statistics)
//! as one CubeCL kernel, for the cubecl devices (wgpu; CUDA when compiled in).
//!
//! Written as tensor operations a step is ~75 burn ops, and on a GPU each one pays its
//! host-side cost (recording, fusion, dispatch) whatever the batch: ~1 ms a step on an H200
//! at any size. One kernel over a packed table pays it once. The arithmetic is the tensor
//! program's, in the same order, so both paths agree to rounding.

use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, Dispatch, backend_extension, cubecl::dtype_to_storage_type};
use burn::prelude::{Int, Shape, Tensor as BurnTensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use cubecl::{calculate_cube_count_elemwise, prelude::*};

use super::{bookkeeping, signal};
use crate::classic::cartpole::{
    FORCE_MAG, GRAVITY, HALF_LENGTH, MASS_POLE, POLE_MASS_LENGTH, TAU, THETA_THRESHOLD, TOTAL_MASS,
    X_THRESHOLD,
};

const STATE: usize = 4;
const HEIGHT: usize = STATE + bookkeeping::COUNT;

/// Output shapes, known before the kernel runs (for lazy fusion).
fn step_outputs(
    table: &TensorSpec,
    _actions: &TensorSpec,
    _starts: &TensorSpec,
    _time_limit: &f32,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    let n = table.shape[1];
    let spec = |shape: [usize; 2]| TensorSpec::new(Shape::new(shape), table.dtype);
    (table.clone(), spec([n, STATE]), spec([signal::COUNT, n]))
}

/// Backends that step CartPole in one kernel.
#[backend_extension(Cube, Fusion)]
pub trait FusedCartPole: Backend {
    /// Steps every env of a `[10, n]` table (a row per state variable, then the
    /// [`bookkeeping`] rows) with `[n]` actions, restarting the envs flagged in it from `[4, n]`
    /// `starts`. Returns the next table, the observations `[n, 4]` and the [`signal`]s
    /// `[4, n]`.
    #[fusion(meta = step_outputs)]
    fn cartpole_step(
        table: FloatTensor<Self>,
        actions: IntTensor<Self>,
        starts: FloatTensor<Self>,
        time_limit: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl FusedCartPole for CubeBackend {
    fn cartpole_step(
        table: FloatTensor<Self>,
        actions: IntTensor<Self>,
        starts: FloatTensor<Self>,
        time_limit: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (table, actions, starts) = (
            into_contiguous(table),
            into_contiguous(actions),
            into_contiguous(starts),
        );
        let n = table.meta.shape()[1];
        let (client, device, float) = (table.client.clone(), table.device.clone(), table.dtype);
        let empty = |shape: [usize; 2]| {
            empty_device_dtype(client.clone(), device.clone(), Shape::new(shape), float)
        };
        let (next, observations, signals) = (
            empty([HEIGHT, n]),
            empty([n, STATE]),
            empty([signal::COUNT, n]),
        );
        let cube_dim = CubeDim::new(&client, n);
        let cube_count = calculate_cube_count_elemwise(&client, n, cube_dim);
        let int = actions.dtype;
        cartpole_step_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            table.into_tensor_arg(),
            actions.into_tensor_arg(),
            starts.into_tensor_arg(),
            next.clone().into_tensor_arg(),
            observations.clone().into_tensor_arg(),
            signals.clone().into_tensor_arg(),
            time_limit,
            [dtype_to_storage_type(float), dtype_to_storage_type(int)],
        );
        (next, observations, signals)
    }
}

/// [`FusedCartPole::cartpole_step`] on burn tensors (a [`FusedStep`](super::FusedStep)).
pub(crate) fn cartpole_step(
    table: BurnTensor<2>,
    actions: BurnTensor<1, Int>,
    starts: BurnTensor<2>,
    time_limit: f32,
) -> [BurnTensor<2>; 3] {
    let (next, observations, signals) = <Dispatch as FusedCartPole>::cartpole_step(
        table.into_dispatch(),
        actions.into_dispatch(),
        starts.into_dispatch(),
        time_limit,
    );
    [next, observations, signals].map(BurnTensor::from_dispatch)
}

/// One unit per env; every row of the table, `starts` and the signals is `n` long, so
/// variable `k` of env `i` is at `k * n + i` (neighbouring units read neighbouring values).
#[cube(launch)]
fn cartpole_step_kernel<F: Float, I: Numeric>(
    table: &Tensor<F>,
    actions: &Tensor<I>,
    starts: &Tensor<F>,
    next: &mut Tensor<F>,
    observations: &mut Tensor<F>,
    signals: &mut Tensor<F>,
    time_limit: f32,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let env = ABSOLUTE_POS;
    let n = actions.len();
    if env >= n {
        terminate!();
    }
    let book = STATE * n + env;
    let zero = F::new(0.0);
    let one = F::new(1.0);
    let mut x = table[env];
    let mut x_dot = table[n + env];
    let mut theta = table[2 * n + env];
    let mut theta_dot = table[3 * n + env];
    let mut elapsed = table[book + bookkeeping::ELAPSED * n];
    let mut episode_return = table[book + bookkeeping::EPISODE_RETURN * n];
    let mut finished_count = table[book + bookkeeping::FINISHED_COUNT * n];
    let mut finished_return = table[book + bookkeeping::FINISHED_RETURN * n];
    let mut finished_length = table[book + bookkeeping::FINISHED_LENGTH * n];
    let mut reward = zero;
    let mut terminated = zero;
    let mut truncated = zero;
    let mut done = zero;
    let reset = table[book + bookkeeping::NEEDS_RESET * n];
    if reset > F::new(0.5) {
        x = starts[env];
        x_dot = starts[n + env];
        theta = starts[2 * n + env];
        theta_dot = starts[3 * n + env];
        elapsed = zero;
        episode_return = zero;
    } else {
        // Same operation order as `CartPoleTensors::step`.
        let force =
            F::cast_from(actions[env]) * F::new(2.0 * FORCE_MAG as f32) - F::new(FORCE_MAG as f32);
        let (sin, cos) = (F::sin(theta), F::cos(theta));
        let temp = (force + theta_dot * theta_dot * sin * F::new(POLE_MASS_LENGTH as f32))
            / F::new(TOTAL_MASS as f32);
        let theta_acc = (sin * F::new(GRAVITY as f32) - cos * temp)
            / ((cos * cos * F::new((-MASS_POLE / TOTAL_MASS) as f32) + F::new(4.0 / 3.0))
                * F::new(HALF_LENGTH as f32));
        let x_acc = temp - theta_acc * cos * F::new((POLE_MASS_LENGTH / TOTAL_MASS) as f32);
        let tau = F::new(TAU as f32);
        x += x_dot * tau;
        x_dot += x_acc * tau;
        theta += theta_dot * tau;
        theta_dot += theta_acc * tau;
        if F::abs(x) > F::new(X_THRESHOLD as f32) || F::abs(theta) > F::new(THETA_THRESHOLD as f32)
        {
            terminated = one;
        }
        reward = one;
        elapsed += one;
        episode_return += reward;
        if terminated == zero && elapsed >= F::cast_from(time_limit) {
            truncated = one;
        }
        if terminated + truncated > zero {
            done = one;
            finished_count += one;
            finished_return += episode_return;
            finished_length += elapsed;
        }
    }
    next[env] = x;
    next[n + env] = x_dot;
    next[2 * n + env] = theta;
    next[3 * n + env] = theta_dot;
    next[book + bookkeeping::ELAPSED * n] = elapsed;
    next[book + bookkeeping::EPISODE_RETURN * n] = episode_return;
    next[book + bookkeeping::NEEDS_RESET * n] = done;
    next[book + bookkeeping::FINISHED_COUNT * n] = finished_count;
    next[book + bookkeeping::FINISHED_RETURN * n] = finished_return;
    next[book + bookkeeping::FINISHED_LENGTH * n] = finished_length;
    let observation = env * STATE;
    observations[observation] = x;
    observations[observation + 1] = x_dot;
    observations[observation + 2] = theta;
    observations[observation + 3] = theta_dot;
    signals[signal::REWARD * n + env] = reward;
    signals[signal::TERMINATED * n + env] = terminated;
    signals[signal::TRUNCATED * n + env] = truncated;
    signals[signal::RESET * n + env] = reset;
}
