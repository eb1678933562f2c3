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
//! Measured on Mesa lavapipe (llvmpipe, Mesa 22.3.6, 2 cores shared with other jobs, load
//! average 6–9 during the runs, so ±30 %), updates/s for a whole step, softmax loss scored at
//! the last step, α = 2, norm clipping; "before" is the first version, "after" the current one:
//!
//! | config (H, I, O, B, T)        | before: persistent | per-step | after: persistent | per-step | CPU engine |
//! |-------------------------------|----:|----:|----:|-----:|-----:|
//! | (50, 6, 4, 20, 50)            | 6.6 | 8.4 | 9.8 | 16.4 | 1423 |
//! | paper: (50, 6, 4, 20, 200)    | 2.2 | 3.1 | 2.4 | 3.3  | 216  |
//! | big:   (256, 64, 64, 20, 100) | 0.5 | 0.4 | 0.2 | 0.2  | 42   |
//! | tiny:  (16, 5, 4, 16, 8)      | 18.4 | 3.4 | 161 | 403 | 7792 |
//!
//! **The fixed cost was lavapipe re-compiling shaders.** Mesa 22.3's lavapipe "inlines"
//! uniform-buffer values used in branches and loop bounds into the shader and re-JITs it with
//! LLVM whenever a uniform buffer is (re)bound, without a cache: 20–60 ms per dispatch for the
//! kernels whose switches (activation, loss) it could fold. The configuration was a uniform
//! buffer and the per-step kernels rebound a uniform (the step index) for every one of their
//! 3·T dispatches. Both are now read-only storage buffers (kernels/mod.rs), which lavapipe
//! never inlines: per kernel on the tiny configuration, persistent forward 65 → 1.7 ms,
//! per-step forward (8 dispatches) 185 → 0.5 ms. Measured alongside, and not a cost: an empty
//! submit-and-wait is 0.01 ms, one dispatch of a trivial kernel 0.01 ms, and a step already
//! was one submit with one blocking readback of 16 scalars into a buffer created once
//! (`GpuTrainer::profile` reports both, and the whole step).
//!
//! What is left is arithmetic, and lavapipe is slow at it for a structural reason: in Mesa
//! 22.3 every storage-buffer load — uniform address or not — is compiled as a loop over the
//! SIMD lanes with a bounds check and a branch per lane (only uniform-buffer loads get a
//! scalar fast path). So each multiply-add costs two such loads whatever the dispatch shape.
//! Tried and reverted because they did not measurably help: the weight-gradient kernel tiled
//! as 8 rows × 64 columns per workgroup (one gathered and 8 shared-address loads per 8
//! multiply-adds: 2.3× *slower*, normalised for load, as 15 workgroups replace 44 and shared
//! addresses are no cheaper), and the per-step kernels blocked as 64 units × 8 examples per
//! workgroup (11.1 vs 10.8 ms forward at T = 50, within noise). Per kernel now, per-step mode
//! at (50, 6, 4, 20, 50): forward 11 ms (50 dispatches), read-out 1.2, BPTT 11, weight
//! gradients 14, everything else < 1; at T = 200: 50, 3.4, 54, 96.
//!
//! **The default ([`KernelMode::Auto`]) is per-step**: after the fix it is 1.7× the persistent
//! kernels at (50, 6, 4, 20, 50), 1.4× at T = 200, and within noise on the big model. The
//! persistent kernels cap parallelism at B workgroups, each spending most of its time in
//! workgroup barriers (run by llvmpipe as coroutine switches over 8-lane slices, with H = 50
//! leaving 14 of 64 lanes idle); the per-step kernels run B·H independent invocations, and a
//! dispatch costs ~10 µs. On a discrete GPU, where each of the 3·T dispatches costs
//! microseconds of launch and B·H invocations fill a tiny fraction of the device, the
//! persistent kernel is expected to win; choose it with [`KernelMode::Persistent`] (measure
//! with `examples/bench_gpu.rs`).
//!
//! Batch truncation: both modes run only up to the last step where any mask is on (S − 1 =
//! `Batch::last_scored_step`, unless `full_length`), as the CPU engine does.
//!
//! Lavapipe remains 60–100× slower than the CPU engine on the same cores (and far from the
//! ≥ 100 updates/s at T = 50 that solving temporal order in reasonable time would need): it is
//! a correctness target (CI), not a speed target.
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
