//! The choices a user makes by name: where envs step, and how device envs step.

/// Where a batch of envs steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvBackend {
    /// On the CPU in `f64`, Gymnasium-exact; observations go to the policy's device and
    /// actions come back every step.
    #[default]
    Cpu,
    /// On the policy's device as tensor programs in `f32`.
    Device,
}

/// `name()`, `Display` and `FromStr` for a field-less enum chosen by name on the command line.
macro_rules! chosen_by_name {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(name: &str) -> Result<Self, String> {
                [$($ty::$variant),+]
                    .into_iter()
                    .find(|choice| choice.name() == name)
                    .ok_or_else(|| {
                        let known: Vec<String> =
                            [$($name),+].iter().map(|n| format!("`{n}`")).collect();
                        format!("unknown {} `{name}` (expected {})", $what, known.join(" or "))
                    })
            }
        }
    };
}

chosen_by_name!(EnvBackend, "env backend", { Cpu => "cpu", Device => "device" });

/// How a [`DeviceVectorEnv`] steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKernel {
    /// The env's tensor operations, then autoreset and statistics as more of them: any
    /// device (the only choice on flex), ~75 burn operations a step for CartPole.
    TensorOps,
    /// One kernel for the whole step: on wgpu (every device env has one).
    Fused,
}

chosen_by_name!(StepKernel, "step kernel", { TensorOps => "tensor-ops", Fused => "fused" });
