//! Batched environments on a burn device (wgpu, flex): the state of `num_envs` envs lives
//! there as one table with a `[num_envs]` row per variable, and stepping, next-step autoreset
//! and per-env episode statistics all run there, so a rollout reads nothing back but the
//! finished episodes' statistics, when it asks for them. A step is one fused kernel on wgpu,
//! or the env's tensor operations ([`TensorDynamics`]) anywhere ([`StepKernel`]).
//!
//! Same constants and rules as the CPU envs, in `f32` rather than Gymnasium's `f64`:
//! observations agree with the `f64` reference to within 1e-5 over the first 50 steps
//! (tested per env below), then drift apart as rounding differences grow; an episode that
//! passes within rounding of a termination threshold may end a step earlier or later. Initial
//! states come from the device's random generator (`Device::seed`), not from Gymnasium's
//! PCG64, so a seed does not give the CPU env's starts.

mod batch;
mod cartpole;
mod fused;
mod mountain_car;
mod pendulum;
mod records;

use burn::prelude::{Bool, Device, Int, Tensor, TensorData};
use burn::tensor::Distribution;
use burn::tensor::kind::Basic;

pub use cartpole::CartPoleTensors;
pub use fused::Physics;
pub use mountain_car::MountainCarTensors;
pub use pendulum::PendulumTensors;
use records::EpisodeRecords;
pub use records::{FinishedEpisodes, RecordedEpisode};

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

/// `name()`, `Display` and `FromStr` for a field-less enum chosen by name on the command line.
macro_rules! chosen_by_name {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(name: &str) -> Result<Self, String> {
                [$($ty::$variant),+]
                    .into_iter()
                    .find(|choice| choice.name() == name)
                    .ok_or_else(|| {
                        let known: Vec<String> =
                            [$($name),+].iter().map(|n| format!("`{n}`")).collect();
                        format!("unknown {} `{name}` (expected {})", $what, known.join(" or "))
                    })
            }
        }
    };
}

chosen_by_name!(EnvBackend, "env backend", { Cpu => "cpu", Device => "device" });

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

impl DeviceActions {
    /// Host actions for `num_envs` envs, uploaded to `device`.
    pub fn upload(actions: crate::Actions<'_>, num_envs: usize, device: &Device) -> Self {
        match actions {
            crate::Actions::Discrete(a) => DeviceActions::Discrete(Tensor::from_data(
                TensorData::new(a.to_vec(), [a.len()]),
                device,
            )),
            crate::Actions::Continuous(a) => DeviceActions::Continuous(Tensor::from_data(
                TensorData::new(a.to_vec(), [num_envs, a.len() / num_envs]),
                device,
            )),
        }
    }
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
    /// The env's name in messages (`CartPole`).
    fn name(&self) -> &'static str;
    /// Values per observation.
    fn observation_dim(&self) -> usize;
    /// The action space of one env.
    fn action_space(&self) -> Space;
    /// `n` initial states drawn from the device's generator, `[state variables, n]`.
    fn initial_state(&self, n: usize, device: &Device) -> Tensor<2>;
    /// Steps every env with its action. Action values are not checked on the device (that
    /// would read them back): they come from a policy sized for the action space.
    fn step(&self, state: &Columns, actions: &DeviceActions) -> Result<StepColumns, EnvError>;
    /// Observations, `[n, observation_dim]`.
    fn observe(&self, state: &Columns) -> Tensor<2>;
    /// The physics of the fused kernel that runs this env's whole step on the cubecl
    /// devices (wgpu; CUDA when compiled in), if there is one.
    fn fused_physics(&self) -> Option<Physics> {
        None
    }
}

/// How a [`DeviceVectorEnv`] steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKernel {
    /// The env's tensor operations, then autoreset and statistics as more of them: any
    /// device (the only choice on flex), ~75 burn operations a step for CartPole.
    TensorOps,
    /// One kernel for the whole step: on wgpu (every device env has one).
    Fused,
}

chosen_by_name!(StepKernel, "step kernel", { TensorOps => "tensor-ops", Fused => "fused" });

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

/// Continuous actions for a discrete env or the other way round.
pub(crate) fn wrong_action_kind(env: &str) -> EnvError {
    EnvError::InvalidAction {
        env: env.into(),
        action: "a device batch".into(),
        reason: "of the other kind (discrete vs continuous)".into(),
    }
}

/// Values drawn uniformly from `[low, high)` on the device.
pub(crate) fn uniform(shape: [usize; 2], low: f64, high: f64, device: &Device) -> Tensor<2> {
    Tensor::random(shape, Distribution::Uniform(low, high), device)
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

/// `num_envs` copies of an env on a burn device, with Gymnasium's next-step autoreset and
/// time limit, and running episode statistics, all on the device.
///
/// Everything an env carries between steps lives in one `[state + 6, num_envs]` table (a row
/// per state variable, then the [`bookkeeping`] rows), so a fused step reads and writes one
/// buffer, a snapshot is one transfer, and each variable is a contiguous row.
#[derive(Debug)]
pub struct DeviceVectorEnv {
    /// The registered id (the dynamics' name for envs built from dynamics alone).
    id: String,
    dynamics: Box<dyn TensorDynamics>,
    device: Device,
    num_envs: usize,
    max_episode_steps: Option<u32>,
    kernel: StepKernel,
    table: Tensor<2>,
    /// The observations of the current state, `[num_envs, observation_dim]`.
    observations: Tensor<2>,
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
    let mut envs = DeviceVectorEnv::new(dynamics, num_envs, max_episode_steps, device);
    envs.id = id.to_string();
    Ok(envs)
}

/// Whether a device runs cubecl kernels (wgpu, CUDA), where a fused step can run.
fn runs_cube_kernels(device: &Device) -> bool {
    matches!(
        device.clone().without_autodiff().as_dispatch(),
        burn::backend::DispatchDevice::Cube(_)
    )
}

/// A table of `state` (`[state variables, n]`) with fresh bookkeeping (nothing elapsed, no
/// reset pending, no finished episodes).
fn fresh_table(state: Tensor<2>) -> Tensor<2> {
    let [_, n] = state.dims();
    let bookkeeping = Tensor::zeros([bookkeeping::COUNT, n], &state.device());
    Tensor::cat(vec![state, bookkeeping], 0)
}

/// The observations of a table's state rows.
fn observe(dynamics: &dyn TensorDynamics, table: &Tensor<2>) -> Tensor<2> {
    let state_dim = table.dims()[0] - bookkeeping::COUNT;
    dynamics.observe(&rows(table.clone().narrow(0, 0, state_dim)))
}

/// A `[rows, n]` tensor's rows as `[n]` tensors.
fn rows<K: Basic>(table: Tensor<2, K>) -> Vec<Tensor<1, K>> {
    let height = table.dims()[0];
    table
        .chunk(height, 0)
        .into_iter()
        .map(|row| row.squeeze_dim::<1>(0))
        .collect()
}

impl DeviceVectorEnv {
    /// `num_envs` envs with `dynamics`, truncated after `max_episode_steps`, freshly reset.
    /// They step in one fused kernel where the dynamics have one and the device runs it.
    pub fn new(
        dynamics: Box<dyn TensorDynamics>,
        num_envs: usize,
        max_episode_steps: Option<u32>,
        device: &Device,
    ) -> Self {
        let kernel = match dynamics.fused_physics() {
            Some(_) if runs_cube_kernels(device) => StepKernel::Fused,
            _ => StepKernel::TensorOps,
        };
        let table = fresh_table(dynamics.initial_state(num_envs, device));
        let observations = observe(dynamics.as_ref(), &table);
        Self {
            id: dynamics.name().to_string(),
            observations,
            dynamics,
            device: device.clone(),
            num_envs,
            max_episode_steps,
            kernel,
            table,
            records: None,
        }
    }

    /// How the envs step.
    pub fn step_kernel(&self) -> StepKernel {
        self.kernel
    }

    /// Steps with `kernel` from now on: an error if it is [`StepKernel::Fused`] and these
    /// dynamics have no fused step or the device cannot run it.
    pub fn use_step_kernel(&mut self, kernel: StepKernel) -> Result<(), EnvError> {
        if kernel == StepKernel::Fused
            && (self.dynamics.fused_physics().is_none() || !runs_cube_kernels(&self.device))
        {
            return Err(EnvError::InvalidOption {
                env: self.dynamics.name().into(),
                reason: "a fused step needs a wgpu device".into(),
            });
        }
        self.kernel = kernel;
        Ok(())
    }

    fn state_dim(&self) -> usize {
        self.table.dims()[0] - bookkeeping::COUNT
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
        self.observations.clone()
    }

    /// Replaces the table and observes it.
    fn set_table(&mut self, table: Tensor<2>) {
        self.observations = observe(self.dynamics.as_ref(), &table);
        self.table = table;
    }

    /// Replaces every env's state (`num_envs` rows of state variables, row-major) and
    /// starts new episodes from there, counters at zero: for comparing with the CPU envs.
    pub fn set_state(&mut self, rows: &[f64]) {
        let width = rows.len() / self.num_envs;
        let values: Vec<f32> = rows.iter().map(|&v| v as f32).collect();
        let state = Tensor::<2>::from_data(
            TensorData::new(values, [self.num_envs, width]),
            &self.device,
        );
        self.set_table(fresh_table(state.transpose()));
    }

    /// Steps every env: an env whose episode ended on the previous step starts a new one
    /// instead (its action ignored, reward 0, both flags false), as Gymnasium's next-step
    /// autoreset does.
    pub fn step(&mut self, actions: &DeviceActions) -> Result<DeviceStep, EnvError> {
        let starts = self.dynamics.initial_state(self.num_envs, &self.device);
        let time_limit = self
            .max_episode_steps
            .map_or(f32::MAX, |limit| limit as f32);
        let step = match (self.kernel, self.dynamics.fused_physics()) {
            (StepKernel::Fused, Some(physics)) => {
                let [table, observations, signals] =
                    fused::step(physics, self.table.clone(), actions, starts, time_limit)?;
                self.table = table;
                DeviceStep {
                    observations,
                    signals,
                }
            }
            _ => self.step_with_tensor_ops(actions, starts, time_limit)?,
        };
        let state_dim = self.state_dim();
        if let Some(records) = &mut self.records {
            let book = rows(self.table.clone().narrow(0, state_dim, bookkeeping::COUNT));
            records.record(
                &step.done(),
                &step.terminated(),
                &step.truncated(),
                &book[bookkeeping::EPISODE_RETURN],
                &book[bookkeeping::ELAPSED],
            );
        }
        self.observations = step.observations.clone();
        Ok(step)
    }

    /// The step as the dynamics' tensor operations, then autoreset and statistics as more of
    /// them; the same arithmetic as a fused step.
    fn step_with_tensor_ops(
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

/// A read-back's values as `f32`.
fn f32_values(data: TensorData) -> Result<Vec<f32>, EnvError> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| EnvError::Device(format!("{e:?}")))
}

/// A tensor's values, read back (waits for the work that writes it).
fn read_f32(tensor: Tensor<2>) -> Result<Vec<f32>, EnvError> {
    f32_values(
        tensor
            .try_into_data()
            .map_err(|e| EnvError::Device(e.to_string()))?,
    )
}

/// Transaction results as `f64` vectors.
fn read_columns<const N: usize>(data: Vec<TensorData>) -> Result<[Vec<f64>; N], EnvError> {
    let columns: Vec<Vec<f64>> = data
        .into_iter()
        .map(|d| Ok(f32_values(d)?.into_iter().map(f64::from).collect()))
        .collect::<Result<_, EnvError>>()?;
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
            let terminated = flags(step.terminated());
            let observed = values(step.observations);
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
        assert_eq!(flags(first.terminated()), [true, false]);
        let second = envs.step(&push).unwrap();
        // The reset step: reward 0, no flags, a fresh start within +-0.05.
        assert_eq!(flags(second.terminated()), [false, false]);
        assert_eq!(values(second.rewards().unsqueeze_dim(0)), [0.0, 1.0]);
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
                terminated: true,
                truncated: false,
                // Device records know only the steps taken when they are read.
                step: 2,
            }]
        );
    }

    /// Gymnasium's rule: a step that terminates at the time limit is truncated too, and the
    /// record keeps both flags.
    #[test]
    fn a_termination_at_the_time_limit_is_also_a_truncation() {
        let device = Device::flex();
        let (dynamics, _) = device_dynamics("CartPole-v1").unwrap();
        let mut envs = DeviceVectorEnv::new(dynamics, 2, Some(1), &device);
        envs.record_episodes(1);
        // Env 0 falls on its first step, which is also the last the limit allows.
        envs.set_state(&[0.0, 0.0, 0.2094, 2.0, 0.0, 0.0, 0.0, 0.0]);
        let push = DeviceActions::Discrete(Tensor::from_data(
            TensorData::new(vec![0i64, 1], [2]),
            &device,
        ));
        let step = envs.step(&push).unwrap();
        assert_eq!(flags(step.terminated()), [true, false]);
        assert_eq!(flags(step.truncated()), [true, true]);
        let records = envs.read_records().unwrap();
        assert_eq!(
            records
                .iter()
                .map(|r| (r.terminated, r.truncated))
                .collect::<Vec<_>>(),
            [(true, true), (false, true)]
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
            let truncated = flags(result.truncated());
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
