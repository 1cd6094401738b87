//! `gradless bench ...`: throughput measurements. Each figure is the median of several timed
//! windows after a warm-up, so that one noisy window does not decide it.

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Subcommand;
use gradless_device::HostOnly;
use gradless_grad_modes::median;
use gradless_policy::{Agent, Rollout};

mod envs;
mod grad_modes;
mod policy;

pub use envs::EnvBenchArgs;
pub use policy::{EvalBenchArgs, RolloutBenchArgs};

use crate::settings::check_count;
use grad_modes::GradModesArgs;

/// What `gradless bench` can measure.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Environment steps per second with random actions (env stepping only).
    Envs(EnvBenchArgs),
    /// Evaluation throughput: greedy policy (inference device) plus env steps per second.
    Eval(EvalBenchArgs),
    /// What gradient tracking costs during evaluation: time per policy step and leftover
    /// memory with grads tracked, under no_grad and in inference mode.
    GradModes(GradModesArgs),
    /// Rollout throughput (greedy policy plus env steps per second) with the envs on the
    /// CPU or on the device beside the policy.
    Rollout(RolloutBenchArgs),
}

/// The most timed windows per size.
const MAX_REPEATS: usize = 1000;
/// The longest timed window, in seconds.
const MAX_SECONDS: f64 = 3600.0;

/// Checks the sizes every bench takes, before anything is allocated: each `--num-envs` in
/// 1..=[`EpisodePlan::MAX_NUM_ENVS`](gradless_policy::EpisodePlan::MAX_NUM_ENVS), `--repeats`
/// in 1..=1000 and `--seconds` a positive number of at most an hour.
fn check_timing(num_envs: &[usize], repeats: usize, seconds: f64) -> Result<()> {
    for &n in num_envs {
        check_count("--num-envs", n, gradless_policy::EpisodePlan::MAX_NUM_ENVS)?;
    }
    check_count("--repeats", repeats, MAX_REPEATS)?;
    if !(seconds > 0.0 && seconds <= MAX_SECONDS) {
        anyhow::bail!("--seconds {seconds}: must be positive and at most {MAX_SECONDS}");
    }
    Ok(())
}

/// Runs a bench subcommand.
pub fn run(command: BenchCommand, json: bool) -> Result<()> {
    match command {
        BenchCommand::Envs(args) => envs::bench_envs(&args, json),
        BenchCommand::Eval(args) => policy::bench_eval(&args, json),
        BenchCommand::GradModes(args) => grad_modes::bench(&args, json),
        BenchCommand::Rollout(args) => policy::bench_rollout(&args, json),
    }
}

/// How a rollout's throughput is timed.
struct Timing {
    /// The shortest timed window.
    window: Duration,
    /// Timed windows; the median is reported.
    repeats: usize,
    /// Device envs: steps between read-backs of the episode statistics.
    read_every: usize,
    /// Drop the kernel launches of the timed windows (see [`HostOnly`]).
    host_only: bool,
}

/// The median env steps per second over `repeats` windows of at least `window`, after an
/// uncounted warm-up window (kernel compilation, caches). Device envs read their episode
/// statistics back every `read_every` steps and at the end of each window, so queued work
/// is inside the window it was queued in.
fn median_steps_per_sec(rollout: &mut Rollout, agent: &Agent, timing: &Timing) -> Result<f64> {
    let mut rates = Vec::with_capacity(timing.repeats);
    // CPU envs wait for every step anyway: there is nothing queued to read back.
    let queues = rollout.queues_steps();
    for repeat in 0..=timing.repeats {
        // The warm-up window runs for real: autotuning measures what it launches.
        let _host_only = (timing.host_only && repeat > 0).then(HostOnly::start);
        let start = Instant::now();
        let mut steps = 0usize;
        while start.elapsed() < timing.window {
            rollout.step(agent)?;
            steps += 1;
            if queues && steps.is_multiple_of(timing.read_every) {
                rollout.take_finished()?;
            }
        }
        rollout.take_finished()?;
        if repeat > 0 {
            rates.push((steps * rollout.num_envs()) as f64 / start.elapsed().as_secs_f64());
        }
    }
    Ok(median(&mut rates))
}
