//! What gradient tracking costs when a policy only evaluates. The same checkpoint's policy
//! runs in three modes — tracked (parameters require grad, as PyTorch by default),
//! `no_grad` (still on the autodiff device, nothing requires grad: `torch.no_grad`) and
//! inference (`valid()` on the device without autodiff: `torch.inference_mode`) — on the
//! same inputs, with time per step and the memory a forward-only rollout leaves behind
//! measured side by side.
//!
//! This is the one crate that puts a policy on an autodiff device only to act with it: the
//! evaluator itself cannot hold one.

mod capture;
mod chart;
mod measure;
mod memory;
mod mode;

pub use capture::CapturedPolicy;
pub use chart::write_charts;
pub use measure::{
    CapturedTiming, GradModeError, Measurement, Plan, Speedup, inference_speedup, measure, median,
};
pub use memory::resident_bytes;
pub use mode::{GradMode, ModedPolicy};
