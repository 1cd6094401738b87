//! Timing and memory of one policy in the three grad modes, side by side.

use std::time::{Duration, Instant};

use burn::prelude::Device;
use gradless_device::InferenceDevice;
use gradless_envs::{AutoresetMode, EnvError, MakeOptions, make_vector};
use gradless_policy::{
    ActError, ActionBatch, Agent, AgentDevice, Checkpoint, CheckpointError, Selection,
};
use serde::Serialize;
use thiserror::Error;

use crate::capture::CapturedPolicy;
use crate::memory::resident_bytes;
use crate::mode::{GradMode, ModedPolicy};

/// Observation batches the policies cycle through: real states from a greedy rollout.
const INPUT_BATCHES: usize = 8;

/// How much to measure.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Batch sizes (observations per policy step).
    pub batches: Vec<usize>,
    /// Length of one timed window.
    pub window: Duration,
    /// Timed windows per mode and batch; the median is reported.
    pub windows: usize,
    /// Untimed steps per mode first (kernel compilation, allocator warm-up).
    pub warmup_steps: usize,
    /// Steps of the forward-only rollout whose leftover memory is measured.
    pub memory_steps: usize,
    /// The rollout stops early once resident memory has grown by this much.
    pub memory_limit_bytes: u64,
    /// Also time each mode's step replayed from a graph captured with burn's `capture`.
    pub graph_capture: bool,
}

impl Plan {
    /// Timing only, in a few short windows: the quick comparison `gradless eval
    /// --grad-mode-report` prints beside an evaluation.
    pub fn quick_report() -> Self {
        Self {
            batches: Vec::new(),
            window: Duration::from_millis(200),
            windows: 5,
            warmup_steps: 5,
            memory_steps: 0,
            memory_limit_bytes: 0,
            graph_capture: false,
        }
    }
}

/// One device, batch and mode.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// The backend (`flex`, `wgpu`).
    pub device: String,
    /// Observations per policy step.
    pub batch: usize,
    /// The grad mode.
    pub mode: GradMode,
    /// Median time of one policy step (upload, forward, greedy selection, read-back).
    pub us_per_step: f64,
    /// Observations acted on per second at that median.
    pub steps_per_sec: f64,
    /// Timed windows behind the median.
    pub windows: usize,
    /// Forward-only steps the memory rollout ran (fewer than planned if it hit the limit).
    pub memory_steps: usize,
    /// Growth of the process's resident memory over the rollout, outputs dropped.
    pub memory_growth_bytes: i64,
    /// Growth of the device allocator's live bytes, where the backend reports it.
    pub device_memory_growth_bytes: Option<i64>,
    /// Whether this mode chose the same actions as the others on every input batch.
    pub actions_identical: bool,
    /// The same step replayed from a captured graph, when the plan asks for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_capture: Option<CapturedTiming>,
}

/// A mode's step replayed from a graph captured with burn's `capture`, timed in the same
/// alternating windows as the ordinary step.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CapturedTiming {
    /// Whether the device replayed a recorded graph; `false` where burn re-runs the step
    /// instead (flex, and autodiff devices, which do not implement capture).
    pub hardware_graph: bool,
    /// Median time of one replayed step (upload into the captured input, replay, greedy
    /// selection, read-back).
    pub us_per_step: f64,
    /// The ordinary step's median time over the replayed one's.
    pub speedup: f64,
    /// Whether the replays chose the ordinary step's actions on every input batch (each
    /// replay reads the batch written into the captured input just before it).
    pub actions_identical: bool,
}

/// Inference mode against `no_grad` for one policy at one batch.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Speedup {
    /// Observations per policy step.
    pub batch: usize,
    /// Median time of a `no_grad` step.
    pub no_grad_us_per_step: f64,
    /// Median time of an inference-mode step.
    pub inference_us_per_step: f64,
    /// `no_grad` time over inference time.
    pub inference_speedup: f64,
}

/// Why a measurement failed.
#[derive(Debug, Error)]
pub enum GradModeError {
    /// The checkpoint could not be loaded.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The policy failed to act.
    #[error(transparent)]
    Act(#[from] ActError),
    /// The env behind the input batches failed.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A plan that cannot be measured.
    #[error("{0}")]
    Plan(String),
}

/// Observation batches from a greedy rollout of the checkpoint's policy in its env.
fn input_batches(
    checkpoint: &Checkpoint,
    base: &Device,
    batch: usize,
) -> Result<(Vec<Vec<f32>>, usize), GradModeError> {
    let device = InferenceDevice::new(base);
    let agent = Agent::load(checkpoint, &AgentDevice::new(&device))?;
    let mut envs = make_vector(
        &checkpoint.metadata().env_id,
        batch,
        AutoresetMode::NextStep,
        MakeOptions::default(),
    )?;
    let dim = envs.single_observation_space().flat_dim();
    let mut observations = envs.reset(Some(0)).to_vec();
    let mut batches = Vec::with_capacity(INPUT_BATCHES);
    for _ in 0..INPUT_BATCHES {
        let actions = agent.act(&observations, dim, Selection::Greedy)?;
        batches.push(observations.clone());
        observations.copy_from_slice(envs.step(actions.as_actions())?.observations);
    }
    Ok((batches, dim))
}

/// One policy step on a batch of observations, however it is run.
trait TimedStep {
    fn step(&mut self, observations: &[f32], dim: usize) -> Result<ActionBatch, ActError>;
    fn sync(&self) -> Result<(), ActError>;
}

impl TimedStep for ModedPolicy {
    fn step(&mut self, observations: &[f32], dim: usize) -> Result<ActionBatch, ActError> {
        ModedPolicy::step(self, observations, dim)
    }
    fn sync(&self) -> Result<(), ActError> {
        ModedPolicy::sync(self)
    }
}

impl TimedStep for CapturedPolicy {
    fn step(&mut self, observations: &[f32], dim: usize) -> Result<ActionBatch, ActError> {
        CapturedPolicy::step(self, observations, dim)
    }
    fn sync(&self) -> Result<(), ActError> {
        CapturedPolicy::sync(self)
    }
}

/// Whether every policy picks the same actions on every input batch.
fn actions_agree(
    policies: &mut [&mut dyn TimedStep],
    inputs: &[Vec<f32>],
    dim: usize,
) -> Result<bool, ActError> {
    for input in inputs {
        let actions: Vec<ActionBatch> = policies
            .iter_mut()
            .map(|p| p.step(input, dim))
            .collect::<Result<_, _>>()?;
        if actions.windows(2).any(|pair| pair[0] != pair[1]) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The resident memory a measurement may add to the process, counted from its start: graphs
/// that tracked mode records are never freed, so every step it times or rolls out keeps its
/// memory, and the limit must hold across all of them.
struct Budget {
    baseline: u64,
    limit: u64,
    spent: std::cell::Cell<bool>,
}

impl Budget {
    /// How often the budget is looked at, in steps (reading it costs a file read).
    const CHECK_EVERY: usize = 10;

    fn start(plan: &Plan) -> Self {
        Self {
            baseline: resident_bytes().unwrap_or(0),
            limit: plan.memory_limit_bytes,
            spent: std::cell::Cell::new(false),
        }
    }

    /// Whether another step may run after `steps` of a loop: not once the process has grown
    /// past the limit since the measurement started (then no later loop runs more than the
    /// one step a timing needs).
    fn allows(&self, steps: usize) -> bool {
        if !self.spent.get() && steps.is_multiple_of(Self::CHECK_EVERY) {
            let grown = resident_bytes().unwrap_or(0).saturating_sub(self.baseline);
            self.spent.set(grown > self.limit);
        }
        !self.spent.get()
    }
}

/// Median microseconds per step of each policy. Windows alternate between the policies so
/// that a noisy stretch of the machine hits them all alike.
///
/// A window ends early once the process has spent its memory budget (its step times
/// still count: a window needs only one step).
fn time_steps(
    policies: &mut [&mut dyn TimedStep],
    inputs: &[Vec<f32>],
    dim: usize,
    plan: &Plan,
    budget: &Budget,
) -> Result<Vec<f64>, ActError> {
    for policy in policies.iter_mut() {
        for k in 0..plan.warmup_steps {
            policy.step(&inputs[k % inputs.len()], dim)?;
            if !budget.allows(k + 1) {
                break;
            }
        }
        policy.sync()?;
    }
    let mut samples = vec![Vec::with_capacity(plan.windows); policies.len()];
    for _ in 0..plan.windows {
        for (policy, samples) in policies.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            let mut steps = 0usize;
            // Each step reads its actions back, which waits for the device.
            while steps == 0 || start.elapsed() < plan.window {
                policy.step(&inputs[steps % inputs.len()], dim)?;
                steps += 1;
                if !budget.allows(steps) {
                    break;
                }
            }
            samples.push(start.elapsed().as_secs_f64() * 1e6 / steps as f64);
        }
    }
    Ok(samples.iter_mut().map(|s| median(s)).collect())
}

/// What a forward-only rollout leaves behind: steps run, resident growth, device growth.
fn memory_rollout(
    policy: &ModedPolicy,
    inputs: &[Vec<f32>],
    dim: usize,
    plan: &Plan,
    budget: &Budget,
) -> Result<(usize, i64, Option<i64>), ActError> {
    policy.sync()?;
    let resident_before = resident_bytes().unwrap_or(0);
    let device_before = policy.device_bytes_in_use();
    let mut steps = 0;
    while steps < plan.memory_steps {
        policy.step(&inputs[steps % inputs.len()], dim)?;
        steps += 1;
        if !budget.allows(steps) {
            break;
        }
    }
    policy.sync()?;
    let growth = resident_bytes().unwrap_or(0) as i64 - resident_before as i64;
    let device_growth = device_before
        .zip(policy.device_bytes_in_use())
        .map(|(before, after)| after as i64 - before as i64);
    Ok((steps, growth, device_growth))
}

/// Measures the checkpoint's policy on `base` (named `device_name`) in all three modes at
/// every batch of the plan; `on_measurement` sees each result as it is made.
///
/// Graphs recorded in tracked mode are never freed (burn frees graph state only in
/// `backward`), so their memory stays with the process: memory is measured as growth, with
/// the leakiest mode last.
pub fn measure(
    checkpoint: &Checkpoint,
    device_name: &str,
    base: &Device,
    plan: &Plan,
    mut on_measurement: impl FnMut(&Measurement),
) -> Result<Vec<Measurement>, GradModeError> {
    if plan.windows == 0 || plan.batches.contains(&0) {
        return Err(GradModeError::Plan(
            "need at least one timed window and batches of at least 1".into(),
        ));
    }
    let budget = Budget::start(plan);
    let mut results = Vec::new();
    for &batch in &plan.batches {
        let (inputs, dim) = input_batches(checkpoint, base, batch)?;
        let mut policies: Vec<ModedPolicy> =
            [GradMode::Inference, GradMode::NoGrad, GradMode::Tracked]
                .into_iter()
                .map(|mode| ModedPolicy::load(checkpoint, base, mode))
                .collect::<Result<_, _>>()?;
        let identical = actions_agree(&mut steppers(&mut policies), &inputs, dim)?;
        let (times, captured) = if plan.graph_capture {
            time_with_captures(&mut policies, &inputs, dim, plan, &budget)?
        } else {
            let times = time_steps(&mut steppers(&mut policies), &inputs, dim, plan, &budget)?;
            (times, vec![None; policies.len()])
        };
        for ((policy, us_per_step), graph_capture) in policies.iter().zip(times).zip(captured) {
            let (memory_steps, memory_growth_bytes, device_memory_growth_bytes) =
                memory_rollout(policy, &inputs, dim, plan, &budget)?;
            let measurement = Measurement {
                device: device_name.to_string(),
                batch,
                mode: policy.mode(),
                us_per_step,
                steps_per_sec: batch as f64 * 1e6 / us_per_step,
                windows: plan.windows,
                memory_steps,
                memory_growth_bytes,
                device_memory_growth_bytes,
                actions_identical: identical,
                graph_capture,
            };
            on_measurement(&measurement);
            results.push(measurement);
        }
    }
    Ok(results)
}

fn steppers<T: TimedStep>(policies: &mut [T]) -> Vec<&mut dyn TimedStep> {
    policies
        .iter_mut()
        .map(|p| p as &mut dyn TimedStep)
        .collect()
}

/// Each policy's median time per step and its captured twin's timing, timed in the same
/// alternating windows; the captured graphs are gone when this returns.
fn time_with_captures(
    policies: &mut [ModedPolicy],
    inputs: &[Vec<f32>],
    dim: usize,
    plan: &Plan,
    budget: &Budget,
) -> Result<(Vec<f64>, Vec<Option<CapturedTiming>>), ActError> {
    let mut captured: Vec<CapturedPolicy> = policies
        .iter()
        .map(|policy| CapturedPolicy::capture(policy, &inputs[0], dim))
        .collect();
    let mut identical = Vec::with_capacity(policies.len());
    for (policy, twin) in policies.iter_mut().zip(&mut captured) {
        identical.push(actions_agree(
            &mut [policy as &mut dyn TimedStep, twin],
            inputs,
            dim,
        )?);
    }
    let mut all = steppers(policies);
    all.extend(steppers(&mut captured));
    let mut times = time_steps(&mut all, inputs, dim, plan, budget)?;
    let replayed = times.split_off(policies.len());
    let timings = captured
        .iter()
        .zip(replayed)
        .zip(identical)
        .zip(&times)
        .map(|(((twin, us_per_step), actions_identical), ordinary)| {
            Some(CapturedTiming {
                hardware_graph: twin.hardware_graph(),
                us_per_step,
                speedup: ordinary / us_per_step,
                actions_identical,
            })
        })
        .collect();
    Ok((times, timings))
}

/// How much faster inference mode is than `no_grad` for this policy at `batch`: the
/// number `gradless eval --grad-mode-report` shows.
pub fn inference_speedup(
    checkpoint: &Checkpoint,
    base: &Device,
    batch: usize,
    plan: &Plan,
) -> Result<Speedup, GradModeError> {
    if plan.windows == 0 || batch == 0 {
        return Err(GradModeError::Plan(
            "need at least one timed window and a batch of at least 1".into(),
        ));
    }
    let (inputs, dim) = input_batches(checkpoint, base, batch)?;
    let mut policies = [GradMode::NoGrad, GradMode::Inference]
        .into_iter()
        .map(|mode| ModedPolicy::load(checkpoint, base, mode))
        .collect::<Result<Vec<_>, _>>()?;
    let budget = Budget::start(plan);
    let times = time_steps(&mut steppers(&mut policies), &inputs, dim, plan, &budget)?;
    Ok(Speedup {
        batch,
        no_grad_us_per_step: times[0],
        inference_us_per_step: times[1],
        inference_speedup: times[0] / times[1],
    })
}

/// The median (the mean of the middle two for even counts).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::tests::shipped;

    fn quick_plan(batches: Vec<usize>) -> Plan {
        Plan {
            batches,
            window: Duration::from_millis(20),
            windows: 3,
            warmup_steps: 2,
            memory_steps: 300,
            memory_limit_bytes: 1 << 30,
            graph_capture: false,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    /// Forward-only steps with tracked parameters keep their graphs (and the activations
    /// saved for backward); inference mode keeps nothing.
    #[test]
    fn the_memory_limit_holds_for_the_whole_measurement() {
        let _exclusive = crate::memory::RESIDENT_MEMORY_TESTS.lock().unwrap();
        let limit: u64 = 32 << 20;
        let plan = Plan {
            // Long windows: tracked mode's timing alone would leak hundreds of MB.
            window: Duration::from_millis(400),
            memory_steps: 100_000,
            memory_limit_bytes: limit,
            ..quick_plan(vec![256])
        };
        let before = resident_bytes().unwrap();
        measure(
            &shipped("cartpole-v1-ppo"),
            "flex",
            &Device::flex(),
            &plan,
            |_| {},
        )
        .unwrap();
        let grown = resident_bytes().unwrap().saturating_sub(before);
        // The limit, and what the steps before the check that finds it spent (and the
        // setup) add.
        assert!(grown < limit + (32 << 20), "grew {grown} bytes");
    }

    #[test]
    fn tracked_rollouts_leave_memory_behind_and_inference_rollouts_do_not() {
        let _exclusive = crate::memory::RESIDENT_MEMORY_TESTS.lock().unwrap();
        let mut seen = Vec::new();
        let results = measure(
            &shipped("cartpole-v1-ppo"),
            "flex",
            &Device::flex(),
            &quick_plan(vec![256]),
            |m| seen.push(m.mode),
        )
        .unwrap();
        assert_eq!(
            seen,
            [GradMode::Inference, GradMode::NoGrad, GradMode::Tracked]
        );
        let by_mode = |mode| results.iter().find(|m| m.mode == mode).unwrap();
        for m in &results {
            assert!(m.actions_identical && m.us_per_step > 0.0 && m.memory_steps == 300);
        }
        // 300 steps of a 256-row batch through 64-wide layers save at least 256*64*4 bytes
        // per hidden layer per step when tracked: 40 MB.
        let tracked = by_mode(GradMode::Tracked).memory_growth_bytes;
        assert!(tracked > 20_000_000, "tracked grew {tracked} bytes");
        let inference = by_mode(GradMode::Inference).memory_growth_bytes;
        assert!(inference < tracked / 10, "inference grew {inference} bytes");
    }

    #[test]
    fn speedup_compares_no_grad_with_inference() {
        let speedup = inference_speedup(
            &shipped("cartpole-v1-dqn"),
            &Device::flex(),
            16,
            &quick_plan(vec![]),
        )
        .unwrap();
        assert_eq!(speedup.batch, 16);
        let ratio = speedup.no_grad_us_per_step / speedup.inference_us_per_step;
        assert!((speedup.inference_speedup - ratio).abs() < 1e-12);
        assert!(speedup.inference_speedup > 0.0);
    }

    #[test]
    fn empty_plans_are_refused() {
        let mut plan = quick_plan(vec![0]);
        let checkpoint = shipped("cartpole-v1-ppo");
        assert!(measure(&checkpoint, "flex", &Device::flex(), &plan, |_| {}).is_err());
        plan.batches = vec![4];
        plan.windows = 0;
        assert!(measure(&checkpoint, "flex", &Device::flex(), &plan, |_| {}).is_err());
    }
}
