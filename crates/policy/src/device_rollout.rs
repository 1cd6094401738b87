//! Evaluation episodes with the envs on the device too: the policy and a
//! [`DeviceVectorEnv`](gradless_envs::device::DeviceVectorEnv) step together, and only the
//! count of recorded episodes comes back now and then, the episodes themselves at the end.

use gradless_envs::device::make_device_vector;

use crate::acting::{ActError, Agent};
use crate::episodes::{EpisodePlan, SeededEpisode};

/// Steps between read-backs of the recorded-episode counts.
const CHECK_EVERY: usize = 32;

/// Runs `plan.episodes` greedy episodes of `env_id` with envs on the agent's device and
/// returns them in episode order.
///
/// Unbiased as [`run_episodes`](crate::run_episodes) is, by a fixed quota instead of a
/// queue: env slot `k` runs exactly its share of the episodes (the first
/// `episodes % num_envs` slots one more), and every one of them is counted, so short episodes
/// are not favoured. Episode numbers go slot by slot. Starts come from the device's
/// generator seeded with `plan.first_seed`, so episodes have no seed of their own and do not
/// match the CPU envs' episodes. `on_episode` sees each episode once all have finished.
pub fn run_device_episodes(
    agent: &Agent,
    env_id: &str,
    plan: EpisodePlan,
    mut on_episode: impl FnMut(&SeededEpisode),
) -> Result<Vec<SeededEpisode>, ActError> {
    if plan.stochastic {
        return Err(ActError::Unsupported(
            "sampled actions with envs on the device (greedy only)",
        ));
    }
    let num_envs = plan.num_envs.min(plan.episodes);
    if num_envs == 0 {
        return Ok(Vec::new());
    }
    let quota: Vec<usize> = (0..num_envs)
        .map(|k| plan.episodes / num_envs + usize::from(k < plan.episodes % num_envs))
        .collect();
    let device = agent.inference_device();
    device.device().seed(plan.first_seed);
    let mut envs = make_device_vector(env_id, num_envs, device.device())?;
    envs.record_episodes(quota[0]);
    let mut observations = envs.observations();
    let mut steps = 0usize;
    loop {
        let actions = agent.greedy_device_actions(observations);
        observations = envs.step(&actions)?.observations;
        steps += 1;
        if steps.is_multiple_of(CHECK_EVERY) {
            let counts = envs.recorded_counts()?;
            if counts
                .iter()
                .zip(&quota)
                .all(|(count, quota)| count >= quota)
            {
                break;
            }
        }
    }
    let first_of_slot: Vec<usize> = quota
        .iter()
        .scan(0, |next, &q| {
            let first = *next;
            *next += q;
            Some(first)
        })
        .collect();
    let mut episodes: Vec<SeededEpisode> = envs
        .read_records()?
        .into_iter()
        .filter(|r| r.nth < quota[r.env_index])
        .map(|r| SeededEpisode {
            episode: first_of_slot[r.env_index] + r.nth,
            seed: None,
            episode_return: r.episode_return,
            length: r.length,
            terminated: r.terminated,
            truncated: r.truncated,
        })
        .collect();
    if episodes.iter().any(|e| !e.episode_return.is_finite()) {
        return Err(ActError::NonFinite);
    }
    episodes.sort_by_key(|e| e.episode);
    episodes.iter().for_each(&mut on_episode);
    Ok(episodes)
}

#[cfg(test)]
mod tests {
    use burn::prelude::Device;
    use gradless_device::InferenceDevice;

    use super::*;
    use crate::Checkpoint;

    fn shipped_agent(name: &str, device: &InferenceDevice) -> Agent {
        let checkpoint =
            Checkpoint::open(&gradless_test_support::shipped_checkpoint(name)).unwrap();
        Agent::load(&checkpoint, device).unwrap()
    }

    #[test]
    fn exactly_the_planned_episodes_slot_by_slot() {
        let device = InferenceDevice::new(&Device::flex());
        let agent = shipped_agent("cartpole-v1-ppo", &device);
        let plan = EpisodePlan {
            first_seed: 7,
            episodes: 10,
            num_envs: 4,
            stochastic: false,
        };
        let mut seen = 0;
        let episodes = run_device_episodes(&agent, "CartPole-v1", plan, |_| seen += 1).unwrap();
        assert_eq!(seen, 10);
        let numbers: Vec<usize> = episodes.iter().map(|e| e.episode).collect();
        assert_eq!(numbers, (0..10).collect::<Vec<_>>());
        for e in &episodes {
            assert!(e.seed.is_none() && (e.terminated || e.truncated));
            assert_eq!(e.episode_return, f64::from(e.length));
        }
        // The shipped policy balances the pole: most episodes reach the limit.
        let full = episodes.iter().filter(|e| e.length == 500).count();
        assert!(full >= 8, "{episodes:?}");
    }

    #[test]
    fn sampled_actions_are_refused() {
        let device = InferenceDevice::new(&Device::flex());
        let agent = shipped_agent("cartpole-v1-dqn", &device);
        let plan = EpisodePlan {
            first_seed: 0,
            episodes: 2,
            num_envs: 2,
            stochastic: true,
        };
        let error = run_device_episodes(&agent, "CartPole-v1", plan, |_| {});
        assert!(matches!(error, Err(ActError::Unsupported(_))));
    }
}
