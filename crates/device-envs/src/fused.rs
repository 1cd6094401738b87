//! Each device env's whole step (physics, next-step autoreset, time limit and episode
//! statistics) as one CubeCL kernel, for the cubecl devices (wgpu; CUDA when compiled in).
//!
//! Written as tensor operations a CartPole step is ~75 burn ops, and on a GPU each one pays
//! its host-side cost (recording, fusion, dispatch) whatever the batch: ~1 ms a step on an
//! H200 at any size. One kernel over the packed table pays it once. The physics is the
//! tensor programs' arithmetic in the same order, so both paths agree to rounding; one
//! extension method and one kernel serve the three envs, the physics chosen at compile time.

use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{
    Backend, Dispatch, ExtensionType, backend_extension, cubecl::dtype_to_storage_type,
};
use burn::prelude::{Shape, Tensor as BurnTensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::ir::ElemType;
use cubecl::{calculate_cube_count_elemwise, prelude::*};

use super::{DeviceActions, bookkeeping, signal, wrong_action_kind};
use gradless_envs::EnvError;
use gradless_envs::constants::{cartpole, mountain_car, pendulum};

/// A step's actions, whichever kind the env takes.
#[derive(ExtensionType)]
#[extension_type(fusion)]
pub enum StepActions<B: Backend> {
    /// `[n]` action indices.
    Discrete(IntTensor<B>),
    /// `[n, 1]` values.
    Continuous(FloatTensor<B>),
}

/// The next table (shaped as the input), observations `[n, observation_dim]` and signals
/// `[4, n]`, known before the kernel runs (for lazy fusion).
fn step_outputs(
    table: &TensorSpec,
    _actions: &StepActionsMetadata,
    _starts: &TensorSpec,
    _time_limit: &f32,
    physics: &Physics,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    let n = table.shape[1];
    let spec = |shape: [usize; 2]| TensorSpec::new(Shape::new(shape), table.dtype);
    (
        table.clone(),
        spec([n, physics.observation_dim()]),
        spec([signal::COUNT, n]),
    )
}

/// Backends that step a device env in one kernel.
#[backend_extension(Cube, Fusion)]
pub trait FusedStep: Backend {
    /// Steps every env of a `[state + 6, n]` table (a row per state variable, then the
    /// [`bookkeeping`] rows) with its action, restarting the envs flagged in it from
    /// `[state, n]` `starts`, under `physics`. Returns the next table, the observations
    /// `[n, observation_dim]` and the [`signal`]s `[4, n]`.
    #[fusion(meta = step_outputs)]
    fn env_step(
        table: FloatTensor<Self>,
        #[extension_type] actions: StepActions<Self>,
        starts: FloatTensor<Self>,
        time_limit: f32,
        physics: Physics,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Which env's physics a fused step runs: chosen when the kernel is compiled, one kernel
/// per env.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Physics {
    /// `CartPole-v0`/`-v1`: discrete pushes.
    CartPole,
    /// `MountainCar-v0`: discrete accelerations.
    MountainCar,
    /// `Pendulum-v1`: continuous torques.
    Pendulum,
}

impl Physics {
    /// Variables of the state the physics steps.
    pub fn state_dim(self) -> usize {
        match self {
            Physics::CartPole => 4,
            Physics::MountainCar | Physics::Pendulum => 2,
        }
    }

    /// Values per observation.
    pub fn observation_dim(self) -> usize {
        match self {
            Physics::CartPole => 4,
            Physics::MountainCar => 2,
            Physics::Pendulum => 3,
        }
    }
}

/// Allocates the outputs and launches [`step_kernel`], one unit per env.
fn launch_step(
    physics: Physics,
    table: CubeTensor,
    actions: CubeTensor,
    starts: CubeTensor,
    time_limit: f32,
) -> (CubeTensor, CubeTensor, CubeTensor) {
    // The kernel indexes rows directly: contiguous layouts (a no-op when they already are).
    let [table, actions, starts] = [table, actions, starts].map(into_contiguous);
    let [height, n] = table.meta.shape().dims::<2>();
    let (client, device, float) = (table.client.clone(), table.device.clone(), table.dtype);
    let empty = |shape: [usize; 2]| {
        empty_device_dtype(client.clone(), device.clone(), Shape::new(shape), float)
    };
    let (next, observations, signals) = (
        empty([height, n]),
        empty([n, physics.observation_dim()]),
        empty([signal::COUNT, n]),
    );
    let cube_dim = CubeDim::new(&client, n);
    let cube_count = calculate_cube_count_elemwise(&client, n, cube_dim);
    let action_type = dtype_to_storage_type(actions.dtype);
    step_kernel::launch(
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
        physics,
        [dtype_to_storage_type(float), action_type],
    );
    (next, observations, signals)
}

impl FusedStep for CubeBackend {
    fn env_step(
        table: FloatTensor<Self>,
        actions: StepActions<Self>,
        starts: FloatTensor<Self>,
        time_limit: f32,
        physics: Physics,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (StepActions::Discrete(actions) | StepActions::Continuous(actions)) = actions;
        launch_step(physics, table, actions, starts, time_limit)
    }
}

/// One fused step of `physics` on burn tensors (see [`FusedStep::env_step`]): an error if
/// the actions are not of the kind the env takes.
pub(crate) fn step(
    physics: Physics,
    table: BurnTensor<2>,
    actions: &DeviceActions,
    starts: BurnTensor<2>,
    time_limit: f32,
) -> Result<[BurnTensor<2>; 3], EnvError> {
    let actions = match (physics, actions) {
        (Physics::Pendulum, DeviceActions::Continuous(torques)) => {
            StepActions::Continuous(torques.clone().into_dispatch())
        }
        (Physics::CartPole | Physics::MountainCar, DeviceActions::Discrete(indices)) => {
            StepActions::Discrete(indices.clone().into_dispatch())
        }
        (physics, _) => return Err(wrong_action_kind(&format!("{physics:?}"))),
    };
    let (next, observations, signals) = <Dispatch as FusedStep>::env_step(
        table.into_dispatch(),
        actions,
        starts.into_dispatch(),
        time_limit,
        physics,
    );
    Ok([next, observations, signals].map(BurnTensor::from_dispatch))
}

// One unit per env. Every row of the table is `n` long, so variable `k` of env `i` is at
// `k * n + i` (neighbouring units read neighbouring values).

/// 1 or 0.
#[cube]
fn indicator<F: Float>(flag: bool) -> F {
    let mut value = F::new(0.0);
    if flag {
        value = F::new(1.0);
    }
    value
}

/// `value` limited to `[low, high]`.
#[cube]
fn clamp<F: Float>(value: F, low: F, high: F) -> F {
    let mut limited = value;
    if limited < low {
        limited = low;
    }
    if limited > high {
        limited = high;
    }
    limited
}

/// One env's step (the single-step kernel's only one), its table column copied first, then
/// stepped where it lies.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn step_kernel<F: Float, A: Numeric>(
    table: &Tensor<F>,
    actions: &Tensor<A>,
    starts: &Tensor<F>,
    next: &mut Tensor<F>,
    observations: &mut Tensor<F>,
    signals: &mut Tensor<F>,
    time_limit: f32,
    #[comptime] physics: Physics,
    #[define(F, A)] _types: [ElemType; 2],
) {
    let env = ABSOLUTE_POS;
    let n = actions.len();
    if env >= n {
        terminate!();
    }
    kernel_physics::copy_column(table, next, env, n, physics);
    let at = kernel_physics::StepAt {
        env,
        n,
        start: env,
        start_stride: n,
        signal: env,
        signal_stride: n,
    };
    kernel_physics::step_in_place(
        next,
        starts,
        signals,
        &at,
        F::cast_from(actions[env]),
        time_limit,
        physics,
    );
    let observation_dim = comptime![physics.observation_dim()];
    let mut observation = Array::<F>::new(observation_dim);
    kernel_physics::observe_column(next, env, n, &mut observation, physics);
    #[unroll]
    for k in 0..observation_dim {
        observations[env * observation_dim + k] = observation[k];
    }
}

/// The physics as `#[cube]` functions, for every kernel that steps a device env (this
/// file's step, the policy crate's episode kernel).
// The macro's generated expansion items carry no docs of their own.
#[allow(missing_docs)]
pub mod kernel_physics {
    use super::*;

    /// One step of `physics` from `state` (updated in place) under `action` (an action index
    /// as a float for the discrete envs): what every kernel that steps a device env runs.
    #[cube]
    pub fn physics_step<F: Float>(
        state: &mut Array<F>,
        action: F,
        #[comptime] physics: Physics,
    ) -> Outcome<F> {
        match comptime![physics] {
            Physics::CartPole => cartpole_physics(state, action),
            Physics::MountainCar => mountain_car_physics(state, action),
            Physics::Pendulum => pendulum_physics(state, action),
        }
    }

    /// The observation of `state` under `physics`, written into `observation`.
    #[cube]
    pub fn write_observation<F: Float>(
        state: &Array<F>,
        observation: &mut Array<F>,
        #[comptime] physics: Physics,
    ) {
        match comptime![physics] {
            // Pendulum observes `cos theta, sin theta, theta_dot`.
            Physics::Pendulum => {
                observation[0] = F::cos(state[0]);
                observation[1] = F::sin(state[0]);
                observation[2] = state[1];
            }
            _ =>
            {
                #[unroll]
                for k in 0..comptime![physics.state_dim()] {
                    observation[k] = state[k];
                }
            }
        }
    }

    /// Env `env`'s column of an `n`-wide `[state + 6, n]` table, state and bookkeeping,
    /// copied from `from` to `to`: what a kernel does before stepping the env in place.
    #[cube]
    pub fn copy_column<F: Float>(
        from: &Tensor<F>,
        to: &mut Tensor<F>,
        env: usize,
        n: usize,
        #[comptime] physics: Physics,
    ) {
        #[unroll]
        for k in 0..comptime![physics.state_dim() + bookkeeping::COUNT] {
            to[k * n + env] = from[k * n + env];
        }
    }

    /// The observation of the state in env `env`'s column of an `n`-wide table, written
    /// into `observation`.
    #[cube]
    pub fn observe_column<F: Float>(
        // Only read; `&mut` because the kernels hold their tables mutably.
        table: &mut Tensor<F>,
        env: usize,
        n: usize,
        observation: &mut Array<F>,
        #[comptime] physics: Physics,
    ) {
        let mut state = Array::<F>::new(comptime![physics.state_dim()]);
        #[unroll]
        for k in 0..comptime![physics.state_dim()] {
            state[k] = table[k * n + env];
        }
        write_observation(&state, observation, physics);
    }

    /// Where one env's step reads and writes: its column `env` of the `n`-wide table, its
    /// restart state at `start + k * start_stride` (variable `k`) and its signals at
    /// `signal + k * signal_stride` (signal `k`). A kernel that runs many steps puts each
    /// step's starts and signals side by side in wider tensors.
    #[derive(CubeType, Clone)]
    pub struct StepAt {
        /// The env's column.
        pub env: usize,
        /// Envs in the table.
        pub n: usize,
        /// The restart state's first value.
        pub start: usize,
        /// Between its variables.
        pub start_stride: usize,
        /// The first signal.
        pub signal: usize,
        /// Between the signals.
        pub signal_stride: usize,
    }

    /// One env's step in its own table column: a restart from `starts` if its episode ended
    /// on the last step (next-step autoreset: the action ignored), else the physics; then
    /// the running return and length, the time limit (Gymnasium's `TimeLimit`: a step at
    /// the limit truncates, terminating or not), the finished-episode counters and the
    /// [`signal`]s. Every value is read before it is written.
    #[cube]
    #[allow(clippy::too_many_arguments)]
    pub fn step_in_place<F: Float>(
        table: &mut Tensor<F>,
        starts: &Tensor<F>,
        signals: &mut Tensor<F>,
        at: &StepAt,
        action: F,
        time_limit: f32,
        #[comptime] physics: Physics,
    ) {
        let (env, n) = (at.env, at.n);
        let state_dim = comptime![physics.state_dim()];
        // Bookkeeping row `k` of this env is at `first + k * n`.
        let first = state_dim * n + env;
        let restarted = table[first + bookkeeping::NEEDS_RESET * n] > F::new(0.5);
        let mut state = Array::<F>::new(state_dim);
        #[unroll]
        for k in 0..state_dim {
            state[k] = table[k * n + env];
            if restarted {
                state[k] = starts[at.start + k * at.start_stride];
            }
        }
        let zero = F::new(0.0);
        let one = F::new(1.0);
        let mut reward = zero;
        let mut terminated = false;
        let mut elapsed = zero;
        let mut episode_return = zero;
        let mut truncated = false;
        if !restarted {
            let outcome = physics_step(&mut state, action, physics);
            reward = outcome.reward;
            terminated = outcome.terminated;
            elapsed = table[first + bookkeeping::ELAPSED * n] + one;
            episode_return = table[first + bookkeeping::EPISODE_RETURN * n] + reward;
            truncated = elapsed >= F::cast_from(time_limit);
        }
        #[unroll]
        for k in 0..state_dim {
            table[k * n + env] = state[k];
        }
        let done = terminated || truncated;
        if done {
            let count = first + bookkeeping::FINISHED_COUNT * n;
            let returns = first + bookkeeping::FINISHED_RETURN * n;
            let lengths = first + bookkeeping::FINISHED_LENGTH * n;
            table[count] += one;
            table[returns] += episode_return;
            table[lengths] += elapsed;
        }
        table[first + bookkeeping::ELAPSED * n] = elapsed;
        table[first + bookkeeping::EPISODE_RETURN * n] = episode_return;
        table[first + bookkeeping::NEEDS_RESET * n] = indicator::<F>(done);
        let stride = at.signal_stride;
        signals[at.signal + signal::REWARD * stride] = reward;
        signals[at.signal + signal::TERMINATED * stride] = indicator::<F>(terminated);
        signals[at.signal + signal::TRUNCATED * stride] = indicator::<F>(truncated);
        signals[at.signal + signal::RESET * stride] = indicator::<F>(restarted);
    }
}

/// What the physics of one step gave: the reward, and whether the episode ended in a
/// terminal state.
#[derive(CubeType)]
pub struct Outcome<F: Float> {
    /// The step's reward.
    pub reward: F,
    /// Whether the new state is terminal.
    pub terminated: bool,
}

/// CartPole's step of `x, x_dot, theta, theta_dot` under a push (0 left, 1 right), in
/// `CartPoleTensors::step`'s operation order.
#[cube]
fn cartpole_physics<F: Float>(state: &mut Array<F>, action: F) -> Outcome<F> {
    let (x, x_dot, theta, theta_dot) = (state[0], state[1], state[2], state[3]);
    let force =
        action * F::new(2.0 * cartpole::FORCE_MAG as f32) - F::new(cartpole::FORCE_MAG as f32);
    let (sin, cos) = (F::sin(theta), F::cos(theta));
    let temp = (force + theta_dot * theta_dot * sin * F::new(cartpole::POLE_MASS_LENGTH as f32))
        / F::new(cartpole::TOTAL_MASS as f32);
    let theta_acc = (sin * F::new(cartpole::GRAVITY as f32) - cos * temp)
        / ((cos * cos * F::new((-cartpole::MASS_POLE / cartpole::TOTAL_MASS) as f32)
            + F::new(4.0 / 3.0))
            * F::new(cartpole::HALF_LENGTH as f32));
    let x_acc =
        temp - theta_acc * cos * F::new((cartpole::POLE_MASS_LENGTH / cartpole::TOTAL_MASS) as f32);
    let tau = F::new(cartpole::TAU as f32);
    state[0] = x + x_dot * tau;
    state[1] = x_dot + x_acc * tau;
    state[2] = theta + theta_dot * tau;
    state[3] = theta_dot + theta_acc * tau;
    Outcome::<F> {
        reward: F::new(1.0),
        terminated: F::abs(state[0]) > F::new(cartpole::X_THRESHOLD as f32)
            || F::abs(state[2]) > F::new(cartpole::THETA_THRESHOLD as f32),
    }
}

/// MountainCar's step of `position, velocity` under an acceleration (0 left, 1 none,
/// 2 right), in `MountainCarTensors::step`'s operation order.
#[cube]
fn mountain_car_physics<F: Float>(state: &mut Array<F>, action: F) -> Outcome<F> {
    let push = (action - F::new(1.0)) * F::new(mountain_car::FORCE as f32);
    let max_speed = F::new(mountain_car::MAX_SPEED as f32);
    let mut velocity = clamp::<F>(
        state[1] + push + F::cos(state[0] * F::new(3.0)) * F::new(-mountain_car::GRAVITY as f32),
        -max_speed,
        max_speed,
    );
    let min_position = F::new(mountain_car::MIN_POSITION as f32);
    let position = clamp::<F>(
        state[0] + velocity,
        min_position,
        F::new(mountain_car::MAX_POSITION as f32),
    );
    // The car stops dead against the left wall.
    if position <= min_position && velocity < F::new(0.0) {
        velocity = F::new(0.0);
    }
    state[0] = position;
    state[1] = velocity;
    Outcome::<F> {
        reward: F::new(-1.0),
        terminated: position >= F::new(mountain_car::GOAL_POSITION as f32)
            && velocity >= F::new(0.0),
    }
}

/// Pendulum's step of `theta, theta_dot` under a torque, in `PendulumTensors::step`'s
/// operation order; it never terminates.
#[cube]
fn pendulum_physics<F: Float>(state: &mut Array<F>, action: F) -> Outcome<F> {
    let (theta, theta_dot) = (state[0], state[1]);
    let max_torque = F::new(pendulum::MAX_TORQUE);
    let u = clamp::<F>(action, -max_torque, max_torque);
    // `((theta + pi) mod 2 pi) - pi`, the modulo floored as Python's.
    let pi = F::new(core::f32::consts::PI);
    let shifted = theta + pi;
    let turns = F::floor(shifted / F::new(2.0 * core::f32::consts::PI));
    let normalized = shifted - turns * F::new(2.0 * core::f32::consts::PI) - pi;
    let costs =
        normalized * normalized + theta_dot * theta_dot * F::new(0.1) + u * u * F::new(0.001);
    let max_speed = F::new(pendulum::MAX_SPEED as f32);
    let dt = F::new(pendulum::DT as f32);
    let gravity_term = F::new((3.0 * pendulum::GRAVITY / (2.0 * pendulum::LENGTH)) as f32);
    let torque_term = F::new((3.0 / (pendulum::MASS * pendulum::LENGTH * pendulum::LENGTH)) as f32);
    let theta_dot = clamp::<F>(
        theta_dot + (F::sin(theta) * gravity_term + u * torque_term) * dt,
        -max_speed,
        max_speed,
    );
    state[0] = theta + theta_dot * dt;
    state[1] = theta_dot;
    Outcome::<F> {
        reward: -costs,
        terminated: false,
    }
}
