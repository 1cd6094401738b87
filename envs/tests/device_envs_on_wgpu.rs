//! The device envs on wgpu (lavapipe on CI) against the same envs on flex: same states, same
//! actions, observations equal to float32 rounding, episode statistics read back alike.

use burn::prelude::{Device, Tensor, TensorData};
use gradless_device::{Backend, open};
use gradless_envs::device::{DeviceActions, DeviceVectorEnv, make_device_vector};

const NUM_ENVS: usize = 64;

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
    let wgpu = open(Backend::Wgpu).expect("a wgpu adapter (lavapipe without a GPU)");
    let flex = open(Backend::Flex).unwrap();
    for (id, width) in [("CartPole-v1", 4), ("Pendulum-v1", 2)] {
        let start: Vec<f64> = (0..NUM_ENVS * width)
            .map(|k| ((k as f64) * 0.61).sin() * 0.04)
            .collect();
        let mut on_gpu = make_device_vector(id, NUM_ENVS, &wgpu).unwrap();
        let mut on_cpu = make_device_vector(id, NUM_ENVS, &flex).unwrap();
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
