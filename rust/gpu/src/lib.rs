//! The rnnstab GPU backend: the CPU engine's training step (`rnnstab_engine::Trainer<f32>`)
//! as wgpu compute shaders, in f32.
//!
//! [`GpuTrainer`] keeps θ, the gradient and the optimiser state on the device; a step uploads
//! the batch (inputs, targets, mask) and reads back the loss, Ω, the gradient norm, the pair
//! count and the clipped/skipped flags. Semantics follow the CPU engine exactly (eq. 2's
//! forward, BPTT, Ω of eq. 9 with eq. 10's immediate gradient, Algorithm 1 or element-wise
//! clipping, the non-finite policy, the five optimisers); differences are f32 rounding only.
//! Not supported yet: a learned x_0 and `carry_state` ([`GpuError::Unsupported`]), float64
//! ([`ensure_f64_supported`]).
//!
//! # Persistent kernels versus one dispatch per step
//!
//! The recurrences (forward over T steps, BPTT back over them) are sequential in time but
//! independent across sequences. Two implementations exist ([`KernelMode`]):
//! - **persistent** (`forward.wgsl`, `backward.wgsl`): one workgroup per sequence loops over
//!   time inside a single dispatch, keeping h_{t−1} (or g_{t+1}) in workgroup memory;
//! - **per-step** (`forward_step.wgsl`, `backward_step.wgsl`): 3·T dispatches, the state
//!   round-tripping through global memory between them.
//!
//! Which is faster depends on the device: on lavapipe the per-step kernels win (1.4–1.7×),
//! because lavapipe re-compiled shaders whenever a uniform buffer was rebound (the
//! configuration is therefore a read-only storage buffer) and runs each workgroup barrier as a
//! coroutine switch; on a discrete GPU the persistent kernels are expected to win. The
//! measurements and what was tried: `docs/decisions/gpu-kernels-on-lavapipe.md`.
//!
//! **The default ([`KernelMode::Auto`]) is per-step**; choose the other with
//! [`KernelMode::Persistent`] (measure with `examples/bench_gpu.rs`).
//!
//! Batch truncation: both modes run only up to the last step where any mask is on (S − 1 =
//! `Batch::last_scored_step`, unless `full_length`), as the CPU engine does.
//!
//! Lavapipe is 60–100× slower than the CPU engine on the same cores: it is a correctness
//! target (CI), not a speed target.
//!
//! # Determinism
//!
//! No float atomics anywhere: weight gradients are one invocation per parameter summing its
//! (example, step) rows in a fixed order, and the scalar reductions are single-workgroup trees
//! of fixed shape. The same inputs give bit-identical results run to run on one adapter.

mod device;
mod error;
mod kernels;
mod trainer;

pub use device::{list_adapters, AdapterSummary, ADAPTER_ENV};
pub use error::{GpuError, Result};
pub use kernels::MAX_PERSISTENT_WIDTH;
pub use trainer::{GpuLossOutput, GpuTrainer, KernelMode};

/// float64 on the GPU: always an `Err` for now, naming what is missing. Adapters without
/// wgpu's `SHADER_F64` feature can never run it; on those that have it, the f64 kernels are
/// simply not written yet.
pub fn ensure_f64_supported() -> Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        return Err(GpuError::NoAdapter(
            "wgpu found no Vulkan, Metal or DX12 adapter".into(),
        ));
    }
    let instance_has_f64 = device::any_adapter_has(wgpu::Features::SHADER_F64);
    if !instance_has_f64 {
        return Err(GpuError::MissingFeature(
            "SHADER_F64 (64-bit floats in shaders); train in float32".into(),
        ));
    }
    Err(GpuError::Unsupported(
        "float64 parameters (the GPU kernels are f32; pass float32 arrays)".into(),
    ))
}
