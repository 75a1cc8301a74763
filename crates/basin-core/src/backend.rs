//! Where a reconstruction's heavy iterations run: the choice `--backend` makes, known to every
//! crate (the GPU itself lives in basin-gpu, an optional dependency of the library).

/// Which backend a reconstruction runs on (`--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// A hardware GPU when one exists (CUDA when built with it, else a hardware Vulkan/Metal
    /// adapter), else the CPU. A software adapter is never chosen automatically.
    #[default]
    Auto,
    /// The CPU path.
    Cpu,
    /// A GPU; with no hardware adapter, a software one (with a warning).
    Gpu,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Backend::Auto),
            "cpu" => Ok(Backend::Cpu),
            "gpu" => Ok(Backend::Gpu),
            other => Err(format!("unknown backend {other:?}: use auto, cpu or gpu")),
        }
    }
}
