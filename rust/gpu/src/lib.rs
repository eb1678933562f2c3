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
//! Measured on Mesa lavapipe (llvmpipe, 2 cores, no GPU), updates/s for a whole step:
//!
//! | config (H, I, O, B, T)        | persistent | per-step |
//! |-------------------------------|-----------:|---------:|
//! | paper: (50, 6, 4, 20, 200)    | 4.5 | 6.0 |
//! | big:   (256, 64, 64, 20, 100) | 0.5 | 0.4 |
//!
//! (CPU engine in the same runs, 2 threads: 381 and 58 updates/s.) Per kernel on the paper's
//! configuration, persistent vs per-step: forward 105 ms vs 104 ms, BPTT 93 ms vs 42 ms; the
//! shared weight-gradient kernel 60 ms. On the big one the weight-gradient kernel (1.6 s) dominates
//! both modes and the recurrences are within 10 % of each other.
//!
//! **The default ([`KernelMode::Auto`]) is per-step**: it wins by a third on the paper's
//! configuration and is within noise on the big one. Why: lavapipe has no dispatch latency
//! worth saving (a "dispatch" is a function call on the CPU), so the persistent kernel's one
//! advantage is gone, while its parallelism is capped at B workgroups of which each spends most
//! of its time in workgroup barriers (executed by lavapipe as loop splits over the 64 lanes,
//! with H = 50 leaving 14 of them idle). The per-step kernels run B·H independent invocations
//! with no barrier. On a discrete GPU, where each of the 3·T dispatches costs microseconds of
//! launch and the B·H invocations fill a tiny fraction of the device, the persistent kernel
//! is expected to win; choose it there with [`KernelMode::Persistent`] (measure with
//! `examples/bench_gpu.rs`).
//!
//! Caveat, measured too: per-step has a fixed cost of ~0.2 s per update on lavapipe whatever
//! T is (cause not yet found; it is not the kernels' arithmetic), so for tiny models persistent
//! wins by far — (H, I, O, B, T) = (16, 5, 4, 16, 8): persistent 35.7, per-step 4.6 updates/s.
//! The machine was shared (load average ≈ 5 on 2 cores), so single figures vary by ±30 %;
//! a rerun of the paper's configuration gave persistent 2.1 vs per-step 4.7, the same order.
//!
//! Either way lavapipe is 60–100× slower than the CPU engine on the same two cores: it is a
//! correctness target (CI), not a speed target.
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
