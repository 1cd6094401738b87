//! The device envs on wgpu (lavapipe on CI) against the same envs on flex, and CartPole's fused
//! step against its tensor operations: same states, same actions, observations equal to float32
//! rounding, the same episodes.

use std::sync::{Mutex, MutexGuard};

use burn::prelude::{Device, Tensor, TensorData};
use burn::tensor::Transaction;
use gradless_device::{Backend, open};
use gradless_device_envs::{
    DeviceActions, DeviceSnapshot, DeviceVectorEnv, FinishedEpisodes, RecordedEpisode, StepKernel,
    make_device_vector,
};

const NUM_ENVS: usize = 64;

/// Held by every test that draws from the wgpu device's generator: it is one per device,
/// shared by the test threads, so a test that seeds it must not see another draw from it.
static GENERATOR: Mutex<()> = Mutex::new(());

fn hold_generator() -> MutexGuard<'static, ()> {
    GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn observations(envs: &DeviceVectorEnv) -> Vec<f32> {
    envs.observations()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Action `t` of env `i`: alternating pushes for CartPole, a swinging torque for Pendulum.
fn actions(id: &str, t: usize, device: &Device) -> DeviceActions {
    if id.starts_with("CartPole") {
        let pushes: Vec<i64> = (0..NUM_ENVS).map(|i| ((t + i) % 2) as i64).collect();
        DeviceActions::Discrete(Tensor::from_data(
            TensorData::new(pushes, [NUM_ENVS]),
            device,
        ))
    } else {
        let torques: Vec<f32> = (0..NUM_ENVS)
            .map(|i| ((t + i) as f32 * 0.37).sin() * 2.5)
            .collect();
        DeviceActions::Continuous(Tensor::from_data(
            TensorData::new(torques, [NUM_ENVS, 1]),
            device,
        ))
    }
}

#[test]
fn wgpu_device_envs_follow_flex() {
    let _generator = hold_generator();
    let wgpu = open(Backend::Wgpu).expect("a wgpu adapter (lavapipe without a GPU)");
    let flex = open(Backend::Flex).unwrap();
    for (id, width) in [("CartPole-v1", 4), ("Pendulum-v1", 2)] {
        let start: Vec<f64> = (0..NUM_ENVS * width)
            .map(|k| ((k as f64) * 0.61).sin() * 0.04)
            .collect();
        let mut on_gpu = make_device_vector(id, NUM_ENVS, &wgpu).unwrap();
        let mut on_cpu = make_device_vector(id, NUM_ENVS, &flex).unwrap();
        assert_eq!(on_gpu.step_kernel(), StepKernel::Fused, "{id}");
        assert_eq!(on_cpu.step_kernel(), StepKernel::TensorOps, "{id}");
        on_gpu.set_state(&start);
        on_cpu.set_state(&start);
        for t in 0..30 {
            on_gpu.step(&actions(id, t, &wgpu)).unwrap();
            on_cpu.step(&actions(id, t, &flex)).unwrap();
        }
        // Episodes end on the same steps on both; an env that restarted drew its new start
        // from its own device's generator, so only the others are compared.
        let finished_gpu = on_gpu.take_finished().unwrap();
        let finished_cpu = on_cpu.take_finished().unwrap();
        assert_eq!(finished_gpu, finished_cpu, "{id}");
        let running: Vec<usize> = (0..NUM_ENVS)
            .filter(|&i| finished_cpu.count[i] == 0)
            .collect();
        assert!(running.len() >= NUM_ENVS / 2, "{id}: {finished_cpu:?}");
        let dim = on_cpu.observation_dim();
        let (gpu, cpu) = (observations(&on_gpu), observations(&on_cpu));
        let worst = running
            .iter()
            .flat_map(|&i| (i * dim..(i + 1) * dim).map(|k| (gpu[k] - cpu[k]).abs()))
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{id}: wgpu and flex differ by {worst}");
    }
}

/// What a run of envs did, step by step and in total.
#[derive(Debug, PartialEq)]
struct Run {
    /// Per step: rewards, terminated, truncated and reset flags of every env.
    signals: Vec<[Vec<f32>; 4]>,
    finished: FinishedEpisodes,
    records: Vec<RecordedEpisode>,
    observations: Vec<f32>,
}

/// Envs in four kinds, `i % 4`: 0 acts badly (CartPole: always pushes right and falls within
/// a few steps, again and again); 1 starts 10 steps before the time limit, so it cuts them;
/// 2 acts well; 3 ended its episode on the step before, so it restarts first.
fn four_kinds(state_dim: usize, time_limit: u32) -> DeviceSnapshot {
    let kind = |i: usize| i % 4;
    let state = (0..state_dim)
        .map(|k| {
            (0..NUM_ENVS)
                .map(|i| ((i * state_dim + k) as f32 * 0.61).sin() * 0.04)
                .collect()
        })
        .collect();
    let elapsed: Vec<f32> = (0..NUM_ENVS)
        .map(|i| {
            if kind(i) == 1 {
                (time_limit - 10) as f32
            } else {
                0.0
            }
        })
        .collect();
    DeviceSnapshot {
        state,
        episode_return: vec![0.0; NUM_ENVS],
        elapsed,
        needs_reset: (0..NUM_ENVS).map(|i| kind(i) == 3).collect(),
    }
}

/// The [`four_kinds`] policy: actions from `[NUM_ENVS, dim]` observations, on the device.
/// CartPole balances (push right when the pole leans or turns right); MountainCar pumps
/// (accelerate along the velocity); Pendulum pushes against its angular velocity. Kind 0
/// always pushes right.
fn act(id: &str, observations: Tensor<2>, device: &Device) -> DeviceActions {
    let bad: Vec<f32> = (0..NUM_ENVS).map(|i| f32::from(i % 4 == 0)).collect();
    let bad = Tensor::<1>::from_data(TensorData::new(bad, [NUM_ENVS]), device);
    let column = |k: usize| observations.clone().narrow(1, k, 1).squeeze_dim::<1>(1);
    match id {
        "CartPole-v1" => {
            let lean = column(2) + column(3) * 0.5 + bad;
            DeviceActions::Discrete(lean.greater_elem(0.0).int())
        }
        "MountainCar-v0" => {
            let along = (column(1) + bad).greater_equal_elem(0.0).int() * 2;
            DeviceActions::Discrete(along)
        }
        _ => {
            let torque = column(2) * -1.5 + bad * 3.0;
            DeviceActions::Continuous(torque.unsqueeze_dim(1))
        }
    }
}

/// `steps` steps of [`four_kinds`] envs of `id` with `kernel`, every env's signals read back
/// each step, restarts drawn from `seed`.
fn run(device: &Device, id: &str, kernel: StepKernel, seed: u64, steps: usize) -> Run {
    device.seed(seed);
    let mut envs = make_device_vector(id, NUM_ENVS, device).unwrap();
    envs.use_step_kernel(kernel).unwrap();
    let state_dim = envs.snapshot().unwrap().state.len();
    let time_limit = gradless_envs::spec(id).unwrap().max_episode_steps.unwrap();
    envs.restore(&four_kinds(state_dim, time_limit)).unwrap();
    envs.record_episodes(8);
    let mut observations = envs.observations();
    let mut signals = Vec::new();
    for _ in 0..steps {
        let step = envs.step(&act(id, observations, device)).unwrap();
        let read = Transaction::default()
            .register(step.rewards())
            .register(step.terminated().float())
            .register(step.truncated().float())
            .register(step.reset().float())
            .execute();
        let values: Vec<Vec<f32>> = read
            .into_iter()
            .map(|d| d.convert::<f32>().try_into_vec::<f32>().unwrap())
            .collect();
        signals.push(values.try_into().unwrap());
        observations = step.observations;
    }
    Run {
        signals,
        finished: envs.take_finished().unwrap(),
        records: envs.read_records().unwrap(),
        observations: observations
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap(),
    }
}

#[test]
fn fused_steps_match_their_tensor_operations() {
    let _generator = hold_generator();
    let wgpu = open(Backend::Wgpu).expect("a wgpu adapter (lavapipe without a GPU)");
    // Long enough for falls, restarts and the time limit, short enough that the two stay
    // within rounding of each other (1e-5 after 100 steps of balancing). A flag could still
    // differ if a falling pole crossed its threshold within that rounding: with ~100
    // crossings a run, each landing within 1e-7 of 0.2095 rad about once in 4e5, this test
    // would fail about once in 4000 runs, for that reason only.
    let steps = 60;
    for id in ["CartPole-v1", "MountainCar-v0", "Pendulum-v1"] {
        let fused = run(&wgpu, id, StepKernel::Fused, 3, steps);
        let tensor_ops = run(&wgpu, id, StepKernel::TensorOps, 3, steps);
        let first_difference = (0..steps).find_map(|t| {
            (0..4).find_map(|k| {
                (0..NUM_ENVS)
                    .find(|&i| {
                        (fused.signals[t][k][i] - tensor_ops.signals[t][k][i]).abs()
                            > 1e-4 * fused.signals[t][k][i].abs().max(1.0)
                    })
                    .map(|i| (t, k, i))
            })
        });
        assert_eq!(first_difference, None, "{id}: (step, signal, env)");
        assert_eq!(fused.finished.count, tensor_ops.finished.count, "{id}");
        assert_eq!(
            fused.records.len(),
            tensor_ops.records.len(),
            "{id}: {:?}",
            fused.records
        );
        for (a, b) in fused.records.iter().zip(&tensor_ops.records) {
            assert_eq!(
                (a.env_index, a.nth, a.length, a.truncated),
                (b.env_index, b.nth, b.length, b.truncated),
                "{id}"
            );
            let scale = a.episode_return.abs().max(1.0);
            assert!(
                (a.episode_return - b.episode_return).abs() < 1e-5 * scale,
                "{id}: {a:?} {b:?}"
            );
        }
        let worst = fused
            .observations
            .iter()
            .zip(&tensor_ops.observations)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-4,
            "{id}: fused and tensor-op steps differ by {worst}"
        );
        // Every kind did what it is there for: kind 1 hit the time limit 10 steps in, kind 3
        // restarted on the first step, and an env finishes once per record.
        let time_limit = gradless_envs::spec(id).unwrap().max_episode_steps.unwrap();
        let of_kind = |k: usize| fused.records.iter().filter(move |r| r.env_index % 4 == k);
        assert!(
            of_kind(1).all(|r| r.truncated && r.length == time_limit),
            "{id}"
        );
        assert_eq!(of_kind(1).count(), NUM_ENVS / 4, "{id}");
        let restarted_first: Vec<usize> = (0..NUM_ENVS)
            .filter(|&i| fused.signals[0][3][i] == 1.0)
            .collect();
        assert_eq!(
            restarted_first,
            (3..NUM_ENVS).step_by(4).collect::<Vec<_>>(),
            "{id}"
        );
        assert_eq!(fused.finished.total(), fused.records.len() as u64, "{id}");
        if id == "CartPole-v1" {
            assert!(of_kind(0).all(|r| !r.truncated && r.length < 20) && of_kind(0).count() >= 32);
            assert_eq!(of_kind(2).count(), 0);
        }
    }
}

#[test]
fn fused_steps_are_refused_where_they_cannot_run() {
    let flex = open(Backend::Flex).unwrap();
    let mut on_flex = make_device_vector("CartPole-v1", NUM_ENVS, &flex).unwrap();
    assert!(on_flex.use_step_kernel(StepKernel::Fused).is_err());
}
