//! One step of device envs: the table's layout, the signals a step returns, and the step as
//! tensor operations (the fused kernel in `fused.rs` does the same arithmetic in one launch).

use burn::prelude::{Bool, Tensor};

use super::{Columns, DeviceActions, DeviceVectorEnv, rows};
use gradless_envs::EnvError;

/// The per-env table's rows after the state variables: the bookkeeping every step updates.
/// Packed in one tensor so a fused step reads and writes one buffer.
pub mod bookkeeping {
    /// Steps taken in the current episode.
    pub const ELAPSED: usize = 0;
    /// Rewards summed in the current episode.
    pub const EPISODE_RETURN: usize = 1;
    /// 1 where the episode ended on the last step, so this step restarts it.
    pub const NEEDS_RESET: usize = 2;
    /// Episodes finished since the counters were last read.
    pub const FINISHED_COUNT: usize = 3;
    /// The sum of their returns.
    pub const FINISHED_RETURN: usize = 4;
    /// The sum of their lengths.
    pub const FINISHED_LENGTH: usize = 5;
    /// Bookkeeping rows after the state.
    pub const COUNT: usize = 6;
}

/// The rows of a fused step's `[4, n]` signals.
pub mod signal {
    /// The reward (0 on a restart step).
    pub const REWARD: usize = 0;
    /// 1 where the episode reached a terminal state.
    pub const TERMINATED: usize = 1;
    /// 1 where the time limit cut it.
    pub const TRUNCATED: usize = 2;
    /// 1 where the env restarted instead of acting.
    pub const RESET: usize = 3;
    /// Signals per env.
    pub const COUNT: usize = 4;
}

/// The device-side tensors of one step, nothing read back.
#[derive(Debug, Clone)]
pub struct DeviceStep {
    /// `[num_envs, observation_dim]`.
    pub observations: Tensor<2>,
    /// `[4, num_envs]`, a row per [`signal`]: the reward (0 on a restart step), then 1 or 0
    /// for terminated, truncated (the time limit cut the episode) and reset (the env started
    /// a new episode on this step instead of acting; its previous one ended the step before).
    /// One tensor, so a step that nobody asks about costs no operations.
    pub signals: Tensor<2>,
}

impl DeviceStep {
    /// `[num_envs]` rewards.
    pub fn rewards(&self) -> Tensor<1> {
        self.row(signal::REWARD)
    }

    /// `[num_envs]`: the episode reached a terminal state.
    pub fn terminated(&self) -> Tensor<1, Bool> {
        self.row(signal::TERMINATED).greater_elem(0.5)
    }

    /// `[num_envs]`: the time limit cut the episode.
    pub fn truncated(&self) -> Tensor<1, Bool> {
        self.row(signal::TRUNCATED).greater_elem(0.5)
    }

    /// `[num_envs]`: the env restarted instead of acting.
    pub fn reset(&self) -> Tensor<1, Bool> {
        self.row(signal::RESET).greater_elem(0.5)
    }

    /// `[num_envs]`: the episode ended, either way.
    pub fn done(&self) -> Tensor<1, Bool> {
        self.signals
            .clone()
            .narrow(0, signal::TERMINATED, 2)
            .sum_dim(0)
            .squeeze_dim::<1>(0)
            .greater_elem(0.5)
    }

    fn row(&self, k: usize) -> Tensor<1> {
        self.signals.clone().narrow(0, k, 1).squeeze_dim(0)
    }
}

impl DeviceVectorEnv {
    /// The step as the dynamics' tensor operations, then autoreset and statistics as more of
    /// them; the same arithmetic as a fused step.
    pub(super) fn step_with_tensor_ops(
        &mut self,
        actions: &DeviceActions,
        starts: Tensor<2>,
        time_limit: f32,
    ) -> Result<DeviceStep, EnvError> {
        let mut state = rows(self.table.clone());
        let book = state.split_off(self.state_dim());
        let stepped = self.dynamics.step(&state, actions)?;
        let reset = book[bookkeeping::NEEDS_RESET].clone().greater_elem(0.5);
        let state: Columns = stepped
            .state
            .into_iter()
            .zip(rows(starts))
            .map(|(next, start)| next.mask_where(reset.clone(), start))
            .collect();
        let rewards = stepped.reward.mask_fill(reset.clone(), 0.0);
        let terminated = stepped.terminated.bool_and(reset.clone().bool_not());
        let elapsed = (book[bookkeeping::ELAPSED].clone() + 1.0).mask_fill(reset.clone(), 0.0);
        let episode_return = (book[bookkeeping::EPISODE_RETURN].clone() + rewards.clone())
            .mask_fill(reset.clone(), 0.0);
        // Gymnasium's TimeLimit: a step at the limit truncates, terminating or not.
        let truncated = elapsed.clone().greater_equal_elem(time_limit);
        let done = terminated.clone().bool_or(truncated.clone());
        let done_values = done.clone().float();
        let observations = self.dynamics.observe(&state);
        let mut next = state;
        next.extend([
            elapsed.clone(),
            episode_return.clone(),
            done_values.clone(),
            book[bookkeeping::FINISHED_COUNT].clone() + done_values.clone(),
            book[bookkeeping::FINISHED_RETURN].clone() + done_values.clone() * episode_return,
            book[bookkeeping::FINISHED_LENGTH].clone() + done_values * elapsed,
        ]);
        self.table = Tensor::stack(next, 0);
        let signals = Tensor::stack(
            vec![
                rewards,
                terminated.float(),
                truncated.float(),
                reset.float(),
            ],
            0,
        );
        Ok(DeviceStep {
            observations,
            signals,
        })
    }
}
