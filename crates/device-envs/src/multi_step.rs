//! Handing device envs over to a kernel that runs many of their steps in one launch (the
//! policy crate's rollout kernel), and taking them back: the steps are the single-step
//! kernel's own ([`kernel_physics::step_in_place`](super::kernel_physics::step_in_place)),
//! only many of them at a time.

use burn::prelude::Tensor;

use super::{DeviceVectorEnv, Physics, observe, runs_cube_kernels};
use gradless_envs::EnvError;

/// What a kernel needs to run `steps` steps of device envs.
#[derive(Debug, Clone)]
pub struct KernelSteps {
    /// The envs' physics.
    pub physics: Physics,
    /// The `[state + 6, num_envs]` table (see
    /// [`DeviceVectorEnv`]): the state, then the [`bookkeeping`](super::bookkeeping) rows.
    pub table: Tensor<2>,
    /// `[state, steps * num_envs]` restart states from the device's generator: env `i`'s
    /// for step `t` in column `t * num_envs + i`.
    pub starts: Tensor<2>,
    /// Steps after which an episode is truncated (`f32::MAX`: never).
    pub time_limit: f32,
}

impl DeviceVectorEnv {
    /// The physics a kernel steps these envs with, if they have one.
    pub fn kernel_physics(&self) -> Option<Physics> {
        self.dynamics.fused_physics()
    }

    /// The envs as a kernel that runs `steps` of their steps takes them, or why it cannot
    /// (no kernel physics, a device that runs no cubecl kernels, seeded starts still to
    /// come). Hand back what it leaves with [`resume_after_kernel`](Self::resume_after_kernel).
    pub fn kernel_steps(&self, steps: usize) -> Result<KernelSteps, EnvError> {
        let refuse = |reason: &str| EnvError::InvalidOption {
            env: self.id.clone(),
            reason: reason.into(),
        };
        let physics = self
            .kernel_physics()
            .ok_or_else(|| refuse("its device version has no kernel physics"))?;
        if !runs_cube_kernels(&self.device) {
            return Err(refuse("a kernel of many steps needs a wgpu device"));
        }
        if self.seeded.is_some() {
            return Err(refuse("seeded starts are taken one step at a time"));
        }
        Ok(KernelSteps {
            physics,
            table: self.table.clone(),
            starts: self
                .dynamics
                .initial_state(steps * self.num_envs, &self.device),
            time_limit: self.time_limit(),
        })
    }

    /// Takes back the table a kernel left after its steps. The per-episode records end
    /// here (the kernel's caller has the steps' signals); the finished-episode counters
    /// count on.
    pub fn resume_after_kernel(&mut self, table: Tensor<2>) -> Result<(), EnvError> {
        if table.dims() != self.table.dims() {
            return Err(EnvError::InvalidState {
                env: self.id.clone(),
                reason: format!(
                    "a kernel handed back a {:?} table for a {:?} one",
                    table.dims(),
                    self.table.dims()
                ),
            });
        }
        self.records = None;
        self.observations = observe(self.dynamics.as_ref(), &table);
        self.table = table;
        Ok(())
    }
}
