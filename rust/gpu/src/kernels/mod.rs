//! The compute pipelines. Each `.wgsl` file next to this one is compiled as `common.wgsl`
//! followed by the file itself; all kernels share one bind-group layout (group 0, the buffers
//! listed in common.wgsl), and the one-dispatch-per-step kernels add group 1, a uniform holding
//! the step index, bound with a dynamic offset per dispatch.

use crate::error::{GpuError, Result};

const COMMON: &str = include_str!("common.wgsl");
const FORWARD: &str = include_str!("forward.wgsl");
const FORWARD_STEP: &str = include_str!("forward_step.wgsl");
const BACKWARD: &str = include_str!("backward.wgsl");
const BACKWARD_STEP: &str = include_str!("backward_step.wgsl");
const OMEGA: &str = include_str!("omega.wgsl");
const GRADS: &str = include_str!("grads.wgsl");
const UPDATE: &str = include_str!("update.wgsl");

/// Workgroup size of the element-wise kernels (matches `@workgroup_size(64)` and `flat_id`).
pub const WG: u32 = 64;
/// The persistent kernels keep h and y in workgroup arrays of this many entries.
pub const MAX_PERSISTENT_WIDTH: usize = 1024;
/// Stride of the step-index uniform, a multiple of every adapter's uniform offset alignment.
pub const STEP_STRIDE: u64 = 256;
/// All 13 bindings of group 0 are storage buffers; 0 (the configuration) and 4 (the batch) are
/// read-only. The configuration and the step index are deliberately *not* uniform buffers:
/// Mesa's lavapipe (22.x) "inlines" uniform values into the shader and re-JITs it with LLVM
/// every time a uniform buffer is rebound — 20–60 ms per dispatch, which was the unexplained
/// fixed cost per update (see the crate documentation).
pub const N_BINDINGS: u32 = 13;

pub(crate) struct Kernels {
    pub main_layout: wgpu::BindGroupLayout,
    pub step_layout: wgpu::BindGroupLayout,
    pub forward_seq: wgpu::ComputePipeline,
    pub backward_seq: wgpu::ComputePipeline,
    pub forward_init: wgpu::ComputePipeline,
    pub forward_step: wgpu::ComputePipeline,
    pub readout_step: wgpu::ComputePipeline,
    pub backward_step: wgpu::ComputePipeline,
    pub omega_pairs: wgpu::ComputePipeline,
    pub reduce_stats: wgpu::ComputePipeline,
    pub omega_fold: wgpu::ComputePipeline,
    pub weight_grads: wgpu::ComputePipeline,
    pub grad_norm: wgpu::ComputePipeline,
    pub apply_update: wgpu::ComputePipeline,
    pub agc_clip: wgpu::ComputePipeline,
}

fn buffer_entry(
    binding: u32,
    ty: wgpu::BufferBindingType,
    dynamic: bool,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: dynamic,
            min_binding_size: None,
        },
        count: None,
    }
}

impl Kernels {
    pub fn new(device: &wgpu::Device) -> Result<Self> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let entries: Vec<_> = (0..N_BINDINGS)
            .map(|b| {
                let ty = match b {
                    0 | 4 => wgpu::BufferBindingType::Storage { read_only: true },
                    _ => wgpu::BufferBindingType::Storage { read_only: false },
                };
                buffer_entry(b, ty, false)
            })
            .collect();
        let main_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("rnnstab main"),
            entries: &entries,
        });
        let step_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("rnnstab step index"),
            entries: &[buffer_entry(
                0,
                wgpu::BufferBindingType::Storage { read_only: true },
                true,
            )],
        });
        let main_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("rnnstab main"),
            bind_group_layouts: &[Some(&main_layout)],
            immediate_size: 0,
        });
        let step_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("rnnstab per-step"),
            bind_group_layouts: &[Some(&main_layout), Some(&step_layout)],
            immediate_size: 0,
        });
        let module = |name: &str, src: &str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(format!("{COMMON}\n{src}").into()),
            })
        };
        let pipeline = |m: &wgpu::ShaderModule, layout: &wgpu::PipelineLayout, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(layout),
                module: m,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let fwd = module("forward.wgsl", FORWARD);
        let fwd_step = module("forward_step.wgsl", FORWARD_STEP);
        let bwd = module("backward.wgsl", BACKWARD);
        let bwd_step = module("backward_step.wgsl", BACKWARD_STEP);
        let omega = module("omega.wgsl", OMEGA);
        let grads = module("grads.wgsl", GRADS);
        let update = module("update.wgsl", UPDATE);
        let k = Kernels {
            forward_seq: pipeline(&fwd, &main_pl, "forward_seq"),
            backward_seq: pipeline(&bwd, &main_pl, "backward_seq"),
            forward_init: pipeline(&fwd_step, &step_pl, "forward_init"),
            forward_step: pipeline(&fwd_step, &step_pl, "forward_step"),
            readout_step: pipeline(&fwd_step, &step_pl, "readout_step"),
            backward_step: pipeline(&bwd_step, &step_pl, "backward_step"),
            omega_pairs: pipeline(&omega, &main_pl, "omega_pairs"),
            reduce_stats: pipeline(&omega, &main_pl, "reduce_stats"),
            omega_fold: pipeline(&omega, &main_pl, "omega_fold"),
            weight_grads: pipeline(&grads, &main_pl, "weight_grads"),
            grad_norm: pipeline(&update, &main_pl, "grad_norm"),
            apply_update: pipeline(&update, &main_pl, "apply_update"),
            agc_clip: pipeline(&update, &main_pl, "agc_clip"),
            main_layout,
            step_layout,
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Device(format!(
                "compiling the kernels failed: {e}"
            )));
        }
        Ok(k)
    }
}

/// Workgroup counts (x, y) covering `n` invocations of a 64-wide element-wise kernel within
/// the per-dimension limit (see `flat_id` in common.wgsl).
pub fn grid(n: usize, max_per_dim: u32) -> (u32, u32) {
    let groups = n.div_ceil(WG as usize).max(1);
    let max = max_per_dim.max(1) as usize;
    if groups <= max {
        (groups as u32, 1)
    } else {
        (max as u32, groups.div_ceil(max) as u32)
    }
}
