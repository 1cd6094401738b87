//! Training rollouts of device envs in one CubeCL kernel: each unit runs one env for up to a
//! launch's worth of steps, the actor's forward pass, a drawn action and the env's own step
//! (next-step autoreset, time limit, counters: [`step_in_place`], what the single-step kernel
//! runs), and records every step's observation, action, signals and episode totals.
//!
//! Stepped one step at a time, a device rollout pays about ten launches' host side per step
//! (the network's layers, the draw, the env step) whatever the number of envs. Here it pays
//! one launch per [`steps_within_limit`] steps. What the update needs besides (values,
//! log-probabilities) is one batched forward pass over the whole rollout afterwards, on the
//! caller's side, with burn's tensors: the same numbers the update's forward pass computes.
//!
//! The draws come from the episode kernel's counter-based generator, keyed by the rollout's
//! seed plus the env and by the step, not from the device's generator; restart states come
//! from the device's generator as in a per-step rollout.

use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension, cubecl::dtype_to_storage_type};
use burn::prelude::{Device, Shape, Tensor as BurnTensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::ir::ElemType;
use cubecl::{calculate_cube_count_elemwise, prelude::*};
use gradless_device_envs::kernel_physics::{StepAt, copy_column, observe_column, step_in_place};
use gradless_device_envs::{DeviceVectorEnv, Physics, bookkeeping, signal};

use crate::acting::ActError;
use crate::device_episodes::{MAX_KERNEL_WIDTH, runs_cube_kernels, steps_within_limit};
use crate::network::{ActionHead, ActorCritic, Mlp};
use gradless_kernels::episode_kernel::{
    KernelHead, ProgramShape, Quad, act, contiguous_arg, draws, forward,
};

/// Rows of a rollout's episode totals: after each step, the running return and length of
/// the env's episode (those of the finished one on the step that ends it).
pub mod totals {
    /// The return so far.
    pub const RETURN: usize = 0;
    /// The steps so far.
    pub const LENGTH: usize = 1;
    /// Rows.
    pub const COUNT: usize = 2;
}

/// The runtime values of a launch.
#[derive(Clone, Copy, Debug)]
pub struct RolloutScalars {
    /// Steps each env takes in this launch.
    pub steps: u32,
    /// The rollout's steps before this launch's: the draws' step counter starts there.
    pub first_step: u32,
    /// Steps after which an episode is truncated.
    pub time_limit: f32,
    /// The rollout's seed, low and high 32 bits: env `i`'s draws are keyed by seed + `i`.
    pub seed: [u32; 2],
}

/// The next table, then per step and env (column `t * num_envs + i`, row-major
/// observations) the observations `[steps * n, observation_dim]`, actions `[steps * n]`,
/// signals `[4, steps * n]` and [`totals`] `[2, steps * n]`.
#[allow(clippy::too_many_arguments)]
fn rollout_outputs(
    _layout: &TensorSpec,
    _weights: &TensorSpec,
    _head: &TensorSpec,
    table: &TensorSpec,
    _starts: &TensorSpec,
    scalars: &RolloutScalars,
    shape: &ProgramShape,
) -> (TensorSpec, TensorSpec, TensorSpec, TensorSpec, TensorSpec) {
    let columns = scalars.steps as usize * table.shape[1];
    let spec = |dims: Vec<usize>| TensorSpec::new(Shape::from(dims), table.dtype);
    (
        table.clone(),
        spec(vec![columns, shape.physics.observation_dim()]),
        spec(vec![columns]),
        spec(vec![signal::COUNT, columns]),
        spec(vec![totals::COUNT, columns]),
    )
}

/// Backends that run rollouts in one kernel.
#[backend_extension(Cube, Fusion)]
pub trait RolloutKernel: Backend {
    /// Runs `scalars.steps` steps of every env of the table (see [`rollout_kernel`]) and
    /// returns the next table and the steps' records (see [`rollout_outputs`]).
    #[fusion(meta = rollout_outputs)]
    #[allow(clippy::type_complexity)]
    fn rollout_steps(
        layout: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        head: FloatTensor<Self>,
        table: FloatTensor<Self>,
        starts: FloatTensor<Self>,
        scalars: RolloutScalars,
        shape: ProgramShape,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );
}

impl RolloutKernel for CubeBackend {
    fn rollout_steps(
        layout: CubeTensor,
        weights: CubeTensor,
        head: CubeTensor,
        table: CubeTensor,
        starts: CubeTensor,
        scalars: RolloutScalars,
        shape: ProgramShape,
    ) -> (CubeTensor, CubeTensor, CubeTensor, CubeTensor, CubeTensor) {
        let weights = into_contiguous(weights);
        let (client, device, float) = (table.client.clone(), table.device.clone(), table.dtype);
        let empty = |dims: Vec<usize>| {
            empty_device_dtype(client.clone(), device.clone(), Shape::from(dims), float)
        };
        let n = table.meta.shape()[1];
        let columns = scalars.steps as usize * n;
        let next_table = empty(table.meta.shape().to_vec());
        let observations = empty(vec![columns, shape.physics.observation_dim()]);
        let actions = empty(vec![columns]);
        let signals = empty(vec![signal::COUNT, columns]);
        let totals = empty(vec![totals::COUNT, columns]);
        let scratch = empty(vec![2 * shape.max_width, n]);
        let cube_dim = CubeDim::new(&client, n);
        let cube_count = calculate_cube_count_elemwise(&client, n, cube_dim);
        rollout_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            contiguous_arg(layout),
            weights.clone().into_tensor_arg(),
            // The same values read four at a time by the blocked layers.
            weights.into_tensor_arg(),
            contiguous_arg(head),
            contiguous_arg(table),
            contiguous_arg(starts),
            next_table.clone().into_tensor_arg(),
            observations.clone().into_tensor_arg(),
            actions.clone().into_tensor_arg(),
            signals.clone().into_tensor_arg(),
            totals.clone().into_tensor_arg(),
            scratch.into_tensor_arg(),
            scalars.steps,
            scalars.first_step,
            scalars.time_limit,
            scalars.seed[0],
            scalars.seed[1],
            shape,
            dtype_to_storage_type(float),
        );
        (next_table, observations, actions, signals, totals)
    }
}

/// One unit per env `i` of the `[state + 6, n]` `table`, running `steps` steps:
/// - the observation of the env's state goes to `observations[t * n + i]` and into the
///   network (`layout`, `weights` and the same values four at a time in `quads`, as the
///   episode kernel takes them; `head` its parameters), whose drawn action goes to
///   `actions[t * n + i]` (an index as a float for the discrete envs);
/// - the env steps in its column of `next_table` (a copy of `table`), restarting from
///   `starts[.., t * n + i]` where its episode ended on the step before, and writes the
///   step's signals and [`totals`] to column `t * n + i` of theirs;
/// - `scratch`: `[2 * max_width, n]`, the activations (see [`forward`]).
///
/// The weights are read from the buffer: a training rollout's few envs make cubes of a few
/// units, too few to share a copy in shared memory.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn rollout_kernel<F: Float>(
    layout: &Tensor<F>,
    weights: &Tensor<F>,
    quads: &Tensor<Quad<F>>,
    head: &Tensor<F>,
    table: &Tensor<F>,
    starts: &Tensor<F>,
    next_table: &mut Tensor<F>,
    observations: &mut Tensor<F>,
    actions: &mut Tensor<F>,
    signals: &mut Tensor<F>,
    totals: &mut Tensor<F>,
    scratch: &mut Tensor<F>,
    steps: u32,
    first_step: u32,
    time_limit: f32,
    seed_lo: u32,
    seed_hi: u32,
    #[comptime] shape: ProgramShape,
    #[define(F)] _float: ElemType,
) {
    let env = ABSOLUTE_POS;
    let n = scratch.len() / comptime![2 * shape.max_width];
    if env >= n {
        terminate!();
    }
    let state_dim = comptime![shape.physics.state_dim()];
    let observation_dim = comptime![shape.physics.observation_dim()];
    copy_column(table, next_table, env, n, shape.physics);
    let outputs = usize::cast_from(layout[comptime![shape.layers]]);
    let columns = usize::cast_from(steps) * n;
    let lo = seed_lo + u32::cast_from(env);
    let hi = seed_hi + u32::cast_from(lo < seed_lo);
    let book = state_dim * n + env;
    for t in 0..steps {
        let column = usize::cast_from(t) * n + env;
        let mut observation = Array::<F>::new(observation_dim);
        observe_column(next_table, env, n, &mut observation, shape.physics);
        #[unroll]
        for k in 0..observation_dim {
            observations[column * observation_dim + k] = observation[k];
            scratch[k * n + env] = observation[k];
        }
        let at = forward(scratch, env, n, layout, weights, quads.as_slice(), shape);
        let drawn = draws::<F>(lo, hi, first_step + t);
        let action = act(
            scratch,
            at * n + env,
            n,
            outputs,
            head,
            drawn.u,
            drawn.z,
            shape.head,
        );
        actions[column] = action;
        let step = StepAt {
            env,
            n,
            start: column,
            start_stride: columns,
            signal: column,
            signal_stride: columns,
        };
        step_in_place(
            next_table,
            starts,
            signals,
            &step,
            action,
            time_limit,
            shape.physics,
        );
        totals[totals::RETURN * columns + column] =
            next_table[book + bookkeeping::EPISODE_RETURN * n];
        totals[totals::LENGTH * columns + column] = next_table[book + bookkeeping::ELAPSED * n];
    }
}

/// An actor-critic's actor as the rollout kernel takes it, its weights packed on the device
/// (nothing read back).
#[derive(Debug, Clone)]
pub struct RolloutProgram {
    shape: ProgramShape,
    /// Layer widths, input first.
    layout: BurnTensor<1>,
    /// As [`padded_weights`](gradless_kernels::episode_kernel::padded_weights) packs them.
    weights: BurnTensor<1>,
    /// The head's four parameters: a Gaussian's log-std, then zeros.
    head: BurnTensor<1>,
    steps_per_launch: u32,
}

impl RolloutProgram {
    /// The program for rollouts of `actor` (an inference copy, `head` its action head) in
    /// envs of `physics`, or why the kernel does not cover it (the caller then steps per
    /// step).
    pub fn new(actor: &ActorCritic, head: ActionHead, physics: Physics) -> Result<Self, String> {
        let net = actor.actor_network();
        let layers = net.layers();
        let Some(first) = layers.first() else {
            return Err("the actor has no layers".into());
        };
        let device = first.weight.val().device();
        if !runs_cube_kernels(&device) {
            return Err("the device runs no cubecl kernels (flex)".into());
        }
        let (kernel_head, head_values) = match head {
            ActionHead::Categorical { .. } => {
                (KernelHead::Categorical, BurnTensor::zeros([4], &device))
            }
            ActionHead::Gaussian { dim: 1 } => {
                let log_std = actor.log_std().ok_or("a Gaussian head without a log-std")?;
                let rest = BurnTensor::zeros([3], &device);
                (
                    KernelHead::Gaussian,
                    BurnTensor::cat(vec![log_std.reshape([1]), rest], 0),
                )
            }
            ActionHead::Gaussian { dim } => {
                return Err(format!(
                    "the kernel takes one action value per step, not {dim}"
                ));
            }
        };
        if matches!(kernel_head, KernelHead::Gaussian) != matches!(physics, Physics::Pendulum) {
            return Err("the actor's actions do not suit the env".into());
        }
        let mut widths = vec![first.weight.dims()[0]];
        widths.extend(layers.iter().map(|layer| layer.weight.dims()[1]));
        let widest = widths.iter().copied().max().unwrap_or(0);
        if widest > MAX_KERNEL_WIDTH {
            return Err(format!(
                "a layer of {widest} units is wider than the kernel's {MAX_KERNEL_WIDTH}"
            ));
        }
        let steps_per_launch = steps_within_limit(&widths, kernel_head, 1, 0)?;
        let layout: Vec<f32> = widths.iter().map(|&w| w as f32).collect();
        Ok(Self {
            shape: ProgramShape {
                physics,
                max_width: widest.max(physics.observation_dim()),
                layers: layers.len(),
                activation: net.activation().into(),
                head: kernel_head,
                normalized: false,
                envs_per_unit: 1,
                shared_quads: 0,
            },
            layout: BurnTensor::from_data(
                burn::prelude::TensorData::new(layout, [widths.len()]),
                &device,
            ),
            weights: packed_weights(net, &device),
            head: head_values,
            steps_per_launch,
        })
    }
}

/// Each layer's `[in, out]` weights then its bias, padded with zeros to a multiple of four
/// values, the layers in order: on the device.
fn packed_weights(net: &Mlp, device: &Device) -> BurnTensor<1> {
    let mut parts = Vec::new();
    for layer in net.layers() {
        let [inputs, outputs] = layer.weight.dims();
        parts.push(layer.weight.val().reshape([inputs * outputs]));
        parts.push(match &layer.bias {
            Some(bias) => bias.val(),
            None => BurnTensor::zeros([outputs], device),
        });
        let padding = ((inputs + 1) * outputs).next_multiple_of(4) - (inputs + 1) * outputs;
        if padding > 0 {
            parts.push(BurnTensor::zeros([padding], device));
        }
    }
    BurnTensor::cat(parts, 0)
}

/// A rollout's records, on the device: per step and env, column `t * num_envs + i`.
#[derive(Debug, Clone)]
pub struct KernelRollout {
    /// `[steps * n, observation_dim]`: what the actor acted on.
    pub observations: BurnTensor<2>,
    /// `[steps * n]`: the drawn actions (indices as floats for the discrete envs).
    pub actions: BurnTensor<1>,
    /// `[4, steps * n]`: a row per [`signal`].
    pub signals: BurnTensor<2>,
    /// `[2, steps * n]`: a row per [`totals`] value.
    pub totals: BurnTensor<2>,
}

/// Runs `steps` steps of `envs` with `program`'s actor in as few launches as the loop limit
/// allows, the draws keyed by `seed`, and leaves the envs where the rollout ended.
pub fn run_rollout(
    program: &RolloutProgram,
    envs: &mut DeviceVectorEnv,
    steps: usize,
    seed: u64,
) -> Result<KernelRollout, ActError> {
    let mut chunks: Vec<[BurnTensor<2>; 4]> = Vec::new();
    let mut done = 0;
    while done < steps {
        let chunk = (steps - done).min(program.steps_per_launch as usize);
        let handed = envs.kernel_steps(chunk)?;
        if handed.physics != program.shape.physics {
            return Err(ActError::Plan(format!(
                "a rollout program for {:?} cannot step {:?}",
                program.shape.physics, handed.physics
            )));
        }
        let scalars = RolloutScalars {
            steps: chunk as u32,
            first_step: done as u32,
            time_limit: handed.time_limit,
            seed: [seed as u32, (seed >> 32) as u32],
        };
        let (table, observations, actions, signals, totals) =
            <Dispatch as RolloutKernel>::rollout_steps(
                program.layout.clone().into_dispatch(),
                program.weights.clone().into_dispatch(),
                program.head.clone().into_dispatch(),
                handed.table.into_dispatch(),
                handed.starts.into_dispatch(),
                scalars,
                program.shape,
            );
        envs.resume_after_kernel(BurnTensor::from_dispatch(table))?;
        let actions = BurnTensor::<1>::from_dispatch(actions);
        chunks.push([
            BurnTensor::from_dispatch(observations),
            actions.unsqueeze_dim(0),
            BurnTensor::from_dispatch(signals),
            BurnTensor::from_dispatch(totals),
        ]);
        done += chunk;
    }
    let part =
        |k: usize, dim: usize| BurnTensor::cat(chunks.iter().map(|c| c[k].clone()).collect(), dim);
    Ok(KernelRollout {
        observations: part(0, 0),
        actions: part(1, 1).squeeze_dim(0),
        signals: part(2, 1),
        totals: part(3, 1),
    })
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::prelude::TensorData;
    use gradless_device::{Backend, InferenceDevice, open};
    use gradless_device_envs::EnvBatch;
    use gradless_device_envs::{
        CartPoleTensors, DeviceActions, PendulumTensors, make_device_vector,
    };
    use gradless_envs::{Actions, EnvRng};

    use super::*;
    use crate::acting::read_f32;
    use crate::network::{Activation, linear_with_bias};

    fn wgpu() -> Device {
        InferenceDevice::new(&open(Backend::Wgpu).expect("a wgpu adapter (lavapipe on CI)"))
            .device()
            .clone()
    }

    fn read<const D: usize>(tensor: BurnTensor<D>) -> Vec<f32> {
        read_f32(tensor).unwrap()
    }

    /// A 4-8-`outputs` actor whose outputs are `bias` whatever it observes (zero weights),
    /// with this log-std for a Gaussian head.
    fn constant_actor(
        inputs: usize,
        bias: Vec<f32>,
        log_std: Option<f32>,
        device: &Device,
    ) -> ActorCritic {
        let outputs = bias.len();
        let actor = Mlp::from_linears(
            vec![
                linear_with_bias(vec![0.0; inputs * 8], vec![0.0; 8], inputs, 8, device),
                linear_with_bias(vec![0.0; 8 * outputs], bias, 8, outputs, device),
            ],
            Activation::Tanh,
        );
        let critic = Mlp::zeros(inputs, &[8], 1, Activation::Tanh, device);
        let log_std = log_std.map(|value| {
            Param::from_data(TensorData::new(vec![value; outputs], [1, outputs]), device)
        });
        ActorCritic::from_parts(actor, critic, log_std)
    }

    /// The kernel's steps are the single-step kernel's: stepping a copy of the envs one step
    /// at a time with the actions the kernel drew gives the observations and signals it
    /// recorded and leaves the envs where it left them.
    #[test]
    fn kernel_steps_are_the_single_step_kernels() {
        let device = wgpu();
        let n = 16;
        let mut in_kernel = make_device_vector("CartPole-v1", n, &device).unwrap();
        EnvBatch::reset(&mut in_kernel, 3).unwrap();
        let mut stepped = make_device_vector("CartPole-v1", n, &device).unwrap();
        stepped.restore(&in_kernel.snapshot().unwrap()).unwrap();
        let head = ActionHead::Categorical { n: 2 };
        let actor = ActorCritic::new(
            4,
            &[64, 64],
            Activation::Tanh,
            head,
            &mut EnvRng::from_seed(5),
            &device,
        );
        let program = RolloutProgram::new(&actor, head, Physics::CartPole).unwrap();
        // Too few steps for an episode to end from a reset.
        let steps = 5;
        let run = run_rollout(&program, &mut in_kernel, steps, 42).unwrap();
        let observations = read(run.observations);
        let actions = read(run.actions);
        let signals = read(run.signals);
        let columns = steps * n;
        assert_eq!(
            (observations.len(), actions.len(), signals.len()),
            (columns * 4, columns, 4 * columns)
        );
        for t in 0..steps {
            let now = read(stepped.observations());
            let recorded = &observations[t * n * 4..(t + 1) * n * 4];
            for (a, b) in now.iter().zip(recorded) {
                assert!((a - b).abs() <= 1e-6, "step {t}: {now:?} vs {recorded:?}");
            }
            let indices: Vec<i64> = actions[t * n..(t + 1) * n]
                .iter()
                .map(|&a| a as i64)
                .collect();
            assert!(indices.iter().all(|&a| a == 0 || a == 1), "{indices:?}");
            let step = stepped
                .step(&DeviceActions::upload(
                    Actions::Discrete(&indices),
                    n,
                    &device,
                ))
                .unwrap();
            let expected = read(step.signals);
            for k in 0..signal::COUNT {
                assert_eq!(
                    &expected[k * n..(k + 1) * n],
                    &signals[k * columns + t * n..k * columns + (t + 1) * n],
                    "step {t}, signal {k}"
                );
            }
        }
        let (a, b) = (in_kernel.snapshot().unwrap(), stepped.snapshot().unwrap());
        assert_eq!((&a.elapsed, &a.needs_reset), (&b.elapsed, &b.needs_reset));
        for (a, b) in a.state.iter().flatten().zip(b.state.iter().flatten()) {
            assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
        }
    }

    /// Over more steps than one launch runs, under a time limit of three steps: every
    /// episode acts three steps and is cut on the third, the next step restarts it (reward
    /// 0, from a fresh start), and the totals hold the finished episode's return and length.
    /// The draws go on: the second launch's are not the first's again.
    #[test]
    fn rollouts_autoreset_across_launches() {
        let device = wgpu();
        let n = 8;
        let mut envs = DeviceVectorEnv::new(Box::new(CartPoleTensors), n, Some(3), &device);
        // Upright and still: no episode can terminate in three steps.
        envs.set_state(&vec![0.0; n * 4]);
        let actor = constant_actor(4, vec![0.0, 0.0], None, &device);
        let program =
            RolloutProgram::new(&actor, ActionHead::Categorical { n: 2 }, Physics::CartPole)
                .unwrap();
        let steps = 300;
        assert!(steps > program.steps_per_launch as usize);
        let run = run_rollout(&program, &mut envs, steps, 7).unwrap();
        let columns = steps * n;
        // The second launch's draws are not the first's again: the step counter runs on.
        let actions = read(run.actions.clone());
        let later = program.steps_per_launch as usize * n;
        assert_ne!(&actions[later..], &actions[..columns - later]);
        let (signals, totals, observations) =
            (read(run.signals), read(run.totals), read(run.observations));
        let at = |row: usize, column: usize| signals[row * columns + column];
        for t in 0..steps {
            for i in 0..n {
                let column = t * n + i;
                let phase = t % 4;
                assert_eq!(at(signal::RESET, column), f32::from(phase == 3), "step {t}");
                assert_eq!(
                    at(signal::REWARD, column),
                    f32::from(phase != 3),
                    "step {t}"
                );
                assert_eq!(
                    at(signal::TRUNCATED, column),
                    f32::from(phase == 2),
                    "step {t}"
                );
                assert_eq!(at(signal::TERMINATED, column), 0.0);
                if phase == 2 {
                    assert_eq!(totals[totals::RETURN * columns + column], 3.0);
                    assert_eq!(totals[totals::LENGTH * columns + column], 3.0);
                }
                if phase == 0 && t > 0 {
                    let start = &observations[column * 4..column * 4 + 4];
                    assert!(start.iter().all(|v| v.abs() <= 0.05), "{start:?}");
                }
            }
        }
    }

    /// Drawn actions follow the actor's distribution: a categorical head of logits
    /// `[0, ln 3]` picks action 1 three times in four, a Gaussian head of mean 0.5 and
    /// standard deviation 0.2 draws values of that mean and spread (4096 draws each, bounds
    /// five standard errors wide).
    #[test]
    fn drawn_actions_follow_the_actors_distribution() {
        let device = wgpu();
        let (n, steps) = (64, 64);
        let draws = (n * steps) as f64;
        let categorical = constant_actor(4, vec![0.0, 3f32.ln()], None, &device);
        let head = ActionHead::Categorical { n: 2 };
        let program = RolloutProgram::new(&categorical, head, Physics::CartPole).unwrap();
        let mut envs = make_device_vector("CartPole-v1", n, &device).unwrap();
        let actions = read(run_rollout(&program, &mut envs, steps, 11).unwrap().actions);
        let ones = actions.iter().filter(|&&a| a == 1.0).count() as f64 / draws;
        assert!(actions.iter().all(|&a| a == 0.0 || a == 1.0));
        assert!(
            (ones - 0.75).abs() < 5.0 * (0.75f64 * 0.25 / draws).sqrt(),
            "{ones}"
        );

        let gaussian = constant_actor(3, vec![0.5], Some(0.2f32.ln()), &device);
        let head = ActionHead::Gaussian { dim: 1 };
        let program = RolloutProgram::new(&gaussian, head, Physics::Pendulum).unwrap();
        let mut envs = DeviceVectorEnv::new(Box::new(PendulumTensors), n, Some(200), &device);
        let actions = read(run_rollout(&program, &mut envs, steps, 11).unwrap().actions);
        let mean = actions.iter().map(|&a| f64::from(a)).sum::<f64>() / draws;
        let spread = (actions
            .iter()
            .map(|&a| (f64::from(a) - mean).powi(2))
            .sum::<f64>()
            / draws)
            .sqrt();
        assert!((mean - 0.5).abs() < 5.0 * 0.2 / draws.sqrt(), "{mean}");
        // A sample standard deviation's standard error is about sigma / sqrt(2 n).
        assert!(
            (spread - 0.2).abs() < 5.0 * 0.2 / (2.0 * draws).sqrt(),
            "{spread}"
        );
    }

    /// What the kernel does not cover is refused with the reason, for the per-step path.
    #[test]
    fn actors_the_kernel_does_not_cover_are_refused() {
        let flex = Device::flex();
        let head = ActionHead::Categorical { n: 2 };
        let on_flex = constant_actor(4, vec![0.0, 0.0], None, &flex);
        let why = RolloutProgram::new(&on_flex, head, Physics::CartPole).unwrap_err();
        assert!(why.contains("flex"), "{why}");
        let device = wgpu();
        let mut rng = EnvRng::from_seed(1);
        let wide = ActorCritic::new(4, &[300], Activation::Tanh, head, &mut rng, &device);
        let why = RolloutProgram::new(&wide, head, Physics::CartPole).unwrap_err();
        assert!(why.contains("300 units"), "{why}");
        let two = ActionHead::Gaussian { dim: 2 };
        let wide_action = ActorCritic::new(3, &[8], Activation::Tanh, two, &mut rng, &device);
        let why = RolloutProgram::new(&wide_action, two, Physics::Pendulum).unwrap_err();
        assert!(why.contains("one action value"), "{why}");
        let discrete = constant_actor(3, vec![0.0, 0.0], None, &device);
        let why = RolloutProgram::new(&discrete, head, Physics::Pendulum).unwrap_err();
        assert!(why.contains("do not suit"), "{why}");
    }
}
