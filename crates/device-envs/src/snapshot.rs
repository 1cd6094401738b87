//! Device envs' state read back for checkpoints and put back on resume, and the finished
//! episodes' counters.

use burn::prelude::{Tensor, TensorData};

use super::{DeviceVectorEnv, FinishedEpisodes, bookkeeping, read_f32};
use gradless_envs::EnvError;

/// Where every env stands, for checkpoints: state columns, steps into the episode, running
/// return, and which envs restart at the next step. The device's generator is not part of
/// it (burn does not expose its state), so a restored run draws other starts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeviceSnapshot {
    /// One `num_envs` column per state variable.
    pub state: Vec<Vec<f32>>,
    /// Steps taken in each current episode.
    pub elapsed: Vec<f32>,
    /// Rewards summed so far in each current episode.
    pub episode_return: Vec<f32>,
    /// Envs that restart at the next step.
    pub needs_reset: Vec<bool>,
}

impl DeviceVectorEnv {
    /// Reads every env's state back (see [`DeviceSnapshot`]), in one transfer.
    pub fn snapshot(&self) -> Result<DeviceSnapshot, EnvError> {
        let n = self.num_envs;
        let values = read_f32(self.table.clone())?;
        let column = |k: usize| values[k * n..(k + 1) * n].to_vec();
        let book = self.state_dim();
        Ok(DeviceSnapshot {
            state: (0..book).map(column).collect(),
            elapsed: column(book + bookkeeping::ELAPSED),
            episode_return: column(book + bookkeeping::EPISODE_RETURN),
            needs_reset: column(book + bookkeeping::NEEDS_RESET)
                .iter()
                .map(|&v| v > 0.5)
                .collect(),
        })
    }

    /// Puts every env back where a snapshot of envs like these left it; the finished-episode
    /// counters start afresh.
    pub fn restore(&mut self, snapshot: &DeviceSnapshot) -> Result<(), EnvError> {
        let n = self.num_envs;
        let state_dim = self.state_dim();
        let fits = snapshot.state.len() == state_dim
            && snapshot.state.iter().all(|c| c.len() == n)
            && [
                snapshot.elapsed.len(),
                snapshot.episode_return.len(),
                snapshot.needs_reset.len(),
            ]
            .iter()
            .all(|&len| len == n);
        if !fits {
            return Err(EnvError::InvalidState {
                env: "device envs".into(),
                reason: format!("the snapshot is not of {n} envs with {state_dim} state variables"),
            });
        }
        let needs_reset: Vec<f32> = snapshot
            .needs_reset
            .iter()
            .map(|&b| f32::from(u8::from(b)))
            .collect();
        let mut columns: Vec<&[f32]> = snapshot.state.iter().map(Vec::as_slice).collect();
        columns.extend([
            snapshot.elapsed.as_slice(),
            snapshot.episode_return.as_slice(),
            needs_reset.as_slice(),
        ]);
        let zeros = vec![0.0; n];
        columns.extend([zeros.as_slice(); 3]);
        let height = columns.len();
        let values: Vec<f32> = columns.concat();
        self.set_table(Tensor::from_data(
            TensorData::new(values, [height, n]),
            &self.device,
        ));
        Ok(())
    }

    /// Reads back (in one transfer) the episodes finished since the last read and starts
    /// counting afresh.
    pub fn take_finished(&mut self) -> Result<FinishedEpisodes, EnvError> {
        let first = self.state_dim() + bookkeeping::FINISHED_COUNT;
        let counters = read_f32(self.table.clone().narrow(0, first, 3))?;
        let n = self.num_envs;
        self.table = self.table.clone().slice_fill([first..first + 3, 0..n], 0.0);
        let column = |k: usize| counters[k * n..(k + 1) * n].iter().map(|&v| f64::from(v));
        Ok(FinishedEpisodes {
            count: column(0).map(|c| c as u32).collect(),
            return_sum: column(1).collect(),
            length_sum: column(2).collect(),
        })
    }
}
