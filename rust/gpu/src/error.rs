//! The GPU backend's one error type. A missing adapter, a missing feature or a lost device is an
//! `Err`, never a panic; the binding layer maps each variant to one Python exception class.

use rnnstab_engine::EngineError;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum GpuError {
    /// No GPU adapter (Vulkan, Metal or DX12) could be found or opened.
    #[error("no GPU adapter available ({0}); use --device cpu, or install a driver (e.g. Mesa's software Vulkan: apt-get install mesa-vulkan-drivers libvulkan1)")]
    NoAdapter(String),
    /// The adapter lacks a feature or limit this computation needs (e.g. SHADER_F64).
    #[error("the GPU adapter lacks {0}; use --device cpu")]
    MissingFeature(String),
    /// An option the GPU backend does not implement (yet); the message names it.
    #[error("not supported on the GPU backend: {0}; use --device cpu for this option")]
    Unsupported(String),
    /// The device reported an error or was lost.
    #[error("GPU device error: {0}")]
    Device(String),
    /// A malformed argument or a non-finite gradient under the "error" policy, exactly as the
    /// CPU engine reports it.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

pub type Result<T> = std::result::Result<T, GpuError>;
