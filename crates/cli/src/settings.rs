//! The flags several commands share, each checked and turned into a typed value once, before
//! any work starts: how an agent acts, sizes, seeds, devices, `--activation` and `--out`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use gradless_device::{Backend, Device, DeviceChoice};
use gradless_evaluator::{Activation, EnvBackendChoice, EvalSettings, EvalTarget, ZooModel};
use gradless_plots::FigureOptions;
use gradless_policy::EpisodePlan;
use gradless_trainer::RunDir;

/// Which checkpoint of a run: `--checkpoint final|best`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scored {
    /// The run's last checkpoint (RL Zoo: `<EnvId>.zip`).
    Final,
    /// The checkpoint its `best` pointer names (RL Zoo: `best_model.zip`).
    Best,
}

impl Scored {
    /// The model it picks from an RL Zoo run.
    pub fn zoo_model(self) -> ZooModel {
        match self {
            Self::Final => ZooModel::Final,
            Self::Best => ZooModel::Best,
        }
    }

    /// The checkpoint it picks from a run `target` holds (an RL Zoo run's was picked when
    /// it was found).
    pub fn pick(self, target: &EvalTarget) -> Result<PathBuf> {
        let run = target.run.as_deref().unwrap_or(Path::new("."));
        match (self, &target.zoo) {
            (_, Some(zoo)) => Ok(zoo.model.clone()),
            (Self::Final, None) => target
                .checkpoints
                .last()
                .cloned()
                .with_context(|| format!("{}: the run has no checkpoint", run.display())),
            (Self::Best, None) => RunDir::open(run)?
                .and_then(|dir| dir.pointer(gradless_trainer::run_dir::BEST).transpose())
                .transpose()?
                .with_context(|| format!("{}: the run has no `best` checkpoint", run.display())),
        }
    }
}

/// How the agent acts, as `gradless eval` and `gradless record` take it.
#[derive(Debug, Args)]
pub struct ActingArgs {
    /// Seed of episode 0.
    #[arg(long, default_value_t = 1_000_000)]
    pub seed: u64,
    /// Sample actions from the policy instead of taking the greedy ones.
    #[arg(long)]
    pub stochastic: bool,
    /// Act ε-greedily (Q-network agents: DQN, QR-DQN, CleanRL's dqn.py): a uniformly random
    /// action with probability E, drawn from each episode's own generator; 0 is greedy.
    #[arg(long, default_value_t = 0.0, value_name = "E")]
    pub epsilon: f64,
    /// Device: auto (wgpu on a hardware GPU, else flex), wgpu or flex.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Evaluate on another env with the same spaces (e.g. CartPole-v0); required for a
    /// policy file that names no env (Stable-Baselines3, CleanRL).
    #[arg(long)]
    pub env: Option<String>,
    /// The activation of a policy from another tool whose file names none (CleanRL:
    /// default tanh for PPO, relu for DQN), or to override what it names.
    #[arg(long, value_name = "tanh|relu")]
    pub activation: Option<String>,
}

/// How the command's figures are written: `--title`, `--width`, `--height`, `--dpi`.
#[derive(Debug, Args)]
pub struct FigureArgs {
    /// The figures' title (of several figures, each keeps its own after it).
    #[arg(long)]
    pub title: Option<String>,
    /// The figures' width, in inches (the SVG at 96 pixels per inch).
    #[arg(long, default_value_t = 8.0)]
    pub width: f64,
    /// The figures' height, in inches.
    #[arg(long, default_value_t = 5.0)]
    pub height: f64,
    /// The PNGs' pixels per inch (recorded in the file).
    #[arg(long, default_value_t = 100)]
    pub dpi: u32,
}

impl FigureArgs {
    /// The options, checked before anything is measured or evaluated.
    pub fn options(&self) -> Result<FigureOptions> {
        let options = FigureOptions {
            title: self.title.clone(),
            width: self.width,
            height: self.height,
            dpi: self.dpi,
        };
        options.check().map_err(anyhow::Error::msg)?;
        Ok(options)
    }
}

/// How many evaluation episodes run, and how many envs step side by side.
#[derive(Debug, Args)]
pub struct EpisodeArgs {
    /// Evaluation episodes (per checkpoint); episode i runs from seed SEED + i.
    #[arg(long, default_value_t = 100)]
    pub episodes: usize,
    /// Envs stepped side by side (per-episode results do not depend on it).
    #[arg(long, default_value_t = 16)]
    pub num_envs: usize,
}

impl EpisodeArgs {
    /// Refuses counts out of bounds, and a first `seed` whose episodes' seeds would overflow.
    pub fn check(&self, seed: u64) -> Result<()> {
        check_count("--episodes", self.episodes, EpisodePlan::MAX_EPISODES)?;
        check_count("--num-envs", self.num_envs, EpisodePlan::MAX_NUM_ENVS)?;
        check_first_seed(seed, self.episodes)
    }
}

/// Refuses a `--seed` whose episodes' seeds (`seed + i`) would pass the largest seed.
pub fn check_first_seed(seed: u64, episodes: usize) -> Result<()> {
    let largest_seed = EpisodePlan::largest_first_seed(episodes);
    if seed > largest_seed {
        bail!(
            "--seed {seed}: with --episodes {episodes} the episode seeds would pass the largest seed, {} (use --seed {largest_seed} or less)",
            u64::MAX,
        );
    }
    Ok(())
}

/// Refuses a size flag outside `1..=max`, before any work starts.
pub fn check_count(flag: &str, value: usize, max: usize) -> Result<()> {
    if value == 0 || value > max {
        bail!("{flag} {value}: must lie in 1..={max}");
    }
    Ok(())
}

/// How many bootstrap resamples an interval takes.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Bootstrap resamples per interval.
    #[arg(long, default_value_t = 50_000)]
    pub reps: usize,
}

impl BootstrapArgs {
    /// The most resamples asked for: four times rliable's default of 50,000. Every
    /// resample's estimate is kept to take percentiles, so memory grows with it (a few
    /// hundred MB for many runs, where ten million took gigabytes).
    const MAX_REPS: usize = 200_000;

    /// Refuses a count outside 1..=MAX_REPS, naming `--reps`.
    pub fn check(&self) -> Result<()> {
        check_count("--reps", self.reps, Self::MAX_REPS)
    }
}

/// `--activation`, parsed.
pub fn parse_activation(name: Option<&str>) -> Result<Option<Activation>> {
    name.map(|name| {
        gradless_import::activation_named(name)
            .with_context(|| format!("--activation `{name}`: expected tanh or relu"))
    })
    .transpose()
}

impl ActingArgs {
    /// The device `--device` names, opened, and its backend.
    pub fn open_device(&self) -> Result<(Device, Backend)> {
        let backend = resolve_device(&self.device)?;
        Ok((gradless_device::open(backend)?, backend))
    }

    /// The device `--device` names, opened.
    pub fn base_device(&self) -> Result<Device> {
        Ok(self.open_device()?.0)
    }

    /// `--epsilon`, which must lie in `[0, 1]`.
    pub fn checked_epsilon(&self) -> Result<f64> {
        if !(0.0..=1.0).contains(&self.epsilon) {
            bail!("--epsilon {}: must lie in [0, 1]", self.epsilon);
        }
        Ok(self.epsilon)
    }

    /// What an evaluation of `counts` episodes takes from these flags, the envs stepping on
    /// `env_backend`.
    pub fn eval_settings(
        &self,
        counts: &EpisodeArgs,
        env_backend: EnvBackendChoice,
    ) -> Result<EvalSettings> {
        Ok(EvalSettings {
            episodes: counts.episodes,
            num_envs: counts.num_envs,
            seed: self.seed,
            stochastic: self.stochastic,
            epsilon: self.checked_epsilon()?,
            env: self.env.clone(),
            activation: parse_activation(self.activation.as_deref())?,
            env_backend,
        })
    }
}

/// The backend `--device NAME` comes to (`auto`, `wgpu` or `flex`); for `auto`, one info
/// line says which and why.
pub fn resolve_device(name: &str) -> Result<Backend> {
    let choice: DeviceChoice = name.parse().context("--device")?;
    let chosen = choice.resolve();
    if choice == DeviceChoice::Auto {
        tracing::info!(device = %chosen.backend, reason = %chosen.reason, "--device auto");
    }
    Ok(chosen.backend)
}

/// The backends named by `--device`.
pub fn parse_backends(names: &[String]) -> Result<Vec<Backend>> {
    names.iter().map(|name| resolve_device(name)).collect()
}

/// Makes `--out` (before any episode runs: an unwritable one is found now, not at the end)
/// and locks it while this process writes it; shards of one evaluation share the lock.
pub fn lock_out(out: &Path, shared: bool) -> Result<gradless_files::DirLock> {
    std::fs::create_dir_all(out)
        .and_then(|()| gradless_files::check_writable(out))
        .and_then(|()| {
            if shared {
                gradless_files::DirLock::acquire_shared(out)
            } else {
                gradless_files::DirLock::acquire(out)
            }
        })
        .with_context(|| format!("--out {}", out.display()))
}
