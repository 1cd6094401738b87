//! Running an agent in an environment for a fixed set of seeded episodes, on the CPU envs.

use gradless_envs::{Action, Env, EnvRng, Observation};

use crate::acting::{ActError, ActionBatch, Agent, Selection};

/// One finished episode of [`run_episodes`] (or of
/// [`run_device_episodes`](crate::run_device_episodes)).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SeededEpisode {
    /// Its index in the plan: it ran from seed `first_seed + episode`.
    pub episode: usize,
    /// The seed its env was reset with; `None` for device envs, whose starts come from the
    /// device's generator.
    pub seed: Option<u64>,
    /// The sum of its rewards.
    #[serde(rename = "return")]
    pub episode_return: f64,
    /// Its number of steps.
    pub length: u32,
    /// Whether it ended in a terminal state.
    pub terminated: bool,
    /// Whether the time limit cut it (possibly on the same step as a termination).
    pub truncated: bool,
}

/// Which episodes to run: episode `i` from seed `first_seed + i`, `num_envs` at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpisodePlan {
    /// Seed of episode 0.
    pub first_seed: u64,
    /// Episodes to run; every one is counted, long or short.
    pub episodes: usize,
    /// Envs stepped side by side (the network sees them as one batch).
    pub num_envs: usize,
    /// Sample actions from the policy (episode `i` from its own generator) instead of
    /// taking the greedy ones.
    pub stochastic: bool,
}

impl EpisodePlan {
    /// The largest first seed with which `episodes` episodes have seeds (their last one is
    /// `first_seed + episodes - 1`, which must not pass `u64::MAX`).
    pub fn largest_first_seed(episodes: usize) -> u64 {
        u64::MAX - episodes.saturating_sub(1) as u64
    }
}

/// Episode `i`'s action generator (stochastic plans), apart from the env's own stream.
fn action_rng(seed: u64) -> EnvRng {
    EnvRng::from_seed(seed ^ 0x4143_5400_0000_0000)
}

/// Runs the plan's episodes of `env_id` and returns them in episode order. Each episode's
/// seed, and in stochastic plans its action generator, belongs to the episode, not to the
/// env slot that runs it, so results do not depend on `num_envs`; a slot that finishes an
/// episode starts the next unstarted one. `on_episode` sees each as it ends.
pub fn run_episodes(
    agent: &Agent,
    env_id: &str,
    plan: EpisodePlan,
    mut on_episode: impl FnMut(&SeededEpisode),
) -> Result<Vec<SeededEpisode>, ActError> {
    /// An env and the episode it is running.
    struct Slot {
        env: Box<dyn Env>,
        episode: Option<usize>,
        seed: u64,
        rng: EnvRng,
        observation: Observation,
        episode_return: f64,
        length: u32,
    }
    impl Slot {
        fn begin(&mut self, episode: usize, seed: u64) {
            self.episode = Some(episode);
            self.seed = seed;
            self.rng = action_rng(seed);
            self.observation = self.env.reset(Some(seed));
            self.episode_return = 0.0;
            self.length = 0;
        }
    }
    if plan.first_seed > EpisodePlan::largest_first_seed(plan.episodes) {
        return Err(ActError::Plan(format!(
            "seeds {} + {} episodes pass the largest seed, {}",
            plan.first_seed,
            plan.episodes,
            u64::MAX
        )));
    }
    let seed_of = |episode: usize| plan.first_seed + episode as u64;
    let mut slots = Vec::new();
    for episode in 0..plan.num_envs.min(plan.episodes) {
        let mut env = gradless_envs::make(env_id)?;
        let observation = env.reset(None);
        let mut slot = Slot {
            env,
            episode: None,
            seed: 0,
            rng: action_rng(0),
            observation,
            episode_return: 0.0,
            length: 0,
        };
        slot.begin(episode, seed_of(episode));
        slots.push(slot);
    }
    let dim = slots
        .first()
        .map_or(1, |slot| slot.env.observation_space().flat_dim());
    let mut next_episode = slots.len();
    let mut finished: Vec<Option<SeededEpisode>> = vec![None; plan.episodes];
    let mut observations = Vec::with_capacity(slots.len() * dim);
    while !slots.is_empty() {
        observations.clear();
        for slot in &slots {
            observations.extend_from_slice(&slot.observation);
        }
        let actions = if plan.stochastic {
            let mut rngs: Vec<EnvRng> = slots.iter().map(|s| s.rng.clone()).collect();
            let actions = agent.act(&observations, dim, Selection::Sample(&mut rngs))?;
            for (slot, rng) in slots.iter_mut().zip(rngs) {
                slot.rng = rng;
            }
            actions
        } else {
            agent.act(&observations, dim, Selection::Greedy)?
        };
        let rows = slots.len();
        for (k, slot) in slots.iter_mut().enumerate() {
            let action = match &actions {
                ActionBatch::Discrete(a) => Action::Discrete(a[k]),
                ActionBatch::Continuous(a) => {
                    let width = a.len() / rows;
                    Action::Continuous(&a[k * width..(k + 1) * width])
                }
            };
            let step = slot.env.step(action)?;
            slot.episode_return += step.reward;
            slot.length += 1;
            slot.observation = step.observation;
            if step.terminated || step.truncated {
                let episode = slot.episode.expect("active slots run an episode");
                let result = SeededEpisode {
                    episode,
                    seed: Some(slot.seed),
                    episode_return: slot.episode_return,
                    length: slot.length,
                    terminated: step.terminated,
                    truncated: step.truncated,
                };
                on_episode(&result);
                finished[episode] = Some(result);
                if next_episode < plan.episodes {
                    slot.begin(next_episode, seed_of(next_episode));
                    next_episode += 1;
                } else {
                    slot.episode = None;
                }
            }
        }
        slots.retain(|slot| slot.episode.is_some());
    }
    Ok(finished.into_iter().flatten().collect())
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
        run_episodes(agent, "CartPole-v1", plan, |_| {}).unwrap()
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
                all.iter()
                    .map(|e| (e.episode, e.seed.unwrap()))
                    .collect::<Vec<_>>(),
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
}
