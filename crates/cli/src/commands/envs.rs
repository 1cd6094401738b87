//! `gradless envs`: the registered ids.

use anyhow::Result;
use gradless_envs::{make, registered_specs};
use serde::Serialize;

use crate::output::print_json_line;

#[derive(Serialize)]
struct EnvListing {
    id: &'static str,
    observation_space: String,
    action_space: String,
    max_episode_steps: Option<u32>,
    reward_threshold: Option<f64>,
}

/// Prints one line per id: spaces, step limit, reward threshold.
pub fn run(json: bool) -> Result<()> {
    for spec in registered_specs() {
        let env = make(spec.id)?;
        let listing = EnvListing {
            id: spec.id,
            observation_space: env.observation_space().describe(),
            action_space: env.action_space().describe(),
            max_episode_steps: spec.max_episode_steps,
            reward_threshold: spec.reward_threshold,
        };
        if json {
            print_json_line(&listing)?;
        } else {
            let limit = listing
                .max_episode_steps
                .map_or("none".to_string(), |l| l.to_string());
            let threshold = listing
                .reward_threshold
                .map_or("none".to_string(), |t| t.to_string());
            println!(
                "{:<26} actions {:<32} limit {:<5} solved at {:<6} observations {}",
                listing.id, listing.action_space, limit, threshold, listing.observation_space
            );
        }
    }
    Ok(())
}
