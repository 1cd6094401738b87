//! One interface over a batch of envs wherever it steps: [`EnvBatch`], implemented by the
//! CPU vector envs ([`CpuBatch`]) and the device envs
//! ([`DeviceVectorEnv`](crate::DeviceVectorEnv)). Rollouts, evaluation episodes
//! and benchmarks are written once against it; what differs by backend (host slices or
//! device tensors, same-step or next-step autoreset, per-episode seeds or the device's
//! generator) is in the values it hands out, not in the code that drives it.
//!
//! Gymnasium's rules hold on both: `terminated` and `truncated` can both be true (a step at
//! the time limit that also reaches a terminal state), and every finished episode is
//! recorded with both flags.

use burn::prelude::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::{
    DeviceActions, DeviceSnapshot, EnvBackend, FinishedEpisodes, RecordedEpisode, StepKernel,
    make_device_vector, read_f32, read_i64, signal,
};
use gradless_envs::EnvError;
use gradless_envs::Space;
use gradless_envs::{Actions, AutoresetMode, VectorEnv, VectorSnapshot};
use gradless_envs::{MakeArgs, make_vector};

/// The observations the next step acts on.
// Made once a step and consumed at once: boxing the tensor would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum BatchObservations<'a> {
    /// On the host: `num_envs * dim` values, env-major.
    Host(&'a [f32]),
    /// On the device: `[num_envs, dim]`.
    Device(Tensor<2>),
}

impl BatchObservations<'_> {
    /// The observations as a `[num_envs, dim]` tensor on `device` (host values are uploaded;
    /// a device tensor is already there).
    pub fn to_tensor(&self, dim: usize, device: &Device) -> Tensor<2> {
        match self {
            BatchObservations::Host(values) => Tensor::from_data(
                TensorData::new(values.to_vec(), [values.len() / dim, dim]),
                device,
            ),
            BatchObservations::Device(tensor) => tensor.clone(),
        }
    }
}

/// One action per env, on the host or on the device. Each batch takes both kinds, moving
/// them where its envs are.
#[derive(Debug, Clone, Copy)]
pub enum BatchActions<'a> {
    /// Host values.
    Host(Actions<'a>),
    /// Device tensors.
    Device(&'a DeviceActions),
}

/// Per-env signals of one step: reward, terminated, truncated and restarted (the env began
/// a new episode on this step instead of acting, as next-step autoreset does).
#[allow(clippy::large_enum_variant)] // As `BatchObservations`.
#[derive(Debug, Clone)]
pub enum StepSignals<'a> {
    /// On the host.
    Host {
        /// One reward per env.
        rewards: &'a [f64],
        /// The episode reached a terminal state.
        terminated: &'a [bool],
        /// The time limit cut the episode (possibly on a terminating step too).
        truncated: &'a [bool],
        /// The env restarted instead of acting (never, with same-step autoreset).
        restarted: &'a [bool],
    },
    /// On the device: `[4, num_envs]`, a row per [`signal`] constant.
    Device(Tensor<2>),
}

impl StepSignals<'_> {
    /// The signals as the device's `[4, num_envs]` table on `device`.
    pub fn to_tensor(&self, device: &Device) -> Tensor<2> {
        match self {
            StepSignals::Host {
                rewards,
                terminated,
                truncated,
                restarted,
            } => {
                let n = rewards.len();
                let mut values = Vec::with_capacity(signal::COUNT * n);
                values.extend(rewards.iter().map(|&r| r as f32));
                for flags in [terminated, truncated, restarted] {
                    values.extend(flags.iter().map(|&f| f32::from(u8::from(f))));
                }
                Tensor::from_data(TensorData::new(values, [signal::COUNT, n]), device)
            }
            StepSignals::Device(tensor) => tensor.clone(),
        }
    }
}

/// What one step of a batch returns besides the new observations
/// ([`EnvBatch::observations`]).
#[derive(Debug, Clone)]
pub struct BatchStep<'a> {
    /// Rewards and flags.
    pub signals: StepSignals<'a>,
    /// What truncation bootstrapping needs under same-step autoreset, where the returned
    /// observations already start the next episodes: the last observation of every env
    /// whose episode ended at this step (other rows meaningless), `num_envs * dim` host
    /// values. `None` under next-step autoreset, where an ended episode's last observation
    /// is the one the step returns.
    pub final_observations: Option<&'a [f32]>,
}

/// Where every env of a batch stands, for checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchSnapshot {
    /// CPU envs: exact, generators included.
    Cpu(VectorSnapshot),
    /// Device envs: states and counters (the device's generator is not part of it).
    Device(DeviceSnapshot),
}

/// A batch of envs that steps together, on the CPU or on a device.
pub trait EnvBatch: Send {
    /// The env id.
    fn env_id(&self) -> &str;
    /// Where the envs step.
    fn backend(&self) -> EnvBackend;
    /// Number of envs.
    fn num_envs(&self) -> usize;
    /// Values per observation.
    fn observation_dim(&self) -> usize;
    /// The action space of one env.
    fn action_space(&self) -> Space;
    /// When a finished env starts its next episode.
    fn autoreset_mode(&self) -> AutoresetMode;
    /// Resets every env: on the CPU env `i` from `seed + i`, as Gymnasium's vector envs do;
    /// on a device from the device's generator, seeded with `seed`.
    fn reset(&mut self, seed: u64) -> Result<(), EnvError>;
    /// Resets env `i` from `seeds[i]` and starts each of its later episodes from the next
    /// seed (`seeds[i] + 1`, `+ 2`, ...), so that every episode has a seed of its own: on
    /// the CPU all of them, on a device the first `episodes_per_env` (their starts are
    /// computed beforehand; later ones come from the device's generator).
    fn reset_seeded_episodes(
        &mut self,
        seeds: &[u64],
        episodes_per_env: usize,
    ) -> Result<(), EnvError>;
    /// The observations the next step acts on.
    fn observations(&self) -> BatchObservations<'_>;
    /// Steps every env with its action.
    fn step(&mut self, actions: BatchActions<'_>) -> Result<BatchStep<'_>, EnvError>;
    /// Everything a checkpoint needs to continue from here.
    fn snapshot(&self) -> Result<BatchSnapshot, EnvError>;
    /// Puts the envs back where a snapshot of envs like these left them.
    fn restore(&mut self, snapshot: &BatchSnapshot) -> Result<(), EnvError>;
    /// Records each env's first `capacity` episodes from now on (return, length, both flags),
    /// for [`read_records`](EnvBatch::read_records); earlier records are dropped.
    fn record_episodes(&mut self, capacity: usize);
    /// Episodes finished per env since recording started, the unrecorded ones past
    /// `capacity` included (on a device this waits for the queued steps).
    fn recorded_counts(&self) -> Result<Vec<usize>, EnvError>;
    /// The recorded episodes, env by env, each env's in the order they finished.
    fn read_records(&self) -> Result<Vec<RecordedEpisode>, EnvError>;
    /// Running totals of the episodes finished since the last call, then starts afresh.
    fn take_finished(&mut self) -> Result<FinishedEpisodes, EnvError>;
    /// How device envs step; `None` for CPU envs.
    fn step_kernel(&self) -> Option<StepKernel> {
        None
    }
    /// Steps with `kernel` from now on, where it can run.
    fn use_step_kernel(&mut self, kernel: StepKernel) -> Result<(), EnvError> {
        Err(EnvError::InvalidOption {
            env: self.env_id().to_string(),
            reason: format!("CPU envs have no step kernel to choose (asked for {kernel})"),
        })
    }
    /// The device envs themselves, for kernels that run many of their steps at once;
    /// `None` for CPU envs.
    fn device_envs(&mut self) -> Option<&mut crate::DeviceVectorEnv> {
        None
    }
}

/// The most episodes an env of a batch with `mode` can finish in `steps` steps.
pub fn most_episodes(mode: AutoresetMode, steps: usize) -> usize {
    match mode {
        AutoresetMode::SameStep => steps,
        // One step acting, the next restarting.
        AutoresetMode::NextStep => steps.div_ceil(2) + 1,
    }
}

/// `num_envs` envs of `id` on `backend`, reset from `seed` (see [`EnvBatch::reset`]): CPU
/// envs restart on the same step (Gymnasium-exact, `f64`), device envs on `device` on the
/// next one.
pub fn make_batch(
    env: &MakeArgs,
    num_envs: usize,
    backend: EnvBackend,
    device: &Device,
    seed: u64,
) -> Result<Box<dyn EnvBatch>, EnvError> {
    let mut batch: Box<dyn EnvBatch> = match backend {
        EnvBackend::Cpu => Box::new(CpuBatch::new(make_vector(
            &env.id,
            num_envs,
            AutoresetMode::SameStep,
            env.options,
        )?)),
        EnvBackend::Device => Box::new(make_device_vector(
            crate::device_env_id(env)?,
            num_envs,
            device,
        )?),
    };
    batch.reset(seed)?;
    Ok(batch)
}

/// A CPU vector env behind [`EnvBatch`], with episode records and per-episode seeds kept on
/// the host.
pub struct CpuBatch {
    envs: Box<dyn VectorEnv>,
    /// Per-episode seeding: the seed of each env's next episode.
    next_seeds: Option<Vec<u64>>,
    /// All false: same-step autoreset never skips an action.
    restarted: Vec<bool>,
    steps: u64,
    /// The envs whose episode ended at the last step.
    ended: Vec<usize>,
    records: Option<HostRecords>,
    finished: FinishedEpisodes,
}

/// Each env's first `capacity` episodes.
struct HostRecords {
    capacity: usize,
    /// The step recording started at.
    since: u64,
    /// Episodes finished per env since then.
    finished: Vec<usize>,
    per_env: Vec<Vec<RecordedEpisode>>,
}

impl CpuBatch {
    /// `envs` behind the batch interface; they are reset by [`EnvBatch::reset`].
    pub fn new(envs: Box<dyn VectorEnv>) -> Self {
        let n = envs.num_envs();
        Self {
            next_seeds: None,
            restarted: vec![false; n],
            steps: 0,
            ended: Vec::new(),
            records: None,
            finished: no_episodes(n),
            envs,
        }
    }
}

fn no_episodes(n: usize) -> FinishedEpisodes {
    FinishedEpisodes {
        count: vec![0; n],
        return_sum: vec![0.0; n],
        length_sum: vec![0.0; n],
    }
}

impl EnvBatch for CpuBatch {
    fn env_id(&self) -> &str {
        self.envs.spec().id
    }

    fn backend(&self) -> EnvBackend {
        EnvBackend::Cpu
    }

    fn num_envs(&self) -> usize {
        self.envs.num_envs()
    }

    fn observation_dim(&self) -> usize {
        self.envs.single_observation_space().flat_dim()
    }

    fn action_space(&self) -> Space {
        self.envs.single_action_space().clone()
    }

    fn autoreset_mode(&self) -> AutoresetMode {
        self.envs.autoreset_mode()
    }

    fn reset(&mut self, seed: u64) -> Result<(), EnvError> {
        self.next_seeds = None;
        self.envs.reset(Some(seed));
        Ok(())
    }

    fn reset_seeded_episodes(&mut self, seeds: &[u64], _: usize) -> Result<(), EnvError> {
        self.envs.reset_with_seeds(seeds)?;
        self.next_seeds = Some(seeds.iter().map(|&s| s.wrapping_add(1)).collect());
        Ok(())
    }

    fn observations(&self) -> BatchObservations<'_> {
        BatchObservations::Host(self.envs.last_step().observations)
    }

    fn step(&mut self, actions: BatchActions<'_>) -> Result<BatchStep<'_>, EnvError> {
        let downloaded;
        let actions = match actions {
            BatchActions::Host(actions) => actions,
            BatchActions::Device(actions) => {
                downloaded = HostActions::read(actions)?;
                downloaded.as_actions()
            }
        };
        let step = self.envs.step(actions)?;
        self.steps += 1;
        self.ended.clear();
        for episode in step.episodes {
            let i = episode.env_index;
            self.ended.push(i);
            self.finished.count[i] += 1;
            self.finished.return_sum[i] += episode.episode_return;
            self.finished.length_sum[i] += f64::from(episode.length);
            if let Some(records) = &mut self.records {
                records.finished[i] += 1;
                let nth = records.per_env[i].len();
                if nth < records.capacity {
                    records.per_env[i].push(RecordedEpisode {
                        env_index: i,
                        nth,
                        episode_return: episode.episode_return,
                        length: episode.length,
                        terminated: step.terminated[i],
                        truncated: step.truncated[i],
                        step: self.steps - records.since,
                    });
                }
            }
        }
        // Per-episode seeds: an env that finished starts its next episode from its own seed,
        // replacing the autoreset's draw.
        if let Some(seeds) = &mut self.next_seeds {
            for &i in &self.ended {
                self.envs.reset_env(i, seeds[i])?;
                seeds[i] = seeds[i].wrapping_add(1);
            }
        }
        let step = self.envs.last_step();
        Ok(BatchStep {
            signals: StepSignals::Host {
                rewards: step.rewards,
                terminated: step.terminated,
                truncated: step.truncated,
                restarted: &self.restarted,
            },
            final_observations: (!step.final_observations.is_empty() && !self.ended.is_empty())
                .then_some(step.final_observations),
        })
    }

    fn snapshot(&self) -> Result<BatchSnapshot, EnvError> {
        self.envs
            .snapshot()
            .map(BatchSnapshot::Cpu)
            .ok_or_else(|| EnvError::ResetNeeded {
                env: self.env_id().to_string(),
            })
    }

    fn restore(&mut self, snapshot: &BatchSnapshot) -> Result<(), EnvError> {
        let BatchSnapshot::Cpu(snapshot) = snapshot else {
            return Err(other_backend(self.env_id(), "device"));
        };
        self.envs.restore(snapshot)
    }

    fn record_episodes(&mut self, capacity: usize) {
        self.records = Some(HostRecords {
            capacity,
            since: self.steps,
            finished: vec![0; self.num_envs()],
            per_env: vec![Vec::new(); self.num_envs()],
        });
    }

    fn recorded_counts(&self) -> Result<Vec<usize>, EnvError> {
        Ok(match &self.records {
            Some(records) => records.finished.clone(),
            None => vec![0; self.num_envs()],
        })
    }

    fn read_records(&self) -> Result<Vec<RecordedEpisode>, EnvError> {
        Ok(self
            .records
            .iter()
            .flat_map(|records| records.per_env.iter().flatten().copied())
            .collect())
    }

    fn take_finished(&mut self) -> Result<FinishedEpisodes, EnvError> {
        let fresh = no_episodes(self.num_envs());
        Ok(std::mem::replace(&mut self.finished, fresh))
    }
}

/// A snapshot of the other backend's envs.
pub(crate) fn other_backend(env: &str, kind: &str) -> EnvError {
    EnvError::InvalidState {
        env: env.to_string(),
        reason: format!("the snapshot is of {kind} envs"),
    }
}

/// Device actions read back for CPU envs.
enum HostActions {
    Discrete(Vec<i64>),
    Continuous(Vec<f32>),
}

impl HostActions {
    fn read(actions: &DeviceActions) -> Result<Self, EnvError> {
        Ok(match actions {
            DeviceActions::Discrete(a) => HostActions::Discrete(read_i64(a.clone())?),
            DeviceActions::Continuous(a) => HostActions::Continuous(read_f32(a.clone())?),
        })
    }

    fn as_actions(&self) -> Actions<'_> {
        match self {
            HostActions::Discrete(a) => Actions::Discrete(a),
            HostActions::Continuous(a) => Actions::Continuous(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradless_envs::make;

    fn flex() -> Device {
        Device::flex()
    }

    /// Pushes right in every env until `steps` steps have passed: CartPole falls within a
    /// few dozen.
    fn push_right(batch: &mut dyn EnvBatch, steps: usize) {
        let n = batch.num_envs();
        let actions = vec![1i64; n];
        for _ in 0..steps {
            batch
                .step(BatchActions::Host(Actions::Discrete(&actions)))
                .unwrap();
        }
    }

    #[test]
    fn both_backends_record_every_episode_with_both_flags() {
        for backend in [EnvBackend::Cpu, EnvBackend::Device] {
            let mut batch =
                make_batch(&MakeArgs::registered("CartPole-v1"), 3, backend, &flex(), 5).unwrap();
            assert_eq!(batch.backend(), backend);
            assert_eq!((batch.num_envs(), batch.observation_dim()), (3, 4));
            batch.record_episodes(4);
            push_right(batch.as_mut(), 100);
            let counts = batch.recorded_counts().unwrap();
            let records = batch.read_records().unwrap();
            // Falling takes a few dozen steps: more episodes than the four recorded.
            assert!(counts.iter().all(|&c| c > 4), "{backend}: {counts:?}");
            assert_eq!(records.len(), 3 * 4, "{backend}");
            for r in &records {
                // Falling over is a termination; 500 steps are far away.
                assert!(r.terminated && !r.truncated, "{backend}: {r:?}");
                assert_eq!(r.episode_return, f64::from(r.length), "{backend}");
                assert!(r.step <= 100 && r.nth < 4);
            }
            let finished = batch.take_finished().unwrap();
            assert!(finished.total() >= records.len() as u64, "{backend}");
        }
    }

    /// Device actions work on CPU envs and host actions on device envs: each batch moves
    /// them where its envs are.
    #[test]
    fn each_backend_takes_both_kinds_of_actions() {
        let device = flex();
        for backend in [EnvBackend::Cpu, EnvBackend::Device] {
            let mut batch =
                make_batch(&MakeArgs::registered("CartPole-v1"), 2, backend, &device, 1).unwrap();
            let actions = DeviceActions::upload(Actions::Discrete(&[0, 1]), 2, &device);
            let step = batch.step(BatchActions::Device(&actions)).unwrap();
            let signals = step.signals.to_tensor(&device);
            assert_eq!(signals.dims(), [signal::COUNT, 2]);
            let rewards: Vec<f32> = signals
                .narrow(0, signal::REWARD, 1)
                .into_data()
                .try_into_vec::<f32>()
                .unwrap();
            assert_eq!(rewards, [1.0, 1.0], "{backend}");
            let x = batch.observations().to_tensor(4, &device);
            assert_eq!(x.dims(), [2, 4]);
        }
    }

    /// Per-episode seeds: every episode of a CPU batch starts as `Env::reset(seed)` would,
    /// with its seed, whichever env runs it.
    #[test]
    fn seeded_episodes_start_as_single_envs_do() {
        let mut batch = make_batch(
            &MakeArgs::registered("CartPole-v1"),
            2,
            EnvBackend::Cpu,
            &flex(),
            0,
        )
        .unwrap();
        batch.reset_seeded_episodes(&[10, 20], 1).unwrap();
        let mut starts: Vec<Vec<f32>> = Vec::new();
        let first = |batch: &dyn EnvBatch, env: usize| match batch.observations() {
            BatchObservations::Host(values) => values[env * 4..(env + 1) * 4].to_vec(),
            BatchObservations::Device(_) => unreachable!("CPU envs"),
        };
        starts.push(first(batch.as_ref(), 0));
        // Pushed right, both fall; the observation after each env's first episode ends is
        // the start of its second.
        let mut seen_second = [None, None];
        for _ in 0..200 {
            let step = batch
                .step(BatchActions::Host(Actions::Discrete(&[1, 1])))
                .unwrap();
            let StepSignals::Host { terminated, .. } = step.signals else {
                unreachable!("CPU envs")
            };
            let ended: Vec<usize> = (0..2).filter(|&e| terminated[e]).collect();
            for e in ended {
                if seen_second[e].is_none() {
                    seen_second[e] = Some(first(batch.as_ref(), e));
                }
            }
        }
        let expected = |seed: u64| make("CartPole-v1").unwrap().reset(Some(seed)).to_vec();
        assert_eq!(starts[0], expected(10));
        assert_eq!(seen_second[0].clone().unwrap(), expected(11));
        assert_eq!(seen_second[1].clone().unwrap(), expected(21));
        assert!(batch.reset_seeded_episodes(&[1], 1).is_err());
        // Device envs start from the same states, in float32, and refuse a wrong seed count.
        let mut on_device = make_batch(
            &MakeArgs::registered("CartPole-v1"),
            2,
            EnvBackend::Device,
            &flex(),
            0,
        )
        .unwrap();
        assert!(on_device.reset_seeded_episodes(&[1], 2).is_err());
        on_device.reset_seeded_episodes(&[10, 20], 2).unwrap();
        let BatchObservations::Device(observed) = on_device.observations() else {
            unreachable!("device envs")
        };
        let observed = observed.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(observed, [expected(10), expected(20)].concat());
    }

    #[test]
    fn snapshots_restore_on_their_own_backend_only() {
        let device = flex();
        let mut cpu = make_batch(
            &MakeArgs::registered("CartPole-v1"),
            2,
            EnvBackend::Cpu,
            &device,
            3,
        )
        .unwrap();
        let mut gpu = make_batch(
            &MakeArgs::registered("CartPole-v1"),
            2,
            EnvBackend::Device,
            &device,
            3,
        )
        .unwrap();
        push_right(cpu.as_mut(), 3);
        push_right(gpu.as_mut(), 3);
        let (cpu_snapshot, gpu_snapshot) = (cpu.snapshot().unwrap(), gpu.snapshot().unwrap());
        assert!(cpu.restore(&gpu_snapshot).is_err());
        assert!(gpu.restore(&cpu_snapshot).is_err());
        for (batch, snapshot) in [(&mut cpu, &cpu_snapshot), (&mut gpu, &gpu_snapshot)] {
            let before = batch.observations().to_tensor(4, &device).into_data();
            push_right(batch.as_mut(), 2);
            batch.restore(snapshot).unwrap();
            let after = batch.observations().to_tensor(4, &device).into_data();
            assert_eq!(after, before, "{}", batch.backend());
        }
    }

    /// Gymnasium's rule on both backends: an episode that terminates on the last step the
    /// time limit allows is truncated too, and recorded with both flags.
    #[test]
    fn a_termination_at_the_time_limit_carries_both_flags_on_both_backends() {
        let device = flex();
        for backend in [EnvBackend::Cpu, EnvBackend::Device] {
            // How many right pushes this start takes to fall, found on a copy of the batch
            // restored from its snapshot (device starts come from a generator that tests
            // running alongside also draw from).
            let mut batch =
                make_batch(&MakeArgs::registered("CartPole-v0"), 1, backend, &device, 0).unwrap();
            let start = batch.snapshot().unwrap();
            let mut probe =
                make_batch(&MakeArgs::registered("CartPole-v0"), 1, backend, &device, 0).unwrap();
            probe.restore(&start).unwrap();
            probe.record_episodes(1);
            push_right(probe.as_mut(), 100);
            let falls_after = probe.read_records().unwrap()[0].length;
            // The same start, placed so that it falls on step 200, CartPole-v0's limit.
            let snapshot = match start {
                BatchSnapshot::Cpu(mut s) => {
                    s.elapsed_steps[0] = 200 - falls_after;
                    BatchSnapshot::Cpu(s)
                }
                BatchSnapshot::Device(mut s) => {
                    s.elapsed[0] = (200 - falls_after) as f32;
                    BatchSnapshot::Device(s)
                }
            };
            batch.restore(&snapshot).unwrap();
            batch.record_episodes(1);
            push_right(batch.as_mut(), falls_after as usize);
            let records = batch.read_records().unwrap();
            assert_eq!(records.len(), 1, "{backend}: {records:?}");
            assert!(
                records[0].terminated && records[0].truncated,
                "{backend}: {records:?}"
            );
            assert_eq!(records[0].length, 200, "{backend}");
        }
    }
}
