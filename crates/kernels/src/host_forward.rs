//! The policy's forward pass as one host loop, for agents on flex.
//!
//! Through burn's tensor operations a flex policy step pays, per layer, an allocation, a
//! matrix product, a bias pass and an activation pass over memory, plus the upload of the
//! observations and the read-back of the outputs. A policy small enough to evaluate in
//! batches of envs is cheaper as one loop: a block of rows goes through every layer while
//! its activations stay in the L1 cache, each layer as register tiles of 4 rows by 16
//! outputs, compiled for the CPU's widest vector instructions (detected at run time).

use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use crate::actions::{ActionBatch, NonFinite, greedy_actions};
use crate::tanh::tanh;
use crate::{Activation, FlatMlp, FrozenNormalization, Head};

/// Rows of a register tile.
const TILE_ROWS: usize = 4;
/// Outputs of a register tile: two 8-wide vectors (AVX2) per row. Layers are padded to a
/// multiple of this with zero weights, which the next layer multiplies by zero weights.
const TILE_COLS: usize = 16;
/// Rows carried through every layer at once: 32 rows of 256 activations are 32 KiB.
const BLOCK_ROWS: usize = 32;
/// Batches of fewer rows are one thread's work; larger ones are split between threads.
const PARALLEL_ROWS: usize = 256;

/// One layer, its outputs padded to whole tiles.
#[derive(Debug, Clone)]
struct HostLayer {
    inputs: usize,
    /// Padded to a multiple of [`TILE_COLS`].
    outputs: usize,
    /// Row-major `[inputs, outputs]`, zero in the padding.
    weights: Vec<f32>,
    bias: Vec<f32>,
    /// Activated (hidden) or not (the last layer).
    hidden: bool,
}

/// A policy network ready for the host loop.
#[derive(Debug, Clone)]
pub struct HostForward {
    layers: Vec<HostLayer>,
    activation: Activation,
    head: Head,
    normalization: Option<FrozenNormalization>,
    inputs: usize,
    /// The last layer's real outputs.
    outputs: usize,
    /// The widest padded layer: the size of an activation row.
    widest: usize,
    arch: Arch,
}

fn padded(width: usize) -> usize {
    width.div_ceil(TILE_COLS) * TILE_COLS
}

impl HostForward {
    /// The host loop for `network`, its layers padded to whole register tiles.
    pub fn new(network: FlatMlp) -> Self {
        let mut layers = Vec::with_capacity(network.widths.len() - 1);
        let mut offset = 0;
        let mut inputs = network.inputs();
        for (l, w) in network.widths.windows(2).enumerate() {
            let (real_in, real_out) = (w[0], w[1]);
            let outputs = padded(real_out);
            let mut weights = vec![0.0; inputs * outputs];
            for i in 0..real_in {
                let row = &network.weights[offset + i * real_out..][..real_out];
                weights[i * outputs..][..real_out].copy_from_slice(row);
            }
            offset += real_in * real_out;
            let mut bias = vec![0.0; outputs];
            bias[..real_out].copy_from_slice(&network.weights[offset..][..real_out]);
            offset += real_out;
            layers.push(HostLayer {
                inputs,
                outputs,
                weights,
                bias,
                hidden: l + 2 < network.widths.len(),
            });
            inputs = outputs;
        }
        let widest = layers.iter().map(|l| l.outputs).max().unwrap_or(0);
        Self {
            widest: widest.max(network.inputs()),
            inputs: network.inputs(),
            outputs: network.outputs(),
            layers,
            activation: network.activation,
            head: network.head,
            normalization: network.normalization,
            arch: Arch::new(),
        }
    }

    /// The last layer's outputs for `observations` (`rows * inputs` values), `outputs`
    /// values per row; refused if any is not finite, as outputs read back from a device are.
    pub fn outputs(&self, observations: &[f32]) -> Result<Vec<f32>, NonFinite> {
        let rows = observations.len() / self.inputs;
        let mut outputs = vec![0.0; rows * self.outputs];
        let (x_block, y_block) = (BLOCK_ROWS * self.inputs, BLOCK_ROWS * self.outputs);
        if rows < PARALLEL_ROWS {
            let mut scratch = self.scratch();
            for (x, y) in observations
                .chunks(x_block)
                .zip(outputs.chunks_mut(y_block))
            {
                self.block(x, y, &mut scratch);
            }
        } else {
            observations
                .par_chunks(x_block)
                .zip(outputs.par_chunks_mut(y_block))
                .for_each_init(
                    || self.scratch(),
                    |scratch, (x, y)| self.block(x, y, scratch),
                );
        }
        if outputs.iter().all(|v| v.is_finite()) {
            Ok(outputs)
        } else {
            Err(NonFinite)
        }
    }

    /// The greedy actions for `observations`: argmax, the means, or SAC's squashed means.
    pub fn greedy(&self, observations: &[f32]) -> Result<ActionBatch, NonFinite> {
        let outputs = self.outputs(observations)?;
        let rows = observations.len() / self.inputs;
        Ok(match &self.head {
            Head::Argmax => greedy_actions(outputs, rows, false),
            Head::Mean => greedy_actions(outputs, rows, true),
            Head::Squashed { scale, bias } => {
                let dim = scale.len();
                let mut actions = Vec::with_capacity(rows * dim);
                for row in outputs.chunks(self.outputs) {
                    for k in 0..dim {
                        actions.push(row[k].tanh() * scale[k] + bias[k]);
                    }
                }
                ActionBatch::Continuous(actions)
            }
        })
    }

    /// Two activation buffers of a block, and a tile's inputs by column.
    fn scratch(&self) -> [Vec<f32>; 3] {
        let len = BLOCK_ROWS * self.widest;
        [
            vec![0.0; len],
            vec![0.0; len],
            vec![0.0; TILE_ROWS * self.widest],
        ]
    }

    /// One block of at most [`BLOCK_ROWS`] rows: `x` in, `y` out.
    fn block(&self, x: &[f32], y: &mut [f32], scratch: &mut [Vec<f32>; 3]) {
        self.arch.dispatch(Block {
            forward: self,
            x,
            y,
            scratch,
        });
    }
}

/// A block's forward pass, compiled once per instruction set (see [`Arch::dispatch`]):
/// everything it calls is inlined into it.
struct Block<'a> {
    forward: &'a HostForward,
    x: &'a [f32],
    y: &'a mut [f32],
    scratch: &'a mut [Vec<f32>; 3],
}

impl WithSimd for Block<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Block {
            forward,
            x,
            y,
            scratch,
        } = self;
        let inputs = forward.inputs;
        let rows = x.len() / inputs;
        // Whole tiles: the rows past the block's end are zeros, computed and dropped.
        let tiled_rows = rows.div_ceil(TILE_ROWS) * TILE_ROWS;
        let [a, b, columns] = scratch;
        a[..tiled_rows * inputs].fill(0.0);
        a[..x.len()].copy_from_slice(x);
        if let Some(normalization) = &forward.normalization {
            for (k, value) in a[..x.len()].iter_mut().enumerate() {
                *value = normalization.apply(k % inputs, *value);
            }
        }
        let (mut from, mut to) = (a, b);
        for layer in &forward.layers {
            dense(
                simd,
                layer,
                forward.activation,
                &from[..],
                &mut to[..],
                columns,
                tiled_rows,
            );
            std::mem::swap(&mut from, &mut to);
        }
        let (width, outputs) = (
            forward.layers.last().map_or(0, |l| l.outputs),
            forward.outputs,
        );
        for (row, out) in from.chunks(width).zip(y.chunks_mut(outputs)) {
            out.copy_from_slice(&row[..outputs]);
        }
    }
}

/// `y = activation(x W + b)` for `rows` rows (a multiple of [`TILE_ROWS`]), tile by tile,
/// each tile's sums grown by fused multiply-adds in `S`'s vectors: Rust never contracts
/// `a + x * w` into one, and separate products and sums halved the arithmetic rate. A
/// tile's rows are first copied into `columns` by input, so that the inner loop walks two
/// slices in step, with no bounds checks.
#[inline(always)]
fn dense<S: Simd>(
    simd: S,
    layer: &HostLayer,
    activation: Activation,
    x: &[f32],
    y: &mut [f32],
    columns: &mut [f32],
    rows: usize,
) {
    let (inputs, outputs) = (layer.inputs, layer.outputs);
    let columns = &mut columns[..inputs * TILE_ROWS];
    for r0 in (0..rows).step_by(TILE_ROWS) {
        for r in 0..TILE_ROWS {
            let row = &x[(r0 + r) * inputs..][..inputs];
            for (column, &value) in columns.chunks_exact_mut(TILE_ROWS).zip(row) {
                column[r] = value;
            }
        }
        for c0 in (0..outputs).step_by(TILE_COLS) {
            let bias: &[f32; TILE_COLS] = layer.bias[c0..c0 + TILE_COLS]
                .try_into()
                .expect("a whole tile");
            let mut acc = [*bias; TILE_ROWS];
            for (weights, column) in layer
                .weights
                .chunks_exact(outputs)
                .zip(columns.chunks_exact(TILE_ROWS))
            {
                // A tile row is whole vectors of `S` (2 of 8 lanes with AVX2).
                let (w, _) = S::as_simd_f32s(&weights[c0..c0 + TILE_COLS]);
                for (row, &xv) in acc.iter_mut().zip(column) {
                    let xv = simd.splat_f32s(xv);
                    let (sums, _) = S::as_mut_simd_f32s(row);
                    for (a, &w) in sums.iter_mut().zip(w) {
                        *a = simd.mul_add_e_f32s(xv, w, *a);
                    }
                }
            }
            for (r, values) in acc.iter_mut().enumerate() {
                if layer.hidden {
                    activate(values, activation);
                }
                y[(r0 + r) * outputs + c0..][..TILE_COLS].copy_from_slice(values);
            }
        }
    }
}

#[inline(always)]
fn activate(values: &mut [f32; TILE_COLS], activation: Activation) {
    match activation {
        Activation::Tanh => values.iter_mut().for_each(|v| *v = tanh(*v)),
        // Not `max`, which would turn NaN into 0: a NaN must reach the finiteness check.
        Activation::Relu => values
            .iter_mut()
            .for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v }),
    }
}
