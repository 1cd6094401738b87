//! Seeded device episodes: every episode's start computed on the host from its own seed with
//! the CPU env's reset (Gymnasium's seeding), so device episodes start where the CPU envs'
//! episodes of the same seeds start and can be compared episode by episode.

use burn::prelude::{Int, Tensor, TensorData};

use super::DeviceVectorEnv;
use gradless_envs::EnvError;
use gradless_envs::make;

/// The starts of episodes reset from `seeds`, one after another: the CPU env's float64
/// state after `reset(seed)`, rounded to float32.
pub fn seeded_starts(
    env_id: &str,
    seeds: impl IntoIterator<Item = u64>,
) -> Result<Vec<f32>, EnvError> {
    let mut env = make(env_id)?;
    let mut starts = Vec::new();
    for seed in seeds {
        env.reset(Some(seed));
        let state = env.state().ok_or_else(|| EnvError::InvalidOption {
            env: env_id.into(),
            reason: "the env has no state to start device episodes from".into(),
        })?;
        starts.extend(state.iter().map(|&v| v as f32));
    }
    Ok(starts)
}

/// Each env's next starts, on the device: env `k`'s `j`-th episode from row
/// `k * per_env + j` of the table.
#[derive(Debug, Clone)]
pub(super) struct SeededStarts {
    /// `[num_envs * per_env, state variables]`.
    table: Tensor<2>,
    per_env: usize,
    /// `[num_envs]`: episodes each env has started since the reset.
    started: Tensor<1, Int>,
}

impl SeededStarts {
    /// The starts for a step, `[state variables, num_envs]`: each env's next episode's,
    /// `drawn` for the envs past their seeded episodes.
    pub(super) fn next(&self, drawn: Tensor<2>) -> Tensor<2> {
        let n = self.started.dims()[0];
        let device = self.started.device();
        let next = self.started.clone() + 1;
        let beyond = next.clone().greater_equal_elem(self.per_env as i64);
        let rows = Tensor::<1, Int>::arange(0..n as i64, &device) * self.per_env as i64
            + next.clamp_max(self.per_env as i64 - 1);
        let seeded = self.table.clone().select(0, rows).transpose();
        seeded.mask_where(beyond.unsqueeze_dim::<2>(0).expand(drawn.dims()), drawn)
    }

    /// Counts the envs that started an episode on the last step.
    pub(super) fn restarted(&mut self, reset: Tensor<1, burn::prelude::Bool>) {
        self.started = self.started.clone() + reset.int();
    }
}

impl DeviceVectorEnv {
    /// Resets env `k` from `seeds[k]` and starts its next `episodes_per_env - 1` episodes
    /// from the next seeds (`seeds[k] + 1`, ...), as the CPU envs would; later episodes
    /// draw their starts from the device's generator.
    pub fn reset_seeded(&mut self, seeds: &[u64], episodes_per_env: usize) -> Result<(), EnvError> {
        if seeds.len() != self.num_envs || episodes_per_env == 0 {
            return Err(EnvError::InvalidOption {
                env: self.id.clone(),
                reason: format!(
                    "{} seeds and {episodes_per_env} episodes per env for {} envs",
                    seeds.len(),
                    self.num_envs
                ),
            });
        }
        let state_dim = self.state_dim();
        let per_env = episodes_per_env as u64;
        let all_seeds = seeds
            .iter()
            .flat_map(|&first| (0..per_env).map(move |j| first.wrapping_add(j)));
        let values = seeded_starts(&self.id, all_seeds)?;
        let rows = self.num_envs * episodes_per_env;
        let table =
            Tensor::<2>::from_data(TensorData::new(values, [rows, state_dim]), &self.device);
        let first = table
            .clone()
            .reshape([self.num_envs, episodes_per_env, state_dim])
            .narrow(1, 0, 1)
            .reshape([self.num_envs, state_dim])
            .transpose();
        self.set_table(super::fresh_table(first));
        self.seeded = Some(SeededStarts {
            table,
            per_env: episodes_per_env,
            started: Tensor::zeros([self.num_envs], &self.device),
        });
        Ok(())
    }
}
