//! `gradless bench envs`: env steps per second with random actions, single and vector envs,
//! on one or more threads.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use clap::Args;
use gradless_envs::{ActionSampler, AutoresetMode, Env, MakeOptions, VectorEnv, make, make_vector};
use gradless_grad_modes::median;
use serde::Serialize;

use crate::output::print_json_line;
use crate::settings::check_count;

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

/// The most threads the envs are split over.
const MAX_THREADS: usize = 1024;

pub(super) fn bench_envs(args: &EnvBenchArgs, json: bool) -> Result<()> {
    super::check_timing(&args.num_envs, args.repeats, args.seconds)?;
    check_count("--threads", args.threads, MAX_THREADS)?;
    make(&args.env)?; // an unknown id fails here, listing the known ones
    // A size with fewer envs than threads would leave threads idle: skipped, and said so.
    let (sizes, skipped): (Vec<usize>, Vec<usize>) =
        args.num_envs.iter().partition(|&&n| n >= args.threads);
    if sizes.is_empty() {
        bail!(
            "--num-envs: every size is smaller than --threads {} (need at least one env per \
             thread)",
            args.threads
        );
    }
    if !skipped.is_empty() {
        let list: Vec<String> = skipped.iter().map(usize::to_string).collect();
        tracing::warn!(
            "--num-envs {}: skipped, fewer envs than --threads {} (need at least one env per \
             thread)",
            list.join(","),
            args.threads
        );
    }
    if !json {
        println!(
            "{:<26} {:>9} {:>7} {:>16}",
            "env", "num_envs", "threads", "steps/s (median)"
        );
    }
    for &num_envs in &sizes {
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
