//! Run configuration: TOML files (`configs/*.toml`) plus `--set key=value` overrides. A file
//! is read as a [`ConfigFile`] (sections optional, as people write them) and resolved into a
//! [`TrainConfig`], whose algorithm section and network are always there and whose values
//! are checked: a `TrainConfig` cannot be unresolved. It is written back out, and read in
//! again, in the file form: that is what checkpoints record and what a resume is compared
//! against.
//!
//! Defaults follow CleanRL (`ppo.py`, `dqn.py`, `sac_continuous_action.py`); the shipped configs say where they depart.
//! The checks are in `validation`; this file holds every section's fields and defaults as the
//! TOML file has them, so the file form is read in one place, and tests of it and of overrides.

mod validation;

use gradless_device_envs::{EnvBackend, device_dynamics};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use gradless_envs::Space;
use gradless_policy::{Activation, EpisodePlan};

/// A configuration problem, naming the key it is about.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{}{reason}", if key.is_empty() { String::new() } else { format!("`{key}`: ") })]
pub struct ConfigError {
    /// The dotted key (`ppo.learning_rate`); empty for syntax errors that name their line.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    fn new(key: &str, reason: impl Into<String>) -> Self {
        Self {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// The training algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlgorithmKind {
    /// Proximal policy optimisation (discrete or continuous actions).
    Ppo,
    /// Deep Q-learning (discrete actions).
    Dqn,
    /// Soft actor-critic (bounded continuous actions).
    Sac,
}

impl AlgorithmKind {
    /// Its name in configs and checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            AlgorithmKind::Ppo => "ppo",
            AlgorithmKind::Dqn => "dqn",
            AlgorithmKind::Sac => "sac",
        }
    }
}

/// A whole run as a config file writes it: `network` and the algorithm's section may be left
/// out (their defaults depend on the algorithm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The environment id (`CartPole-v1`, ...).
    pub env: String,
    /// The algorithm; its own section (`[ppo]`, `[dqn]` or `[sac]`) tunes it.
    pub algorithm: AlgorithmKind,
    /// Seeds the network initialisation, the envs (env `i` gets `seed + i`) and every draw
    /// the trainer makes.
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    /// Environment steps to train for (summed over parallel envs).
    pub total_timesteps: u64,
    /// Network sizes; the default depends on the algorithm.
    #[serde(default)]
    pub network: Option<NetworkConfig>,
    /// When checkpoints are written and how many are kept.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// Greedy evaluation during training.
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    /// Observation and reward normalisation (off unless asked for; left out of the
    /// written form when off, so that runs without it read and hash as before).
    #[serde(default, skip_serializing_if = "NormalizationConfig::is_off")]
    pub normalization: NormalizationConfig,
    /// PPO's hyperparameters (with `algorithm = "ppo"`).
    #[serde(default)]
    pub ppo: Option<PpoConfig>,
    /// DQN's hyperparameters (with `algorithm = "dqn"`).
    #[serde(default)]
    pub dqn: Option<DqnConfig>,
    /// SAC's hyperparameters (with `algorithm = "sac"`). Left out of the written form when
    /// absent, so that configs of the other algorithms read and hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sac: Option<SacConfig>,
}

/// A whole run, resolved: every default filled in and every value checked. It serialises as
/// (and deserialises through) its [`ConfigFile`] form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ConfigFile", into = "ConfigFile")]
pub struct TrainConfig {
    /// The environment id (`CartPole-v1`, ...).
    pub env: String,
    /// Seeds the network initialisation, the envs (env `i` gets `seed + i`) and every draw
    /// the trainer makes.
    pub seed: u64,
    /// Environment steps to train for (summed over parallel envs).
    pub total_timesteps: u64,
    /// Network sizes.
    pub network: NetworkConfig,
    /// When checkpoints are written and how many are kept.
    pub checkpoint: CheckpointConfig,
    /// Greedy evaluation during training.
    pub evaluation: EvaluationConfig,
    /// Observation and reward normalisation.
    pub normalization: NormalizationConfig,
    /// The algorithm with its hyperparameters.
    pub algorithm: AlgorithmConfig,
}

/// The algorithm and its section.
#[derive(Debug, Clone, PartialEq)]
pub enum AlgorithmConfig {
    /// PPO.
    Ppo(PpoConfig),
    /// DQN.
    Dqn(DqnConfig),
    /// SAC.
    Sac(SacConfig),
}

impl AlgorithmConfig {
    /// Which algorithm.
    pub fn kind(&self) -> AlgorithmKind {
        match self {
            AlgorithmConfig::Ppo(_) => AlgorithmKind::Ppo,
            AlgorithmConfig::Dqn(_) => AlgorithmKind::Dqn,
            AlgorithmConfig::Sac(_) => AlgorithmKind::Sac,
        }
    }

    /// Its name in configs and checkpoints.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Parallel envs of its rollouts.
    pub fn num_envs(&self) -> usize {
        match self {
            AlgorithmConfig::Ppo(ppo) => ppo.num_envs,
            AlgorithmConfig::Dqn(dqn) => dqn.num_envs,
            AlgorithmConfig::Sac(sac) => sac.num_envs,
        }
    }
}

impl TryFrom<ConfigFile> for TrainConfig {
    type Error = ConfigError;
    fn try_from(file: ConfigFile) -> Result<Self, ConfigError> {
        file.resolve()
    }
}

impl From<TrainConfig> for ConfigFile {
    fn from(config: TrainConfig) -> Self {
        let algorithm = config.algorithm.kind();
        let (mut ppo, mut dqn, mut sac) = (None, None, None);
        match config.algorithm {
            AlgorithmConfig::Ppo(section) => ppo = Some(section),
            AlgorithmConfig::Dqn(section) => dqn = Some(section),
            AlgorithmConfig::Sac(section) => sac = Some(section),
        }
        ConfigFile {
            env: config.env,
            algorithm,
            seed: config.seed,
            total_timesteps: config.total_timesteps,
            network: Some(config.network),
            checkpoint: config.checkpoint,
            evaluation: config.evaluation,
            normalization: config.normalization,
            ppo,
            dqn,
            sac,
        }
    }
}

/// Network sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// The nonlinearity between layers.
    pub activation: Activation,
}

/// Checkpoint cadence and retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Write a checkpoint each time this many environment steps have passed (and at the end).
    pub every_steps: u64,
    /// How many of the most recent checkpoints to keep (the best is kept besides).
    pub keep_last: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            every_steps: 50_000,
            keep_last: 3,
        }
    }
}

/// Greedy evaluation during training: `episodes` episodes, episode `i` from seed
/// `seed + i`, each time `every_steps` environment steps have passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// Cadence in environment steps; 0 turns evaluation off.
    pub every_steps: u64,
    /// Episodes per evaluation.
    pub episodes: usize,
    /// First evaluation seed (kept apart from the training seeds).
    pub seed: u64,
    /// Stop training once an evaluation's mean return reaches this.
    pub stop_at_return: Option<f64>,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            every_steps: 10_000,
            episodes: 100,
            seed: 1_000_000,
            stop_at_return: None,
        }
    }
}

/// Normalisation as Gymnasium's `NormalizeObservation` and `NormalizeReward` wrappers (and
/// SB3's `VecNormalize`) do it, with CleanRL's clipping. The observation statistics are
/// part of the agent: checkpoints record them and the evaluator applies them frozen. Reward
/// scaling divides rewards by the running standard deviation of each env's discounted
/// return (the algorithm's `gamma`); it changes what the learner sees, never the returns
/// logged or evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizationConfig {
    /// Normalise observations with their running mean and variance.
    pub observations: bool,
    /// Scale rewards by the running spread of the discounted return.
    pub rewards: bool,
    /// Normalised observations are clipped to `[-clip_observations, clip_observations]`.
    pub clip_observations: f64,
    /// Scaled rewards are clipped to `[-clip_rewards, clip_rewards]`.
    pub clip_rewards: f64,
    /// Added to variances before their square root.
    pub epsilon: f64,
}

impl Default for NormalizationConfig {
    fn default() -> Self {
        Self {
            observations: false,
            rewards: false,
            clip_observations: 10.0,
            clip_rewards: 10.0,
            epsilon: 1e-8,
        }
    }
}

impl NormalizationConfig {
    /// Whether it is the default (nothing normalised, default constants).
    pub fn is_off(&self) -> bool {
        *self == Self::default()
    }
}

/// PPO (CleanRL's `ppo.py` defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Parallel envs.
    pub num_envs: usize,
    /// Steps per env per rollout.
    pub num_steps: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Anneal the learning rate linearly to 0 over the run.
    pub anneal_lr: bool,
    /// Adam's epsilon.
    pub adam_epsilon: f64,
    /// Discount.
    pub gamma: f64,
    /// GAE's lambda.
    pub gae_lambda: f64,
    /// Minibatches per epoch.
    pub num_minibatches: usize,
    /// Passes over each rollout.
    pub update_epochs: usize,
    /// Normalise advantages per minibatch.
    pub normalize_advantages: bool,
    /// The policy ratio's clip range.
    pub clip_coef: f64,
    /// Clip the value loss as the policy loss is.
    pub clip_value_loss: bool,
    /// Entropy bonus weight.
    pub entropy_coef: f64,
    /// Value loss weight.
    pub value_coef: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Where the rollout's envs step: `cpu` (Gymnasium-exact; observations and actions cross
    /// to the device every step) or `device` (beside the policy, as tensor programs; the
    /// rollout is read back once, with its finished episodes).
    pub env_backend: EnvBackend,
    /// Device envs on wgpu: run the rollout in the rollout kernel (policy, draw and env step
    /// for many steps per launch) where the actor fits it; `false` steps it one step at a
    /// time. Ignored for CPU envs and on flex.
    pub rollout_kernel: bool,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            num_envs: 4,
            num_steps: 128,
            learning_rate: 2.5e-4,
            anneal_lr: true,
            adam_epsilon: 1e-5,
            gamma: 0.99,
            gae_lambda: 0.95,
            num_minibatches: 4,
            update_epochs: 4,
            normalize_advantages: true,
            clip_coef: 0.2,
            clip_value_loss: true,
            entropy_coef: 0.01,
            value_coef: 0.5,
            max_grad_norm: 0.5,
            env_backend: EnvBackend::Cpu,
            rollout_kernel: true,
        }
    }
}

impl PpoConfig {
    /// Transitions per rollout.
    pub fn batch_size(&self) -> usize {
        self.num_envs * self.num_steps
    }

    /// Transitions per minibatch.
    pub fn minibatch_size(&self) -> usize {
        self.batch_size() / self.num_minibatches
    }
}

/// DQN's TD loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TdLoss {
    /// Squared error (CleanRL).
    Mse,
    /// Huber / smooth L1 with threshold 1 (Stable-Baselines3).
    Huber,
}

/// DQN (CleanRL's `dqn.py` defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DqnConfig {
    /// Parallel envs.
    pub num_envs: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Adam's epsilon.
    pub adam_epsilon: f64,
    /// Replay buffer capacity in transitions.
    pub buffer_size: usize,
    /// Discount.
    pub gamma: f64,
    /// Copy the online network into the target network every this many env steps.
    pub target_network_frequency: u64,
    /// Transitions per gradient step.
    pub batch_size: usize,
    /// Exploration rate at the start.
    pub start_epsilon: f64,
    /// Exploration rate at the end of the schedule.
    pub end_epsilon: f64,
    /// Fraction of `total_timesteps` over which epsilon falls linearly.
    pub exploration_fraction: f64,
    /// Env steps before learning starts (actions are random until then).
    pub learning_starts: u64,
    /// Train every this many env steps...
    pub train_frequency: u64,
    /// ...with this many gradient steps.
    pub gradient_steps: usize,
    /// The TD loss.
    pub loss: TdLoss,
    /// Global gradient-norm clip (none by default, as CleanRL).
    pub max_grad_norm: Option<f64>,
}

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            num_envs: 1,
            learning_rate: 2.5e-4,
            adam_epsilon: 1e-8,
            buffer_size: 10_000,
            gamma: 0.99,
            target_network_frequency: 500,
            batch_size: 128,
            start_epsilon: 1.0,
            end_epsilon: 0.05,
            exploration_fraction: 0.5,
            learning_starts: 10_000,
            train_frequency: 10,
            gradient_steps: 1,
            loss: TdLoss::Mse,
            max_grad_norm: None,
        }
    }
}

/// SAC (CleanRL's `sac_continuous_action.py` defaults): twin critics with Polyak-averaged
/// targets, a tanh-squashed Gaussian actor updated every `policy_frequency` gradient steps
/// (as many times), and the entropy weight tuned towards `-action_dim` unless fixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SacConfig {
    /// Parallel envs.
    pub num_envs: usize,
    /// Replay buffer capacity in transitions.
    pub buffer_size: usize,
    /// Discount.
    pub gamma: f64,
    /// Polyak weight of the online critics in each target update.
    pub tau: f64,
    /// Transitions per gradient step.
    pub batch_size: usize,
    /// Env steps of uniformly random actions before learning starts.
    pub learning_starts: u64,
    /// The actor's (and the entropy weight's) learning rate.
    pub policy_lr: f64,
    /// The critics' learning rate.
    pub q_lr: f64,
    /// Adam's epsilon.
    pub adam_epsilon: f64,
    /// Update the actor every this many gradient steps (as many times at once).
    pub policy_frequency: u64,
    /// Update the targets every this many gradient steps.
    pub target_network_frequency: u64,
    /// Train every this many env steps...
    pub train_frequency: u64,
    /// ...with this many gradient steps.
    pub gradient_steps: usize,
    /// The entropy weight: the starting value when tuned, else fixed.
    pub alpha: f64,
    /// Tune the entropy weight towards a target entropy of `-action_dim`.
    pub autotune: bool,
    /// Correlation from one env step to the next of the exploration noise (each component
    /// an AR(1) process with unit variance, restarted with each episode): 0 is white noise
    /// (CleanRL); near 1, pushes that persist for about `1 / (1 - rho)` steps, which is what
    /// reaches MountainCar's flag. Random actions before `learning_starts` are then the
    /// squashed noise itself rather than uniform draws.
    pub noise_correlation: f64,
}

impl Default for SacConfig {
    fn default() -> Self {
        Self {
            num_envs: 1,
            buffer_size: 1_000_000,
            gamma: 0.99,
            tau: 0.005,
            batch_size: 256,
            learning_starts: 5_000,
            policy_lr: 3e-4,
            q_lr: 1e-3,
            adam_epsilon: 1e-8,
            policy_frequency: 2,
            target_network_frequency: 1,
            train_frequency: 1,
            gradient_steps: 1,
            alpha: 0.2,
            autotune: true,
            noise_correlation: 0.0,
        }
    }
}

mod defaults {
    pub fn seed() -> u64 {
        1
    }
}

impl TrainConfig {
    /// Parses TOML text, applies `key=value` overrides and resolves defaults; every error
    /// names the key.
    pub fn from_toml(text: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::new("", one_line(&e.to_string())))?;
        for assignment in overrides {
            apply_override(&mut table, assignment)?;
        }
        let file: ConfigFile = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                let key = if key == "." { String::new() } else { key };
                ConfigError::new(&key, one_line(&e.into_inner().to_string()))
            })?;
        file.resolve()
    }

    /// Parallel envs of the algorithm's rollouts.
    pub fn num_envs(&self) -> usize {
        self.algorithm.num_envs()
    }

    /// The first key at which `other` differs from `self`, with both values; `None` when
    /// they are the same run.
    pub fn first_difference(&self, other: &TrainConfig) -> Option<(String, String, String)> {
        let a = serde_json::to_value(self).expect("config serialises");
        let b = serde_json::to_value(other).expect("config serialises");
        first_difference(&a, &b, "")
    }
}

impl ConfigFile {
    /// Fills in the algorithm-dependent defaults and checks every value.
    pub fn resolve(self) -> Result<TrainConfig, ConfigError> {
        let chosen = self.algorithm.name();
        let sections = [
            ("ppo", self.ppo.is_some()),
            ("dqn", self.dqn.is_some()),
            ("sac", self.sac.is_some()),
        ];
        if let Some((section, _)) = sections
            .iter()
            .find(|(name, given)| *given && *name != chosen)
        {
            return Err(ConfigError::new(
                section,
                format!("given, but `algorithm` is \"{chosen}\""),
            ));
        }
        let algorithm = match self.algorithm {
            AlgorithmKind::Ppo => AlgorithmConfig::Ppo(self.ppo.unwrap_or_default()),
            AlgorithmKind::Dqn => AlgorithmConfig::Dqn(self.dqn.unwrap_or_default()),
            AlgorithmKind::Sac => AlgorithmConfig::Sac(self.sac.unwrap_or_default()),
        };
        let network = self.network.unwrap_or_else(|| match algorithm {
            AlgorithmConfig::Ppo(_) => NetworkConfig {
                hidden: vec![64, 64],
                activation: Activation::Tanh,
            },
            AlgorithmConfig::Dqn(_) => NetworkConfig {
                hidden: vec![120, 84],
                activation: Activation::Relu,
            },
            AlgorithmConfig::Sac(_) => NetworkConfig {
                hidden: vec![256, 256],
                activation: Activation::Relu,
            },
        });
        let config = TrainConfig {
            env: self.env,
            seed: self.seed,
            total_timesteps: self.total_timesteps,
            network,
            checkpoint: self.checkpoint,
            evaluation: self.evaluation,
            normalization: self.normalization,
            algorithm,
        };
        config.validate()?;
        Ok(config)
    }
}

fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: &str,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|key| {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                first_difference(
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                    &child,
                )
            })
        }
        _ if a == b => None,
        _ => Some((path.to_string(), a.to_string(), b.to_string())),
    }
}

/// toml's messages span lines (source excerpt, caret); errors here are one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('|') && !line.ends_with('|'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `a.b.c=value`: the value is read as TOML (`3e-4`, `true`, `[64, 64]`, `"x"`) and,
/// failing that, taken as a bare string (`--set env=CartPole-v0`).
fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ConfigError> {
    let (key, raw) = assignment.split_once('=').ok_or_else(|| {
        ConfigError::new(
            assignment,
            "an override is `key=value`, e.g. `ppo.learning_rate=3e-4`",
        )
    })?;
    let key = key.trim();
    let raw = raw.trim();
    let parsed = format!("value = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("value"));
    let whole_number = raw.trim_start_matches(['-', '+']);
    if parsed.is_none()
        && !whole_number.is_empty()
        && whole_number.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ConfigError::new(
            key,
            format!(
                "{raw} is beyond the largest whole number a config holds, {}",
                i64::MAX
            ),
        ));
    }
    let value = parsed.unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::new(key, "not a valid key"));
    }
    let (last, parents) = parts.split_last().expect("split gives at least one part");
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| {
            ConfigError::new(&parts[..=depth].join("."), "is a value, not a section")
        })?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PPO: &str = r#"
        env = "CartPole-v1"
        algorithm = "ppo"
        total_timesteps = 100000
        [ppo]
        learning_rate = 2.5e-4
    "#;

    fn error(text: &str, overrides: &[&str]) -> ConfigError {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        TrainConfig::from_toml(text, &overrides).unwrap_err()
    }

    /// SAC needs a bounded box and its section belongs to it; normalisation works on host
    /// envs only and, left at its defaults, is left out of the written form.
    #[test]
    fn sac_and_normalisation_are_checked_where_they_apply() {
        const SAC: &str = "env = \"Pendulum-v1\"\nalgorithm = \"sac\"\ntotal_timesteps = 1000";
        let sac = TrainConfig::from_toml(SAC, &[]).unwrap();
        assert_eq!(sac.network.hidden, vec![256, 256]);
        assert!(!toml::to_string(&sac).unwrap().contains("normalization"));
        let on_cartpole = SAC.replace("Pendulum-v1", "CartPole-v1");
        let err = error(&on_cartpole, &[]);
        assert_eq!(err.key, "algorithm");
        assert!(err.reason.contains("bounded box"), "{err}");
        for (overrides, key) in [
            (&["sac.noise_correlation=1.0"][..], "sac.noise_correlation"),
            (&["sac.tau=1.5"], "sac.tau"),
            (
                &["sac.batch_size=10", "sac.buffer_size=5"],
                "sac.batch_size",
            ),
            (
                &[
                    "sac.batch_size=9223372036854775807",
                    "sac.buffer_size=9223372036854775807",
                ],
                "sac.buffer_size",
            ),
            (&["ppo.num_envs=2"], "ppo"),
        ] {
            assert_eq!(error(SAC, overrides).key, key, "{overrides:?}");
        }
        let normalised = TrainConfig::from_toml(
            PPO,
            &[
                "normalization.observations=true".into(),
                "normalization.clip_observations=5".into(),
            ],
        )
        .unwrap();
        assert!(normalised.normalization.observations);
        let written = toml::to_string(&normalised).unwrap();
        assert_eq!(TrainConfig::from_toml(&written, &[]).unwrap(), normalised);
        let on_device = error(
            PPO,
            &["normalization.rewards=true", "ppo.env_backend=\"device\""],
        );
        assert_eq!(on_device.key, "normalization");
        assert_eq!(
            error(PPO, &["normalization.epsilon=0"]).key,
            "normalization.epsilon"
        );
    }

    #[test]
    fn defaults_are_resolved_per_algorithm() {
        let config = TrainConfig::from_toml(PPO, &[]).unwrap();
        assert_eq!(config.seed, 1);
        assert_eq!(config.num_envs(), 4);
        assert_eq!(config.network.hidden, vec![64, 64]);
        assert_eq!(config.network.activation, Activation::Tanh);
        let dqn = TrainConfig::from_toml(
            "env = \"CartPole-v1\"\nalgorithm = \"dqn\"\ntotal_timesteps = 1000",
            &[],
        )
        .unwrap();
        assert_eq!(dqn.network.hidden, vec![120, 84]);
        let AlgorithmConfig::Dqn(section) = &dqn.algorithm else {
            panic!("{dqn:?}")
        };
        assert_eq!(section.loss, TdLoss::Mse);
        // Past what config.toml holds: refused by key, not a panic when the run writes it.
        let mut json = serde_json::to_value(&dqn).unwrap();
        json["checkpoint"]["every_steps"] = u64::MAX.into();
        let err = serde_json::from_value::<TrainConfig>(json)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("checkpoint.every_steps") && err.contains("9223372036854775807"),
            "{err}"
        );
        // A seed whose envs' seeds would pass u64 (JSON holds one, TOML cannot).
        let mut json = serde_json::to_value(&dqn).unwrap();
        json["seed"] = u64::MAX.into();
        json["dqn"]["num_envs"] = 2.into();
        let err = serde_json::from_value::<TrainConfig>(json)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`seed`") && err.contains("largest seed"),
            "{err}"
        );
        // The file form round-trips, defaults written out.
        let json = serde_json::to_value(&dqn).unwrap();
        assert_eq!(json["dqn"]["loss"], "mse");
        assert_eq!(serde_json::from_value::<TrainConfig>(json).unwrap(), dqn);
    }

    #[test]
    fn an_override_past_the_largest_integer_is_named() {
        let err = TrainConfig::from_toml(PPO, &["seed=18446744073709551615".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`seed`") && err.contains("9223372036854775807"),
            "{err}"
        );
        let config = TrainConfig::from_toml(PPO, &["seed=9223372036854775807".into()]).unwrap();
        assert_eq!(config.seed, i64::MAX as u64);
    }

    #[test]
    fn overrides_parse_values_and_create_sections() {
        let overrides = [
            "ppo.learning_rate=3e-4".to_string(),
            "network.hidden=[32]".to_string(),
            "network.activation=relu".to_string(),
            "env=CartPole-v0".to_string(),
            "evaluation.stop_at_return=190".to_string(),
        ];
        let config = TrainConfig::from_toml(PPO, &overrides).unwrap();
        let AlgorithmConfig::Ppo(ppo) = &config.algorithm else {
            panic!("{config:?}")
        };
        assert_eq!(ppo.learning_rate, 3e-4);
        assert_eq!(config.network.hidden, vec![32]);
        assert_eq!(config.network.activation, Activation::Relu);
        assert_eq!(config.env, "CartPole-v0");
        assert_eq!(config.evaluation.stop_at_return, Some(190.0));
    }

    /// Every kind of bad value, each refused naming its key: long as the list of keys is.
    #[test]
    fn bad_values_and_unknown_keys_name_the_key() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&["ppo.learning_rate=-1"], "ppo.learning_rate", "positive"),
            (&["ppo.num_envs=0"], "ppo.num_envs", "1..=65536"),
            // Sizes the machine cannot hold, and products that would wrap, are refused
            // by key before anything is allocated.
            (&["ppo.num_envs=1000000000"], "ppo.num_envs", "1..=65536"),
            (
                &["ppo.num_envs=65536", "ppo.num_steps=4294967296"],
                "ppo.num_steps",
                "1..=16777216",
            ),
            (
                &["ppo.num_envs=65536", "ppo.num_steps=65536"],
                "ppo.num_steps",
                "transitions a rollout may hold",
            ),
            (
                &["evaluation.episodes=1000000000000"],
                "evaluation.episodes",
                "1..=65536",
            ),
            (
                &["network.hidden=[1000000000]", "network.activation=tanh"],
                "network.hidden",
                "at most",
            ),
            (
                &["network.hidden=[]", "network.activation=tanh"],
                "network.hidden",
                "at least one",
            ),
            (&["ppo.gamma=1.5"], "ppo.gamma", "[0, 1]"),
            (&["ppo.num_minibatches=3"], "ppo.num_minibatches", "divide"),
            (&["env=CartPole-v9"], "env", "unknown environment id"),
            (&["ppo.lr=1"], "ppo.lr", "unknown field `lr`"),
            (
                &["ppo.learning_rate=\"fast\""],
                "ppo.learning_rate",
                "invalid type",
            ),
            (&["dqn.buffer_size=10"], "dqn", "algorithm"),
            (
                &["ppo.learning_rate.x=1"],
                "ppo.learning_rate",
                "not a section",
            ),
            (&["ppo.learning_rate"], "ppo.learning_rate", "key=value"),
            (
                &["network.activation=gelu"],
                "network.activation",
                "unknown variant",
            ),
            (
                &["ppo.env_backend=gpu"],
                "ppo.env_backend",
                "unknown variant",
            ),
            (
                &["env=Acrobot-v1", "ppo.env_backend=device"],
                "ppo.env_backend",
                "no device version",
            ),
        ];
        for (overrides, key, reason) in cases {
            let err = error(PPO, overrides);
            assert_eq!(err.key, *key, "{overrides:?}: {err}");
            assert!(err.reason.contains(reason), "{overrides:?}: {err}");
        }
        let err = error(
            "env = \"Pendulum-v1\"\nalgorithm = \"dqn\"\ntotal_timesteps = 10",
            &[],
        );
        assert_eq!(err.key, "algorithm");
        assert!(err.to_string().contains("discrete"), "{err}");
        let err = error(
            "env = \"CartPole-v1\"\nalgorithm = \"dqn\"\ntotal_timesteps = 10",
            &["dqn.buffer_size=100", "dqn.batch_size=128"],
        );
        assert_eq!(err.key, "dqn.batch_size");
        assert!(err.reason.contains("replay buffer"), "{err}");
        let err = error("env = \"CartPole-v1\"\nalgorithm = ", &[]);
        assert_eq!(err.key, "");
        assert!(
            !err.reason.contains('\n') && err.reason.contains("line"),
            "{err}"
        );
    }

    #[test]
    fn shipped_configs_are_valid() {
        let folder = gradless_test_support::workspace_root().join("configs");
        let mut count = 0;
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                TrainConfig::from_toml(&text, &[])
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                count += 1;
            }
        }
        assert!(count >= 5, "{count} configs");
    }

    #[test]
    fn differences_are_found_by_key() {
        let a = TrainConfig::from_toml(PPO, &[]).unwrap();
        assert_eq!(a.first_difference(&a.clone()), None);
        let b = TrainConfig::from_toml(PPO, &["ppo.clip_coef=0.1".into()]).unwrap();
        let (key, left, right) = a.first_difference(&b).unwrap();
        assert_eq!(
            (key.as_str(), left.as_str(), right.as_str()),
            ("ppo.clip_coef", "0.2", "0.1")
        );
    }
}
