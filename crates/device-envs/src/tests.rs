//! Device envs against the CPU envs, step rules, records and snapshots, on flex.

use super::*;
use gradless_envs::Action;
use gradless_envs::make;

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
    let pendulum = largest_difference("Pendulum-v1", |t, o| (t as f32 * 0.3).sin() * 2.5 - o[2]);
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
