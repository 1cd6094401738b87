//! `gradless bench grad-modes`: what gradient tracking costs a policy that only evaluates.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use gradless_grad_modes::{GradMode, Measurement, Plan, measure, write_charts};
use gradless_policy::Checkpoint;

use crate::output::print_json_line;
use crate::settings::parse_backends;

/// Arguments of `gradless bench grad-modes`.
#[derive(Debug, Args)]
pub struct GradModesArgs {
    /// The checkpoint whose policy runs.
    #[arg(default_value = "checkpoints/cartpole-v1-ppo")]
    checkpoint: PathBuf,
    /// Comma-separated devices: auto (wgpu on a hardware GPU, else flex), wgpu, flex.
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    device: Vec<String>,
    /// Comma-separated batch sizes (observations per policy step).
    #[arg(long, value_delimiter = ',', default_value = "1,16,256,4096")]
    batch: Vec<usize>,
    /// Length of one timed window, in seconds.
    #[arg(long, default_value_t = 0.5)]
    seconds: f64,
    /// Timed windows per mode and batch (alternating between modes); the median is reported.
    #[arg(long, default_value_t = 5)]
    windows: usize,
    /// Steps of the forward-only rollout whose leftover memory is measured.
    #[arg(long, default_value_t = 10_000)]
    memory_steps: usize,
    /// Stop a memory rollout early once resident memory has grown by this many MiB.
    #[arg(long, default_value_t = 2048)]
    memory_limit_mib: u64,
    /// Folder for the bar charts (grad-modes-<device>.svg and .png).
    #[arg(long, default_value = "runs/bench")]
    out: PathBuf,
    /// Also time each mode's step replayed from a graph captured with burn's `capture`
    /// (recorded on wgpu; re-run on flex and on autodiff devices), in the same windows.
    #[arg(long)]
    graph_capture: bool,
    #[command(flatten)]
    figures: crate::settings::FigureArgs,
}

fn check_timing(seconds: f64, windows: usize) -> Result<Duration> {
    if windows == 0 || !seconds.is_finite() || seconds <= 0.0 {
        bail!("--windows must be at least 1 and --seconds positive");
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn mib(bytes: i64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn print_row(m: &Measurement, inference_us: f64) {
    let captured = m.graph_capture.map_or_else(String::new, |c| {
        let how = if c.hardware_graph { "graph" } else { "re-run" };
        format!(" {:>12.1} {:>8.2}x {how:>7}", c.us_per_step, c.speedup)
    });
    println!(
        "{:<6} {:>6} {:<10} {:>12.1} {:>14.0} {:>9.2}x {:>8} {:>13} {:>12}{captured}",
        m.device,
        m.batch,
        m.mode.name(),
        m.us_per_step,
        m.steps_per_sec,
        m.us_per_step / inference_us,
        m.memory_steps,
        mib(m.memory_growth_bytes),
        m.device_memory_growth_bytes
            .map_or_else(|| "-".to_string(), mib),
    );
}

/// Runs `gradless bench grad-modes`.
pub fn bench(args: &GradModesArgs, json: bool) -> Result<()> {
    let window = check_timing(args.seconds, args.windows)?;
    let figures = args.figures.options()?;
    if args.batch.is_empty() || args.batch.contains(&0) {
        bail!("--batch: every size must be at least 1");
    }
    let backends = parse_backends(&args.device)?;
    let checkpoint = Checkpoint::open(&args.checkpoint)?;
    let plan = Plan {
        batches: args.batch.clone(),
        window,
        windows: args.windows,
        warmup_steps: 20,
        memory_steps: args.memory_steps,
        memory_limit_bytes: args.memory_limit_mib.saturating_mul(1024 * 1024),
        graph_capture: args.graph_capture,
    };
    if !json {
        let captured = if args.graph_capture {
            format!(" {:>12} {:>9} {:>7}", "captured us", "speedup", "replay")
        } else {
            String::new()
        };
        println!(
            "{:<6} {:>6} {:<10} {:>12} {:>14} {:>10} {:>8} {:>13} {:>12}{captured}",
            "device",
            "batch",
            "mode",
            "us/step",
            "obs/s",
            "vs infer",
            "mem steps",
            "RSS grow MiB",
            "dev grow MiB"
        );
    }
    let mut all = Vec::new();
    for backend in backends {
        let base = gradless_device::open(backend)?;
        let mut pending = Vec::new();
        let measured = measure(&checkpoint, backend.name(), &base, &plan, |m| {
            tracing::info!(device = %m.device, batch = m.batch, mode = %m.mode, us_per_step = m.us_per_step, memory_growth_bytes = m.memory_growth_bytes, "measured");
            pending.push(m.clone());
            // A batch's rows are printed together, relative to its inference time.
            if pending.len() == GradMode::ALL.len() {
                let inference = pending
                    .iter()
                    .find(|p| p.mode == GradMode::Inference)
                    .map_or(f64::NAN, |p| p.us_per_step);
                for p in pending.drain(..) {
                    if json {
                        // stdout closed: nothing more to do with this line.
                        let _ = print_json_line(&p);
                    } else {
                        print_row(&p, inference);
                    }
                }
            }
        })?;
        all.extend(measured);
    }
    for file in write_charts(&all, &args.out, &figures)? {
        tracing::info!(file = %file.display(), "chart written");
    }
    if !all.iter().all(|m| m.actions_identical) {
        bail!("the three modes chose different actions on the same inputs (see actions_identical)")
    }
    if all
        .iter()
        .filter_map(|m| m.graph_capture)
        .any(|c| !c.actions_identical)
    {
        bail!(
            "a captured graph's replays chose other actions than its mode's steps \
             (see graph_capture.actions_identical)"
        )
    }
    tracing::info!("actions identical in all three modes at every device and batch");
    Ok(())
}
