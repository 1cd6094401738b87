//! The off-policy algorithms' replay buffer: a ring of transitions sampled uniformly with
//! replacement, holding DQN's discrete actions or SAC's continuous ones. It is part of the
//! training state, so checkpoints save it whole.

use std::path::Path;

use gradless_envs::{EnvRng, VectorStep};
use gradless_policy::CheckpointError;

use crate::binary::{BinaryReader, BinaryWriter};

/// The values an action is stored as, and how a buffer of them is saved.
pub trait StoredAction: Copy + PartialEq + std::fmt::Debug {
    /// The buffer file's magic bytes.
    const MAGIC: &'static [u8; 8];
    /// Writes the actions.
    fn write(writer: &mut BinaryWriter, values: &[Self]);
    /// Reads them back.
    fn read(reader: &mut BinaryReader) -> Result<Vec<Self>, CheckpointError>;
}

/// Discrete actions (DQN): one index per transition.
impl StoredAction for i64 {
    const MAGIC: &'static [u8; 8] = b"GLREPLY1";
    fn write(writer: &mut BinaryWriter, values: &[Self]) {
        writer.i64s(values);
    }
    fn read(reader: &mut BinaryReader) -> Result<Vec<Self>, CheckpointError> {
        reader.i64s()
    }
}

/// Continuous actions (SAC): `action_dim` values per transition.
impl StoredAction for f32 {
    const MAGIC: &'static [u8; 8] = b"GLREPLC1";
    fn write(writer: &mut BinaryWriter, values: &[Self]) {
        writer.f32s(values);
    }
    fn read(reader: &mut BinaryReader) -> Result<Vec<Self>, CheckpointError> {
        reader.f32s()
    }
}

/// Transitions `(observation, action, reward, next observation, terminated)`. The next
/// observation is the true last one when an episode ended, not the reset that followed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayBuffer<A: StoredAction> {
    capacity: usize,
    observation_dim: usize,
    action_dim: usize,
    observations: Vec<f32>,
    next_observations: Vec<f32>,
    actions: Vec<A>,
    rewards: Vec<f32>,
    /// 1 where the episode terminated (no bootstrap), 0 otherwise (also on truncation).
    terminated: Vec<f32>,
    /// Where the next transition goes once the buffer is full.
    position: usize,
}

/// A sampled minibatch, as flat host arrays.
#[derive(Debug)]
pub struct Batch<A> {
    /// `batch * observation_dim` values.
    pub observations: Vec<f32>,
    /// `batch * observation_dim` values.
    pub next_observations: Vec<f32>,
    /// `batch * action_dim` values.
    pub actions: Vec<A>,
    /// One reward per transition.
    pub rewards: Vec<f32>,
    /// 1 where the transition ended its episode in a terminal state.
    pub terminated: Vec<f32>,
}

impl<A: StoredAction> ReplayBuffer<A> {
    /// An empty buffer of transitions whose actions are `action_dim` values.
    pub fn new(capacity: usize, observation_dim: usize, action_dim: usize) -> Self {
        Self {
            capacity,
            observation_dim,
            action_dim,
            observations: Vec::new(),
            next_observations: Vec::new(),
            actions: Vec::new(),
            rewards: Vec::new(),
            terminated: Vec::new(),
            position: 0,
        }
    }

    /// Transitions held.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// Adds a transition, replacing the oldest once full.
    pub fn push(
        &mut self,
        observation: &[f32],
        action: &[A],
        reward: f32,
        next: &[f32],
        terminated: bool,
    ) {
        let (dim, width) = (self.observation_dim, self.action_dim);
        let done = if terminated { 1.0 } else { 0.0 };
        if self.len() < self.capacity {
            self.observations.extend_from_slice(observation);
            self.next_observations.extend_from_slice(next);
            self.actions.extend_from_slice(action);
            self.rewards.push(reward);
            self.terminated.push(done);
        } else {
            let k = self.position;
            self.observations[k * dim..(k + 1) * dim].copy_from_slice(observation);
            self.next_observations[k * dim..(k + 1) * dim].copy_from_slice(next);
            self.actions[k * width..(k + 1) * width].copy_from_slice(action);
            self.rewards[k] = reward;
            self.terminated[k] = done;
            self.position = (k + 1) % self.capacity;
        }
    }

    /// Adds every env's transition of one same-step-autoreset vector step: `observations`
    /// are what the envs were acting on, `actions` what they did (`action_dim` values each);
    /// an env whose episode ended keeps its true last observation, not the reset's.
    pub fn push_step(&mut self, observations: &[f32], actions: &[A], step: &VectorStep<'_>) {
        let (dim, width) = (self.observation_dim, self.action_dim);
        for e in 0..step.rewards.len() {
            let ended = step.terminated[e] || step.truncated[e];
            let next = if ended {
                &step.final_observations[e * dim..(e + 1) * dim]
            } else {
                &step.observations[e * dim..(e + 1) * dim]
            };
            self.push(
                &observations[e * dim..(e + 1) * dim],
                &actions[e * width..(e + 1) * width],
                step.rewards[e] as f32,
                next,
                step.terminated[e],
            );
        }
    }

    /// `size` transitions drawn uniformly with replacement.
    pub fn sample(&self, size: usize, rng: &mut EnvRng) -> Batch<A> {
        let (dim, width) = (self.observation_dim, self.action_dim);
        let mut batch = Batch {
            observations: Vec::with_capacity(size * dim),
            next_observations: Vec::with_capacity(size * dim),
            actions: Vec::with_capacity(size * width),
            rewards: Vec::with_capacity(size),
            terminated: Vec::with_capacity(size),
        };
        for _ in 0..size {
            let k = rng.below(self.len() as u64) as usize;
            batch
                .observations
                .extend_from_slice(&self.observations[k * dim..(k + 1) * dim]);
            batch
                .next_observations
                .extend_from_slice(&self.next_observations[k * dim..(k + 1) * dim]);
            batch
                .actions
                .extend_from_slice(&self.actions[k * width..(k + 1) * width]);
            batch.rewards.push(self.rewards[k]);
            batch.terminated.push(self.terminated[k]);
        }
        batch
    }

    /// Writes the whole buffer to `path`.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut writer = BinaryWriter::new(A::MAGIC);
        writer.u64(self.capacity as u64);
        writer.u64(self.observation_dim as u64);
        writer.u64(self.position as u64);
        writer.f32s(&self.observations);
        writer.f32s(&self.next_observations);
        A::write(&mut writer, &self.actions);
        writer.f32s(&self.rewards);
        writer.f32s(&self.terminated);
        writer.write(path)
    }

    /// Reads a buffer saved for a run with this capacity, observation and action size.
    pub fn load(
        path: &Path,
        capacity: usize,
        observation_dim: usize,
        action_dim: usize,
    ) -> Result<Self, CheckpointError> {
        // The header, then five length-prefixed arrays of at most `capacity` transitions
        // (values of at most eight bytes each).
        let values =
            (capacity as u64).saturating_mul(2 * observation_dim as u64 + action_dim as u64 + 2);
        let limit = values.saturating_mul(8).saturating_add(64);
        let mut reader = BinaryReader::open(path, A::MAGIC, limit)?;
        let (saved_capacity, saved_dim, position) = (
            reader.u64()? as usize,
            reader.u64()? as usize,
            reader.u64()? as usize,
        );
        if (saved_capacity, saved_dim) != (capacity, observation_dim) {
            return Err(reader.invalid(format!(
                "a buffer of {saved_capacity} transitions of {saved_dim} values; the run needs {capacity} of {observation_dim}"
            )));
        }
        let buffer = Self {
            capacity,
            observation_dim,
            action_dim,
            observations: reader.f32s()?,
            next_observations: reader.f32s()?,
            actions: A::read(&mut reader)?,
            rewards: reader.f32s()?,
            terminated: reader.f32s()?,
            position,
        };
        let n = buffer.len();
        if n > capacity
            || position >= capacity.max(1)
            || buffer.observations.len() != n * observation_dim
            || buffer.next_observations.len() != n * observation_dim
            || buffer.actions.len() != n * action_dim
            || buffer.terminated.len() != n
        {
            return Err(reader.invalid("inconsistent replay buffer sizes"));
        }
        reader.finish()?;
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_replaces_the_oldest_and_round_trips() {
        let mut buffer = ReplayBuffer::<i64>::new(3, 2, 1);
        for k in 0..5 {
            let x = k as f32;
            buffer.push(&[x, x], &[k], x, &[x + 1.0, x + 1.0], k == 4);
        }
        assert_eq!(buffer.len(), 3);
        // 3 and 4 replaced 0 and 1.
        let mut actions = buffer.actions.clone();
        actions.sort_unstable();
        assert_eq!(actions, vec![2, 3, 4]);
        let batch = buffer.sample(50, &mut EnvRng::from_seed(1));
        for (i, &a) in batch.actions.iter().enumerate() {
            assert_eq!(batch.observations[2 * i], a as f32);
            assert_eq!(batch.next_observations[2 * i], a as f32 + 1.0);
            assert_eq!(batch.terminated[i], if a == 4 { 1.0 } else { 0.0 });
        }
        let path = std::env::temp_dir().join(format!("gradless-replay-{}", std::process::id()));
        buffer.save(&path).unwrap();
        assert_eq!(ReplayBuffer::load(&path, 3, 2, 1).unwrap(), buffer);
        let err = ReplayBuffer::<i64>::load(&path, 4, 2, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs 4 of 2"), "{err}");
        // A buffer of discrete actions is not one of continuous actions.
        assert!(ReplayBuffer::<f32>::load(&path, 3, 2, 1).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    /// A vector step stores, for an env whose episode ended, its true last observation
    /// (not the reset that follows), and `terminated` only where the episode terminated.
    #[test]
    fn a_vector_step_keeps_final_observations() {
        let mut buffer = ReplayBuffer::<i64>::new(4, 1, 1);
        let step = VectorStep {
            observations: &[10.0, 20.0, 30.0],
            rewards: &[1.0, 2.0, 3.0],
            terminated: &[false, true, false],
            truncated: &[false, false, true],
            final_observations: &[0.0, 21.0, 31.0],
            episodes: &[],
        };
        buffer.push_step(&[1.0, 2.0, 3.0], &[0, 1, 0], &step);
        assert_eq!(buffer.next_observations, vec![10.0, 21.0, 31.0]);
        assert_eq!(buffer.terminated, vec![0.0, 1.0, 0.0]);
        assert_eq!(buffer.rewards, vec![1.0, 2.0, 3.0]);
        assert_eq!(buffer.actions, vec![0, 1, 0]);
    }

    /// Continuous actions keep their `action_dim` values together through the ring, the
    /// sampling and a save; a reader expecting another width refuses the file.
    #[test]
    fn continuous_actions_stay_together() {
        let mut buffer = ReplayBuffer::<f32>::new(4, 1, 2);
        for k in 0..6 {
            let x = k as f32;
            buffer.push(&[x], &[x, -x], 0.5 * x, &[x + 1.0], false);
        }
        let batch = buffer.sample(40, &mut EnvRng::from_seed(2));
        for (i, pair) in batch.actions.chunks(2).enumerate() {
            assert_eq!(pair[1], -pair[0]);
            assert_eq!(batch.observations[i], pair[0]);
            assert_eq!(batch.rewards[i], 0.5 * pair[0]);
            assert!(pair[0] >= 2.0, "0 and 1 were replaced");
        }
        let path = std::env::temp_dir().join(format!("gradless-replay-c-{}", std::process::id()));
        buffer.save(&path).unwrap();
        assert_eq!(ReplayBuffer::load(&path, 4, 1, 2).unwrap(), buffer);
        assert!(ReplayBuffer::<f32>::load(&path, 4, 1, 3).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
