//! Running a plan's episodes (greedy or drawn) with the episode kernel: what it covers, the
//! program it is given (the network's weights, the normalisation, the head), the seeded
//! starts, and the launches until every slot has run its quota.

use burn::prelude::{Device, Tensor, TensorData};
use gradless_device_envs::{Physics, device_dynamics, seeded_starts};

use crate::acting::Agent;
use crate::actions::{ActError, read_f32};
use crate::episode_plan::{EpisodePlan, Progress, SeededEpisode, SlotQuotas};
use crate::policy_network::PolicyNetwork;
use crate::soft_actor_critic::{LOG_STD_MAX, LOG_STD_MIN};
use gradless_kernels::Head;
use gradless_kernels::episode_kernel::{
    EpisodeScalars, KernelHead, LOOP_ITERATION_LIMIT, ProgramShape, RECORD_WIDTH, envs_per_unit,
    launch, loop_iterations, padded_weights, slot,
};

/// The widest layer (inputs and outputs included) the kernel keeps in local arrays.
pub const MAX_KERNEL_WIDTH: usize = 256;

/// Steps every slot takes per launch at most: long enough that launches cost nothing next
/// to the work (a CartPole episode is at most 500 steps), short enough that progress is
/// heard and no launch runs for long. Larger networks take fewer (see
/// [`LOOP_ITERATION_LIMIT`]).
const STEPS_PER_LAUNCH: usize = 256;

/// Episode numbers and counts travel as `f32` in the kernel's tables: exact up to 2^24.
pub(crate) const MAX_KERNEL_EPISODES: usize = 1 << 24;

/// An agent's policy, greedy or drawing, in the form the kernel takes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EpisodeProgram {
    shape: ProgramShape,
    /// Layer widths, input first.
    layout: Vec<f32>,
    /// Each layer's `[in, out]` weights then its bias, the layers in order, each padded to a
    /// multiple of four values.
    weights: Vec<f32>,
    /// The observation mean then standard deviation (one unused value without
    /// normalisation).
    normalization: Vec<f32>,
    clip: f32,
    /// The head's parameters (see [`KernelHead`]; unused values zero).
    head: [f32; 4],
    time_limit: f32,
}

/// Whether a device runs cubecl kernels (wgpu, CUDA).
pub(crate) fn runs_cube_kernels(device: &Device) -> bool {
    matches!(
        device.clone().without_autodiff().as_dispatch(),
        burn::backend::DispatchDevice::Cube(_)
    )
}

/// Whether a device is a hardware GPU (not lavapipe, not the CPU).
fn on_hardware(device: &Device) -> bool {
    device.identity().is_some_and(|id| id.physical.is_some())
}

impl EpisodeProgram {
    /// The program for `agent`'s episodes of `env_id`, greedy or `stochastic` (actions
    /// drawn from the policy; a Q-network's are its argmax either way), or why the kernel
    /// does not cover them (the caller then steps per step).
    pub(crate) fn for_agent(agent: &Agent, env_id: &str, stochastic: bool) -> Result<Self, String> {
        if !runs_cube_kernels(agent.inference_device().device()) {
            return Err("the device runs no cubecl kernels (flex)".into());
        }
        let (dynamics, time_limit) = device_dynamics(env_id).map_err(|e| e.to_string())?;
        let physics = dynamics
            .fused_physics()
            .ok_or_else(|| format!("{env_id} has no kernel physics"))?;
        if stochastic && agent.epsilon() > 0.0 {
            return Err("ε-greedy actions are drawn on the host".into());
        }
        let network = agent.network().flat_mlp(agent.normalizer())?;
        // The kernel's continuous physics takes one action value.
        if matches!(&network.head, Head::Squashed { scale, .. } if scale.len() != 1) {
            return Err("the kernel takes one action value per step".into());
        }
        let (head, head_values) = match (&network.head, stochastic) {
            (Head::Argmax, true) if matches!(agent.network(), PolicyNetwork::ActorCritic(_)) => {
                (KernelHead::Categorical, [0.0; 4])
            }
            (Head::Argmax, _) => (KernelHead::Argmax, [0.0; 4]),
            (Head::Mean, false) => (KernelHead::Mean, [0.0; 4]),
            (Head::Mean, true) => (
                KernelHead::Gaussian,
                [gaussian_log_std(agent)?, 0.0, 0.0, 0.0],
            ),
            (Head::Squashed { scale, bias }, false) => {
                (KernelHead::TanhScale, [scale[0], bias[0], 0.0, 0.0])
            }
            (Head::Squashed { scale, bias }, true) => (
                KernelHead::SquashedGaussian,
                [scale[0], bias[0], LOG_STD_MIN as f32, LOG_STD_MAX as f32],
            ),
        };
        // The time limit is what bounds the launches: every episode ends within it.
        let limit = time_limit.ok_or_else(|| format!("{env_id} has no time limit"))?;
        let continuous = !matches!(head, KernelHead::Argmax | KernelHead::Categorical);
        if continuous != matches!(physics, Physics::Pendulum) {
            return Err(format!("the policy's actions do not suit {env_id}"));
        }
        let widest = network.widths.iter().copied().max().unwrap_or(0);
        if widest > MAX_KERNEL_WIDTH {
            return Err(format!(
                "a layer of {widest} units is wider than the kernel's {MAX_KERNEL_WIDTH}"
            ));
        }
        let (normalization, clip) = match network.normalization {
            None => (vec![0.0], 0.0),
            Some(n) => ([n.mean, n.std].concat(), n.clip),
        };
        let layout: Vec<f32> = network.widths.iter().map(|&w| w as f32).collect();
        Ok(Self {
            shape: ProgramShape {
                physics,
                max_width: widest.max(physics.observation_dim()),
                layers: layout.len() - 1,
                activation: network.activation.into(),
                head,
                normalized: clip > 0.0,
                envs_per_unit: envs_per_unit(on_hardware(agent.inference_device().device())),
                // Decided at launch, where the device's shared memory is known.
                shared_quads: 0,
            },
            layout,
            weights: padded_weights(&network.widths, &network.weights),
            normalization,
            clip,
            head: head_values,
            time_limit: limit as f32,
        })
    }
}

/// The log-std of an actor-critic's one Gaussian action value.
fn gaussian_log_std(agent: &Agent) -> Result<f32, String> {
    let PolicyNetwork::ActorCritic(model) = agent.network() else {
        return Err("only an actor-critic has a state-independent log-std".into());
    };
    let log_std = model
        .log_std()
        .ok_or("the actor-critic has no Gaussian head")?;
    match read_f32(log_std).map_err(|e| e.to_string())?[..] {
        [value] => Ok(value),
        ref values => Err(format!(
            "the kernel takes one action value per step, not {}",
            values.len()
        )),
    }
}

impl EpisodeProgram {
    /// Steps per launch for slots of at most `quota` episodes, or why not even one step
    /// stays within [`LOOP_ITERATION_LIMIT`].
    pub(crate) fn steps_per_launch(&self, quota: usize) -> Result<u32, String> {
        let widths: Vec<usize> = self.layout.iter().map(|&w| w as usize).collect();
        steps_within_limit(&widths, self.shape.head, self.shape.envs_per_unit, quota)
    }
}

/// Steps per launch of a kernel over a network of layer `widths` (input first) whose units
/// run `envs_per_unit` slots of at most `quota` episodes each, or why not even one step
/// stays within [`LOOP_ITERATION_LIMIT`].
pub(crate) fn steps_within_limit(
    widths: &[usize],
    head: KernelHead,
    envs_per_unit: usize,
    quota: usize,
) -> Result<u32, String> {
    // Half the limit: the count is of the loops written here, and the compiled shader
    // runs more (launches sized to the whole limit still went wrong on lavapipe).
    let iterations = |steps| loop_iterations(widths, head, envs_per_unit, steps, quota);
    let fits = |steps| iterations(steps) <= LOOP_ITERATION_LIMIT / 2;
    match (1..=STEPS_PER_LAUNCH).rev().find(|&steps| fits(steps)) {
        Some(steps) => Ok(steps as u32),
        None => Err(format!(
            "a launch of one step for {quota} episodes a slot takes {} loop iterations, \
             over half the {LOOP_ITERATION_LIMIT} lavapipe runs",
            iterations(1)
        )),
    }
}

fn upload<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Runs the plan's episodes with the episode kernel, `steps_per_launch` steps a launch (see
/// [`EpisodeProgram::steps_per_launch`]), slot `k` its quota from `quotas`, and returns them
/// in episode order; `on_progress` hears the finished count after every launch that raised
/// it.
///
/// Long because uploads, launches, read-backs and the records' bookkeeping share the slot
/// table's buffers across launches.
pub(crate) fn run_with_kernel(
    program: &EpisodeProgram,
    steps_per_launch: u32,
    env_id: &str,
    plan: &EpisodePlan,
    quotas: &SlotQuotas,
    device: &Device,
    mut on_progress: impl Progress,
) -> Result<Vec<SeededEpisode>, ActError> {
    if plan.episodes > MAX_KERNEL_EPISODES {
        return Err(ActError::Plan(format!(
            "the episode kernel runs at most {MAX_KERNEL_EPISODES} episodes at a time"
        )));
    }
    let state_dim = program.shape.physics.state_dim();
    let width = state_dim + slot::COUNT;
    let seeds = (0..plan.episodes).map(|e| plan.first_seed + e as u64);
    let starts = seeded_starts(env_id, seeds)?;
    // Whole groups of slots for the kernel's units, the extra slots running no episodes.
    let slots = quotas
        .quota
        .len()
        .next_multiple_of(program.shape.envs_per_unit);
    let mut table = Vec::with_capacity(slots * width);
    let mut plan_rows = Vec::with_capacity(slots * 2);
    for (&first, &quota) in quotas.first.iter().zip(&quotas.quota) {
        table.extend_from_slice(&starts[first * state_dim..(first + 1) * state_dim]);
        table.extend([0.0; slot::COUNT]);
        plan_rows.extend([first as f32, quota as f32]);
    }
    table.resize(slots * width, 0.0);
    plan_rows.resize(slots * 2, 0.0);
    let len = |v: &Vec<f32>| v.len();
    let layout = upload(program.layout.clone(), [len(&program.layout)], device);
    let weights = upload(program.weights.clone(), [len(&program.weights)], device);
    let normalization = upload(
        program.normalization.clone(),
        [len(&program.normalization)],
        device,
    );
    let head = upload(program.head.to_vec(), [program.head.len()], device);
    let starts = upload(starts, [plan.episodes, state_dim], device);
    let plan_rows = upload(plan_rows, [slots, 2], device);
    let mut table = upload(table, [slots, width], device);
    let mut records = Tensor::<2>::zeros([plan.episodes, RECORD_WIDTH], device);
    let scalars = EpisodeScalars {
        steps: steps_per_launch,
        time_limit: program.time_limit,
        clip: program.clip,
        first_seed: [plan.first_seed as u32, (plan.first_seed >> 32) as u32],
    };
    let mut finished = 0;
    while finished < plan.episodes {
        (table, records) = launch(
            &layout,
            &weights,
            &normalization,
            &head,
            &starts,
            &plan_rows,
            table,
            records,
            scalars,
            program.shape,
        );
        let counts = read_f32(table.clone().narrow(1, state_dim + slot::FINISHED, 1))?;
        let now = counts.iter().map(|&c| c as usize).sum();
        if now > finished {
            finished = now;
            if on_progress.finished(finished).is_break() {
                return Err(ActError::Stopped);
            }
        }
    }
    let records = read_f32(records)?;
    Ok(records
        .chunks(RECORD_WIDTH)
        .enumerate()
        .map(|(episode, r)| SeededEpisode {
            episode,
            seed: plan.first_seed + episode as u64,
            episode_return: f64::from(r[0]),
            length: r[1] as u32,
            terminated: r[2] > 0.5,
            truncated: r[3] > 0.5,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use gradless_device::{Backend, InferenceDevice, open};
    use gradless_device_envs::EnvBackend;
    use gradless_envs::EnvRng;

    use super::*;
    use crate::acting::AgentDevice;
    use crate::episodes::{EpisodeRoute, run_episodes, run_episodes_per_step};
    use crate::network::Activation;
    use crate::network::{ActionHead, ActorCritic};
    use crate::soft_actor_critic::{ActionBounds, SquashedGaussianActor};
    use gradless_envs::MakeArgs;

    fn wgpu() -> InferenceDevice {
        InferenceDevice::new(&open(Backend::Wgpu).expect("a wgpu adapter (lavapipe on CI)"))
    }

    fn shipped(name: &str, device: &InferenceDevice) -> Agent {
        let path = gradless_test_support::shipped_checkpoint(name);
        let checkpoint = crate::Checkpoint::open(&path).unwrap();
        Agent::load(&checkpoint, &AgentDevice::new(device)).unwrap()
    }

    fn plan(first_seed: u64, episodes: usize, num_envs: usize) -> EpisodePlan {
        EpisodePlan {
            first_seed,
            episodes,
            num_envs,
            stochastic: false,
        }
    }

    fn run(agent: &Agent, env: &str, backend: EnvBackend, plan: EpisodePlan) -> Vec<SeededEpisode> {
        run_episodes(
            agent,
            &MakeArgs::registered(env),
            backend,
            plan,
            |_| {},
            |_| {},
        )
        .unwrap()
    }

    fn per_step(agent: &Agent, env: &str, plan: EpisodePlan) -> Vec<SeededEpisode> {
        let env = MakeArgs::registered(env);
        run_episodes_per_step(agent, &env, EnvBackend::Device, plan, |_| {}, |_| {}).unwrap()
    }

    /// Whether two returns agree to float32 rounding (integer rewards sum exactly).
    fn same_return(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-4 * b.abs().max(1.0)
    }

    /// How many of `episodes` have the returns of `reference`, episode by episode (and the
    /// same numbers and seeds).
    fn agreeing(episodes: &[SeededEpisode], reference: &[SeededEpisode]) -> usize {
        assert_eq!(episodes.len(), reference.len());
        episodes
            .iter()
            .zip(reference)
            .filter(|(a, b)| {
                assert_eq!((a.episode, a.seed), (b.episode, b.seed));
                assert!(a.terminated || a.truncated);
                same_return(a.episode_return, b.episode_return)
            })
            .count()
    }

    /// The kernel's episodes are the per-step device path's (the same seeded starts, the
    /// same float32 physics) for at least 99% of the shipped agents' greedy episodes; every
    /// planned episode is run once, numbered and seeded as on the CPU. How many also match
    /// the float64 CPU envs is printed, not asserted: float32 trajectories drift apart.
    #[test]
    fn kernel_episodes_match_the_per_step_path_for_the_shipped_agents() {
        let (gpu, cpu) = (wgpu(), InferenceDevice::new(&Device::flex()));
        let episodes = 200;
        let mut failures = Vec::new();
        for (name, env) in [
            ("cartpole-v1-ppo", "CartPole-v1"),
            ("cartpole-v1-dqn", "CartPole-v1"),
            ("mountaincar-v0-dqn", "MountainCar-v0"),
            ("pendulum-v1-sac", "Pendulum-v1"),
        ] {
            let on_gpu = shipped(name, &gpu);
            assert!(
                EpisodeProgram::for_agent(&on_gpu, env, false).is_ok(),
                "{name}"
            );
            let plan = plan(1000, episodes, 64);
            let kernel = run(&on_gpu, env, EnvBackend::Device, plan);
            let stepped = per_step(&on_gpu, env, plan);
            let cpu_envs = run(&shipped(name, &cpu), env, EnvBackend::Cpu, plan);
            let same = agreeing(&kernel, &stepped);
            eprintln!(
                "{name}: {same}/{episodes} kernel episodes with the per-step path's return, \
                 {}/{episodes} with the CPU envs' (per-step: {})",
                agreeing(&kernel, &cpu_envs),
                agreeing(&stepped, &cpu_envs)
            );
            failures.push((name, same));
        }
        assert!(
            failures
                .iter()
                .all(|&(_, same)| same * 100 >= episodes * 99),
            "{failures:?}"
        );
    }

    /// Each slot runs exactly its quota, and an episode is the same whichever slot runs it.
    #[test]
    fn kernel_episodes_do_not_depend_on_how_many_slots_run_them() {
        let device = wgpu();
        let agent = shipped("cartpole-v1-dqn", &device);
        let all = run(&agent, "CartPole-v1", EnvBackend::Device, plan(7, 23, 23));
        let numbers: Vec<usize> = all.iter().map(|e| e.episode).collect();
        assert_eq!(numbers, (0..23).collect::<Vec<_>>());
        for slots in [1, 5, 64] {
            let mut progress = Vec::new();
            let episodes = run_episodes(
                &agent,
                &MakeArgs::registered("CartPole-v1"),
                EnvBackend::Device,
                plan(7, 23, slots),
                |_| {},
                |done| progress.push(done),
            )
            .unwrap();
            assert_eq!(episodes, all, "{slots} slots");
            assert_eq!(progress.last(), Some(&23));
        }
    }

    fn drawn(first_seed: u64, episodes: usize, num_envs: usize) -> EpisodePlan {
        EpisodePlan {
            stochastic: true,
            ..plan(first_seed, episodes, num_envs)
        }
    }

    /// The mean of `a[i] - b[i]` over episodes that started from the same seeds, and its
    /// standard error.
    fn paired_difference(a: &[SeededEpisode], b: &[SeededEpisode]) -> (f64, f64) {
        let d: Vec<f64> = a
            .iter()
            .zip(b)
            .map(|(a, b)| a.episode_return - b.episode_return)
            .collect();
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        let variance = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, (variance / n).sqrt())
    }

    /// Drawn actions in the kernel: an episode's draws are keyed by its seed and step, so
    /// the episodes do not depend on the number of slots; they differ from the greedy ones;
    /// and they follow the policy's distribution: paired with the CPU envs' drawn episodes
    /// from the same seeds (another generator), the returns agree within four standard
    /// errors. For each head that draws: categorical (a fresh, nearly uniform policy),
    /// Gaussian (a fresh one with standard deviation 1) and SAC's squashed Gaussian (a fresh
    /// actor). Long because the three heads share one statistical check, written once here.
    #[test]
    fn drawn_episodes_follow_the_policy_whatever_the_number_of_slots() {
        let (gpu, cpu) = (wgpu(), InferenceDevice::new(&Device::flex()));
        let fresh = |head, observations, device: &InferenceDevice| {
            let model = ActorCritic::new(
                observations,
                &[16],
                Activation::Tanh,
                head,
                &mut EnvRng::from_seed(9),
                device.device(),
            );
            Agent::actor_critic(&model, device)
        };
        let fresh_sac = |device: &InferenceDevice| {
            let bounds = ActionBounds {
                scale: vec![2.0],
                bias: vec![0.0],
                sb3: None,
            };
            let actor = SquashedGaussianActor::new(
                3,
                &[16],
                Activation::Tanh,
                bounds,
                &mut EnvRng::from_seed(9),
                device.device(),
            );
            Agent::soft_actor(&actor, device)
        };
        let categorical = ActionHead::Categorical { n: 2 };
        let gaussian = ActionHead::Gaussian { dim: 1 };
        for (name, env, episodes, on_gpu, on_cpu) in [
            (
                "categorical",
                "CartPole-v1",
                300,
                fresh(categorical, 4, &gpu),
                fresh(categorical, 4, &cpu),
            ),
            (
                "gaussian",
                "Pendulum-v1",
                100,
                fresh(gaussian, 3, &gpu),
                fresh(gaussian, 3, &cpu),
            ),
            (
                "squashed",
                "Pendulum-v1",
                100,
                fresh_sac(&gpu),
                fresh_sac(&cpu),
            ),
        ] {
            let all = run(
                &on_gpu,
                env,
                EnvBackend::Device,
                drawn(11, episodes, episodes),
            );
            for slots in [7, 32] {
                let again = run(&on_gpu, env, EnvBackend::Device, drawn(11, episodes, slots));
                assert_eq!(again, all, "{name}: {slots} slots");
            }
            let greedy = run(
                &on_gpu,
                env,
                EnvBackend::Device,
                plan(11, episodes, episodes),
            );
            assert!(
                agreeing(&all, &greedy) < episodes,
                "{name}: no episode drew"
            );
            let on_cpu = run(&on_cpu, env, EnvBackend::Cpu, drawn(11, episodes, 16));
            let (difference, error) = paired_difference(&all, &on_cpu);
            eprintln!("{name}: kernel minus CPU envs, mean return {difference:.2} +- {error:.2}");
            assert!(
                difference.abs() <= 4.0 * error.max(1e-3),
                "{name}: {difference} +- {error}"
            );
        }
    }

    /// Layers of 6 outputs (summed one by one, their values padded from 30 to 32) and of 32
    /// (in blocks of sixteen, starting where the padding ends) give the per-step path's
    /// episodes.
    #[test]
    fn padded_and_blocked_layers_run_the_per_step_paths_episodes() {
        let device = wgpu();
        let model = ActorCritic::new(
            4,
            &[6, 32],
            Activation::Relu,
            ActionHead::Categorical { n: 2 },
            &mut EnvRng::from_seed(21),
            device.device(),
        );
        let agent = Agent::actor_critic(&model, &device);
        let plan = plan(3, 50, 16);
        let kernel = run(&agent, "CartPole-v1", EnvBackend::Device, plan);
        let stepped = per_step(&agent, "CartPole-v1", plan);
        assert!(agreeing(&kernel, &stepped) >= 49, "{kernel:?}\n{stepped:?}");
    }

    /// A network wider than the kernel's local arrays is stepped per step instead: the
    /// episodes still run, each from its seed.
    #[test]
    fn a_network_too_wide_for_the_kernel_falls_back_to_per_step() {
        let device = wgpu();
        let model = ActorCritic::new(
            4,
            &[MAX_KERNEL_WIDTH + 1],
            Activation::Tanh,
            ActionHead::Categorical { n: 2 },
            &mut EnvRng::from_seed(5),
            device.device(),
        );
        let agent = Agent::actor_critic(&model, &device);
        let why = EpisodeProgram::for_agent(&agent, "CartPole-v1", false).unwrap_err();
        assert!(why.contains("wider"), "{why}");
        let (route, why) =
            EpisodeRoute::preferred(&agent, &MakeArgs::registered("CartPole-v1"), &plan(0, 6, 3));
        assert_eq!(route.backend(), EnvBackend::Cpu);
        assert!(why.contains("wider"), "{why}");
        let episodes = run(&agent, "CartPole-v1", EnvBackend::Device, plan(0, 6, 3));
        assert_eq!(episodes.len(), 6);
        let seeds: Vec<u64> = episodes.iter().map(|e| e.seed).collect();
        assert_eq!(seeds, (0..6).collect::<Vec<u64>>());
    }

    /// Left open, the envs step on the device exactly where the kernel runs the episodes:
    /// wgpu with an env that has kernel physics, greedy or drawn; the CPU on flex, for an
    /// env without a device version and for more episodes than the kernel counts.
    #[test]
    fn envs_left_open_step_where_the_kernel_runs() {
        let (gpu, cpu) = (wgpu(), InferenceDevice::new(&Device::flex()));
        let on_gpu = shipped("cartpole-v1-ppo", &gpu);
        for stochastic in [false, true] {
            let plan = EpisodePlan {
                stochastic,
                ..plan(0, 100, 16)
            };
            let (route, why) =
                EpisodeRoute::preferred(&on_gpu, &MakeArgs::registered("CartPole-v1"), &plan);
            assert_eq!(route.backend(), EnvBackend::Device, "{why}");
        }
        let too_many = plan(0, MAX_KERNEL_EPISODES + 1, 16);
        let (route, why) =
            EpisodeRoute::preferred(&on_gpu, &MakeArgs::registered("CartPole-v1"), &too_many);
        assert_eq!(route.backend(), EnvBackend::Cpu);
        assert!(why.contains("at most"), "{why}");
        let plan = plan(0, 100, 16);
        let (route, why) =
            EpisodeRoute::preferred(&on_gpu, &MakeArgs::registered("Acrobot-v1"), &plan);
        assert_eq!(route.backend(), EnvBackend::Cpu, "{why}");
        let mut lighter = MakeArgs::registered("CartPole-v1");
        lighter.options.sutton_barto_reward = true;
        let (route, why) = EpisodeRoute::preferred(&on_gpu, &lighter, &plan);
        assert_eq!(route.backend(), EnvBackend::Cpu);
        assert!(why.contains("registered physics"), "{why}");
        let on_flex = shipped("cartpole-v1-ppo", &cpu);
        let (route, why) =
            EpisodeRoute::preferred(&on_flex, &MakeArgs::registered("CartPole-v1"), &plan);
        assert_eq!(route.backend(), EnvBackend::Cpu);
        assert!(why.contains("flex"), "{why}");
    }
}
