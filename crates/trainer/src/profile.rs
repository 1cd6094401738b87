//! Where training time goes (`train --profile`): each iteration's time split into phases —
//! acting, env steps, minibatches built on the host and uploaded, forward passes, backward
//! passes, gradient clipping, optimizer steps, read-backs — summed over the run.
//!
//! A profiled run waits for the device at the end of every phase, so that each phase is
//! charged with its own work: on a device that queues work (wgpu) this takes away the
//! overlap of host and device, so a profiled run is slower than an unprofiled one and its
//! phases add up to more than the unprofiled run's time. Switched off, marking a phase costs
//! nothing and nothing is synchronised.

use std::path::Path;
use std::time::Instant;

use gradless_device::Device;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// The profile's file in the run directory.
pub const PROFILE_FILE: &str = "profile.json";

/// A part of an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// PPO's rollout: acting and stepping the envs for `num_steps` steps.
    Rollout,
    /// The policy choosing actions (DQN, SAC), on the inference device.
    Acting,
    /// The envs stepping, with the replay buffer storing the step (DQN, SAC).
    EnvStep,
    /// Advantages and value targets on the host (PPO).
    Advantages,
    /// Minibatches drawn or gathered on the host and uploaded to the device.
    Minibatch,
    /// The losses' forward passes (targets included).
    Forward,
    /// Backpropagation.
    Backward,
    /// The gradients' global norm and clipping.
    GradClip,
    /// Adam's steps.
    Optimizer,
    /// Statistics read back from the device.
    Readback,
    /// Copies of the networks: target networks, the acting copy.
    NetworkCopy,
    /// What no other phase claims: the bookkeeping between them.
    Other,
}

impl Phase {
    /// Every phase, in the order reports list them.
    pub const ALL: [Phase; 12] = [
        Phase::Rollout,
        Phase::Acting,
        Phase::EnvStep,
        Phase::Advantages,
        Phase::Minibatch,
        Phase::Forward,
        Phase::Backward,
        Phase::GradClip,
        Phase::Optimizer,
        Phase::Readback,
        Phase::NetworkCopy,
        Phase::Other,
    ];

    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Rollout => "rollout",
            Phase::Acting => "acting",
            Phase::EnvStep => "env_step",
            Phase::Advantages => "advantages",
            Phase::Minibatch => "minibatch",
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::GradClip => "grad_clip",
            Phase::Optimizer => "optimizer",
            Phase::Readback => "readback",
            Phase::NetworkCopy => "network_copy",
            Phase::Other => "other",
        }
    }
}

/// Times phases when switched on; does nothing otherwise.
#[derive(Debug, Default)]
pub(crate) struct Profiler {
    on: Option<Timing>,
}

#[derive(Debug)]
struct Timing {
    device: Device,
    since: Instant,
    seconds: [f64; Phase::ALL.len()],
    calls: [u64; Phase::ALL.len()],
    iterations: u64,
    updates: u64,
    first_step: u64,
    sync_error: Option<String>,
}

impl Profiler {
    /// A profiler that times phases from env step `global_step` on, waiting for `device` at
    /// the end of each.
    pub(crate) fn on(device: &Device, global_step: u64) -> Self {
        Self {
            on: Some(Timing {
                device: device.clone(),
                since: Instant::now(),
                seconds: [0.0; Phase::ALL.len()],
                calls: [0; Phase::ALL.len()],
                iterations: 0,
                updates: 0,
                first_step: global_step,
                sync_error: None,
            }),
        }
    }

    /// Starts an iteration: time since the last mark (logging, checkpoints) is not charged.
    pub(crate) fn start_iteration(&mut self) {
        if let Some(timing) = &mut self.on {
            timing.iterations += 1;
            timing.since = Instant::now();
        }
    }

    /// Ends an iteration: what no phase claimed since the last mark is charged to
    /// [`Phase::Other`].
    pub(crate) fn end_iteration(&mut self) {
        self.mark(Phase::Other);
    }

    /// Counts one update (PPO) or gradient step (DQN, SAC).
    pub(crate) fn updated(&mut self) {
        if let Some(timing) = &mut self.on {
            timing.updates += 1;
        }
    }

    /// Charges the time since the last mark, once the device has finished, to `phase`.
    pub(crate) fn mark(&mut self, phase: Phase) {
        let Some(timing) = &mut self.on else {
            return;
        };
        if let Err(error) = timing.device.sync()
            && timing.sync_error.is_none()
        {
            timing.sync_error = Some(error.to_string());
        }
        let now = Instant::now();
        let index = phase as usize;
        timing.seconds[index] += (now - timing.since).as_secs_f64();
        timing.calls[index] += 1;
        timing.since = now;
    }

    /// What was timed, when switched on, up to env step `global_step`.
    pub(crate) fn report(&self, global_step: u64) -> Option<Profile> {
        let timing = self.on.as_ref()?;
        let updates = timing.updates;
        let total: f64 = timing.seconds.iter().sum();
        let phases = Phase::ALL
            .iter()
            .zip(timing.seconds.iter().zip(&timing.calls))
            .filter(|(_, (_, calls))| **calls > 0)
            .map(|(&phase, (&seconds, &calls))| PhaseTime {
                phase,
                seconds,
                share: if total > 0.0 { seconds / total } else { 0.0 },
                calls,
                per_update_ms: (updates > 0).then(|| seconds * 1e3 / updates as f64),
            })
            .collect();
        Some(Profile {
            iterations: timing.iterations,
            updates,
            env_steps: global_step.saturating_sub(timing.first_step),
            seconds: total,
            phases,
            sync_error: timing.sync_error.clone(),
        })
    }
}

/// Where a run's time went (this process's part of it, for a resumed run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Iterations timed.
    pub iterations: u64,
    /// Updates (PPO) or gradient steps (DQN, SAC) in them.
    pub updates: u64,
    /// Environment steps taken in them.
    pub env_steps: u64,
    /// The phases' seconds summed.
    pub seconds: f64,
    /// Each phase that ran, in [`Phase::ALL`]'s order.
    pub phases: Vec<PhaseTime>,
    /// Why waiting for the device failed, if it ever did (the times are then not the
    /// phases' own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_error: Option<String>,
}

/// One phase's part of a [`Profile`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTime {
    /// The phase.
    pub phase: Phase,
    /// Seconds spent in it.
    pub seconds: f64,
    /// Its fraction of the profile's seconds.
    pub share: f64,
    /// How often it ran.
    pub calls: u64,
    /// Milliseconds per update, when there were updates.
    pub per_update_ms: Option<f64>,
}

impl Profile {
    /// Writes the profile into the run directory `run` (replacing an earlier profile).
    pub(crate) fn write(&self, run: &Path) -> Result<(), TrainError> {
        let mut text = serde_json::to_string_pretty(self).expect("a profile serialises");
        text.push('\n');
        crate::run_dir::write_atomically(&run.join(PROFILE_FILE), text.as_bytes())
    }

    /// The profile as a table, one phase per line, largest share first.
    pub fn table(&self) -> String {
        let mut phases: Vec<&PhaseTime> = self.phases.iter().collect();
        phases.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        let mut lines = vec![format!(
            "{:<13} {:>9} {:>7} {:>10} {:>9}",
            "phase", "seconds", "share", "ms/update", "calls"
        )];
        for time in phases {
            let per_update = time
                .per_update_ms
                .map_or_else(|| "-".to_string(), |ms| format!("{ms:.3}"));
            lines.push(format!(
                "{:<13} {:>9.3} {:>6.1}% {:>10} {:>9}",
                time.phase.name(),
                time.seconds,
                time.share * 100.0,
                per_update,
                time.calls
            ));
        }
        lines.push(format!(
            "{:<13} {:>9.3} ({} iterations, {} updates, {} env steps)",
            "total", self.seconds, self.iterations, self.updates, self.env_steps
        ));
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profiler_switched_off_reports_nothing() {
        let mut profiler = Profiler::default();
        profiler.start_iteration();
        profiler.mark(Phase::Forward);
        profiler.updated();
        assert_eq!(profiler.report(1), None);
    }

    #[test]
    fn marks_charge_the_time_since_the_last_one_to_their_phase() {
        let mut profiler = Profiler::on(&Device::flex(), 100);
        profiler.start_iteration();
        std::thread::sleep(std::time::Duration::from_millis(20));
        profiler.mark(Phase::Forward);
        profiler.mark(Phase::Backward);
        profiler.mark(Phase::Backward);
        profiler.updated();
        profiler.updated();
        let profile = profiler.report(108).expect("switched on");
        assert_eq!(
            (profile.iterations, profile.updates, profile.env_steps),
            (1, 2, 8)
        );
        let names: Vec<_> = profile.phases.iter().map(|p| p.phase).collect();
        assert_eq!(names, [Phase::Forward, Phase::Backward]);
        let forward = &profile.phases[0];
        assert!(forward.seconds >= 0.02, "{forward:?}");
        assert_eq!(profile.phases[1].calls, 2);
        assert!(profile.phases[1].seconds < forward.seconds);
        let shares: f64 = profile.phases.iter().map(|p| p.share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        assert_eq!(forward.per_update_ms, Some(forward.seconds * 1e3 / 2.0));
        let table = profile.table();
        assert!(
            table.lines().nth(1).unwrap().starts_with("forward"),
            "{table}"
        );
    }
}
