//! Run-time choice of backend, device and float precision.
//!
//! | spelling              | backend                          | cargo feature |
//! |-----------------------|----------------------------------|---------------|
//! | `cpu` (or `flex`)     | burn-flex, pure Rust             | (default)     |
//! | `wgpu`, `wgpu:N`, `wgpu:cpu` | wgpu (Vulkan/Metal/DX12): best adapter, discrete GPU N, CPU adapter | `wgpu` |
//! | `cuda`, `cuda:N`      | burn's native CUDA backend       | `cuda`        |
//! | `tch-cpu`             | libtorch on the CPU              | `tch`         |
//! | `tch-cuda`, `tch-cuda:N` | libtorch on CUDA GPU N        | `tch`         |
//!
//! A choice parses whether or not its feature was compiled in; [`DeviceChoice::device`] then
//! fails with [`DeviceError::NotCompiled`] naming the feature to enable.
//!
//! ```
//! use stilts_models::device::{DeviceChoice, Precision};
//! let choice: DeviceChoice = "cpu".parse().unwrap();
//! let mut device = choice.device().unwrap();
//! assert!("cuda:1".parse::<DeviceChoice>().is_ok());
//! assert!("gpu".parse::<DeviceChoice>().is_err());
//! let _ = Precision::F32.apply(&mut device); // before creating any tensor on it
//! ```

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, FloatDType};

/// Errors from parsing or opening a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The spelling is not one of the table in [`crate::device`].
    #[error(
        "unknown device {0:?}: expected cpu, wgpu, wgpu:N, wgpu:cpu, cuda, cuda:N, tch-cpu, tch-cuda or tch-cuda:N"
    )]
    Unknown(String),
    /// The backend exists but this binary was built without it.
    #[error(
        "device {choice} needs the `{feature}` cargo feature: rebuild with `--features stilts-models/{feature}`{hint}"
    )]
    NotCompiled {
        /// The device asked for.
        choice: String,
        /// The cargo feature of `stilts-models` that provides it.
        feature: &'static str,
        /// What else the feature needs.
        hint: &'static str,
    },
    /// An unknown precision name.
    #[error("unknown precision {0:?}: expected f32, bf16 or f16")]
    UnknownPrecision(String),
    /// The device cannot compute in the precision, or its precision is already fixed.
    #[error("device {device} cannot use {precision}: {message}")]
    Precision {
        /// The device.
        device: String,
        /// The precision asked for.
        precision: Precision,
        /// Why not.
        message: String,
    },
    /// The thread count asked for cannot be used.
    #[error("threads: {0}")]
    Threads(String),
}

/// The variable that sets the CPU thread count when `--threads` does not.
pub const THREADS_ENV: &str = "STILTS_THREADS";

/// Sizes the CPU thread pool that burn-flex, its matrix kernels and the fused kernels
/// ([`crate::kernels`]) share (rayon's global pool): `threads`, else `STILTS_THREADS`, else
/// rayon's default (`RAYON_NUM_THREADS`, else one per logical core). Returns the count in
/// effect.
///
/// Call it before the first tensor operation: the pool is built once per process. A later
/// call asking for the count already in effect succeeds; asking for another is an error.
pub fn init_threads(threads: Option<usize>) -> Result<usize, DeviceError> {
    let asked = match threads {
        Some(n) => Some(n),
        None => match std::env::var(THREADS_ENV) {
            Ok(v) => Some(v.trim().parse::<usize>().map_err(|_| {
                DeviceError::Threads(format!("{THREADS_ENV}={v:?} is not a whole number"))
            })?),
            Err(_) => None,
        },
    };
    if asked == Some(0) {
        return Err(DeviceError::Threads(
            "the thread count must be at least 1".into(),
        ));
    }
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = asked {
        builder = builder.num_threads(n);
    }
    match builder.build_global() {
        Ok(()) => Ok(rayon::current_num_threads()),
        Err(_) if asked.is_none_or(|n| n == rayon::current_num_threads()) => {
            Ok(rayon::current_num_threads())
        }
        Err(_) => Err(DeviceError::Threads(format!(
            "{} threads asked for, but this process already runs {} (set the count before any \
             tensor operation)",
            asked.unwrap_or_default(),
            rayon::current_num_threads()
        ))),
    }
}

/// Keeps freed memory in the process for reuse (glibc on Linux; elsewhere nothing).
///
/// A training step frees and reallocates the same large buffers (activations, gradients,
/// attention scores of several MiB each). glibc serves blocks above its mmap threshold with
/// fresh `mmap`s, so every step pays page faults and zeroing for them again; with the
/// threshold and trim limit raised, they come back from the heap. MiniLM inference on flex ran
/// 1.3x faster with it, and peak memory is what the step needs either way. Call it once at
/// start-up, before the first large allocation.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const LIMIT: libc::c_int = 1 << 30;
        // SAFETY: mallopt only sets allocator parameters; it is called before other threads
        // allocate large blocks, and a refused setting leaves the default.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LIMIT);
            libc::mallopt(libc::M_TRIM_THRESHOLD, LIMIT);
        }
    }
}

/// The CPU threads in use (rayon's global pool).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// A backend and device, as named on the command line or in a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceChoice {
    /// burn-flex on the CPU (always available).
    #[default]
    Cpu,
    /// wgpu's best adapter.
    Wgpu,
    /// wgpu on the discrete GPU with this index.
    WgpuGpu(usize),
    /// wgpu on a CPU adapter (e.g. Mesa's lavapipe software Vulkan).
    WgpuCpu,
    /// burn's CUDA backend on this GPU.
    Cuda(usize),
    /// libtorch on the CPU.
    TchCpu,
    /// libtorch on this CUDA GPU.
    TchCuda(usize),
}

fn index(spec: &str, rest: &str) -> Result<usize, DeviceError> {
    rest.parse()
        .map_err(|_| DeviceError::Unknown(spec.to_owned()))
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(spec: &str) -> Result<Self, DeviceError> {
        let s = spec.trim().to_ascii_lowercase();
        Ok(match s.as_str() {
            "cpu" | "flex" => DeviceChoice::Cpu,
            "wgpu" => DeviceChoice::Wgpu,
            "wgpu:cpu" => DeviceChoice::WgpuCpu,
            "cuda" => DeviceChoice::Cuda(0),
            "tch-cpu" | "tch" => DeviceChoice::TchCpu,
            "tch-cuda" => DeviceChoice::TchCuda(0),
            _ => {
                if let Some(rest) = s.strip_prefix("wgpu:") {
                    DeviceChoice::WgpuGpu(index(spec, rest)?)
                } else if let Some(rest) = s.strip_prefix("cuda:") {
                    DeviceChoice::Cuda(index(spec, rest)?)
                } else if let Some(rest) = s.strip_prefix("tch-cuda:") {
                    DeviceChoice::TchCuda(index(spec, rest)?)
                } else {
                    return Err(DeviceError::Unknown(spec.to_owned()));
                }
            }
        })
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Wgpu => write!(f, "wgpu"),
            DeviceChoice::WgpuGpu(i) => write!(f, "wgpu:{i}"),
            DeviceChoice::WgpuCpu => write!(f, "wgpu:cpu"),
            DeviceChoice::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceChoice::TchCpu => write!(f, "tch-cpu"),
            DeviceChoice::TchCuda(i) => write!(f, "tch-cuda:{i}"),
        }
    }
}

impl DeviceChoice {
    /// The cargo feature of `stilts-models` the choice needs (`None` for the CPU default).
    pub fn feature(&self) -> Option<&'static str> {
        match self {
            DeviceChoice::Cpu => None,
            DeviceChoice::Wgpu | DeviceChoice::WgpuGpu(_) | DeviceChoice::WgpuCpu => Some("wgpu"),
            DeviceChoice::Cuda(_) => Some("cuda"),
            DeviceChoice::TchCpu | DeviceChoice::TchCuda(_) => Some("tch"),
        }
    }

    /// Whether this binary was built with the choice's backend.
    pub fn is_compiled(&self) -> bool {
        match self.feature() {
            None => true,
            Some("wgpu") => cfg!(feature = "wgpu"),
            Some("cuda") => cfg!(feature = "cuda"),
            Some("tch") => cfg!(feature = "tch"),
            Some(_) => false,
        }
    }

    /// The burn device (without autodiff; call `.autodiff()` to train). Devices are lazy: a
    /// missing GPU or driver shows up on the first tensor operation, not here.
    pub fn device(&self) -> Result<Device, DeviceError> {
        if !self.is_compiled() {
            let feature = self.feature().unwrap_or("default");
            let hint = match feature {
                "tch" => {
                    " (and libtorch: set LIBTORCH to an unpacked libtorch, or LIBTORCH_USE_PYTORCH=1 with the pip torch tch expects)"
                }
                "cuda" => " (and the CUDA toolkit)",
                _ => "",
            };
            return Err(DeviceError::NotCompiled {
                choice: self.to_string(),
                feature,
                hint,
            });
        }
        Ok(self.open())
    }

    #[allow(deprecated)] // burn 0.22 deprecates burn-tch but still ships it.
    fn open(&self) -> Device {
        match *self {
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "wgpu")]
            DeviceChoice::WgpuGpu(i) => Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)),
            #[cfg(feature = "wgpu")]
            DeviceChoice::WgpuCpu => Device::wgpu(burn::tensor::DeviceKind::Cpu),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(i) => Device::cuda(i),
            #[cfg(feature = "tch")]
            DeviceChoice::TchCpu => Device::libtorch(),
            #[cfg(feature = "tch")]
            DeviceChoice::TchCuda(i) => Device::libtorch_cuda(i),
            // `device` checked the feature; only the CPU is left.
            _ => Device::flex(),
        }
    }
}

/// The optional features of this build of `stilts-models`, each with whether it is compiled in:
/// the backends (`wgpu`, `cuda`, `tch`) and flex's AVX-512 kernels (`x86-v4`).
pub fn compiled_features() -> [(&'static str, bool); 4] {
    [
        ("wgpu", cfg!(feature = "wgpu")),
        ("cuda", cfg!(feature = "cuda")),
        ("tch", cfg!(feature = "tch")),
        ("x86-v4", cfg!(feature = "x86-v4")),
    ]
}

/// The float type a model computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// 32-bit floats (the parity-checked default).
    #[default]
    F32,
    /// bfloat16 (GPUs; on the CPU backend storage and arithmetic work, but are not faster).
    Bf16,
    /// IEEE half precision.
    F16,
}

impl FromStr for Precision {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, DeviceError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            _ => Err(DeviceError::UnknownPrecision(s.to_owned())),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        })
    }
}

impl Precision {
    /// burn's float dtype.
    pub fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::Bf16 => FloatDType::BF16,
            Precision::F16 => FloatDType::F16,
        }
    }

    /// Makes this the default float type of `device`. Must run before any tensor is created on
    /// the device (burn fixes a device's dtypes on first use); `F32` on an untouched device is
    /// a no-op. Weights loaded afterwards are cast on load.
    pub fn apply(self, device: &mut Device) -> Result<(), DeviceError> {
        if self == Precision::F32 {
            return Ok(());
        }
        self.check(device)?;
        let result = device.configure(self.dtype());
        result.map_err(|e| self.error(device, e.to_string()))
    }

    /// Whether `device` computes in this precision (f32 everywhere); the error names the
    /// device and the precision. Changes nothing: mixed-precision training casts its compute
    /// copy explicitly ([`crate::mixed`]).
    pub fn check(self, device: &Device) -> Result<(), DeviceError> {
        if self == Precision::F32 || device.supports_dtype(self.dtype()) {
            return Ok(());
        }
        Err(self.error(device, "not supported by this backend".to_owned()))
    }

    fn error(self, device: &Device, message: String) -> DeviceError {
        DeviceError::Precision {
            device: format!("{device:?}"),
            precision: self,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for (s, choice) in [
            ("cpu", DeviceChoice::Cpu),
            ("wgpu", DeviceChoice::Wgpu),
            ("wgpu:1", DeviceChoice::WgpuGpu(1)),
            ("wgpu:cpu", DeviceChoice::WgpuCpu),
            ("cuda:0", DeviceChoice::Cuda(0)),
            ("cuda:3", DeviceChoice::Cuda(3)),
            ("tch-cpu", DeviceChoice::TchCpu),
            ("tch-cuda:2", DeviceChoice::TchCuda(2)),
        ] {
            assert_eq!(s.parse::<DeviceChoice>().unwrap(), choice, "{s}");
            assert_eq!(choice.to_string(), s);
        }
        assert_eq!(
            "CUDA".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert_eq!("flex".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        for bad in ["gpu", "cuda:", "cuda:x", "tch-cuda:-1", ""] {
            assert!(
                matches!(bad.parse::<DeviceChoice>(), Err(DeviceError::Unknown(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_features_are_named() {
        assert!(DeviceChoice::Cpu.device().is_ok());
        if !cfg!(feature = "cuda") {
            let err = DeviceChoice::Cuda(0).device().unwrap_err();
            assert!(
                err.to_string().contains("--features stilts-models/cuda"),
                "{err}"
            );
        }
        if !cfg!(feature = "tch") {
            let err = DeviceChoice::TchCpu.device().unwrap_err();
            assert!(err.to_string().contains("LIBTORCH"), "{err}");
        }
    }

    #[test]
    fn precisions_parse() {
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!("fp16".parse::<Precision>().unwrap(), Precision::F16);
        assert!("int8".parse::<Precision>().is_err());
        assert_eq!(Precision::Bf16.dtype(), FloatDType::BF16);
    }
}
