//! What device envs record of finished episodes: running totals per env, and per-episode
//! records (return, length, both flags) of each env's first episodes, all kept on the device
//! until read back.

use burn::prelude::{Bool, Int, Tensor};
use burn::tensor::Transaction;

use super::{DeviceVectorEnv, read_columns, read_i64};
use gradless_envs::EnvError;

/// Episodes finished since the last read, per env.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedEpisodes {
    /// Episodes each env finished.
    pub count: Vec<u32>,
    /// The sum of those episodes' returns, per env.
    pub return_sum: Vec<f64>,
    /// The sum of their lengths, per env.
    pub length_sum: Vec<f64>,
}

impl FinishedEpisodes {
    /// Episodes finished in all envs together.
    pub fn total(&self) -> u64 {
        self.count.iter().map(|&c| u64::from(c)).sum()
    }

    /// The mean return of all of them, `None` if there were none.
    pub fn mean_return(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.return_sum.iter().sum::<f64>() / total as f64)
    }
}

/// Per-episode records of the first `capacity` episodes of each env, kept on the device.
#[derive(Debug, Clone)]
pub(super) struct EpisodeRecords {
    capacity: usize,
    /// `[num_envs, capacity]` column indices, to pick each env's next free slot.
    columns: Tensor<2, Int>,
    returns: Tensor<2>,
    lengths: Tensor<2>,
    terminated: Tensor<2>,
    truncated: Tensor<2>,
    /// Episodes recorded per env so far.
    recorded: Tensor<1, Int>,
    /// Steps recorded.
    steps: u64,
}

/// One episode read back from the device records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordedEpisode {
    /// The env slot that ran it.
    pub env_index: usize,
    /// Its position among that slot's episodes.
    pub nth: usize,
    /// The sum of its rewards.
    pub episode_return: f64,
    /// Its number of steps.
    pub length: u32,
    /// Whether it ended in a terminal state.
    pub terminated: bool,
    /// Whether the time limit cut it (possibly on the same step as a termination).
    pub truncated: bool,
    /// The step it ended on, counted from 1 since recording started. Device envs do not
    /// keep it: theirs is the number of steps taken when the records were read, the
    /// latest the episode can have ended.
    pub step: u64,
}

impl DeviceVectorEnv {
    /// Keeps each env's first `capacity` episodes (return, length, both flags) on the
    /// device, for [`read_records`](Self::read_records). Records start empty.
    pub fn record_episodes(&mut self, capacity: usize) {
        let n = self.num_envs;
        let columns = Tensor::<1, Int>::arange(0..capacity as i64, &self.device)
            .unsqueeze_dim::<2>(0)
            .expand([n, capacity]);
        let empty = || Tensor::<2>::zeros([n, capacity], &self.device);
        self.records = Some(EpisodeRecords {
            capacity,
            columns,
            returns: empty(),
            lengths: empty(),
            terminated: empty(),
            truncated: empty(),
            recorded: Tensor::zeros([n], &self.device),
            steps: 0,
        });
    }

    /// Episodes recorded per env so far (all zero if nothing is recorded).
    pub fn recorded_counts(&self) -> Result<Vec<usize>, EnvError> {
        let Some(records) = &self.records else {
            return Ok(vec![0; self.num_envs]);
        };
        Ok(read_i64(records.recorded.clone())?
            .into_iter()
            .map(|c| c as usize)
            .collect())
    }

    /// The recorded episodes, env by env, each env's in the order they finished.
    pub fn read_records(&self) -> Result<Vec<RecordedEpisode>, EnvError> {
        let Some(records) = &self.records else {
            return Ok(Vec::new());
        };
        let counts = self.recorded_counts()?;
        let data = Transaction::default()
            .register(records.returns.clone())
            .register(records.lengths.clone())
            .register(records.terminated.clone())
            .register(records.truncated.clone())
            .try_execute()
            .map_err(|e| EnvError::Device(e.to_string()))?;
        let [returns, lengths, terminated, truncated] = read_columns(data)?;
        let mut episodes = Vec::new();
        for (env_index, &count) in counts.iter().enumerate() {
            for nth in 0..count.min(records.capacity) {
                let at = env_index * records.capacity + nth;
                episodes.push(RecordedEpisode {
                    env_index,
                    nth,
                    episode_return: returns[at],
                    length: lengths[at] as u32,
                    terminated: terminated[at] > 0.5,
                    truncated: truncated[at] > 0.5,
                    step: records.steps,
                });
            }
        }
        Ok(episodes)
    }
}

impl EpisodeRecords {
    /// Writes each finished episode into its env's next free column.
    pub(super) fn record(
        &mut self,
        done: &Tensor<1, Bool>,
        terminated: &Tensor<1, Bool>,
        truncated: &Tensor<1, Bool>,
        episode_return: &Tensor<1>,
        elapsed: &Tensor<1>,
    ) {
        let [n, capacity] = self.columns.dims();
        let wide = |column: Tensor<1>| column.unsqueeze_dim::<2>(1).expand([n, capacity]);
        let slot = self
            .columns
            .clone()
            .equal(
                self.recorded
                    .clone()
                    .unsqueeze_dim::<2>(1)
                    .expand([n, capacity]),
            )
            .bool_and(done.clone().unsqueeze_dim::<2>(1).expand([n, capacity]));
        self.returns = self
            .returns
            .clone()
            .mask_where(slot.clone(), wide(episode_return.clone()));
        self.lengths = self
            .lengths
            .clone()
            .mask_where(slot.clone(), wide(elapsed.clone()));
        self.terminated = self
            .terminated
            .clone()
            .mask_where(slot.clone(), wide(terminated.clone().float()));
        self.truncated = self
            .truncated
            .clone()
            .mask_where(slot, wide(truncated.clone().float()));
        self.recorded = self.recorded.clone() + done.clone().int();
        self.steps += 1;
    }
}
