//! An agent's host forward pass on flex (`PolicyForward::Host`) against burn's tensor
//! operations: the same actions, draws and episodes.

use burn::prelude::Device;
use gradless_device::InferenceDevice;
use gradless_device_envs::EnvBackend;
use gradless_envs::{EnvRng, MakeArgs};

use gradless_policy::{
    ActError, ActionBatch, ActionBounds, ActionHead, Activation, ActorCritic, Agent, EpisodePlan,
    ObservationNormalizer, PolicyForward, QNetwork, Selection, SquashedGaussianActor, run_episodes,
};

fn flex() -> InferenceDevice {
    InferenceDevice::new(&Device::flex())
}

/// `rows` observations of `dim` values, spread over a few units either side of zero.
fn observations(rows: usize, dim: usize) -> Vec<f32> {
    (0..rows * dim)
        .map(|k| ((k * 37 % 101) as f32 - 50.0) / 17.0)
        .collect()
}

fn agents() -> Vec<(&'static str, Agent)> {
    let device = flex();
    let rng = &mut EnvRng::from_seed(11);
    let mut normalizer = ObservationNormalizer::new(3, 5.0, 1e-8);
    normalizer.moments.update(&observations(9, 3));
    let discrete = ActorCritic::new(
        3,
        &[37, 20],
        Activation::Tanh,
        ActionHead::Categorical { n: 5 },
        rng,
        device.device(),
    );
    let gaussian = ActorCritic::new(
        3,
        &[64],
        Activation::Relu,
        ActionHead::Gaussian { dim: 2 },
        rng,
        device.device(),
    );
    let q = QNetwork::new(3, &[16, 16, 16], Activation::Relu, 3, rng, device.device());
    let bounds = ActionBounds {
        scale: vec![2.0, 0.5],
        bias: vec![0.0, 1.0],
        sb3: None,
    };
    let sac = SquashedGaussianActor::new(3, &[33], Activation::Tanh, bounds, rng, device.device());
    vec![
        (
            "categorical, normalised",
            Agent::actor_critic(&discrete, &device).with_normalizer(Some(normalizer)),
        ),
        ("gaussian", Agent::actor_critic(&gaussian, &device)),
        ("q-network", Agent::q_network(&q, &device)),
        ("squashed", Agent::soft_actor(&sac, &device)),
    ]
}

/// On flex an agent acts through the host loop; its outputs are the tensor operations'
/// to float32 rounding, for layers of widths that fill no whole tile, any number of
/// rows (a partial tile, a partial block, blocks on threads), with and without
/// normalisation, for every head.
#[test]
fn the_host_loop_computes_what_the_tensor_operations_compute() {
    for (name, agent) in agents() {
        assert_eq!(agent.forward(), PolicyForward::Host, "{name}");
        let tensor_ops = agent.clone().with_forward(PolicyForward::TensorOps);
        assert_eq!(tensor_ops.forward(), PolicyForward::TensorOps);
        for rows in [1, 7, 33, 700] {
            let x = observations(rows, 3);
            let (host, reference) = (
                agent.act(&x, 3, Selection::Greedy).unwrap(),
                tensor_ops.act(&x, 3, Selection::Greedy).unwrap(),
            );
            match (host, reference) {
                (ActionBatch::Continuous(a), ActionBatch::Continuous(b)) => {
                    assert_eq!(a.len(), b.len());
                    for (a, b) in a.iter().zip(&b) {
                        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{name}: {a} {b}");
                    }
                }
                (a, b) => assert_eq!(a, b, "{name}, {rows} rows"),
            }
        }
    }
}

/// Sampled actions draw from the host loop's outputs with the same generators: the
/// same actions as through tensor operations.
#[test]
fn sampled_actions_are_drawn_from_the_host_outputs() {
    let (_, agent) = agents().swap_remove(0);
    let tensor_ops = agent.clone().with_forward(PolicyForward::TensorOps);
    let x = observations(50, 3);
    let rngs = || (0..50).map(EnvRng::from_seed).collect::<Vec<_>>();
    let (mut a, mut b) = (rngs(), rngs());
    assert_eq!(
        agent.act(&x, 3, Selection::Sample(&mut a)).unwrap(),
        tensor_ops.act(&x, 3, Selection::Sample(&mut b)).unwrap()
    );
}

/// A NaN observation gives non-finite outputs, refused as a device's would be.
#[test]
fn non_finite_outputs_are_refused() {
    let (_, agent) = agents().swap_remove(1);
    let mut x = observations(4, 3);
    x[5] = f32::NAN;
    assert!(matches!(
        agent.act(&x, 3, Selection::Greedy),
        Err(ActError::NonFinite)
    ));
}

/// The shipped agents' greedy episodes through the host loop are those through tensor
/// operations, episode by episode (PPO's and DQN's CartPole, MountainCar's DQN,
/// Pendulum's SAC).
#[test]
fn shipped_agents_give_the_same_episodes_through_the_host_loop() {
    for (name, env) in [
        ("cartpole-v1-ppo", "CartPole-v1"),
        ("cartpole-v1-dqn", "CartPole-v1"),
        ("mountaincar-v0-dqn", "MountainCar-v0"),
        ("pendulum-v1-sac", "Pendulum-v1"),
    ] {
        let path = gradless_test_support::shipped_checkpoint(name);
        let checkpoint = gradless_policy::Checkpoint::open(&path).unwrap();
        let agent = Agent::load(&checkpoint, &gradless_policy::AgentDevice::new(&flex())).unwrap();
        assert_eq!(agent.forward(), PolicyForward::Host, "{name}");
        let plan = EpisodePlan {
            first_seed: 500,
            episodes: 20,
            num_envs: 20,
            stochastic: false,
        };
        let env = MakeArgs::registered(env);
        let run = |agent: &Agent| {
            run_episodes(agent, &env, EnvBackend::Cpu, plan, |_| {}, |_| {}).unwrap()
        };
        let host = run(&agent);
        let tensor_ops = run(&agent.with_forward(PolicyForward::TensorOps));
        for (a, b) in host.iter().zip(&tensor_ops) {
            assert_eq!((a.episode, a.length), (b.episode, b.length), "{name}");
            assert!(
                (a.episode_return - b.episode_return).abs() < 1e-3,
                "{name}: {a:?} {b:?}"
            );
        }
    }
}
