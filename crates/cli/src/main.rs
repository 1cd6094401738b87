//! `gradless`: the command-line front end. It parses arguments, sets up logging and hands
//! each command to the library crates; results go to stdout, logs to stderr.

mod commands;
mod foreign;
mod logging;
mod output;
mod settings;
mod shard;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::logging::LogFormat;

// Tensor ops allocate and free a buffer per op. glibc returns buffers over its mmap
// threshold (128 KiB at first) to the kernel, so a 1024-env rollout paid page faults on
// every layer; mimalloc keeps freed pages for reuse (about twice the steps per second).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train, evaluate and benchmark reinforcement-learning agents on burn.
#[derive(Debug, Parser)]
#[command(name = "gradless", version, about)]
struct Cli {
    /// Print results as JSON (one object per line) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Log format on stderr; levels come from RUST_LOG (default: gradless at `info`, the
    /// libraries it uses at `warn`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the environment ids with their spaces and episode limits.
    Envs,
    /// Train an agent (PPO, DQN or SAC) from a config, or resume a run.
    Train(commands::train::TrainArgs),
    /// Evaluate checkpoints in inference mode and log every episode's return.
    Eval(commands::eval::EvalArgs),
    /// Compare groups of runs as rliable does: aggregate intervals, probability of improvement.
    Compare(commands::compare::CompareArgs),
    /// Draw training curves (episodic return, losses) from runs' metrics logs, runs overlaid.
    Plot(commands::plot::PlotArgs),
    /// Record a checkpoint's evaluation episodes as animated GIFs, drawn as Gymnasium draws them.
    Record(commands::record::RecordArgs),
    /// Make a native checkpoint of a policy another tool saved (SB3, CleanRL, state dicts).
    Import(commands::import::ImportArgs),
    /// Export a checkpoint's policy (safetensors for PyTorch).
    Export(commands::export::ExportArgs),
    /// Replay reference trajectories (Gymnasium parity format) and print what the envs return.
    Replay(commands::replay::ReplayArgs),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// List the burn devices this build can use and the wgpu adapter it gets.
    Devices,
}

/// clap's message for a bad argument on one line: the error and its hint (the possible
/// values, a similar flag), without the usage block, as every other error is printed.
fn argument_error_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect();
    parts.join(" ")
}

/// Lets a closed stdout or stderr end the program as it ends other Unix tools (`gradless
/// eval ... | head`: killed by SIGPIPE, status 141) instead of a panic in `println!`. Rust
/// ignores SIGPIPE before `main`; every file gradless writes is replaced atomically, so
/// ending at a write leaves no half-written output.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: called first in `main`, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE and installs no handler that could run concurrently.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version, asked for or shown for a bare command, print as clap prints them.
        Err(error)
            if !error.use_stderr()
                || error.kind()
                    == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            error.exit()
        }
        Err(error) => {
            eprintln!("{}", argument_error_line(&error));
            return ExitCode::from(2);
        }
    };
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Envs => commands::envs::run(cli.json),
        Command::Train(args) => commands::train::run(&args, cli.json),
        Command::Eval(args) => commands::eval::run(&args, cli.json),
        Command::Record(args) => commands::record::run(&args, cli.json),
        Command::Compare(args) => commands::compare::run(&args, cli.json),
        Command::Plot(args) => commands::plot::run(&args, cli.json),
        Command::Export(args) => commands::export::run(&args),
        Command::Import(args) => commands::import::run(&args),
        Command::Replay(args) => commands::replay::run(&args),
        Command::Bench(command) => commands::bench::run(command, cli.json),
        Command::Devices => commands::devices::run(cli.json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", output::error_line(&error));
            ExitCode::FAILURE
        }
    }
}
