//! Whole episodes of policy and env in one CubeCL kernel, for the cubecl devices (wgpu; CUDA
//! when compiled in).
//!
//! Per step, a greedy evaluation on a GPU pays the host side of about ten launches (the
//! network's layers, the argmax, the env step) whatever the batch. An evaluation episode
//! depends on no other and the policy is a small MLP, so here one unit runs a few env slots
//! ([`envs_per_unit`]) for `steps` steps of forward pass and physics per launch, their
//! forward passes together (each weight it loads serves every one of its slots), the weights
//! read by every unit of a cube at the same address from the cube's shared memory where
//! they fit it (else from the buffer, a broadcast the caches serve). Each slot
//! runs a fixed quota of episodes from starts the host uploads and writes a record (return,
//! length, terminated, truncated) per finished episode.
//!
//! One file because the kernel, its `#[cube]` functions and its launch share the slot
//! table's layout ([`slot`]), the program's shape and the forward pass's blocking.

use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension, cubecl::dtype_to_storage_type};
use burn::prelude::{Shape, Tensor as BurnTensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::ir::ElemType;
use cubecl::{calculate_cube_count_elemwise, prelude::*};
use gradless_device_envs::Physics;
use gradless_device_envs::kernel_physics::{physics_step, write_observation};

use crate::Activation;

/// What the network's output becomes: the action the physics takes.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum KernelHead {
    /// The index of the largest output (logits, Q-values), first on ties.
    Argmax,
    /// The first output as it is (a Gaussian mean).
    Mean,
    /// `tanh(first output) * scale + bias` (SAC's squashed mean), the two from the head
    /// parameters.
    TanhScale,
    /// A draw from the softmax of the outputs (logits), by the inverse of its CDF.
    Categorical,
    /// `first output + exp(log_std) * z`, `log_std` the first head parameter and `z` a
    /// standard normal draw.
    Gaussian,
    /// `tanh(mean + exp(log_std) * z) * scale + bias` (SAC's draw): the mean the first output,
    /// `log_std` mapped from the second into `[min, max]` by `tanh`; the head parameters
    /// are scale, bias, min and max.
    SquashedGaussian,
}

impl KernelHead {
    /// Whether the head draws its action (and the kernel the random numbers for it).
    pub fn samples(self) -> bool {
        matches!(
            self,
            Self::Categorical | Self::Gaussian | Self::SquashedGaussian
        )
    }

    /// Loops over the outputs per step: the argmax one, the draw three.
    fn output_loops(self) -> usize {
        match self {
            Self::Argmax => 1,
            Self::Categorical => 3,
            Self::Mean | Self::TanhScale | Self::Gaussian | Self::SquashedGaussian => 0,
        }
    }
}

/// The nonlinearity between hidden layers.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum KernelActivation {
    /// `tanh`.
    Tanh,
    /// `relu`.
    Relu,
}

impl From<Activation> for KernelActivation {
    fn from(activation: Activation) -> Self {
        match activation {
            Activation::Tanh => Self::Tanh,
            Activation::Relu => Self::Relu,
        }
    }
}

/// What a kernel is compiled for: one kernel per env, network shape class and head.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct ProgramShape {
    /// The env's physics.
    pub physics: Physics,
    /// The widest layer (inputs and outputs included): the size of the local arrays.
    pub max_width: usize,
    /// Linear layers.
    pub layers: usize,
    /// Between hidden layers.
    pub activation: KernelActivation,
    /// Output to action.
    pub head: KernelHead,
    /// Whether observations are normalised (`(x - mean) / std`, clipped) first.
    pub normalized: bool,
    /// Env slots one unit runs side by side, their forward passes together: each weight
    /// load then serves every one of them (see [`envs_per_unit`]). The slot table's rows
    /// come in whole groups of these (padded with slots of no episodes).
    pub envs_per_unit: usize,
    /// The weights' [`Quad`]s when every cube first copies them into its shared memory
    /// (they fit it), 0 when the blocked layers read them from the buffer.
    pub shared_quads: usize,
}

/// Slots per unit for a device: [`SOFTWARE_ENVS_PER_UNIT`] on a software adapter
/// (lavapipe), one on a GPU, whose threads are many and whose loads are cheap.
pub fn envs_per_unit(hardware: bool) -> usize {
    if hardware { 1 } else { SOFTWARE_ENVS_PER_UNIT }
}

/// On lavapipe a unit's every load from a buffer costs about a dozen multiply-adds, and a
/// unit is one SIMD lane of two CPU threads: more slots a unit pay off up to 16 at 65536
/// envs, but at 1024 envs 16 leave too few units; 8 was best over both (the figures are in
/// docs/device-and-kernels.md).
pub const SOFTWARE_ENVS_PER_UNIT: usize = 8;

/// Values per slot in the slot table: the state, then these.
pub mod slot {
    /// Steps taken in the current episode.
    pub const ELAPSED: usize = 0;
    /// Rewards summed in it.
    pub const RETURN: usize = 1;
    /// Episodes of the slot's quota finished.
    pub const FINISHED: usize = 2;
    /// Values after the state.
    pub const COUNT: usize = 3;
}

/// The loop iterations one unit may run per launch. lavapipe's shader compiler (llvmpipe)
/// guards against endless loops by ending a nest of loops after 65535 iterations in all,
/// without a word: a launch that ran longer computed wrong actions (a 256x256 network
/// failed every episode). Launches are sized below this (see [`loop_iterations`]) on every
/// device; on a GPU that only means a launch every hundred steps or so.
pub const LOOP_ITERATION_LIMIT: usize = 65535;

/// The loop iterations of a launch of `steps` steps by a unit of `envs_per_unit` slots
/// that run `quota` episodes each at most, for a network of layer `widths` (input first):
/// the weights' copy into shared memory, each slot's record copy, then per step the step loop, per layer its loop and those over
/// its outputs (or blocks of outputs) and inputs, and each slot's head loops. The kernel's
/// other loops are unrolled.
pub fn loop_iterations(
    widths: &[usize],
    head: KernelHead,
    envs_per_unit: usize,
    steps: usize,
    quota: usize,
) -> usize {
    // The copy into shared memory: at most one quad per iteration (a cube of one unit).
    let copy: usize = widths
        .windows(2)
        .map(|w| ((w[0] + 1) * w[1]).div_ceil(4))
        .sum();
    let forward: usize = widths
        .windows(2)
        .map(|w| match w[1] % BLOCK_OUTPUTS {
            0 => 1 + w[1] / BLOCK_OUTPUTS * (1 + w[0]),
            _ => 1 + w[1] * (1 + w[0]),
        })
        .sum();
    let outputs = widths.last().copied().unwrap_or(0) * head.output_loops();
    copy + envs_per_unit * (quota + steps * outputs) + steps * (1 + forward)
}

/// Values per finished-episode record: return, length, terminated, truncated.
pub const RECORD_WIDTH: usize = 4;

/// The next slot table and records, shaped as the inputs.
#[allow(clippy::too_many_arguments)]
fn episode_outputs(
    _layout: &TensorSpec,
    _weights: &TensorSpec,
    _normalization: &TensorSpec,
    _head: &TensorSpec,
    _starts: &TensorSpec,
    _plan: &TensorSpec,
    slots: &TensorSpec,
    records: &TensorSpec,
    _scalars: &EpisodeScalars,
    _shape: &ProgramShape,
) -> (TensorSpec, TensorSpec) {
    (slots.clone(), records.clone())
}

/// The runtime values of a launch.
#[derive(Clone, Copy, Debug)]
pub struct EpisodeScalars {
    /// Steps each slot takes at most in this launch.
    pub steps: u32,
    /// Steps after which an episode is truncated.
    pub time_limit: f32,
    /// Normalised observations are clipped to `[-clip, clip]`.
    pub clip: f32,
    /// The plan's first seed, low and high 32 bits: episode `e`'s draws are keyed by seed
    /// `first_seed + e` and the step, whichever slot runs it.
    pub first_seed: [u32; 2],
}

/// Backends that run episodes in one kernel.
#[backend_extension(Cube, Fusion)]
pub trait EpisodeKernel: Backend {
    /// Runs up to `scalars.steps` steps of every slot (see [`episode_kernel`] for the
    /// tensors' layouts) and returns the next slot table and records.
    #[fusion(meta = episode_outputs)]
    #[allow(clippy::too_many_arguments)]
    fn episode_steps(
        layout: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        normalization: FloatTensor<Self>,
        head: FloatTensor<Self>,
        starts: FloatTensor<Self>,
        plan: FloatTensor<Self>,
        slots: FloatTensor<Self>,
        records: FloatTensor<Self>,
        scalars: EpisodeScalars,
        shape: ProgramShape,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// A launch argument for `tensor`, its values in row-major order as the kernels index them.
pub fn contiguous_arg(tensor: CubeTensor) -> TensorArg {
    into_contiguous(tensor).into_tensor_arg()
}

impl EpisodeKernel for CubeBackend {
    /// Long because burn's custom-kernel interface wants every input made contiguous, every
    /// output allocated and the launch's arguments listed in the kernel's order, here.
    #[allow(clippy::too_many_arguments)]
    fn episode_steps(
        layout: CubeTensor,
        weights: CubeTensor,
        normalization: CubeTensor,
        head: CubeTensor,
        starts: CubeTensor,
        plan: CubeTensor,
        slots: CubeTensor,
        records: CubeTensor,
        scalars: EpisodeScalars,
        shape: ProgramShape,
    ) -> (CubeTensor, CubeTensor) {
        let weights = into_contiguous(weights);
        let (client, device, float) = (slots.client.clone(), slots.device.clone(), slots.dtype);
        let empty_like = |tensor: &CubeTensor| {
            empty_device_dtype(
                client.clone(),
                device.clone(),
                tensor.meta.shape().clone(),
                float,
            )
        };
        let (next_slots, next_records) = (empty_like(&slots), empty_like(&records));
        let num_slots = slots.meta.shape()[0];
        let scratch = empty_device_dtype(
            client.clone(),
            device.clone(),
            Shape::new([2 * shape.max_width, num_slots]),
            float,
        );
        // In shared memory where they fit: on lavapipe no faster than the buffer (the same
        // memory), on a GPU the fastest place a cube has.
        let quads = weights.meta.shape()[0] / 4;
        let fits = quads * 4 * float.size() <= client.properties().hardware.max_shared_memory_size;
        let shape = ProgramShape {
            shared_quads: if fits { quads } else { 0 },
            ..shape
        };
        let units = num_slots.div_ceil(shape.envs_per_unit);
        let cube_dim = CubeDim::new(&client, units);
        let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
        episode_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            contiguous_arg(layout),
            weights.clone().into_tensor_arg(),
            // The same values read four at a time by the blocked layers.
            weights.into_tensor_arg(),
            contiguous_arg(normalization),
            contiguous_arg(head),
            contiguous_arg(starts),
            contiguous_arg(plan),
            contiguous_arg(slots),
            contiguous_arg(records),
            next_slots.clone().into_tensor_arg(),
            next_records.clone().into_tensor_arg(),
            scratch.into_tensor_arg(),
            scalars.steps,
            scalars.time_limit,
            scalars.clip,
            scalars.first_seed[0],
            scalars.first_seed[1],
            shape,
            dtype_to_storage_type(float),
        );
        (next_slots, next_records)
    }
}

/// One launch on burn tensors (see [`EpisodeKernel::episode_steps`]): `[slot table,
/// records]`.
#[allow(clippy::too_many_arguments)]
pub fn launch(
    layout: &BurnTensor<1>,
    weights: &BurnTensor<1>,
    normalization: &BurnTensor<1>,
    head: &BurnTensor<1>,
    starts: &BurnTensor<2>,
    plan: &BurnTensor<2>,
    slots: BurnTensor<2>,
    records: BurnTensor<2>,
    scalars: EpisodeScalars,
    shape: ProgramShape,
) -> (BurnTensor<2>, BurnTensor<2>) {
    let (slots, records) = <Dispatch as EpisodeKernel>::episode_steps(
        layout.clone().into_dispatch(),
        weights.clone().into_dispatch(),
        normalization.clone().into_dispatch(),
        head.clone().into_dispatch(),
        starts.clone().into_dispatch(),
        plan.clone().into_dispatch(),
        slots.into_dispatch(),
        records.into_dispatch(),
        scalars,
        shape,
    );
    (
        BurnTensor::from_dispatch(slots),
        BurnTensor::from_dispatch(records),
    )
}

/// `x` through the nonlinearity.
#[cube]
fn activate<F: Float>(x: F, #[comptime] activation: KernelActivation) -> F {
    match comptime![activation] {
        KernelActivation::Tanh => F::tanh(x),
        KernelActivation::Relu => F::max(x, F::new(0.0)),
    }
}

/// Four consecutive weights, read with one load.
pub type Quad<F> = Vector<F, Const<4>>;

/// Outputs a blocked layer computes together: four [`Quad`]s of accumulators.
pub const BLOCK_OUTPUTS: usize = 16;

/// The layers' weights and biases (`[in, out]` then `out` values a layer, for layer `widths`)
/// as the kernel takes them: each layer's values padded with zeros to a multiple of four,
/// so that every layer starts on a [`Quad`].
pub fn padded_weights(widths: &[usize], weights: &[f32]) -> Vec<f32> {
    let mut padded = Vec::with_capacity(weights.len() + 4 * widths.len());
    let mut at = 0;
    for w in widths.windows(2) {
        let len = (w[0] + 1) * w[1];
        padded.extend_from_slice(&weights[at..at + len]);
        padded.resize(padded.len().div_ceil(4) * 4, 0.0);
        at += len;
    }
    padded
}

/// The network's forward pass for the unit's slots, `base` and the next ones, of `slots`.
/// The activations live in `scratch`, value `k` of slot `s` at `k * slots + s`
/// (neighbouring slots, neighbouring values), in two halves of `max_width` values: layer `l`
/// reads its inputs from half `l % 2` and writes its outputs to the other, so the input goes in the first half and the
/// outputs come out in the half whose first value index is returned. Layer `l` maps
/// `layout[l]` inputs to `layout[l + 1]` outputs with a row-major `[in, out]` weight matrix
/// followed by the bias, the layers one after another in `weights` (and, the same values
/// four at a time, `quads`), each padded as [`padded_weights`] does.
///
/// A layer whose outputs come in whole blocks of [`BLOCK_OUTPUTS`] computes a block at a
/// time: each input is read once per sixteen products and the weights four per load; other
/// layers read each weight once for all the slots. On lavapipe a unit's every load from a
/// buffer costs about as much as a dozen products.
#[cube]
pub fn forward<F: Float>(
    scratch: &mut Tensor<F>,
    base: usize,
    slots: usize,
    layout: &Tensor<F>,
    weights: &Tensor<F>,
    quads: &[Quad<F>],
    #[comptime] shape: ProgramShape,
) -> usize {
    let half = comptime![shape.max_width];
    let envs = comptime![shape.envs_per_unit];
    let mut offset = 0usize;
    let mut from = 0usize;
    for layer in 0..comptime![shape.layers] {
        let inputs = usize::cast_from(layout[layer]);
        let outputs = usize::cast_from(layout[layer + 1]);
        let bias = offset + inputs * outputs;
        let to = half - from;
        let hidden = layer + 1 < comptime![shape.layers];
        if outputs % BLOCK_OUTPUTS == 0 {
            for block in 0..outputs / BLOCK_OUTPUTS {
                dense_block::<F>(
                    scratch,
                    base,
                    slots,
                    quads,
                    offset,
                    inputs,
                    outputs,
                    block * BLOCK_OUTPUTS,
                    from,
                    to,
                    hidden,
                    shape.activation,
                    envs,
                );
            }
        } else {
            for j in 0..outputs {
                let mut sums = Array::<F>::new(envs);
                #[unroll]
                for e in 0..envs {
                    sums[e] = weights[bias + j];
                }
                for i in 0..inputs {
                    let weight = weights[offset + i * outputs + j];
                    #[unroll]
                    for e in 0..envs {
                        sums[e] += scratch[(from + i) * slots + base + e] * weight;
                    }
                }
                #[unroll]
                for e in 0..envs {
                    let mut sum = sums[e];
                    if hidden {
                        sum = activate::<F>(sum, shape.activation);
                    }
                    scratch[(to + j) * slots + base + e] = sum;
                }
            }
        }
        offset += (bias + outputs - offset).div_ceil(4) * 4;
        from = to;
    }
    from
}

/// Outputs `first .. first + BLOCK_OUTPUTS` of a layer (weights at `offset`) for the unit's
/// slots from `base`: per slot sixteen sums in four [`Quad`]s, each input broadcast to all
/// four, each weight load serving every slot.
#[cube]
#[allow(clippy::too_many_arguments)]
fn dense_block<F: Float>(
    scratch: &mut Tensor<F>,
    base: usize,
    slots: usize,
    quads: &[Quad<F>],
    offset: usize,
    inputs: usize,
    outputs: usize,
    first: usize,
    from: usize,
    to: usize,
    hidden: bool,
    #[comptime] activation: KernelActivation,
    #[comptime] envs: usize,
) {
    // Quads per weight row, and this block's first quad in row 0 and in the bias.
    let row = outputs / 4;
    let start = offset / 4 + first / 4;
    let bias = start + inputs * row;
    // Slot `e`'s quad `q` at `4 * e + q`.
    let mut sums = Array::<Quad<F>>::new(comptime![4 * envs]);
    #[unroll]
    for q in 0..4usize {
        let b = quads[bias + q];
        #[unroll]
        for e in 0..envs {
            sums[4 * e + q] = b;
        }
    }
    for i in 0..inputs {
        let at = start + i * row;
        let (w0, w1, w2, w3) = (quads[at], quads[at + 1], quads[at + 2], quads[at + 3]);
        #[unroll]
        for e in 0..envs {
            let x = Quad::<F>::new(scratch[(from + i) * slots + base + e]);
            sums[4 * e] += x * w0;
            sums[4 * e + 1] += x * w1;
            sums[4 * e + 2] += x * w2;
            sums[4 * e + 3] += x * w3;
        }
    }
    #[unroll]
    for e in 0..envs {
        #[unroll]
        for q in 0..4usize {
            let mut values = sums[4 * e + q];
            if hidden {
                values = activate_quad::<F>(values, activation);
            }
            store_quad::<F>(scratch, values, to + first + 4 * q, slots, base + e);
        }
    }
}

/// [`activate`] for four values.
#[cube]
fn activate_quad<F: Float>(x: Quad<F>, #[comptime] activation: KernelActivation) -> Quad<F> {
    match comptime![activation] {
        KernelActivation::Tanh => Quad::<F>::tanh(x),
        KernelActivation::Relu => Quad::<F>::max(x, Quad::<F>::new(F::new(0.0))),
    }
}

/// Activation values `at .. at + 4` of slot `unit`.
#[cube]
fn store_quad<F: Float>(
    scratch: &mut Tensor<F>,
    values: Quad<F>,
    at: usize,
    slots: usize,
    unit: usize,
) {
    scratch[at * slots + unit] = values.extract(0usize);
    scratch[(at + 1) * slots + unit] = values.extract(1usize);
    scratch[(at + 2) * slots + unit] = values.extract(2usize);
    scratch[(at + 3) * slots + unit] = values.extract(3usize);
}

/// The action the head makes of the `count` outputs at `first`, `first + stride`, ...;
/// a drawing head takes `u` (uniform in `[0, 1)`) or `z` (standard normal).
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn act<F: Float>(
    // Only read; `&mut` because the kernel holds the activations mutably.
    x: &mut Tensor<F>,
    first: usize,
    stride: usize,
    count: usize,
    head: &Tensor<F>,
    u: F,
    z: F,
    #[comptime] kind: KernelHead,
) -> F {
    match comptime![kind] {
        KernelHead::Argmax => {
            let mut best = 0usize;
            for k in 1..count {
                if x[first + k * stride] > x[first + best * stride] {
                    best = k;
                }
            }
            F::cast_from(best)
        }
        KernelHead::Mean => x[first],
        KernelHead::TanhScale => F::tanh(x[first]) * head[0] + head[1],
        KernelHead::Categorical => {
            // Shifted by the largest logit so that no exponential overflows.
            let mut largest = x[first];
            for k in 1..count {
                largest = F::max(largest, x[first + k * stride]);
            }
            let mut total = F::new(0.0);
            for k in 0..count {
                total += F::exp(x[first + k * stride] - largest);
            }
            let target = u * total;
            // Rounding can leave the running sum under the target: then the last action.
            let mut chosen = count - 1;
            let mut cumulative = F::new(0.0);
            let mut found = false;
            for k in 0..count {
                cumulative += F::exp(x[first + k * stride] - largest);
                if !found && target < cumulative {
                    chosen = k;
                    found = true;
                }
            }
            F::cast_from(chosen)
        }
        KernelHead::Gaussian => x[first] + F::exp(head[0]) * z,
        KernelHead::SquashedGaussian => {
            let (low, high) = (head[2], head[3]);
            let log_std =
                low + F::new(0.5) * (high - low) * (F::tanh(x[first + stride]) + F::new(1.0));
            F::tanh(x[first] + F::exp(log_std) * z) * head[0] + head[1]
        }
    }
}

/// A 32-bit hash in which every input bit flips each output bit with probability close to
/// one half (Wellons' "lowbias32" multipliers): the counter-based generator's mixing step.
#[cube]
fn mix32(x: u32) -> u32 {
    let mut h = x;
    h ^= h >> 16u32;
    h *= 0x7feb352du32;
    h ^= h >> 15u32;
    h *= 0x846ca68bu32;
    h ^= h >> 16u32;
    h
}

/// Draw `draw` of step `step` of the episode of seed `(seed_lo, seed_hi)`, uniform in
/// `[0, 1)` with 24 bits: a function of those alone, so an episode's draws do not depend on
/// the slot that runs it or on how many slots there are.
#[cube]
fn uniform<F: Float>(seed_lo: u32, seed_hi: u32, step: u32, draw: u32) -> F {
    let h = mix32(seed_lo ^ mix32(seed_hi ^ mix32(step * 4u32 + draw)));
    F::cast_from(h >> 8u32) * F::new(1.0 / 16777216.0)
}

/// A standard normal draw from two uniform ones (Box-Muller), `u1` in `[0, 1)`.
#[cube]
fn standard_normal<F: Float>(u1: F, u2: F) -> F {
    // 1 - u1 lies in (0, 1]: a finite logarithm.
    let radius = F::sqrt(F::new(-2.0) * F::ln(F::new(1.0) - u1));
    radius * F::cos(F::new(std::f32::consts::TAU) * u2)
}

/// What a drawing head takes per step (see [`act`]).
#[derive(CubeType, Clone, Copy)]
pub struct Draws<F: Float> {
    /// Uniform in `[0, 1)`.
    pub u: F,
    /// Standard normal.
    pub z: F,
}

/// Step `step`'s draws for the key `(lo, hi)`: a function of those alone.
#[cube]
pub fn draws<F: Float>(lo: u32, hi: u32, step: u32) -> Draws<F> {
    Draws::<F> {
        u: uniform::<F>(lo, hi, step, 0u32),
        z: standard_normal::<F>(
            uniform::<F>(lo, hi, step, 1u32),
            uniform::<F>(lo, hi, step, 2u32),
        ),
    }
}

/// One unit per `shape.envs_per_unit` env slots (their number a multiple of it), running up to
/// `steps` steps of each slot `s`'s episodes (the slot table's row the slot's state between
/// steps):
/// - `plan[s]` = (first episode, quota): the slot runs episodes `first .. first + quota`;
/// - `starts[e]`: episode `e`'s initial state;
/// - `slots[s]`: the state, then the [`slot`] values; the state of a slot that has not
///   started is its first episode's start, with nothing elapsed;
/// - `records[e]`: episode `e`'s return, length, terminated and truncated (1 or 0), once it
///   has finished; a unit copies its slots' episodes' records to the output, then adds
///   those they finish;
/// - `quads`: `weights` again, four values a load, which the blocked layers read (from the
///   cube's shared memory, copied there first, when `shape.shared_quads` says they fit);
/// - `normalization`: the mean, then the standard deviation, per observation value;
/// - `head`: four head parameters (see [`KernelHead`]: the scale and bias of a squashed
///   action, a Gaussian's log-std, the bounds of SAC's log-std);
/// - `scratch`: `[2 * max_width, slots]`, the activations (see [`forward`]). In global
///   memory rather than local arrays: lavapipe computed wrong outputs from local arrays of
///   a few hundred values (layers of 128 units), and a GPU keeps large local arrays in
///   cached global memory anyway.
///
/// A finished episode's successor starts on the next step (no restart step).
///
/// Long because it is one kernel body: the step loop, forward pass, action and env step share
/// the slot's registers; the parts that stand alone are `#[cube]` functions.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn episode_kernel<F: Float>(
    layout: &Tensor<F>,
    weights: &Tensor<F>,
    quads: &Tensor<Quad<F>>,
    normalization: &Tensor<F>,
    head: &Tensor<F>,
    starts: &Tensor<F>,
    plan: &Tensor<F>,
    slots: &Tensor<F>,
    records: &Tensor<F>,
    next_slots: &mut Tensor<F>,
    next_records: &mut Tensor<F>,
    scratch: &mut Tensor<F>,
    steps: u32,
    time_limit: f32,
    clip: f32,
    seed_lo: u32,
    seed_hi: u32,
    #[comptime] shape: ProgramShape,
    #[define(F)] _float: ElemType,
) {
    // Every unit copies a share; all wait for the whole network before any reads it. (One
    // quad is set aside when the weights stay in the buffer.)
    let mut shared = Shared::<[Quad<F>]>::new_slice(comptime![shape.shared_quads.max(1)]);
    if comptime![shape.shared_quads > 0] {
        let mut k = UNIT_POS as usize;
        while k < comptime![shape.shared_quads] {
            shared[k] = quads[k];
            k += CUBE_DIM as usize;
        }
        sync_cube();
    }
    let weight_quads = if comptime![shape.shared_quads > 0] {
        shared.as_slice()
    } else {
        quads.as_slice()
    };
    let num_slots = plan.len() / 2;
    let envs = comptime![shape.envs_per_unit];
    let base = ABSOLUTE_POS * envs;
    if base >= num_slots {
        terminate!();
    }
    let width = comptime![shape.physics.state_dim() + slot::COUNT];
    let finished_at = comptime![shape.physics.state_dim() + slot::FINISHED];
    // Slot `e` has episodes of its quota left (1) or not (0).
    let mut running = Array::<u32>::new(envs);
    let mut any_running = false;
    #[unroll]
    for e in 0..envs {
        let s = base + e;
        #[unroll]
        for k in 0..width {
            next_slots[s * width + k] = slots[s * width + k];
        }
        let first = usize::cast_from(plan[s * 2]);
        let quota = usize::cast_from(plan[s * 2 + 1]);
        for episode in first..first + quota {
            #[unroll]
            for k in 0..RECORD_WIDTH {
                next_records[episode * RECORD_WIDTH + k] = records[episode * RECORD_WIDTH + k];
            }
        }
        let left = slots[s * width + finished_at] < plan[s * 2 + 1];
        running[e] = u32::cast_from(left);
        any_running = any_running || left;
    }
    let outputs = usize::cast_from(layout[comptime![shape.layers]]);
    let scalars = StepScalars {
        seed_lo,
        seed_hi,
        time_limit,
    };
    let mut step = 0u32;
    while step < steps && any_running {
        #[unroll]
        for e in 0..envs {
            if running[e] == 1u32 {
                write_input(base + e, next_slots, normalization, scratch, clip, shape);
            }
        }
        let at = forward(
            scratch,
            base,
            num_slots,
            layout,
            weights,
            weight_quads,
            shape,
        );
        any_running = false;
        #[unroll]
        for e in 0..envs {
            if running[e] == 1u32 {
                let s = base + e;
                let left = take_step(
                    s,
                    at * num_slots + s,
                    outputs,
                    next_slots,
                    next_records,
                    scratch,
                    head,
                    starts,
                    plan,
                    &scalars,
                    shape,
                );
                running[e] = u32::cast_from(left);
                any_running = any_running || left;
            }
        }
        step += 1;
    }
}

/// Slot `s`'s observation (normalised) into the network's input.
#[cube]
fn write_input<F: Float>(
    s: usize,
    // Only read; `&mut` because the kernel holds the table mutably.
    table: &mut Tensor<F>,
    normalization: &Tensor<F>,
    scratch: &mut Tensor<F>,
    clip: f32,
    #[comptime] shape: ProgramShape,
) {
    let state_dim = comptime![shape.physics.state_dim()];
    let observation_dim = comptime![shape.physics.observation_dim()];
    let width = comptime![shape.physics.state_dim() + slot::COUNT];
    let num_slots = scratch.len() / comptime![2 * shape.max_width];
    let mut state = Array::<F>::new(state_dim);
    #[unroll]
    for k in 0..state_dim {
        state[k] = table[s * width + k];
    }
    let mut observation = Array::<F>::new(observation_dim);
    write_observation(&state, &mut observation, shape.physics);
    #[unroll]
    for k in 0..observation_dim {
        let mut value = observation[k];
        if comptime![shape.normalized] {
            value = F::clamp(
                (value - normalization[k]) / normalization[observation_dim + k],
                -F::cast_from(clip),
                F::cast_from(clip),
            );
        }
        scratch[k * num_slots + s] = value;
    }
}

/// The launch's values a slot's step needs besides the tables: the draws' key and the time
/// limit.
#[derive(CubeType, Clone, Copy)]
struct StepScalars {
    seed_lo: u32,
    seed_hi: u32,
    time_limit: f32,
}

/// Slot `s`'s step: the action from the outputs at `outputs_at` (stride: the slot count),
/// the physics, the time limit, and on an episode's end its record and the next start.
/// Returns whether the slot has episodes of its quota left.
#[cube]
#[allow(clippy::too_many_arguments)]
fn take_step<F: Float>(
    s: usize,
    outputs_at: usize,
    outputs: usize,
    table: &mut Tensor<F>,
    next_records: &mut Tensor<F>,
    scratch: &mut Tensor<F>,
    head: &Tensor<F>,
    starts: &Tensor<F>,
    plan: &Tensor<F>,
    scalars: &StepScalars,
    #[comptime] shape: ProgramShape,
) -> bool {
    let state_dim = comptime![shape.physics.state_dim()];
    let width = comptime![shape.physics.state_dim() + slot::COUNT];
    let row = s * width;
    let first = usize::cast_from(plan[s * 2]);
    let quota = usize::cast_from(plan[s * 2 + 1]);
    let mut state = Array::<F>::new(state_dim);
    #[unroll]
    for k in 0..state_dim {
        state[k] = table[row + k];
    }
    let mut elapsed = table[row + state_dim + slot::ELAPSED];
    let mut episode_return = table[row + state_dim + slot::RETURN];
    let mut finished = usize::cast_from(table[row + state_dim + slot::FINISHED]);
    let mut u = F::new(0.0);
    let mut z = F::new(0.0);
    if comptime![shape.head.samples()] {
        // Keyed by the episode's seed (the plan's first plus its number) and step.
        let lo = scalars.seed_lo + u32::cast_from(first + finished);
        let hi = scalars.seed_hi + u32::cast_from(lo < scalars.seed_lo);
        let drawn = draws::<F>(lo, hi, u32::cast_from(elapsed));
        u = drawn.u;
        z = drawn.z;
    }
    let num_slots = scratch.len() / comptime![2 * shape.max_width];
    let action = act(
        scratch, outputs_at, num_slots, outputs, head, u, z, shape.head,
    );
    let outcome = physics_step(&mut state, action, shape.physics);
    elapsed += F::new(1.0);
    episode_return += outcome.reward;
    // Gymnasium's TimeLimit: a step at the limit truncates, terminating or not.
    let truncated = elapsed >= F::cast_from(scalars.time_limit);
    if outcome.terminated || truncated {
        let at = (first + finished) * RECORD_WIDTH;
        next_records[at] = episode_return;
        next_records[at + 1] = elapsed;
        next_records[at + 2] = F::cast_from(u32::cast_from(outcome.terminated));
        next_records[at + 3] = F::cast_from(u32::cast_from(truncated));
        finished += 1;
        if finished < quota {
            #[unroll]
            for k in 0..state_dim {
                state[k] = starts[(first + finished) * state_dim + k];
            }
        }
        elapsed = F::new(0.0);
        episode_return = F::new(0.0);
    }
    #[unroll]
    for k in 0..state_dim {
        table[row + k] = state[k];
    }
    table[row + state_dim + slot::ELAPSED] = elapsed;
    table[row + state_dim + slot::RETURN] = episode_return;
    table[row + state_dim + slot::FINISHED] = F::cast_from(finished);
    finished < quota
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layer_starts_on_a_multiple_of_four() {
        // 4 -> 6 (30 values, padded to 32), 6 -> 2 (14, padded to 16).
        let widths = [4, 6, 2];
        let weights: Vec<f32> = (0..44).map(|v| v as f32).collect();
        let padded = padded_weights(&widths, &weights);
        assert_eq!(padded.len(), 48);
        assert_eq!(&padded[..30], &weights[..30]);
        assert_eq!(&padded[30..32], &[0.0, 0.0]);
        assert_eq!(&padded[32..46], &weights[30..44]);
        assert_eq!(&padded[46..], &[0.0, 0.0]);
    }

    #[test]
    fn blocked_layers_count_a_loop_per_block_and_input() {
        let head = KernelHead::Argmax;
        // 4 -> 32: two blocks of the 4 inputs; 32 -> 2: 2 outputs of the 32 inputs.
        // The record copies and head loops run once per slot of the unit.
        let forward = (1 + 2 * (1 + 4)) + (1 + 2 * (1 + 32));
        let per_slot = |head_loops: usize| 8 * (3 + 10 * head_loops);
        // The weights' quads: 5 * 32 / 4 and 33 * 2 / 4 rounded up.
        let copy = 40 + 17;
        let greedy = loop_iterations(&[4, 32, 2], head, 8, 10, 3);
        assert_eq!(greedy, copy + per_slot(2) + 10 * (1 + forward));
        let drawing = loop_iterations(&[4, 32, 2], KernelHead::Categorical, 8, 10, 3);
        assert_eq!(drawing, copy + per_slot(6) + 10 * (1 + forward));
    }
}
