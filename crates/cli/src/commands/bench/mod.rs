//! `gradless bench ...`: throughput measurements. Each figure is the median of several timed
//! windows after a warm-up, so that one noisy window does not decide it.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use gradless_device::{Backend, HostOnly, InferenceDevice};
use gradless_envs::device::{EnvBackend, StepKernel, device_dynamics};
use gradless_envs::{
    ActionSampler, AutoresetMode, Env, EnvRng, MakeOptions, Space, VectorEnv, make, make_vector,
};
use gradless_policy::{
    ActionHead, Activation, ActorCritic, Agent, AgentDevice, Checkpoint, Rollout,
};
use serde::Serialize;

use gradless_grad_modes::median;

use crate::commands::grad_modes::{self, GradModesArgs};
use crate::output::print_json_line;

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

/// Arguments of `gradless bench rollout`.
#[derive(Debug, Args)]
pub struct RolloutBenchArgs {
    /// Environment id (CartPole-v1, MountainCar-v0 or Pendulum-v1 have device versions).
    #[arg(long, default_value = "CartPole-v1")]
    env: String,
    /// Comma-separated env backends: cpu, device.
    #[arg(long, value_delimiter = ',', default_value = "cpu,device")]
    env_backend: Vec<String>,
    /// Comma-separated devices: wgpu, flex.
    #[arg(long, value_delimiter = ',', default_value = "flex,wgpu")]
    device: Vec<String>,
    /// Comma-separated numbers of envs.
    #[arg(long, value_delimiter = ',', default_value = "1024,16384,65536")]
    num_envs: Vec<usize>,
    /// Device envs: how they step, comma-separated: auto (fused where it can run), fused
    /// (one kernel a step, on wgpu; skipped elsewhere), tensor-ops.
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    step_kernel: Vec<String>,
    /// Device envs: steps between read-backs of the finished-episode statistics.
    #[arg(long, default_value_t = 100)]
    read_every: usize,
    /// Device envs on wgpu: record, fuse and dispatch every kernel but drop it instead of
    /// running it, so the rate is what the host side alone allows: the bound on a GPU fast
    /// enough that its own work is negligible. Episode statistics read back are meaningless.
    #[arg(long)]
    host_only: bool,
    /// Length of one timed window, in seconds.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Timed windows per size; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

/// One measured backend pair and size.
#[derive(Debug, Serialize)]
struct RolloutBenchResult {
    env: String,
    env_backend: EnvBackend,
    /// `fused` or `tensor-ops` for device envs, `null` for CPU envs.
    step_kernel: Option<String>,
    device: String,
    num_envs: usize,
    steps_per_sec: f64,
    /// Kernels were dropped, not run: `steps_per_sec` is the host side's bound.
    host_only: bool,
    repeats: usize,
}

/// Arguments of `gradless bench eval`.
#[derive(Debug, Args)]
pub struct EvalBenchArgs {
    /// The checkpoint whose policy acts.
    #[arg(long, default_value = "checkpoints/cartpole-v1-ppo")]
    checkpoint: PathBuf,
    /// Comma-separated devices: wgpu, flex.
    #[arg(long, value_delimiter = ',', default_value = "flex,wgpu")]
    device: Vec<String>,
    /// Comma-separated numbers of envs (the policy's batch size).
    #[arg(long, value_delimiter = ',', default_value = "1,16,1024")]
    num_envs: Vec<usize>,
    /// Length of one timed window, in seconds.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Timed windows per size; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

/// One measured device and size.
#[derive(Debug, Serialize)]
struct EvalBenchResult {
    checkpoint: PathBuf,
    device: String,
    num_envs: usize,
    steps_per_sec: f64,
    repeats: usize,
}

/// Arguments of `gradless bench envs`.
#[derive(Debug, Args)]
pub struct EnvBenchArgs {
    /// Environment id.
    #[arg(long, default_value = "CartPole-v1")]
    env: String,
    /// Comma-separated numbers of environments; 1 measures the single env, more the vector env.
    #[arg(long, value_delimiter = ',', default_value = "1,1024,65536")]
    num_envs: Vec<usize>,
    /// Threads to split the environments over (each steps its own share).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Length of one timed window, in seconds.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Timed windows per size; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

/// One measured size.
#[derive(Debug, Serialize)]
struct EnvBenchResult {
    env: String,
    num_envs: usize,
    threads: usize,
    steps_per_sec: f64,
    repeats: usize,
}

/// Runs a bench subcommand.
pub fn run(command: BenchCommand, json: bool) -> Result<()> {
    match command {
        BenchCommand::Envs(args) => bench_envs(&args, json),
        BenchCommand::Eval(args) => bench_eval(&args, json),
        BenchCommand::GradModes(args) => grad_modes::bench(&args, json),
        BenchCommand::Rollout(args) => bench_rollout(&args, json),
    }
}

fn bench_envs(args: &EnvBenchArgs, json: bool) -> Result<()> {
    if args.threads == 0 || args.repeats == 0 || !args.seconds.is_finite() || args.seconds <= 0.0 {
        bail!("--threads and --repeats must be at least 1 and --seconds positive");
    }
    make(&args.env)?; // an unknown id fails here, listing the known ones
    if let Some(bad) = args.num_envs.iter().find(|&&n| n == 0 || n < args.threads) {
        bail!(
            "--num-envs {bad}: need at least one env per thread ({} threads)",
            args.threads
        );
    }
    if !json {
        println!(
            "{:<26} {:>9} {:>7} {:>16}",
            "env", "num_envs", "threads", "steps/s (median)"
        );
    }
    for &num_envs in &args.num_envs {
        let window = Duration::from_secs_f64(args.seconds);
        let mut rates = Vec::with_capacity(args.repeats);
        // The first window warms caches and the allocator and is not counted.
        for repeat in 0..=args.repeats {
            let rate = measure_window(&args.env, num_envs, args.threads, window)?;
            if repeat > 0 {
                rates.push(rate);
            }
        }
        let result = EnvBenchResult {
            env: args.env.clone(),
            num_envs,
            threads: args.threads,
            steps_per_sec: median(&mut rates),
            repeats: args.repeats,
        };
        tracing::info!(env = %result.env, num_envs, steps_per_sec = result.steps_per_sec, "measured");
        if json {
            print_json_line(&result)?;
        } else {
            println!(
                "{:<26} {:>9} {:>7} {:>16.0}",
                result.env, result.num_envs, result.threads, result.steps_per_sec
            );
        }
    }
    Ok(())
}

fn bench_eval(args: &EvalBenchArgs, json: bool) -> Result<()> {
    if args.repeats == 0 || !args.seconds.is_finite() || args.seconds <= 0.0 {
        bail!("--repeats must be at least 1 and --seconds positive");
    }
    if args.num_envs.contains(&0) {
        bail!("--num-envs: every size must be at least 1");
    }
    let backends = parse_backends(&args.device)?;
    let checkpoint = Checkpoint::open(&args.checkpoint)?;
    let env_id = checkpoint.metadata().env_id.clone();
    if !json {
        println!(
            "{:<40} {:<8} {:>9} {:>16}",
            "checkpoint", "device", "num_envs", "steps/s (median)"
        );
    }
    for backend in backends {
        let device = InferenceDevice::new(&gradless_device::open(backend)?);
        let agent = Agent::load(&checkpoint, &AgentDevice::new(&device))?;
        for &num_envs in &args.num_envs {
            let mut rollout = Rollout::new(&env_id, num_envs, EnvBackend::Cpu, &device)?;
            let timing = Timing {
                window: Duration::from_secs_f64(args.seconds),
                repeats: args.repeats,
                read_every: 1,
                host_only: false,
            };
            let steps_per_sec = median_steps_per_sec(&mut rollout, &agent, &timing)?;
            let result = EvalBenchResult {
                checkpoint: args.checkpoint.clone(),
                device: backend.to_string(),
                num_envs,
                steps_per_sec,
                repeats: args.repeats,
            };
            tracing::info!(device = %result.device, num_envs, steps_per_sec = result.steps_per_sec, "measured");
            if json {
                print_json_line(&result)?;
            } else {
                println!(
                    "{:<40} {:<8} {:>9} {:>16.0}",
                    result.checkpoint.display(),
                    result.device,
                    result.num_envs,
                    result.steps_per_sec
                );
            }
        }
    }
    Ok(())
}

/// The backends named by `--device`.
pub(crate) fn parse_backends(names: &[String]) -> Result<Vec<Backend>> {
    names
        .iter()
        .map(|name| name.parse::<Backend>())
        .collect::<Result<_, _>>()
        .context("--device")
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
    for repeat in 0..=timing.repeats {
        // The warm-up window runs for real: autotuning measures what it launches.
        let _host_only = (timing.host_only && repeat > 0).then(HostOnly::start);
        let start = Instant::now();
        let mut steps = 0usize;
        while start.elapsed() < timing.window {
            rollout.step(agent)?;
            steps += 1;
            if steps.is_multiple_of(timing.read_every) {
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

/// A freshly initialised PPO actor for the env's spaces (CleanRL's 64-64 tanh), acting
/// greedily: what a rollout costs does not depend on the weights.
fn fresh_agent(env_id: &str, device: &InferenceDevice) -> Result<Agent> {
    let env = make(env_id)?;
    let head = match env.action_space() {
        Space::Discrete { n } => ActionHead::Categorical { n: *n as usize },
        Space::Box { low, .. } => ActionHead::Gaussian { dim: low.len() },
    };
    let model = ActorCritic::new(
        env.observation_space().flat_dim(),
        &[64, 64],
        Activation::Tanh,
        head,
        &mut EnvRng::from_seed(0),
        device.device(),
    );
    Ok(Agent::actor_critic(&model, device))
}

fn bench_rollout(args: &RolloutBenchArgs, json: bool) -> Result<()> {
    if args.repeats == 0 || args.read_every == 0 || !args.seconds.is_finite() || args.seconds <= 0.0
    {
        bail!("--repeats and --read-every must be at least 1 and --seconds positive");
    }
    if args.num_envs.contains(&0) {
        bail!("--num-envs: every size must be at least 1");
    }
    let env_backends: Vec<EnvBackend> = args
        .env_backend
        .iter()
        .map(|name| {
            name.parse::<EnvBackend>()
                .map_err(|e| anyhow!("--env-backend: {e}"))
        })
        .collect::<Result<_>>()?;
    // `None` stands for auto: whatever the envs choose.
    let step_kernels: Vec<Option<StepKernel>> = args
        .step_kernel
        .iter()
        .map(|name| match name.as_str() {
            "auto" => Ok(None),
            other => other
                .parse::<StepKernel>()
                .map(Some)
                .map_err(|e| anyhow!("--step-kernel: {e} or `auto`")),
        })
        .collect::<Result<_>>()?;
    let backends = parse_backends(&args.device)?;
    if args.host_only && env_backends.contains(&EnvBackend::Cpu) {
        // CPU envs would step with actions read back from launches that never ran.
        bail!("--host-only measures device envs only: pass --env-backend device");
    }
    if let Some(other) = backends
        .iter()
        .find(|&&b| args.host_only && b != Backend::Wgpu)
    {
        bail!("--host-only: only wgpu launches kernels to drop, not {other}");
    }
    if env_backends.contains(&EnvBackend::Device) {
        // An env without a device version fails here, before anything is measured.
        device_dynamics(&args.env)?;
    }
    if !json {
        println!(
            "{:<16} {:<8} {:<11} {:<8} {:>9} {:>16}",
            "env", "envs on", "step", "device", "num_envs", "steps/s (median)"
        );
    }
    let timing = Timing {
        window: Duration::from_secs_f64(args.seconds),
        repeats: args.repeats,
        read_every: args.read_every,
        host_only: args.host_only,
    };
    let (mut measured, mut skipped) = (0usize, None);
    for backend in backends {
        let device = InferenceDevice::new(&gradless_device::open(backend)?);
        let agent = fresh_agent(&args.env, &device)?;
        for &num_envs in &args.num_envs {
            for &env_backend in &env_backends {
                // CPU envs have no step kernel to choose.
                let kernels = match env_backend {
                    EnvBackend::Cpu => &[None][..],
                    EnvBackend::Device => &step_kernels[..],
                };
                for &kernel in kernels {
                    let mut rollout = Rollout::new(&args.env, num_envs, env_backend, &device)?;
                    if let Some(kernel) = kernel
                        && let Err(e) = rollout.use_step_kernel(kernel)
                    {
                        skipped = Some(format!("{backend}: {e}"));
                        continue;
                    }
                    measured += 1;
                    let steps_per_sec = median_steps_per_sec(&mut rollout, &agent, &timing)?;
                    let result = RolloutBenchResult {
                        env: args.env.clone(),
                        env_backend,
                        step_kernel: rollout.step_kernel().map(|k| k.to_string()),
                        device: backend.to_string(),
                        num_envs,
                        steps_per_sec,
                        host_only: args.host_only,
                        repeats: args.repeats,
                    };
                    tracing::info!(
                        env_backend = %env_backend,
                        step_kernel = ?result.step_kernel,
                        device = %result.device,
                        num_envs,
                        steps_per_sec,
                        "measured"
                    );
                    if json {
                        print_json_line(&result)?;
                    } else {
                        println!(
                            "{:<16} {:<8} {:<11} {:<8} {:>9} {:>16.0}",
                            result.env,
                            env_backend,
                            result.step_kernel.as_deref().unwrap_or("-"),
                            result.device,
                            num_envs,
                            steps_per_sec
                        );
                    }
                }
            }
        }
    }
    match (measured, skipped) {
        (0, Some(reason)) => bail!("--step-kernel: nothing could be measured ({reason})"),
        (_, Some(reason)) => tracing::warn!("--step-kernel: some runs skipped ({reason})"),
        _ => {}
    }
    Ok(())
}

/// Steps per second over one window, all threads together. Each thread builds and resets
/// its envs before the clock starts.
fn measure_window(id: &str, num_envs: usize, threads: usize, window: Duration) -> Result<f64> {
    let shares: Vec<usize> = (0..threads)
        .map(|t| num_envs / threads + usize::from(t < num_envs % threads))
        .collect();
    let ready = Barrier::new(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = shares
            .iter()
            .enumerate()
            .map(|(t, &share)| {
                let ready = &ready;
                scope.spawn(move || {
                    let mut stepper = Stepper::new(id, share, num_envs == 1, t as u64);
                    ready.wait();
                    let stepper = stepper.as_mut().map_err(|e| anyhow!("{e}"))?;
                    let start = Instant::now();
                    let mut steps = 0u64;
                    while start.elapsed() < window {
                        steps += stepper.step_many()?;
                    }
                    Ok(steps as f64 / start.elapsed().as_secs_f64())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("bench worker panicked"))
            .sum::<Result<f64>>()
    })
}

/// One thread's envs with their action buffers.
enum Stepper {
    Single {
        env: Box<dyn Env>,
        sampler: ActionSampler,
        action: Vec<f32>,
    },
    Vector {
        envs: Box<dyn VectorEnv>,
        sampler: ActionSampler,
        discrete: Vec<i64>,
        continuous: Vec<f32>,
    },
}

impl Stepper {
    fn new(id: &str, num_envs: usize, single: bool, seed: u64) -> Result<Self> {
        Ok(if single {
            let mut env = make(id)?;
            env.reset(Some(seed));
            Stepper::Single {
                sampler: ActionSampler::new(env.action_space(), seed),
                action: vec![0.0; env.action_space().flat_dim()],
                env,
            }
        } else {
            let mut envs = make_vector(
                id,
                num_envs,
                AutoresetMode::NextStep,
                MakeOptions::default(),
            )?;
            envs.reset(Some(seed));
            let space = envs.single_action_space();
            Stepper::Vector {
                sampler: ActionSampler::new(space, seed),
                discrete: vec![0; num_envs],
                continuous: vec![0.0; num_envs * space.flat_dim()],
                envs,
            }
        })
    }

    /// Steps with fresh random actions: 256 single-env steps or one vector step. Returns
    /// the number of env steps taken.
    fn step_many(&mut self) -> Result<u64> {
        match self {
            Stepper::Single {
                env,
                sampler,
                action,
            } => {
                for _ in 0..256 {
                    let step = env.step(sampler.sample(action))?;
                    if step.terminated || step.truncated {
                        env.reset(None);
                    }
                }
                Ok(256)
            }
            Stepper::Vector {
                envs,
                sampler,
                discrete,
                continuous,
            } => {
                envs.step(sampler.sample_batch(discrete, continuous))?;
                Ok(discrete.len() as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_window_counts_steps_for_single_and_vector_envs() {
        let window = Duration::from_millis(20);
        assert!(measure_window("CartPole-v1", 1, 1, window).unwrap() > 0.0);
        assert!(measure_window("Pendulum-v1", 8, 2, window).unwrap() > 0.0);
        assert!(measure_window("Nope-v0", 8, 1, window).is_err());
    }
}
