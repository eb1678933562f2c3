//! Finding an adapter and opening a device, with errors captured instead of wgpu's default
//! panicking handler.

use std::sync::{Arc, Mutex};

use crate::error::{GpuError, Result};

/// One adapter as `rnnstab info` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    pub name: String,
    /// "vulkan", "metal", "dx12", ...
    pub backend: String,
    /// "discrete", "integrated", "virtual", "cpu" or "other".
    pub device_type: String,
    pub driver: String,
}

/// The environment variable that picks an adapter by (case-insensitive) name substring.
pub const ADAPTER_ENV: &str = "RNNSTAB_GPU_ADAPTER";

fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

fn summary(info: &wgpu::AdapterInfo) -> AdapterSummary {
    AdapterSummary {
        name: info.name.clone(),
        backend: info.backend.to_str().to_string(),
        device_type: device_type_name(info.device_type).to_string(),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
    }
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    // Validation layers are for debugging wgpu itself; they are rarely installed and slow.
    desc.flags = wgpu::InstanceFlags::empty();
    wgpu::Instance::new(desc)
}

fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// Every adapter wgpu can see (empty when there is none: no driver, no GPU).
pub fn list_adapters() -> Vec<AdapterSummary> {
    adapters(&instance())
        .iter()
        .map(|a| summary(&a.get_info()))
        .collect()
}

/// Preference when no adapter is named: real GPUs first, software rasterisers last.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// An open device, its queue, and the errors it has reported since the last check.
pub(crate) struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Gpu {
    /// Opens the adapter named by `RNNSTAB_GPU_ADAPTER`, else the best-ranked one.
    pub fn open() -> Result<Self> {
        let instance = instance();
        let mut found = adapters(&instance);
        if found.is_empty() {
            return Err(GpuError::NoAdapter(
                "wgpu found no Vulkan, Metal or DX12 adapter".into(),
            ));
        }
        let wanted = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
        let adapter = match &wanted {
            Some(name) => {
                let lower = name.to_lowercase();
                let names: Vec<String> = found.iter().map(|a| a.get_info().name).collect();
                let pos = found
                    .iter()
                    .position(|a| a.get_info().name.to_lowercase().contains(&lower))
                    .ok_or_else(|| {
                        GpuError::NoAdapter(format!(
                            "{ADAPTER_ENV}={name} matches none of: {}",
                            names.join(", ")
                        ))
                    })?;
                found.swap_remove(pos)
            }
            None => {
                found.sort_by_key(|a| rank(a.get_info().device_type));
                found.swap_remove(0)
            }
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        // 13 in group 0 (the configuration included, see kernels/mod.rs) + the step index.
        if limits.max_storage_buffers_per_shader_stage < 14 {
            return Err(GpuError::MissingFeature(format!(
                "14 storage buffers per shader stage (adapter '{}' has {})",
                info.name, limits.max_storage_buffers_per_shader_stage
            )));
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("rnnstab"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| GpuError::NoAdapter(format!("could not open '{}': {e}", info.name)))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let sink = Arc::clone(&errors);
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut v) = sink.lock() {
                v.push(format!("device lost ({reason:?}): {msg}"));
            }
        });
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            errors,
        })
    }

    pub fn summary(&self) -> AdapterSummary {
        summary(&self.info)
    }

    /// The first error the device reported since the last call, as an `Err`.
    pub fn check(&self) -> Result<()> {
        let mut v = self
            .errors
            .lock()
            .map_err(|_| GpuError::Device("error log poisoned".into()))?;
        if v.is_empty() {
            Ok(())
        } else {
            let msg = v.join("; ");
            v.clear();
            Err(GpuError::Device(msg))
        }
    }

    /// Blocks until the queue is idle.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Device(e.to_string()))?;
        self.check()
    }

    /// Copies `len` f32 values from `src` (at element `offset`) back to the host.
    pub fn download(&self, src: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = (len * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("download"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        enc.copy_buffer_to_buffer(src, (offset * 4) as u64, &staging, 0, bytes);
        self.queue.submit([enc.finish()]);
        self.read_mapped(&staging, len)
    }

    /// Maps a MAP_READ buffer, waits, and copies its first `len` f32 values out.
    pub fn read_mapped(&self, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        let (tx, rx) = std::sync::mpsc::channel();
        buf.map_async(wgpu::MapMode::Read, ..(len * 4) as u64, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(GpuError::Device(format!("could not map a buffer: {e}"))),
            Err(_) => return Err(GpuError::Device("buffer mapping was abandoned".into())),
        }
        let out = {
            let view = buf
                .get_mapped_range(..(len * 4) as u64)
                .map_err(|e| GpuError::Device(format!("could not read a mapped buffer: {e:?}")))?;
            bytemuck::pod_collect_to_vec::<u8, f32>(&view)
        };
        buf.unmap();
        Ok(out)
    }
}

/// Whether any visible adapter offers `feature`.
pub(crate) fn any_adapter_has(feature: wgpu::Features) -> bool {
    adapters(&instance())
        .iter()
        .any(|a| a.features().contains(feature))
}
