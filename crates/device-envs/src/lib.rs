//! The classic-control envs on a burn device, and [`EnvBatch`], the one interface over a
//! batch of envs wherever it steps ([`make_batch`]: the CPU envs of `gradless-envs` or these).
//!
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

mod cartpole;
mod choices;
mod device_batch;
mod env_batch;
mod fused;
mod mountain_car;
mod multi_step;
mod pendulum;
mod records;
mod seeded;
mod snapshot;
mod step;

use burn::prelude::{Bool, Device, Int, Tensor, TensorData};
use burn::tensor::Distribution;
use burn::tensor::kind::Basic;

pub use cartpole::CartPoleTensors;
pub use choices::{EnvBackend, StepKernel};
pub use env_batch::{
    BatchActions, BatchObservations, BatchSnapshot, BatchStep, CpuBatch, EnvBatch, StepSignals,
    make_batch, most_episodes,
};
pub use fused::{Outcome, Physics, kernel_physics};
pub use mountain_car::MountainCarTensors;
pub use multi_step::KernelSteps;
pub use pendulum::PendulumTensors;
use records::EpisodeRecords;
pub use records::{FinishedEpisodes, RecordedEpisode};
use seeded::SeededStarts;
pub use seeded::seeded_starts;
pub use snapshot::DeviceSnapshot;
pub use step::{DeviceStep, bookkeeping, signal};

use gradless_envs::EnvError;
use gradless_envs::MakeArgs;
use gradless_envs::Space;
use gradless_envs::spec;

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
    pub fn upload(actions: gradless_envs::Actions<'_>, num_envs: usize, device: &Device) -> Self {
        match actions {
            gradless_envs::Actions::Discrete(a) => DeviceActions::Discrete(Tensor::from_data(
                TensorData::new(a.to_vec(), [a.len()]),
                device,
            )),
            gradless_envs::Actions::Continuous(a) => DeviceActions::Continuous(Tensor::from_data(
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
    /// Each env's next starts, after a seeded reset.
    seeded: Option<SeededStarts>,
}

/// The id of the env `env` makes, when its device version is that env: the device envs have
/// the registered physics and step limit only, so keyword arguments are refused.
pub fn device_env_id(env: &MakeArgs) -> Result<&str, EnvError> {
    if env.options.is_default() {
        return Ok(&env.id);
    }
    Err(EnvError::InvalidOption {
        env: env.to_string(),
        reason: "the device envs have the registered physics and step limit only; step \
                 these on the CPU (--env-backend cpu)"
            .into(),
    })
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
            seeded: None,
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

    /// Replaces the table and observes it. Any seeded starts end with it.
    fn set_table(&mut self, table: Tensor<2>) {
        self.seeded = None;
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

    /// Steps after which an episode is truncated, as the kernels take it (`f32::MAX`: never).
    fn time_limit(&self) -> f32 {
        self.max_episode_steps
            .map_or(f32::MAX, |limit| limit as f32)
    }

    /// Steps every env: an env whose episode ended on the previous step starts a new one
    /// instead (its action ignored, reward 0, both flags false), as Gymnasium's next-step
    /// autoreset does.
    pub fn step(&mut self, actions: &DeviceActions) -> Result<DeviceStep, EnvError> {
        let mut starts = self.dynamics.initial_state(self.num_envs, &self.device);
        if let Some(seeded) = &self.seeded {
            starts = seeded.next(starts);
        }
        let time_limit = self.time_limit();
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
        if let Some(seeded) = &mut self.seeded {
            seeded.restarted(step.reset());
        }
        self.observations = step.observations.clone();
        Ok(step)
    }
}

/// A read-back's values as `f32`.
fn f32_values(data: TensorData) -> Result<Vec<f32>, EnvError> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| EnvError::Device(format!("{e:?}")))
}

/// An integer tensor's values, read back (waits for the work that writes it).
pub(crate) fn read_i64(tensor: Tensor<1, Int>) -> Result<Vec<i64>, EnvError> {
    tensor
        .try_into_data()
        .map_err(|e| EnvError::Device(e.to_string()))?
        .convert::<i64>()
        .try_into_vec::<i64>()
        .map_err(|e| EnvError::Device(format!("{e:?}")))
}

/// A tensor's values, read back (waits for the work that writes it).
pub(crate) fn read_f32(tensor: Tensor<2>) -> Result<Vec<f32>, EnvError> {
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
mod tests;
