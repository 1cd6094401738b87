//! `gradless bench eval` and `gradless bench rollout`: a greedy policy and its envs stepping
//! together, on the CPU or on the device beside the policy.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use clap::{Args, ValueEnum};
use gradless_device::{Backend, InferenceDevice};
use gradless_device_envs::{EnvBackend, StepKernel, device_dynamics};
use gradless_envs::{EnvRng, MakeArgs, Space, make};
use gradless_evaluator::{EvalSettings, LoadedCheckpoint};
use gradless_policy::{
    ActionHead, Activation, ActorCritic, Agent, AgentDevice, EpisodePlan, PolicyForward, Rollout,
    run_episodes,
};
use serde::Serialize;

use super::{Timing, median_steps_per_sec};
use crate::output::print_json_line;
use crate::settings::check_count;
use crate::settings::parse_backends;
use gradless_grad_modes::median;

/// Arguments of `gradless bench rollout`.
#[derive(Debug, Args)]
pub struct RolloutBenchArgs {
    /// Environment id (CartPole-v1, MountainCar-v0 or Pendulum-v1 have device versions).
    #[arg(long, default_value = "CartPole-v1")]
    env: String,
    /// Comma-separated env backends: cpu, device.
    #[arg(long, value_delimiter = ',', default_value = "cpu,device")]
    env_backend: Vec<String>,
    /// Comma-separated devices: auto (wgpu on a hardware GPU, else flex), wgpu, flex.
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    device: Vec<String>,
    /// Comma-separated numbers of envs.
    #[arg(long, value_delimiter = ',', default_value = "1024,16384,65536")]
    num_envs: Vec<usize>,
    /// Device envs: how they step, comma-separated: auto (fused where it can run), fused
    /// (one kernel a step, on wgpu; skipped elsewhere), tensor-ops, episode (whole greedy
    /// episodes of policy and env in the episode kernel, on wgpu; skipped elsewhere).
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

/// How device envs step in a measurement.
#[derive(Debug, Clone, Copy)]
enum Stepping {
    /// One env step per policy step: the kernel named, or the envs' choice.
    Env(Option<StepKernel>),
    /// Whole episodes in the episode kernel.
    Episode,
}

/// Episodes per env slot in one timed evaluation of [`median_episode_steps_per_sec`].
const EPISODES_PER_SLOT: usize = 4;

/// The median policy-plus-env steps per second of whole greedy evaluations with the
/// episode kernel (`num_envs` slots, [`EPISODES_PER_SLOT`] seeded episodes each, the
/// seeded starts computed on the host included), timed as [`median_steps_per_sec`] times
/// a rollout: evaluations run until each window is over, after an uncounted warm-up.
fn median_episode_steps_per_sec(
    env: &MakeArgs,
    num_envs: usize,
    agent: &Agent,
    timing: &Timing,
) -> Result<f64> {
    let episodes = num_envs * EPISODES_PER_SLOT;
    let mut rates = Vec::with_capacity(timing.repeats);
    let mut first_seed = 0u64;
    for repeat in 0..=timing.repeats {
        let start = Instant::now();
        let mut steps = 0u64;
        while start.elapsed() < timing.window {
            let plan = EpisodePlan {
                first_seed,
                episodes,
                num_envs,
                stochastic: false,
            };
            let run = run_episodes(agent, env, EnvBackend::Device, plan, |_| {}, |_| {})?;
            steps += run.iter().map(|e| u64::from(e.length)).sum::<u64>();
            first_seed += episodes as u64;
        }
        if repeat > 0 {
            rates.push(steps as f64 / start.elapsed().as_secs_f64());
        }
    }
    Ok(median(&mut rates))
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
    /// The checkpoint whose policy acts, or a policy file of another tool (with --env).
    #[arg(long, default_value = "checkpoints/cartpole-v1-ppo")]
    checkpoint: PathBuf,
    /// The env of a policy file that names none.
    #[arg(long)]
    env: Option<String>,
    /// The activation of a policy file that names none (CleanRL).
    #[arg(long, value_name = "tanh|relu")]
    activation: Option<String>,
    /// Comma-separated devices: auto (wgpu on a hardware GPU, else flex), wgpu, flex.
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    device: Vec<String>,
    /// Comma-separated numbers of envs (the policy's batch size).
    #[arg(long, value_delimiter = ',', default_value = "1,16,1024")]
    num_envs: Vec<usize>,
    /// How the policy's outputs are computed, comma-separated: auto (what `gradless eval`
    /// does: host on flex, tensor-ops elsewhere), host (one host loop over blocks of envs,
    /// flex only; skipped elsewhere), tensor-ops (burn's tensor operations).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "auto")]
    forward: Vec<ForwardChoice>,
    /// Length of one timed window, in seconds.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Timed windows per size; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

/// A `--forward` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ForwardChoice {
    /// Whatever `gradless eval` would use on the device.
    Auto,
    Host,
    TensorOps,
}

impl ForwardChoice {
    /// The forward pass asked for; `None` leaves the agent's default.
    fn forward(self) -> Option<PolicyForward> {
        match self {
            Self::Auto => None,
            Self::Host => Some(PolicyForward::Host),
            Self::TensorOps => Some(PolicyForward::TensorOps),
        }
    }
}

/// One measured device, forward pass and size.
#[derive(Debug, Serialize)]
struct EvalBenchResult {
    checkpoint: PathBuf,
    device: String,
    forward: PolicyForward,
    num_envs: usize,
    steps_per_sec: f64,
    repeats: usize,
}

pub(super) fn bench_eval(args: &EvalBenchArgs, json: bool) -> Result<()> {
    super::check_timing(&args.num_envs, args.repeats, args.seconds)?;
    let backends = parse_backends(&args.device)?;
    let settings = EvalSettings {
        env: args.env.clone(),
        activation: crate::settings::parse_activation(args.activation.as_deref())?,
        ..EvalSettings::default()
    };
    if !json {
        println!(
            "{:<40} {:<8} {:<10} {:>9} {:>16}",
            "checkpoint", "device", "forward", "num_envs", "steps/s (median)"
        );
    }
    let timing = Timing {
        window: Duration::from_secs_f64(args.seconds),
        repeats: args.repeats,
        read_every: 1,
        host_only: false,
    };
    let (mut measured, mut skipped) = (0usize, None);
    for backend in backends {
        let device = InferenceDevice::new(&gradless_device::open(backend)?);
        let loaded =
            LoadedCheckpoint::load(&args.checkpoint, &settings, &AgentDevice::new(&device))?;
        for &choice in &args.forward {
            let forward = choice.forward();
            let agent = match forward {
                None => loaded.agent().clone(),
                Some(forward) => loaded.agent().clone().with_forward(forward),
            };
            if forward.is_some_and(|asked| asked != agent.forward()) {
                skipped = Some(format!("{backend}: no host forward pass (flex only)"));
                continue;
            }
            for &num_envs in &args.num_envs {
                let mut rollout = Rollout::new(loaded.env(), num_envs, EnvBackend::Cpu, &device)?;
                let steps_per_sec = median_steps_per_sec(&mut rollout, &agent, &timing)?;
                measured += 1;
                let result = EvalBenchResult {
                    checkpoint: args.checkpoint.clone(),
                    device: backend.to_string(),
                    forward: agent.forward(),
                    num_envs,
                    steps_per_sec,
                    repeats: args.repeats,
                };
                tracing::info!(device = %result.device, forward = ?result.forward, num_envs, steps_per_sec, "measured");
                if json {
                    print_json_line(&result)?;
                } else {
                    println!(
                        "{:<40} {:<8} {:<10} {:>9} {:>16.0}",
                        result.checkpoint.display(),
                        result.device,
                        forward_name(result.forward),
                        result.num_envs,
                        result.steps_per_sec
                    );
                }
            }
        }
    }
    match (measured, skipped) {
        (0, Some(reason)) => bail!("--forward: nothing could be measured ({reason})"),
        (_, Some(reason)) => tracing::warn!("--forward: some runs skipped ({reason})"),
        _ => {}
    }
    Ok(())
}

/// The `--forward` name of a forward pass.
fn forward_name(forward: PolicyForward) -> &'static str {
    match forward {
        PolicyForward::Host => "host",
        PolicyForward::TensorOps => "tensor-ops",
    }
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

/// The most steps between read-backs (each queues that many steps' signals on the device).
const MAX_READ_EVERY: usize = 1 << 16;

/// Runs `gradless bench rollout`: every device and size timed in alternating rounds. Long
/// because the flags' checks and the rounds' table share its state; the timing itself is
/// [`median_steps_per_sec`](super::median_steps_per_sec).
pub(super) fn bench_rollout(args: &RolloutBenchArgs, json: bool) -> Result<()> {
    super::check_timing(&args.num_envs, args.repeats, args.seconds)?;
    check_count("--read-every", args.read_every, MAX_READ_EVERY)?;
    let env_backends: Vec<EnvBackend> = args
        .env_backend
        .iter()
        .map(|name| {
            name.parse::<EnvBackend>()
                .map_err(|e| anyhow!("--env-backend: {e}"))
        })
        .collect::<Result<_>>()?;
    let step_kernels: Vec<Stepping> = args
        .step_kernel
        .iter()
        .map(|name| match name.as_str() {
            "auto" => Ok(Stepping::Env(None)),
            "episode" => Ok(Stepping::Episode),
            other => other
                .parse::<StepKernel>()
                .map(|kernel| Stepping::Env(Some(kernel)))
                .map_err(|e| anyhow!("--step-kernel: {e}, `auto` or `episode`")),
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
    let env = MakeArgs::registered(args.env.as_str());
    for backend in backends {
        let device = InferenceDevice::new(&gradless_device::open(backend)?);
        let agent = fresh_agent(&args.env, &device)?;
        for &num_envs in &args.num_envs {
            for &env_backend in &env_backends {
                // CPU envs have no step kernel to choose.
                let kernels = match env_backend {
                    EnvBackend::Cpu => &[Stepping::Env(None)][..],
                    EnvBackend::Device => &step_kernels[..],
                };
                for &stepping in kernels {
                    let (steps_per_sec, step_kernel) = match stepping {
                        Stepping::Episode if backend != Backend::Wgpu => {
                            skipped = Some(format!("{backend}: no episode kernel"));
                            continue;
                        }
                        // Its launches are not dropped: a result would claim a bound it is not.
                        Stepping::Episode if args.host_only => {
                            skipped = Some("episode: --host-only does not apply".into());
                            continue;
                        }
                        Stepping::Episode => (
                            median_episode_steps_per_sec(&env, num_envs, &agent, &timing)?,
                            Some("episode".to_string()),
                        ),
                        Stepping::Env(kernel) => {
                            let mut rollout = Rollout::new(&env, num_envs, env_backend, &device)?;
                            if let Some(kernel) = kernel
                                && let Err(e) = rollout.use_step_kernel(kernel)
                            {
                                skipped = Some(format!("{backend}: {e}"));
                                continue;
                            }
                            let rate = median_steps_per_sec(&mut rollout, &agent, &timing)?;
                            (rate, rollout.step_kernel().map(|k| k.to_string()))
                        }
                    };
                    measured += 1;
                    let result = RolloutBenchResult {
                        env: args.env.clone(),
                        env_backend,
                        step_kernel,
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
