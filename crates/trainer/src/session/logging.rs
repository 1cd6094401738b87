//! The session's log: episodes and updates as `tracing` events and `metrics.jsonl` lines.

// The session's own types and imports: these are its methods, in a file of their own.
use super::*;

/// A number shown to four significant digits in log lines (metrics.jsonl keeps them all).
pub(super) struct Short(pub(super) f64);

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let x = self.0;
        if x == 0.0 || !x.is_finite() {
            return write!(f, "{x}");
        }
        let magnitude = x.abs().log10().floor();
        if !(-4.0..6.0).contains(&magnitude) {
            return write!(f, "{x:.3e}");
        }
        write!(f, "{x:.*}", (3.0 - magnitude).max(0.0) as usize)
    }
}

/// How often an update is logged at info level.
pub(super) const UPDATE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Session {
    /// An update as a log line, under CleanRL's metric names: at info level every few
    /// seconds, at debug level always.
    fn log_update(&mut self, global_step: u64, training_return: Option<f64>, stats: &Update) {
        let level_info = self.update_log.ready();
        let training_return = training_return.map(Short);
        // Every update line starts with the step and the recent training return; the
        // algorithm adds its own fields.
        macro_rules! emit_at {
            ($level:ident, $($fields:tt)*) => {
                tracing::$level!(
                    global_step,
                    "charts/episodic_return" = training_return.map(tracing::field::display),
                    $($fields)*
                    "update"
                )
            };
        }
        macro_rules! emit {
            ($($fields:tt)*) => {
                if level_info {
                    emit_at!(info, $($fields)*)
                } else {
                    emit_at!(debug, $($fields)*)
                }
            };
        }
        match stats {
            Update::Ppo(u) => emit!(
                "charts/SPS" = u.sps,
                "losses/value_loss" = %Short(u.losses.value_loss.into()),
                "losses/policy_loss" = %Short(u.losses.policy_loss.into()),
                "losses/entropy" = %Short(u.losses.entropy.into()),
                "losses/approx_kl" = %Short(u.losses.approx_kl.into()),
            ),
            Update::Dqn(u) => emit!(
                "charts/epsilon" = %Short(u.epsilon),
                "losses/td_loss" = %Short(u.td_loss),
                "losses/q_values" = %Short(u.q_values),
            ),
            Update::Sac(u) => emit!(
                "losses/qf1_loss" = %Short(u.qf1_loss),
                "losses/actor_loss" = %Short(u.actor_loss),
                "losses/alpha" = %Short(u.alpha),
            ),
        }
    }

    pub(super) fn log(&mut self, iteration: Iteration) -> Result<(), TrainError> {
        let mut lines = Vec::with_capacity(iteration.episodes.len() + 1);
        for (global_step, episode) in iteration.episodes {
            self.state.episodes += 1;
            if self.state.recent_returns.len() == RECENT_EPISODES {
                self.state.recent_returns.pop_front();
            }
            self.state.recent_returns.push_back(episode.episode_return);
            tracing::debug!(
                episode = self.state.episodes,
                r#return = episode.episode_return,
                length = episode.length,
                terminated = episode.terminated,
                global_step,
                "episode"
            );
            lines.push(MetricsLine::Episode {
                episode: self.state.episodes,
                episode_return: episode.episode_return,
                length: episode.length,
                terminated: episode.terminated,
                global_step,
            });
        }
        if let Some(stats) = iteration.update {
            let global_step = self.algorithm.global_step();
            let training_return = self.training_return();
            self.log_update(global_step, training_return, &stats);
            lines.push(MetricsLine::Update {
                global_step,
                training_return,
                stats,
            });
        }
        self.record(&lines)
    }

    /// Appends lines to the metrics log and the TensorBoard log.
    pub(super) fn record(&mut self, lines: &[MetricsLine]) -> Result<(), TrainError> {
        self.run.append_metrics(lines)?;
        self.tensorboard.write(lines)
    }
}
