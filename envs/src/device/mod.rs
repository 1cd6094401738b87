//! Batched environments as burn tensor programs: the state of `num_envs` envs lives on a
//! burn device (wgpu, flex) as `[num_envs]` columns, and stepping, next-step autoreset and
//! per-env episode statistics all run there, so a rollout reads nothing back but the
//! finished episodes' statistics, when it asks for them.
//!
//! Same constants and rules as the CPU envs, in `f32` rather than Gymnasium's `f64`:
//! observations agree with the `f64` reference to within 1e-5 over the first 50 steps
//! (tested per env below), then drift apart as rounding differences grow; an episode that
//! passes within rounding of a termination threshold may end a step earlier or later. Initial states come
//! from the device's random generator (`Device::seed`), not from Gymnasium's PCG64, so a seed
//! does not give the CPU env's starts.

mod cartpole;
mod mountain_car;
mod pendulum;

use burn::prelude::{Bool, Device, Int, Tensor, TensorData};
use burn::tensor::{Distribution, Transaction};

pub use cartpole::CartPoleTensors;
pub use mountain_car::MountainCarTensors;
pub use pendulum::PendulumTensors;

use crate::error::EnvError;
use crate::registry::spec;
use crate::space::Space;

/// Where a batch of envs steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvBackend {
    /// On the CPU in `f64`, Gymnasium-exact; observations go to the policy's device and
    /// actions come back every step.
    #[default]
    Cpu,
    /// On the policy's device as tensor programs in `f32`.
    Device,
}

impl EnvBackend {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EnvBackend::Cpu => "cpu",
            EnvBackend::Device => "device",
        }
    }
}

impl std::fmt::Display for EnvBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for EnvBackend {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        [EnvBackend::Cpu, EnvBackend::Device]
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| format!("unknown env backend `{name}` (expected `cpu` or `device`)"))
    }
}

/// Env state: one `[num_envs]` column per state variable.
pub type Columns = Vec<Tensor<1>>;

/// A batch of actions on the device.
#[derive(Debug, Clone)]
pub enum DeviceActions {
    /// One action index per env, `[num_envs]`.
    Discrete(Tensor<1, Int>),
    /// `[num_envs, action_dim]` values.
    Continuous(Tensor<2>),
}

/// The result of stepping every env once.
#[derive(Debug, Clone)]
pub struct StepColumns {
    /// The new state.
    pub state: Columns,
    /// One reward per env.
    pub reward: Tensor<1>,
    /// Whether each env reached a terminal state.
    pub terminated: Tensor<1, Bool>,
}

/// An environment's physics over a batch, in tensor operations.
pub trait TensorDynamics: Send + Sync + std::fmt::Debug {
    /// Values per observation.
    fn observation_dim(&self) -> usize;
    /// The action space of one env.
    fn action_space(&self) -> Space;
    /// `n` initial states drawn from the device's generator.
    fn initial_state(&self, n: usize, device: &Device) -> Columns;
    /// Steps every env with its action. Action values are not checked on the device (that
    /// would read them back): they come from a policy sized for the action space.
    fn step(&self, state: &Columns, actions: &DeviceActions) -> Result<StepColumns, EnvError>;
    /// Observations, `[n, observation_dim]`.
    fn observe(&self, state: &Columns) -> Tensor<2>;
}

/// Continuous actions for a discrete env or the other way round.
pub(crate) fn wrong_action_kind(env: &str) -> EnvError {
    EnvError::InvalidAction {
        env: env.into(),
        action: "a device batch".into(),
        reason: "of the other kind (discrete vs continuous)".into(),
    }
}

/// `n` values drawn uniformly from `[low, high)` on the device.
pub(crate) fn uniform(n: usize, low: f64, high: f64, device: &Device) -> Tensor<1> {
    Tensor::random([n], Distribution::Uniform(low, high), device)
}

/// Observations from state columns, `[n, columns]`.
pub(crate) fn stack(columns: Vec<Tensor<1>>) -> Tensor<2> {
    Tensor::stack(columns, 1)
}

/// The device-side tensors of one step, nothing read back.
#[derive(Debug, Clone)]
pub struct DeviceStep {
    /// `[num_envs, observation_dim]`.
    pub observations: Tensor<2>,
    /// `[num_envs]`; 0 on a step that reset the env.
    pub rewards: Tensor<1>,
    /// `[num_envs]`.
    pub terminated: Tensor<1, Bool>,
    /// `[num_envs]`: the time limit cut the episode.
    pub truncated: Tensor<1, Bool>,
    /// `[num_envs]`: the env started a new episode on this step instead of acting (its
    /// previous one ended on the step before).
    pub reset: Tensor<1, Bool>,
}

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
struct EpisodeRecords {
    capacity: usize,
    /// `[num_envs, capacity]` column indices, to pick each env's next free slot.
    columns: Tensor<2, Int>,
    returns: Tensor<2>,
    lengths: Tensor<2>,
    truncated: Tensor<2>,
    /// Episodes recorded per env so far.
    recorded: Tensor<1, Int>,
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
    /// Whether the time limit cut it.
    pub truncated: bool,
}

/// `num_envs` copies of an env on a burn device, with Gymnasium's next-step autoreset and
/// time limit, and running episode statistics, all as tensor operations.
#[derive(Debug)]
pub struct DeviceVectorEnv {
    dynamics: Box<dyn TensorDynamics>,
    device: Device,
    num_envs: usize,
    max_episode_steps: Option<u32>,
    state: Columns,
    /// Envs whose episode ended on the last step: the next step resets them.
    needs_reset: Tensor<1, Bool>,
    elapsed: Tensor<1>,
    episode_return: Tensor<1>,
    finished_count: Tensor<1>,
    finished_return: Tensor<1>,
    finished_length: Tensor<1>,
    records: Option<EpisodeRecords>,
}

/// The tensor physics of a registered env, with its time limit: an error for an unknown id
/// or an env without a device version. Touches no device.
pub fn device_dynamics(id: &str) -> Result<(Box<dyn TensorDynamics>, Option<u32>), EnvError> {
    let spec = spec(id)?;
    let dynamics: Box<dyn TensorDynamics> = match spec.id {
        "CartPole-v0" | "CartPole-v1" => Box::new(CartPoleTensors),
        "MountainCar-v0" => Box::new(MountainCarTensors),
        "Pendulum-v1" => Box::new(PendulumTensors),
        other => return Err(EnvError::NoDeviceVersion { env: other.into() }),
    };
    Ok((dynamics, spec.max_episode_steps))
}

/// Builds the device version of a registered env: `CartPole-v1`, `MountainCar-v0` or
/// `Pendulum-v1` (and their other versions with the same physics).
pub fn make_device_vector(
    id: &str,
    num_envs: usize,
    device: &Device,
) -> Result<DeviceVectorEnv, EnvError> {
    let (dynamics, max_episode_steps) = device_dynamics(id)?;
    if num_envs == 0 {
        return Err(EnvError::InvalidOption {
            env: id.into(),
            reason: "a vector env needs at least one env".into(),
        });
    }
    Ok(DeviceVectorEnv::new(
        dynamics,
        num_envs,
        max_episode_steps,
        device,
    ))
}

fn zeros(n: usize, device: &Device) -> Tensor<1> {
    Tensor::zeros([n], device)
}

impl DeviceVectorEnv {
    /// `num_envs` envs with `dynamics`, truncated after `max_episode_steps`, freshly reset.
    pub fn new(
        dynamics: Box<dyn TensorDynamics>,
        num_envs: usize,
        max_episode_steps: Option<u32>,
        device: &Device,
    ) -> Self {
        let state = dynamics.initial_state(num_envs, device);
        Self {
            dynamics,
            device: device.clone(),
            num_envs,
            max_episode_steps,
            state,
            needs_reset: zeros(num_envs, device).greater_elem(0.0),
            elapsed: zeros(num_envs, device),
            episode_return: zeros(num_envs, device),
            finished_count: zeros(num_envs, device),
            finished_return: zeros(num_envs, device),
            finished_length: zeros(num_envs, device),
            records: None,
        }
    }

    /// Number of envs.
    pub fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// Values per observation.
    pub fn observation_dim(&self) -> usize {
        self.dynamics.observation_dim()
    }

    /// The action space of one env.
    pub fn action_space(&self) -> Space {
        self.dynamics.action_space()
    }

    /// The device the envs live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The current observations, `[num_envs, observation_dim]`.
    pub fn observations(&self) -> Tensor<2> {
        self.dynamics.observe(&self.state)
    }

    /// Replaces every env's state (`num_envs` rows of state variables, row-major) and
    /// starts new episodes from there: for comparing with the CPU envs.
    pub fn set_state(&mut self, rows: &[f64]) {
        let width = rows.len() / self.num_envs;
        self.state = (0..width)
            .map(|k| {
                let column: Vec<f32> = rows
                    .iter()
                    .skip(k)
                    .step_by(width)
                    .map(|&v| v as f32)
                    .collect();
                Tensor::from_data(TensorData::new(column, [self.num_envs]), &self.device)
            })
            .collect();
        self.needs_reset = zeros(self.num_envs, &self.device).greater_elem(0.0);
        self.elapsed = zeros(self.num_envs, &self.device);
        self.episode_return = zeros(self.num_envs, &self.device);
    }

    /// Keeps each env's first `capacity` episodes (return, length, truncation) on the
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
            truncated: empty(),
            recorded: Tensor::zeros([n], &self.device),
        });
    }

    /// Steps every env: an env whose episode ended on the previous step starts a new one
    /// instead (its action ignored, reward 0, both flags false), as Gymnasium's next-step
    /// autoreset does.
    pub fn step(&mut self, actions: &DeviceActions) -> Result<DeviceStep, EnvError> {
        let n = self.num_envs;
        let stepped = self.dynamics.step(&self.state, actions)?;
        let fresh = self.dynamics.initial_state(n, &self.device);
        let reset = self.needs_reset.clone();
        self.state = stepped
            .state
            .into_iter()
            .zip(fresh)
            .map(|(next, start)| next.mask_where(reset.clone(), start))
            .collect();
        let not_reset = reset.clone().bool_not();
        let rewards = stepped.reward.mask_fill(reset.clone(), 0.0);
        let terminated = stepped.terminated.bool_and(not_reset.clone());
        self.elapsed = (self.elapsed.clone() + 1.0).mask_fill(reset.clone(), 0.0);
        self.episode_return = (self.episode_return.clone() + rewards.clone()).mask_fill(reset, 0.0);
        let truncated = match self.max_episode_steps {
            Some(limit) => self
                .elapsed
                .clone()
                .greater_equal_elem(limit as f32)
                .bool_and(terminated.clone().bool_not()),
            None => zeros(n, &self.device).greater_elem(0.0),
        };
        let done = terminated.clone().bool_or(truncated.clone());
        let done_values = done.clone().float();
        self.finished_count = self.finished_count.clone() + done_values.clone();
        self.finished_return =
            self.finished_return.clone() + done_values.clone() * self.episode_return.clone();
        self.finished_length = self.finished_length.clone() + done_values * self.elapsed.clone();
        if let Some(records) = &mut self.records {
            records.record(&done, &truncated, &self.episode_return, &self.elapsed);
        }
        let reset = std::mem::replace(&mut self.needs_reset, done);
        Ok(DeviceStep {
            observations: self.observations(),
            rewards,
            terminated,
            truncated,
            reset,
        })
    }

    /// Reads every env's state back (see [`DeviceSnapshot`]).
    pub fn snapshot(&self) -> Result<DeviceSnapshot, EnvError> {
        let mut transaction = Transaction::default();
        for column in &self.state {
            transaction = transaction.register(column.clone());
        }
        let data = transaction
            .register(self.elapsed.clone())
            .register(self.episode_return.clone())
            .register(self.needs_reset.clone().float())
            .try_execute()
            .map_err(|e| EnvError::Device(e.to_string()))?;
        let mut columns: Vec<Vec<f32>> = data
            .into_iter()
            .map(|d| {
                d.convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| EnvError::Device(format!("{e:?}")))
            })
            .collect::<Result<_, _>>()?;
        let needs_reset = columns.pop().unwrap_or_default();
        let episode_return = columns.pop().unwrap_or_default();
        let elapsed = columns.pop().unwrap_or_default();
        Ok(DeviceSnapshot {
            state: columns,
            elapsed,
            episode_return,
            needs_reset: needs_reset.iter().map(|&v| v > 0.5).collect(),
        })
    }

    /// Puts every env back where a snapshot of envs like these left it.
    pub fn restore(&mut self, snapshot: &DeviceSnapshot) -> Result<(), EnvError> {
        let n = self.num_envs;
        let fits = snapshot.state.len() == self.state.len()
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
                reason: format!(
                    "the snapshot is not of {n} envs with {} state variables",
                    self.state.len()
                ),
            });
        }
        let column = |values: &[f32]| {
            Tensor::<1>::from_data(TensorData::new(values.to_vec(), [n]), &self.device)
        };
        self.state = snapshot.state.iter().map(|c| column(c)).collect();
        self.elapsed = column(&snapshot.elapsed);
        self.episode_return = column(&snapshot.episode_return);
        let flags: Vec<f32> = snapshot
            .needs_reset
            .iter()
            .map(|&b| f32::from(u8::from(b)))
            .collect();
        self.needs_reset = column(&flags).greater_elem(0.5);
        Ok(())
    }

    /// Reads back (in one transfer) the episodes finished since the last read and starts
    /// counting afresh.
    pub fn take_finished(&mut self) -> Result<FinishedEpisodes, EnvError> {
        let data = Transaction::default()
            .register(self.finished_count.clone())
            .register(self.finished_return.clone())
            .register(self.finished_length.clone())
            .try_execute()
            .map_err(|e| EnvError::Device(e.to_string()))?;
        let [count, return_sum, length_sum] = read_columns(data)?;
        for tensor in [
            &mut self.finished_count,
            &mut self.finished_return,
            &mut self.finished_length,
        ] {
            *tensor = zeros(self.num_envs, &self.device);
        }
        Ok(FinishedEpisodes {
            count: count.iter().map(|&c| c as u32).collect(),
            return_sum,
            length_sum,
        })
    }

    /// Episodes recorded per env so far (all zero if nothing is recorded).
    pub fn recorded_counts(&self) -> Result<Vec<usize>, EnvError> {
        let Some(records) = &self.records else {
            return Ok(vec![0; self.num_envs]);
        };
        let data = records
            .recorded
            .clone()
            .try_into_data()
            .map_err(|e| EnvError::Device(e.to_string()))?;
        data.convert::<i64>()
            .try_into_vec::<i64>()
            .map(|v| v.into_iter().map(|c| c as usize).collect())
            .map_err(|e| EnvError::Device(format!("{e:?}")))
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
            .register(records.truncated.clone())
            .try_execute()
            .map_err(|e| EnvError::Device(e.to_string()))?;
        let [returns, lengths, truncated] = read_columns(data)?;
        let mut episodes = Vec::new();
        for (env_index, &count) in counts.iter().enumerate() {
            for nth in 0..count.min(records.capacity) {
                let at = env_index * records.capacity + nth;
                episodes.push(RecordedEpisode {
                    env_index,
                    nth,
                    episode_return: returns[at],
                    length: lengths[at] as u32,
                    truncated: truncated[at] > 0.5,
                });
            }
        }
        Ok(episodes)
    }
}

impl EpisodeRecords {
    /// Writes each finished episode into its env's next free column.
    fn record(
        &mut self,
        done: &Tensor<1, Bool>,
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
        self.truncated = self
            .truncated
            .clone()
            .mask_where(slot, wide(truncated.clone().float()));
        self.recorded = self.recorded.clone() + done.clone().int();
    }
}

/// Transaction results as `f64` vectors.
fn read_columns<const N: usize>(data: Vec<TensorData>) -> Result<[Vec<f64>; N], EnvError> {
    let columns: Vec<Vec<f64>> = data
        .into_iter()
        .map(|d| {
            d.convert::<f32>()
                .try_into_vec::<f32>()
                .map(|v| v.into_iter().map(f64::from).collect())
                .map_err(|e| EnvError::Device(format!("{e:?}")))
        })
        .collect::<Result<_, _>>()?;
    columns
        .try_into()
        .map_err(|_| EnvError::Device("a read-back returned the wrong number of tensors".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Action;
    use crate::registry::make;

    /// The largest observation difference to the `f64` reference allowed over 50 steps
    /// (measured: 2.4e-6 CartPole, 9e-8 MountainCar, 2.6e-6 Pendulum).
    const TOLERANCE: f32 = 1e-5;

    fn values(x: Tensor<2>) -> Vec<f32> {
        x.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    }

    fn flags(x: Tensor<1, Bool>) -> Vec<bool> {
        x.into_data().try_into_vec::<bool>().unwrap()
    }

    /// Runs `n` CPU envs and their device twins from the same states with the same actions
    /// (chosen from the step number and the reference observation) and returns the largest
    /// observation difference seen.
    fn largest_difference(id: &str, action: impl Fn(usize, &[f32]) -> f32) -> f32 {
        let n = 8;
        let device = Device::flex();
        let mut cpu: Vec<_> = (0..n).map(|_| make(id).unwrap()).collect();
        let mut rows = Vec::new();
        let mut last: Vec<Vec<f32>> = Vec::new();
        for (i, env) in cpu.iter_mut().enumerate() {
            last.push(env.reset(Some(100 + i as u64)).to_vec());
            rows.extend(env.state().unwrap());
        }
        let mut envs = make_device_vector(id, n, &device).unwrap();
        envs.set_state(&rows);
        let discrete = matches!(envs.action_space(), Space::Discrete { .. });
        let mut worst = 0.0f32;
        for t in 0..50 {
            let chosen: Vec<f32> = last.iter().map(|obs| action(t, obs)).collect();
            let batch = if discrete {
                let ints: Vec<i64> = chosen.iter().map(|&a| a as i64).collect();
                DeviceActions::Discrete(Tensor::from_data(TensorData::new(ints, [n]), &device))
            } else {
                DeviceActions::Continuous(Tensor::from_data(
                    TensorData::new(chosen.clone(), [n, 1]),
                    &device,
                ))
            };
            let step = envs.step(&batch).unwrap();
            let observed = values(step.observations);
            let terminated = flags(step.terminated);
            for (i, env) in cpu.iter_mut().enumerate() {
                let reference = if discrete {
                    env.step(Action::Discrete(chosen[i] as i64)).unwrap()
                } else {
                    env.step(Action::Continuous(&[chosen[i]])).unwrap()
                };
                assert!(
                    !reference.terminated,
                    "{id} env {i} ended at step {t}: choose other actions"
                );
                assert!(
                    !terminated[i],
                    "{id} env {i} ended on the device at step {t}"
                );
                let dim = reference.observation.len();
                for (a, b) in observed[i * dim..(i + 1) * dim]
                    .iter()
                    .zip(reference.observation.iter())
                {
                    worst = worst.max((a - b).abs());
                }
                last[i] = reference.observation.to_vec();
            }
        }
        worst
    }

    #[test]
    fn trajectories_follow_the_f64_reference_for_50_steps() {
        // Balance the pole; pump the car's energy; a torque that exceeds the clip at times.
        let cartpole = largest_difference("CartPole-v1", |_, o| f32::from(o[2] + 0.5 * o[3] > 0.0));
        let mountain_car =
            largest_difference("MountainCar-v0", |_, o| if o[1] >= 0.0 { 2.0 } else { 0.0 });
        let pendulum =
            largest_difference("Pendulum-v1", |t, o| (t as f32 * 0.3).sin() * 2.5 - o[2]);
        for (id, worst) in [
            ("CartPole-v1", cartpole),
            ("MountainCar-v0", mountain_car),
            ("Pendulum-v1", pendulum),
        ] {
            assert!(worst < TOLERANCE, "{id}: {worst}");
        }
    }

    #[test]
    fn an_ended_episode_restarts_on_the_next_step_and_is_counted_once() {
        let device = Device::flex();
        let mut envs = make_device_vector("CartPole-v1", 2, &device).unwrap();
        envs.record_episodes(3);
        // Env 0 falls on its first step; env 1 stands upright.
        envs.set_state(&[0.0, 0.0, 0.2094, 2.0, 0.0, 0.0, 0.0, 0.0]);
        let push = DeviceActions::Discrete(Tensor::from_data(
            TensorData::new(vec![0i64, 1], [2]),
            &device,
        ));
        let first = envs.step(&push).unwrap();
        assert_eq!(flags(first.terminated), [true, false]);
        let second = envs.step(&push).unwrap();
        // The reset step: reward 0, no flags, a fresh start within +-0.05.
        assert_eq!(flags(second.terminated), [false, false]);
        assert_eq!(values(second.rewards.unsqueeze_dim(0)), [0.0, 1.0]);
        assert!(
            values(second.observations)[..4]
                .iter()
                .all(|v| v.abs() <= 0.05)
        );
        let finished = envs.take_finished().unwrap();
        assert_eq!(finished.count, [1, 0]);
        assert_eq!(finished.return_sum, [1.0, 0.0]);
        assert_eq!(finished.mean_return(), Some(1.0));
        assert_eq!(envs.take_finished().unwrap().total(), 0);
        let records = envs.read_records().unwrap();
        assert_eq!(
            records,
            [RecordedEpisode {
                env_index: 0,
                nth: 0,
                episode_return: 1.0,
                length: 1,
                truncated: false
            }]
        );
    }

    #[test]
    fn the_time_limit_truncates_at_exactly_the_limit() {
        let device = Device::flex();
        let mut envs = make_device_vector("MountainCar-v0", 3, &device).unwrap();
        envs.record_episodes(1);
        let coast = DeviceActions::Discrete(Tensor::from_data(
            TensorData::new(vec![1i64; 3], [3]),
            &device,
        ));
        for step in 1..=200 {
            let result = envs.step(&coast).unwrap();
            let truncated = flags(result.truncated);
            assert!(truncated.iter().all(|&t| t == (step == 200)), "step {step}");
        }
        let finished = envs.take_finished().unwrap();
        assert_eq!(finished.count, [1, 1, 1]);
        assert_eq!(finished.length_sum, [200.0; 3]);
        assert_eq!(finished.return_sum, [-200.0; 3]);
        assert!(
            envs.read_records()
                .unwrap()
                .iter()
                .all(|r| r.truncated && r.length == 200)
        );
    }

    #[test]
    fn a_restored_snapshot_continues_where_it_was_taken() {
        let device = Device::flex();
        let push = DeviceActions::Discrete(Tensor::from_data(
            TensorData::new(vec![1i64, 0, 1], [3]),
            &device,
        ));
        let mut envs = make_device_vector("CartPole-v1", 3, &device).unwrap();
        for _ in 0..5 {
            envs.step(&push).unwrap();
        }
        let snapshot = envs.snapshot().unwrap();
        let mut copy = make_device_vector("CartPole-v1", 3, &device).unwrap();
        copy.restore(&snapshot).unwrap();
        assert_eq!(copy.snapshot().unwrap(), snapshot);
        let (a, b) = (envs.step(&push).unwrap(), copy.step(&push).unwrap());
        assert_eq!(values(a.observations), values(b.observations));
        let other = make_device_vector("MountainCar-v0", 3, &device).unwrap();
        assert!(other.snapshot().map(|s| copy.restore(&s)).unwrap().is_err());
    }

    #[test]
    fn envs_without_a_device_version_and_wrong_actions_are_errors() {
        let device = Device::flex();
        assert!(matches!(
            make_device_vector("Acrobot-v1", 4, &device),
            Err(EnvError::NoDeviceVersion { .. })
        ));
        assert!(make_device_vector("CartPole-v1", 0, &device).is_err());
        let mut pendulum = make_device_vector("Pendulum-v1", 2, &device).unwrap();
        let discrete = DeviceActions::Discrete(Tensor::zeros([2], &device));
        assert!(matches!(
            pendulum.step(&discrete),
            Err(EnvError::InvalidAction { .. })
        ));
    }
}
