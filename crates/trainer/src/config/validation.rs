//! Checking a resolved config: every value in range, and the combinations that cannot run
//! (a device env backend for an env without a device version, DQN on a continuous env, SAC
//! on a discrete one, ...)
//! refused with the key to fix.

// The config's types and imports: these are its checks, in a file of their own.
use super::*;

impl TrainConfig {
    /// Every key's check, in the order the config file lists the keys: long as a list is, so
    /// that a key's rule is found by its name.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let env =
            gradless_envs::make(&self.env).map_err(|e| ConfigError::new("env", e.to_string()))?;
        positive_int("total_timesteps", self.total_timesteps)?;
        if self.total_timesteps > MAX_TOTAL_TIMESTEPS {
            return Err(ConfigError::new(
                "total_timesteps",
                format!(
                    "must be at most {MAX_TOTAL_TIMESTEPS}, got {}",
                    self.total_timesteps
                ),
            ));
        }
        let network = &self.network;
        gradless_policy::check_hidden_sizes(&network.hidden)
            .map_err(|reason| ConfigError::new("network.hidden", reason))?;
        for (key, seed, count) in [
            ("seed", self.seed, self.num_envs()),
            (
                "evaluation.seed",
                self.evaluation.seed,
                self.evaluation.episodes,
            ),
        ] {
            let largest = EpisodePlan::largest_first_seed(count);
            if seed > largest {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "{seed} + {count} seeds pass the largest seed, {}; use {largest} or less",
                        u64::MAX
                    ),
                ));
            }
        }
        positive_int("checkpoint.every_steps", self.checkpoint.every_steps)?;
        count(
            "checkpoint.keep_last",
            self.checkpoint.keep_last,
            usize::MAX,
        )?;
        if self.evaluation.every_steps > 0 {
            // Evaluated side by side, one env each.
            count(
                "evaluation.episodes",
                self.evaluation.episodes,
                MAX_NUM_ENVS,
            )?;
        }
        if let Some(target) = self.evaluation.stop_at_return {
            finite("evaluation.stop_at_return", target)?;
        }
        let normalization = &self.normalization;
        positive(
            "normalization.clip_observations",
            normalization.clip_observations,
        )?;
        positive("normalization.clip_rewards", normalization.clip_rewards)?;
        positive("normalization.epsilon", normalization.epsilon)?;
        if (normalization.observations || normalization.rewards)
            && matches!(&self.algorithm, AlgorithmConfig::Ppo(ppo) if ppo.env_backend == EnvBackend::Device)
        {
            return Err(ConfigError::new(
                "normalization",
                "works with ppo.env_backend = \"cpu\" only (its statistics are kept on the host)",
            ));
        }
        if let AlgorithmConfig::Ppo(ppo) = &self.algorithm {
            count("ppo.num_envs", ppo.num_envs, MAX_NUM_ENVS)?;
            count("ppo.num_steps", ppo.num_steps, MAX_ROLLOUT_TRANSITIONS)?;
            let transitions = ppo.num_envs.checked_mul(ppo.num_steps);
            if transitions.is_none_or(|t| t > MAX_ROLLOUT_TRANSITIONS) {
                return Err(ConfigError::new(
                    "ppo.num_steps",
                    format!(
                        "ppo.num_envs x ppo.num_steps ({} x {}) is more than the {MAX_ROLLOUT_TRANSITIONS} transitions a rollout may hold",
                        ppo.num_envs, ppo.num_steps
                    ),
                ));
            }
            positive("ppo.learning_rate", ppo.learning_rate)?;
            positive("ppo.adam_epsilon", ppo.adam_epsilon)?;
            unit_interval("ppo.gamma", ppo.gamma)?;
            unit_interval("ppo.gae_lambda", ppo.gae_lambda)?;
            count(
                "ppo.num_minibatches",
                ppo.num_minibatches,
                MAX_ROLLOUT_TRANSITIONS,
            )?;
            if !ppo.batch_size().is_multiple_of(ppo.num_minibatches) {
                return Err(ConfigError::new(
                    "ppo.num_minibatches",
                    format!(
                        "must divide the rollout of {} transitions (num_envs x num_steps)",
                        ppo.batch_size()
                    ),
                ));
            }
            count("ppo.update_epochs", ppo.update_epochs, MAX_REPEATS)?;
            positive("ppo.clip_coef", ppo.clip_coef)?;
            non_negative("ppo.entropy_coef", ppo.entropy_coef)?;
            non_negative("ppo.value_coef", ppo.value_coef)?;
            positive("ppo.max_grad_norm", ppo.max_grad_norm)?;
            if ppo.env_backend == EnvBackend::Device {
                device_dynamics(&self.env)
                    .map_err(|e| ConfigError::new("ppo.env_backend", e.to_string()))?;
            }
            if (self.total_timesteps as usize) < ppo.batch_size() {
                return Err(ConfigError::new(
                    "total_timesteps",
                    format!(
                        "is less than one rollout ({} transitions)",
                        ppo.batch_size()
                    ),
                ));
            }
        }
        if let AlgorithmConfig::Dqn(dqn) = &self.algorithm {
            if !matches!(env.action_space(), Space::Discrete { .. }) {
                return Err(ConfigError::new(
                    "algorithm",
                    format!(
                        "DQN needs discrete actions; {} has {}",
                        self.env,
                        env.action_space().describe()
                    ),
                ));
            }
            count("dqn.num_envs", dqn.num_envs, MAX_NUM_ENVS)?;
            positive("dqn.learning_rate", dqn.learning_rate)?;
            positive("dqn.adam_epsilon", dqn.adam_epsilon)?;
            count("dqn.buffer_size", dqn.buffer_size, MAX_BUFFER_SIZE)?;
            unit_interval("dqn.gamma", dqn.gamma)?;
            positive_int("dqn.target_network_frequency", dqn.target_network_frequency)?;
            count("dqn.batch_size", dqn.batch_size, MAX_BUFFER_SIZE)?;
            if dqn.batch_size > dqn.buffer_size {
                return Err(ConfigError::new(
                    "dqn.batch_size",
                    format!(
                        "{} is larger than the replay buffer (dqn.buffer_size = {})",
                        dqn.batch_size, dqn.buffer_size
                    ),
                ));
            }
            unit_interval("dqn.start_epsilon", dqn.start_epsilon)?;
            unit_interval("dqn.end_epsilon", dqn.end_epsilon)?;
            unit_interval("dqn.exploration_fraction", dqn.exploration_fraction)?;
            positive_int("dqn.train_frequency", dqn.train_frequency)?;
            count("dqn.gradient_steps", dqn.gradient_steps, MAX_REPEATS)?;
            if let Some(norm) = dqn.max_grad_norm {
                positive("dqn.max_grad_norm", norm)?;
            }
        }
        if let AlgorithmConfig::Sac(sac) = &self.algorithm {
            if gradless_policy::ActionBounds::of(env.action_space()).is_none() {
                return Err(ConfigError::new(
                    "algorithm",
                    format!(
                        "SAC needs continuous actions in a bounded box; {} has {}",
                        self.env,
                        env.action_space().describe()
                    ),
                ));
            }
            count("sac.num_envs", sac.num_envs, MAX_NUM_ENVS)?;
            count("sac.buffer_size", sac.buffer_size, MAX_BUFFER_SIZE)?;
            unit_interval("sac.gamma", sac.gamma)?;
            unit_interval("sac.tau", sac.tau)?;
            count("sac.batch_size", sac.batch_size, MAX_BUFFER_SIZE)?;
            if sac.batch_size > sac.buffer_size {
                return Err(ConfigError::new(
                    "sac.batch_size",
                    format!(
                        "{} is larger than the replay buffer (sac.buffer_size = {})",
                        sac.batch_size, sac.buffer_size
                    ),
                ));
            }
            positive("sac.policy_lr", sac.policy_lr)?;
            positive("sac.q_lr", sac.q_lr)?;
            positive("sac.adam_epsilon", sac.adam_epsilon)?;
            positive_int("sac.policy_frequency", sac.policy_frequency)?;
            positive_int("sac.target_network_frequency", sac.target_network_frequency)?;
            positive_int("sac.train_frequency", sac.train_frequency)?;
            count("sac.gradient_steps", sac.gradient_steps, MAX_REPEATS)?;
            positive("sac.alpha", sac.alpha)?;
            unit_interval("sac.noise_correlation", sac.noise_correlation)?;
            if sac.noise_correlation == 1.0 {
                return Err(ConfigError::new(
                    "sac.noise_correlation",
                    "must be less than 1 (noise that never changes explores nothing)",
                ));
            }
        }
        // The run writes its config.toml, and TOML's integers stop at i64::MAX (a config
        // from a checkpoint's JSON metadata could hold more).
        let json = serde_json::to_value(self).expect("config serialises");
        if let Some(key) = first_integer_past_toml(&json, "") {
            return Err(ConfigError::new(
                &key,
                format!(
                    "is beyond the largest whole number a config holds, {}",
                    i64::MAX
                ),
            ));
        }
        Ok(())
    }
}

/// The first key (dotted) whose value is an integer TOML cannot hold.
fn first_integer_past_toml(value: &serde_json::Value, path: &str) -> Option<String> {
    match value {
        serde_json::Value::Number(n) if n.is_u64() && n.as_i64().is_none() => {
            Some(path.to_string())
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(key, child)| {
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            first_integer_past_toml(child, &child_path)
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(k, item)| first_integer_past_toml(item, &format!("{path}[{k}]"))),
        _ => None,
    }
}

/// The most steps a run takes: step counters and their sums stay far from wrapping.
const MAX_TOTAL_TIMESTEPS: u64 = 1 << 50;
/// The most envs a run steps side by side.
const MAX_NUM_ENVS: usize = 1 << 16;
/// The most transitions one PPO rollout holds (each a few dozen bytes on the device).
const MAX_ROLLOUT_TRANSITIONS: usize = 1 << 24;
/// The most transitions a replay buffer holds (under a GiB for the largest observations).
const MAX_BUFFER_SIZE: usize = 10_000_000;
/// The most epochs or gradient steps a round repeats.
const MAX_REPEATS: usize = 1 << 16;

/// A size: at least 1 and at most `max`, named by its key otherwise.
fn count(key: &str, value: usize, max: usize) -> Result<(), ConfigError> {
    if value == 0 || value > max {
        return Err(ConfigError::new(
            key,
            format!("must lie in 1..={max}, got {value}"),
        ));
    }
    Ok(())
}

fn positive_int(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(key, "must be at least 1, got 0"));
    }
    Ok(())
}

fn finite(key: &str, value: f64) -> Result<(), ConfigError> {
    if !value.is_finite() {
        return Err(ConfigError::new(
            key,
            format!("must be a finite number, got {value}"),
        ));
    }
    Ok(())
}

fn positive(key: &str, value: f64) -> Result<(), ConfigError> {
    finite(key, value)?;
    if value <= 0.0 {
        return Err(ConfigError::new(
            key,
            format!("must be positive, got {value}"),
        ));
    }
    Ok(())
}

fn non_negative(key: &str, value: f64) -> Result<(), ConfigError> {
    finite(key, value)?;
    if value < 0.0 {
        return Err(ConfigError::new(
            key,
            format!("must not be negative, got {value}"),
        ));
    }
    Ok(())
}

fn unit_interval(key: &str, value: f64) -> Result<(), ConfigError> {
    finite(key, value)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(ConfigError::new(
            key,
            format!("must lie in [0, 1], got {value}"),
        ));
    }
    Ok(())
}
