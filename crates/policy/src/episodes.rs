//! Running an agent for a fixed set of episodes on an env batch of either backend.

use gradless_device_envs::EnvBackend;
use gradless_device_envs::{StepSignals, device_env_id, make_batch};
use gradless_envs::{Action, EnvRng, MakeArgs};

use crate::acting::Agent;
use crate::actions::{ActError, Selection};
use crate::device_episodes::{EpisodeProgram, MAX_KERNEL_EPISODES, run_with_kernel};
use crate::episode_plan::{EpisodePlan, Progress, SeededEpisode, SlotQuotas};

/// Episode `seed`'s action generator (stochastic plans), apart from the env's own stream.
fn action_rng(seed: u64) -> EnvRng {
    EnvRng::from_seed(seed ^ 0x4143_5400_0000_0000)
}

/// Steps between checks of the recorded-episode counts on a device (each check waits for
/// the queued steps); CPU envs count on the host and are checked every step.
const DEVICE_CHECK_EVERY: usize = 32;

/// Runs the plan's episodes of `env` with the envs on `backend` and returns them in
/// episode order; `on_episode` then sees each in turn.
///
/// Unbiased by a fixed quota: env slot `k` runs exactly its share of the episodes (the first
/// `episodes % num_envs` slots one more), and every one of them is counted, long or short.
/// Episode numbers go slot by slot.
///
/// Each episode has a seed of its own, `first_seed + episode`, and in stochastic plans an
/// action generator of its own, so results do not depend on `num_envs`. Device envs start
/// from the states the CPU envs start from with those seeds (in float32) and run whole
/// episodes in one kernel launch where the device runs cubecl kernels and the network fits
/// it (see [`MAX_KERNEL_WIDTH`](crate::MAX_KERNEL_WIDTH)); otherwise, and on flex, one
/// greedy step at a time. The kernel draws a stochastic plan's actions from a generator
/// keyed by the episode's seed and step (not the CPU envs' generator: the same
/// distribution, other draws).
///
/// `on_progress` hears how many of the planned episodes have finished whenever that number
/// grows (checked every step on the CPU, every few dozen on a device).
pub fn run_episodes(
    agent: &Agent,
    env: &MakeArgs,
    backend: EnvBackend,
    plan: EpisodePlan,
    on_episode: impl FnMut(&SeededEpisode),
    on_progress: impl Progress,
) -> Result<Vec<SeededEpisode>, ActError> {
    let route = EpisodeRoute::on(agent, env, backend, &plan);
    run_routed(agent, env, route, plan, on_episode, on_progress)
}

/// [`run_episodes`] along a route decided before (see [`EpisodeRoute::preferred`]), whose
/// kernel program is not built again.
pub fn run_routed(
    agent: &Agent,
    env: &MakeArgs,
    route: EpisodeRoute,
    plan: EpisodePlan,
    on_episode: impl FnMut(&SeededEpisode),
    on_progress: impl Progress,
) -> Result<Vec<SeededEpisode>, ActError> {
    check_plan(&plan)?;
    let num_envs = plan.num_envs.min(plan.episodes);
    if num_envs == 0 {
        return Ok(Vec::new());
    }
    let backend = match route.0 {
        Route::Kernel { program, steps } => {
            let quotas = SlotQuotas::new(plan.episodes, num_envs);
            let device = agent.inference_device().device();
            let episodes = run_with_kernel(
                &program,
                steps,
                &env.id,
                &plan,
                &quotas,
                device,
                on_progress,
            )?;
            return finish(episodes, on_episode);
        }
        // Only the kernel draws actions on the device.
        Route::DeviceSteps { why } if plan.stochastic => {
            return Err(ActError::Plan(format!(
                "sampled actions with envs on the device need the episode kernel, and {why}"
            )));
        }
        Route::DeviceSteps { why } => {
            tracing::debug!(reason = %why, "episode kernel not used: stepping per step");
            EnvBackend::Device
        }
        Route::CpuSteps => EnvBackend::Cpu,
    };
    run_episodes_per_step(agent, env, backend, plan, on_episode, on_progress)
}

/// Where a plan's episodes run, decided once, the episode kernel's program (the network
/// packed and uploaded) built at most once.
pub struct EpisodeRoute(Route);

enum Route {
    /// Device envs, whole episodes in the episode kernel, `steps` steps a launch (for the
    /// plan's largest slot quota).
    Kernel { program: EpisodeProgram, steps: u32 },
    /// Device envs, one policy step and one env step at a time, and why not in the kernel.
    DeviceSteps { why: String },
    /// Gymnasium-exact CPU envs, one step at a time.
    CpuSteps,
}

impl EpisodeRoute {
    /// The envs on `backend`: on the device in the episode kernel where it runs the plan,
    /// else one step at a time.
    pub fn on(agent: &Agent, env: &MakeArgs, backend: EnvBackend, plan: &EpisodePlan) -> Self {
        match backend {
            EnvBackend::Device => match kernel_for(agent, env, plan) {
                Ok((program, steps)) => Self(Route::Kernel { program, steps }),
                Err(why) => Self(Route::DeviceSteps { why }),
            },
            EnvBackend::Cpu => Self(Route::CpuSteps),
        }
    }

    /// Where the envs of `agent`'s episodes of `env` step best when the user leaves it
    /// open, and why: on the device when the episode kernel runs the plan there (on wgpu,
    /// even on lavapipe, it outran the CPU envs at every size measured: docs/speed.md), else
    /// on the CPU, Gymnasium-exact.
    pub fn preferred(agent: &Agent, env: &MakeArgs, plan: &EpisodePlan) -> (Self, String) {
        let kernel = if plan.episodes > MAX_KERNEL_EPISODES {
            Err(format!(
                "it runs at most {MAX_KERNEL_EPISODES} episodes at a time"
            ))
        } else {
            kernel_for(agent, env, plan)
        };
        match kernel {
            Ok((program, steps)) => (
                Self(Route::Kernel { program, steps }),
                "the episode kernel runs these episodes on this device".into(),
            ),
            Err(why) => (
                Self(Route::CpuSteps),
                format!("the episode kernel does not run them: {why}"),
            ),
        }
    }

    /// Where the envs step.
    pub fn backend(&self) -> EnvBackend {
        match self.0 {
            Route::Kernel { .. } | Route::DeviceSteps { .. } => EnvBackend::Device,
            Route::CpuSteps => EnvBackend::Cpu,
        }
    }
}

/// The episode kernel's program for the plan, with the steps a launch takes for the largest
/// slot quota, or why the kernel does not run it.
fn kernel_for(
    agent: &Agent,
    env: &MakeArgs,
    plan: &EpisodePlan,
) -> Result<(EpisodeProgram, u32), String> {
    // The first slot's quota, the largest (see `SlotQuotas`).
    let most_per_slot = plan
        .episodes
        .div_ceil(plan.num_envs.min(plan.episodes).max(1));
    let env_id = device_env_id(env).map_err(|e| e.to_string())?;
    let program = EpisodeProgram::for_agent(agent, env_id, plan.stochastic)?;
    let steps = program.steps_per_launch(most_per_slot)?;
    Ok((program, steps))
}

/// [`run_episodes`] one policy step and one env step at a time, never with the episode
/// kernel (what it falls back to, and what the kernel is compared with).
///
/// Long because one loop keeps each slot's quota, env, seed and action generator in step;
/// split, that state would be passed around whole.
pub fn run_episodes_per_step(
    agent: &Agent,
    env: &MakeArgs,
    backend: EnvBackend,
    plan: EpisodePlan,
    on_episode: impl FnMut(&SeededEpisode),
    mut on_progress: impl Progress,
) -> Result<Vec<SeededEpisode>, ActError> {
    check_plan(&plan)?;
    if plan.stochastic && backend == EnvBackend::Device {
        return Err(ActError::Unsupported(
            "sampled actions with envs on the device step by step (the episode kernel draws them)",
        ));
    }
    let num_envs = plan.num_envs.min(plan.episodes);
    if num_envs == 0 {
        return Ok(Vec::new());
    }
    let SlotQuotas {
        quota,
        first: first_of_slot,
    } = SlotQuotas::new(plan.episodes, num_envs);
    let seed_of = |episode: usize| plan.first_seed + episode as u64;
    let mut envs = make_batch(
        env,
        num_envs,
        backend,
        agent.inference_device().device(),
        plan.first_seed,
    )?;
    let seeds: Vec<u64> = first_of_slot.iter().map(|&first| seed_of(first)).collect();
    envs.reset_seeded_episodes(&seeds, quota[0])?;
    envs.record_episodes(quota[0]);
    let dim = envs.observation_dim();
    // Each slot's episode so far and, in stochastic plans, that episode's action generator.
    let mut current = first_of_slot.clone();
    let mut rngs: Vec<EnvRng> = current.iter().map(|&e| action_rng(seed_of(e))).collect();
    let check_every = match backend {
        EnvBackend::Cpu => 1,
        EnvBackend::Device => DEVICE_CHECK_EVERY,
    };
    let mut finished = 0;
    for steps in 0.. {
        if steps % check_every == 0 {
            let counts = envs.recorded_counts()?;
            let now: usize = counts.iter().zip(&quota).map(|(&c, &q)| c.min(q)).sum();
            if now > finished {
                finished = now;
                if on_progress.finished(finished).is_break() {
                    return Err(ActError::Stopped);
                }
            }
            if finished == plan.episodes {
                break;
            }
        }
        let selection = if plan.stochastic {
            Selection::Sample(&mut rngs)
        } else {
            Selection::Greedy
        };
        let actions = agent.act_on(&envs.observations(), dim, selection)?;
        let step = envs.step(actions.as_batch())?;
        if let (
            true,
            StepSignals::Host {
                terminated,
                truncated,
                ..
            },
        ) = (plan.stochastic, &step.signals)
        {
            for k in 0..num_envs {
                if terminated[k] || truncated[k] {
                    current[k] += 1;
                    rngs[k] = action_rng(seed_of(current[k]));
                }
            }
        }
    }
    let mut episodes: Vec<SeededEpisode> = envs
        .read_records()?
        .into_iter()
        .filter(|r| r.nth < quota[r.env_index])
        .map(|r| {
            let episode = first_of_slot[r.env_index] + r.nth;
            SeededEpisode {
                episode,
                seed: seed_of(episode),
                episode_return: r.episode_return,
                length: r.length,
                terminated: r.terminated,
                truncated: r.truncated,
            }
        })
        .collect();
    episodes.sort_by_key(|e| e.episode);
    finish(episodes, on_episode)
}

/// A plan's seeds must not overflow.
fn check_plan(plan: &EpisodePlan) -> Result<(), ActError> {
    if plan.episodes > EpisodePlan::MAX_EPISODES || plan.num_envs > EpisodePlan::MAX_NUM_ENVS {
        return Err(ActError::Plan(format!(
            "{} episodes on {} envs: at most {} episodes on {} envs",
            plan.episodes,
            plan.num_envs,
            EpisodePlan::MAX_EPISODES,
            EpisodePlan::MAX_NUM_ENVS
        )));
    }
    if plan.first_seed > EpisodePlan::largest_first_seed(plan.episodes) {
        return Err(ActError::Plan(format!(
            "seeds {} + {} episodes pass the largest seed, {}",
            plan.first_seed,
            plan.episodes,
            u64::MAX
        )));
    }
    Ok(())
}

/// The finished episodes (in episode order), refused if a return is not finite; each seen
/// by `on_episode` first.
fn finish(
    episodes: Vec<SeededEpisode>,
    on_episode: impl FnMut(&SeededEpisode),
) -> Result<Vec<SeededEpisode>, ActError> {
    if episodes.iter().any(|e| !e.episode_return.is_finite()) {
        return Err(ActError::NonFinite);
    }
    episodes.iter().for_each(on_episode);
    Ok(episodes)
}

/// One episode of `env` from `seed` on a single CPU env, acting as [`run_episodes`] acts
/// in the episode of that seed (the same actions; in stochastic plans the same draws), so
/// it is that episode; numbered `episode`. `watch` sees the env's float64 state after the
/// reset and after every step, with the action that led there (`None` after the reset).
pub fn watch_episode(
    agent: &Agent,
    env: &MakeArgs,
    episode: usize,
    seed: u64,
    stochastic: bool,
    mut watch: impl FnMut(&[f64], Option<Action<'_>>),
) -> Result<SeededEpisode, ActError> {
    let mut env = env.make()?;
    let dim = env.observation_space().flat_dim();
    let mut observation = env.reset(Some(seed));
    let mut rng = [action_rng(seed)];
    let state = |env: &dyn gradless_envs::Env| env.state().expect("the env was reset");
    watch(&state(env.as_ref()), None);
    let mut watched = SeededEpisode {
        episode,
        seed,
        episode_return: 0.0,
        length: 0,
        terminated: false,
        truncated: false,
    };
    while !(watched.terminated || watched.truncated) {
        let selection = if stochastic {
            Selection::Sample(&mut rng)
        } else {
            Selection::Greedy
        };
        let actions = agent.act(&observation, dim, selection)?;
        let action = actions.as_actions().get(0, 1);
        let step = env.step(action)?;
        watched.episode_return += step.reward;
        watched.length += 1;
        watched.terminated = step.terminated;
        watched.truncated = step.truncated;
        observation = step.observation;
        watch(&state(env.as_ref()), Some(action));
    }
    if !watched.episode_return.is_finite() {
        return Err(ActError::NonFinite);
    }
    Ok(watched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{ActionHead, Activation, ActorCritic};
    use burn::prelude::Device;
    use gradless_device::InferenceDevice;

    fn small_agent() -> Agent {
        let model = ActorCritic::new(
            4,
            &[8],
            Activation::Tanh,
            ActionHead::Categorical { n: 2 },
            &mut EnvRng::from_seed(4),
            &Device::flex().autodiff(),
        );
        Agent::actor_critic(&model, &InferenceDevice::new(&Device::flex()))
    }

    fn run(
        agent: &Agent,
        first_seed: u64,
        episodes: usize,
        num_envs: usize,
        stochastic: bool,
    ) -> Vec<SeededEpisode> {
        let plan = EpisodePlan {
            first_seed,
            episodes,
            num_envs,
            stochastic,
        };
        let mut progress = Vec::new();
        let episodes = run_episodes(
            agent,
            &MakeArgs::registered("CartPole-v1"),
            EnvBackend::Cpu,
            plan,
            |_| {},
            |done| progress.push(done),
        )
        .unwrap();
        // Progress only grows, and ends at the plan's size.
        assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
        assert_eq!(progress.last(), Some(&episodes.len()));
        episodes
    }

    /// A caller that stops the run when it hears of progress gets `Stopped`, and the run
    /// goes no further.
    #[test]
    fn a_stoppable_caller_stops_the_run() {
        let agent = small_agent();
        let plan = EpisodePlan {
            first_seed: 7,
            episodes: 40,
            num_envs: 4,
            stochastic: false,
        };
        let mut heard = Vec::new();
        let stop_at_two = crate::Stoppable(|done| {
            heard.push(done);
            if done >= 2 {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        });
        let error = run_episodes(
            &agent,
            &MakeArgs::registered("CartPole-v1"),
            EnvBackend::Cpu,
            plan,
            |_| {},
            stop_at_two,
        );
        assert!(matches!(error, Err(ActError::Stopped)), "{error:?}");
        assert!(*heard.last().unwrap() < 40, "{heard:?}");
        assert_eq!(
            heard.iter().filter(|&&done| done >= 2).count(),
            1,
            "{heard:?}"
        );
    }

    /// Every episode is counted once, in episode order, whatever order they finish in, and
    /// each is the same whether 1, 3 or all envs run side by side, greedy or sampled.
    #[test]
    fn episodes_do_not_depend_on_how_many_envs_run_them() {
        let agent = small_agent();
        // Built from a network on an autodiff device: the agent's copy is not.
        assert_eq!(agent.tensor_census(), (8, 0));
        assert!(!agent.device_is_autodiff());
        for stochastic in [false, true] {
            let all = run(&agent, 100, 7, 7, stochastic);
            assert_eq!(
                all.iter().map(|e| (e.episode, e.seed)).collect::<Vec<_>>(),
                (0..7).map(|i| (i, 100 + i as u64)).collect::<Vec<_>>()
            );
            assert_eq!(all, run(&agent, 100, 7, 3, stochastic));
            assert_eq!(all, run(&agent, 100, 7, 1, stochastic));
            assert!(all.iter().all(|e| e.length > 0 && e.episode_return > 0.0));
        }
        // The same seed gives the same episode in another plan.
        let shifted = run(&agent, 103, 2, 2, false);
        let all = run(&agent, 100, 7, 7, false);
        assert_eq!(
            (shifted[0].episode_return, shifted[0].length),
            (all[3].episode_return, all[3].length)
        );
    }

    /// A watched episode is the planned episode of its seed, frame for frame: one state
    /// after the reset and one per step.
    #[test]
    fn a_watched_episode_is_the_episode_of_its_seed() {
        let agent = small_agent();
        for stochastic in [false, true] {
            let planned = run(&agent, 40, 3, 3, stochastic);
            for expected in &planned {
                let seed = expected.seed;
                let mut states = Vec::new();
                let mut actions = 0;
                let watched = watch_episode(
                    &agent,
                    &MakeArgs::registered("CartPole-v1"),
                    expected.episode,
                    seed,
                    stochastic,
                    |state, action| {
                        states.push(state.to_vec());
                        actions += usize::from(action.is_some());
                    },
                )
                .unwrap();
                assert_eq!(&watched, expected);
                assert_eq!(
                    (states.len(), actions),
                    (watched.length as usize + 1, watched.length as usize)
                );
                assert!(states.iter().all(|s| s.len() == 4));
            }
        }
    }

    fn shipped_agent(name: &str, device: &InferenceDevice) -> Agent {
        let checkpoint =
            crate::Checkpoint::open(&gradless_test_support::shipped_checkpoint(name)).unwrap();
        Agent::load(&checkpoint, &crate::AgentDevice::new(device)).unwrap()
    }

    #[test]
    fn device_envs_run_exactly_the_planned_episodes_slot_by_slot() {
        let device = InferenceDevice::new(&Device::flex());
        let agent = shipped_agent("cartpole-v1-ppo", &device);
        let plan = EpisodePlan {
            first_seed: 7,
            episodes: 10,
            num_envs: 4,
            stochastic: false,
        };
        let mut seen = 0;
        let mut last_progress = 0;
        let episodes = run_episodes(
            &agent,
            &MakeArgs::registered("CartPole-v1"),
            EnvBackend::Device,
            plan,
            |_| seen += 1,
            |done| last_progress = done,
        )
        .unwrap();
        assert_eq!((seen, last_progress), (10, 10));
        let numbers: Vec<usize> = episodes.iter().map(|e| e.episode).collect();
        assert_eq!(numbers, (0..10).collect::<Vec<_>>());
        for e in &episodes {
            assert_eq!(e.seed, 7 + e.episode as u64);
            assert!(e.terminated || e.truncated);
            assert_eq!(e.episode_return, f64::from(e.length));
        }
        // Seeded starts: the same episodes again, and on the whole those of the CPU envs
        // (float32 trajectories may drift from float64 ones over 500 steps).
        let again = run_episodes(
            &agent,
            &MakeArgs::registered("CartPole-v1"),
            EnvBackend::Device,
            plan,
            |_| {},
            |_| {},
        );
        assert_eq!(again.unwrap(), episodes);
        let mean = episodes.iter().map(|e| e.episode_return).sum::<f64>() / 10.0;
        assert!(mean >= 450.0, "{episodes:?}");
    }

    /// Only the episode kernel draws actions beside device envs: on flex a stochastic plan
    /// says why the kernel does not run, and the per-step path refuses one.
    #[test]
    fn sampled_actions_with_device_envs_need_the_episode_kernel() {
        let device = InferenceDevice::new(&Device::flex());
        let agent = shipped_agent("cartpole-v1-dqn", &device);
        let plan = EpisodePlan {
            first_seed: 0,
            episodes: 2,
            num_envs: 2,
            stochastic: true,
        };
        let (device_envs, cartpole) = (EnvBackend::Device, MakeArgs::registered("CartPole-v1"));
        let error = run_episodes(&agent, &cartpole, device_envs, plan, |_| {}, |_| {});
        let Err(ActError::Plan(why)) = error else {
            panic!("{error:?}");
        };
        assert!(
            why.contains("episode kernel") && why.contains("flex"),
            "{why}"
        );
        let error = run_episodes_per_step(&agent, &cartpole, device_envs, plan, |_| {}, |_| {});
        assert!(matches!(error, Err(ActError::Unsupported(_))), "{error:?}");
    }
}
