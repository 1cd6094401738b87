//! The burn devices gradless runs on: choosing one by name (`wgpu`, `flex`), saying which
//! adapter it got, and the two roles a device plays — training, with autodiff on, and
//! inference, with autodiff off — as distinct types, so that code written for one role
//! cannot be handed a device of the other.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

pub use burn::prelude::Device;
use burn::prelude::{Tensor, TensorData};
use burn::tensor::activation;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The burn backends gradless can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A GPU through wgpu (Vulkan, Metal, DX12); Mesa's lavapipe where there is no GPU.
    Wgpu,
    /// burn's pure-Rust CPU backend.
    Flex,
}

impl Backend {
    /// Every backend, in the order `gradless devices` lists them.
    pub const ALL: [Backend; 2] = [Backend::Wgpu, Backend::Flex];

    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Wgpu => "wgpu",
            Backend::Flex => "flex",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = DeviceError;
    fn from_str(name: &str) -> Result<Self, DeviceError> {
        Backend::ALL
            .into_iter()
            .find(|backend| backend.name() == name)
            .ok_or_else(|| DeviceError::UnknownBackend(name.to_string()))
    }
}

/// A device as the command line names it: a backend, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// wgpu on a hardware adapter; flex when wgpu finds only a software one (lavapipe), or
    /// none: a software GPU runs small networks far slower than burn's CPU backend.
    Auto,
    /// This backend, whatever its adapter.
    Backend(Backend),
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;
    fn from_str(name: &str) -> Result<Self, DeviceError> {
        match name {
            "auto" => Ok(DeviceChoice::Auto),
            other => other
                .parse()
                .map(DeviceChoice::Backend)
                .map_err(|_| DeviceError::UnknownBackend(other.to_string())),
        }
    }
}

/// The backend a choice comes to, and why (for `auto`, what wgpu found).
#[derive(Debug, Clone, PartialEq)]
pub struct ChosenDevice {
    /// The backend.
    pub backend: Backend,
    /// Why, in words.
    pub reason: String,
}

impl DeviceChoice {
    /// The backend to use: `auto` asks wgpu for its adapter (opening it once per process).
    pub fn resolve(self) -> ChosenDevice {
        let backend = match self {
            DeviceChoice::Backend(backend) => {
                return ChosenDevice {
                    backend,
                    reason: "as asked".into(),
                };
            }
            DeviceChoice::Auto => describe(Backend::Wgpu),
        };
        Self::auto_from(backend)
    }

    /// `auto`'s choice given what wgpu reported.
    fn auto_from(wgpu: Result<DeviceReport, DeviceError>) -> ChosenDevice {
        match wgpu {
            Ok(report) if report.hardware => ChosenDevice {
                backend: Backend::Wgpu,
                reason: format!(
                    "wgpu has a hardware adapter, {}",
                    report.adapter.unwrap_or_default()
                ),
            },
            Ok(report) => ChosenDevice {
                backend: Backend::Flex,
                reason: format!(
                    "wgpu found only a software adapter ({}), slower than the CPU backend; --device wgpu forces it",
                    report.adapter.unwrap_or_else(|| "unnamed".into())
                ),
            },
            Err(error) => ChosenDevice {
                backend: Backend::Flex,
                reason: format!("wgpu is unavailable ({error})"),
            },
        }
    }
}

/// Why a device could not be had or used.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum DeviceError {
    /// A device name that is not `auto`, `wgpu` or `flex`.
    #[error("unknown device `{0}` (expected `auto`, `wgpu` or `flex`)")]
    UnknownBackend(String),
    /// wgpu found no adapter or could not open it.
    #[error(
        "wgpu could not open a device: {0} (without a GPU, install Mesa's lavapipe: \
         `apt-get install mesa-vulkan-drivers`; or use `--device flex`)"
    )]
    WgpuUnavailable(String),
    /// A computation failed on the device.
    #[error("{backend} device failed: {message}")]
    Execution {
        /// The backend that failed.
        backend: Backend,
        /// What it reported.
        message: String,
    },
}

/// Opens the base device (autodiff off) of a backend. wgpu is initialised once per process,
/// so that an adapter problem is a clean error here rather than a panic at first use.
pub fn open(backend: Backend) -> Result<Device, DeviceError> {
    match backend {
        Backend::Flex => Ok(Device::flex()),
        Backend::Wgpu => {
            static WGPU: OnceLock<Result<Device, DeviceError>> = OnceLock::new();
            WGPU.get_or_init(|| {
                without_runtime_dir_complaints(|| {
                    Device::wgpu_options()
                        .init()
                        .map_err(|e| DeviceError::WgpuUnavailable(e.to_string()))
                })
            })
            .clone()
        }
    }
}

/// Runs `probe` (opening wgpu) with stderr sent to /dev/null when `XDG_RUNTIME_DIR` is unset
/// or not a directory: the Vulkan loader then prints `error: XDG_RUNTIME_DIR is invalid or
/// not set` while it looks for a display, which a headless run never needs, and a new user
/// reads "error" before gradless has said anything. What wgpu itself fails with is returned,
/// not printed, so nothing of gradless's is lost.
fn without_runtime_dir_complaints<T>(probe: impl FnOnce() -> T) -> T {
    let runtime_dir_ok =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| std::path::Path::new(&dir).is_dir());
    if runtime_dir_ok {
        return probe();
    }
    tracing::debug!(
        "XDG_RUNTIME_DIR is unset: the Vulkan loader's complaints about it are not shown"
    );
    let silenced = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .and_then(|null| {
            let saved = rustix::io::dup(std::io::stderr())?;
            rustix::stdio::dup2_stderr(&null)?;
            Ok(saved)
        });
    let result = probe();
    if let Ok(saved) = silenced {
        // If stderr cannot be put back, later errors would vanish: better to say so loudly
        // on stdout than to lose them.
        if let Err(error) = rustix::stdio::dup2_stderr(&saved) {
            println!("gradless: could not restore stderr after probing wgpu: {error}");
        }
    }
    result
}

/// What a device turned out to be (checkpoints record it for the device they were trained on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceReport {
    /// The backend.
    pub backend: Backend,
    /// The adapter's own name (e.g. `llvmpipe (LLVM 15.0.6, 256 bits)` or `NVIDIA H100`);
    /// `None` for backends that report none (flex).
    pub adapter: Option<String>,
    /// What kernels are compiled for, as the runtime reports it.
    pub target: Option<String>,
    /// Whether the adapter is a real card (`false` for CPUs and software rasterisers such as
    /// lavapipe).
    pub hardware: bool,
}

impl fmt::Display for DeviceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.adapter {
            Some(adapter) => write!(
                f,
                "{}: {adapter} ({})",
                self.backend,
                if self.hardware {
                    "hardware"
                } else {
                    "software"
                }
            ),
            None => write!(f, "{}: CPU (pure Rust)", self.backend),
        }
    }
}

/// Opens a backend's device and says what it is.
pub fn describe(backend: Backend) -> Result<DeviceReport, DeviceError> {
    let device = open(backend)?;
    Ok(match backend {
        Backend::Flex => DeviceReport {
            backend,
            adapter: None,
            target: None,
            hardware: false,
        },
        Backend::Wgpu => {
            let identity = device.identity();
            DeviceReport {
                backend,
                hardware: identity.as_ref().is_some_and(|id| id.physical.is_some()),
                adapter: identity.as_ref().map(|id| id.name.clone()),
                target: identity.map(|id| id.fingerprint),
            }
        }
    })
}

/// A device with autodiff on: every operation is recorded for `backward`. Made only from
/// [`Device::autodiff`].
#[derive(Debug, Clone)]
pub struct TrainingDevice(Device);

impl TrainingDevice {
    /// The autodiff form of `base`.
    pub fn new(base: &Device) -> Self {
        Self(base.clone().autodiff())
    }

    /// The device, for building tensors and modules.
    pub fn device(&self) -> &Device {
        &self.0
    }

    /// The same hardware with autodiff off, for rollouts.
    pub fn inference(&self) -> InferenceDevice {
        InferenceDevice::new(&self.0)
    }
}

/// A device with autodiff off: no graph, no saved tensors (burn's `inference_mode`). Made
/// only from [`Device::without_autodiff`], so code that takes one cannot record gradients.
#[derive(Debug, Clone)]
pub struct InferenceDevice(Device);

impl InferenceDevice {
    /// The inference form of `base`, whatever `base`'s autodiff setting.
    pub fn new(base: &Device) -> Self {
        Self(base.clone().without_autodiff())
    }

    /// The device, for building tensors and modules.
    pub fn device(&self) -> &Device {
        &self.0
    }
}

/// While alive, kernels on the cubecl devices (wgpu) are recorded, fused, compiled and
/// dispatched as usual but dropped instead of run (cubecl's dry run), on every thread:
/// what a computation then costs is the host's share of it, which bounds throughput on a
/// GPU fast enough that its own work is negligible. Anything read back meanwhile is
/// meaningless; flex is not affected.
#[derive(Debug)]
pub struct HostOnly {
    _dry_run: cubecl::dry_run::DryRun,
}

impl HostOnly {
    /// Starts dropping launches until the guard drops.
    pub fn start() -> Self {
        HostOnly {
            _dry_run: cubecl::dry_run::DryRun::new(),
        }
    }
}

/// A small deterministic network-shaped computation (matmul, bias, ReLU, softmax) whose
/// result should agree across backends up to float32 rounding; used to check that a device
/// computes what the CPU computes.
pub fn reference_computation(backend: Backend) -> Result<Vec<f32>, DeviceError> {
    const BATCH: usize = 64;
    const INPUTS: usize = 16;
    const OUTPUTS: usize = 8;
    let device = open(backend)?;
    let fill = |rows: usize, cols: usize, a: f32, b: f32| -> Tensor<2> {
        let values: Vec<f32> = (0..rows * cols)
            .map(|k| ((k / cols) as f32 * a + (k % cols) as f32 * b).sin())
            .collect();
        Tensor::from_data(TensorData::new(values, [rows, cols]), &device)
    };
    let x = fill(BATCH, INPUTS, 0.37, 0.11);
    let w = fill(INPUTS, OUTPUTS, 0.23, 0.71);
    let b = fill(1, OUTPUTS, 0.5, 0.3);
    let hidden = activation::relu(x.matmul(w) + b);
    let probabilities = activation::softmax(hidden, 1);
    probabilities
        .try_into_data()
        .map_err(|e| DeviceError::Execution {
            backend,
            message: e.to_string(),
        })?
        .try_to_vec::<f32>()
        .map_err(|e| DeviceError::Execution {
            backend,
            message: format!("{e:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_wgpu_only_on_hardware() {
        let report = |hardware| DeviceReport {
            backend: Backend::Wgpu,
            adapter: Some(
                if hardware {
                    "NVIDIA H200"
                } else {
                    "llvmpipe (LLVM 15)"
                }
                .into(),
            ),
            target: None,
            hardware,
        };
        let gpu = DeviceChoice::auto_from(Ok(report(true)));
        assert_eq!(gpu.backend, Backend::Wgpu);
        assert!(gpu.reason.contains("NVIDIA H200"), "{}", gpu.reason);
        let lavapipe = DeviceChoice::auto_from(Ok(report(false)));
        assert_eq!(lavapipe.backend, Backend::Flex);
        assert!(lavapipe.reason.contains("llvmpipe") && lavapipe.reason.contains("--device wgpu"));
        let none = DeviceChoice::auto_from(Err(DeviceError::WgpuUnavailable("no adapter".into())));
        assert_eq!(none.backend, Backend::Flex);
        assert_eq!("auto".parse::<DeviceChoice>(), Ok(DeviceChoice::Auto));
        assert_eq!(
            "flex".parse::<DeviceChoice>(),
            Ok(DeviceChoice::Backend(Backend::Flex))
        );
        assert!(
            "tpu"
                .parse::<DeviceChoice>()
                .unwrap_err()
                .to_string()
                .contains("`auto`")
        );
    }

    #[test]
    fn backend_names_round_trip_and_unknown_names_are_errors() {
        for backend in Backend::ALL {
            assert_eq!(backend.name().parse::<Backend>().unwrap(), backend);
        }
        let err = "cuda".parse::<Backend>().unwrap_err().to_string();
        assert!(err.contains("`cuda`") && err.contains("wgpu"), "{err}");
    }

    #[test]
    fn roles_have_the_autodiff_setting_their_type_says() {
        let base = open(Backend::Flex).unwrap();
        let training = TrainingDevice::new(&base);
        assert!(training.device().is_autodiff());
        let inference = training.inference();
        assert!(!inference.device().is_autodiff());
        assert!(
            !InferenceDevice::new(&base.autodiff())
                .device()
                .is_autodiff()
        );
    }

    #[test]
    fn reference_computation_gives_probabilities_on_flex() {
        let values = reference_computation(Backend::Flex).unwrap();
        assert_eq!(values.len(), 64 * 8);
        for row in values.chunks(8) {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{row:?}");
        }
    }
}
