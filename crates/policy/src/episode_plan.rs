//! Which episodes an evaluation runs, how they are shared among env slots, and what each
//! one that finished reports.

/// One finished episode of [`run_episodes`](crate::run_episodes).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SeededEpisode {
    /// Its index in the plan: it ran from seed `first_seed + episode`.
    pub episode: usize,
    /// The seed its env was reset with (device envs too: their starts are computed from it
    /// on the host).
    pub seed: u64,
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

/// Hears how many of a plan's episodes have finished, whenever that grows, and may stop the
/// run there (it then fails with [`ActError::Stopped`](crate::ActError::Stopped)). Any
/// `FnMut(usize)` listens without stopping; [`Stoppable`] wraps one that may stop.
pub trait Progress {
    /// `finished` episodes are done.
    fn finished(&mut self, finished: usize) -> std::ops::ControlFlow<()>;
}

impl<F: FnMut(usize)> Progress for F {
    fn finished(&mut self, finished: usize) -> std::ops::ControlFlow<()> {
        self(finished);
        std::ops::ControlFlow::Continue(())
    }
}

/// A progress callback that stops the run by returning `Break` (a caller that was
/// interrupted).
pub struct Stoppable<F>(pub F);

impl<F: FnMut(usize) -> std::ops::ControlFlow<()>> Progress for Stoppable<F> {
    fn finished(&mut self, finished: usize) -> std::ops::ControlFlow<()> {
        (self.0)(finished)
    }
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
    /// The most episodes one plan runs (their records take some 40 bytes each).
    pub const MAX_EPISODES: usize = 10_000_000;
    /// The most envs a plan steps side by side (one batch of the network).
    pub const MAX_NUM_ENVS: usize = 1 << 20;

    /// The largest first seed with which `episodes` episodes have seeds (their last one is
    /// `first_seed + episodes - 1`, which must not pass `u64::MAX`).
    pub fn largest_first_seed(episodes: usize) -> u64 {
        u64::MAX - episodes.saturating_sub(1) as u64
    }
}

/// How a plan's episodes are shared among env slots: slot `k` runs `quota[k]` of them
/// (the first `episodes % slots` slots one more), numbered from `first[k]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotQuotas {
    pub(crate) quota: Vec<usize>,
    pub(crate) first: Vec<usize>,
}

impl SlotQuotas {
    pub(crate) fn new(episodes: usize, slots: usize) -> Self {
        let quota: Vec<usize> = (0..slots)
            .map(|k| episodes / slots + usize::from(k < episodes % slots))
            .collect();
        let first = quota
            .iter()
            .scan(0, |next, &q| {
                let first = *next;
                *next += q;
                Some(first)
            })
            .collect();
        Self { quota, first }
    }
}
