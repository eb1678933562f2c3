//! Scratch probe of lavapipe costs: submit+wait, per-dispatch, and matvec layouts.
use std::time::Instant;

fn main() {
    let inst = wgpu::Instance::new({
        let mut d = wgpu::InstanceDescriptor::new_without_display_handle();
        d.backends = wgpu::Backends::VULKAN;
        d.flags = wgpu::InstanceFlags::empty();
        d
    });
    let ad = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all())).remove(0);
    let (dev, q) = pollster::block_on(ad.request_device(&wgpu::DeviceDescriptor {
        label: None,
        required_features: wgpu::Features::empty(),
        required_limits: ad.limits(),
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }))
    .unwrap();
    let src = std::fs::read_to_string(std::env::var("PROBE_WGSL").unwrap()).unwrap();
    let m = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    let n = 1 << 20;
    let buf = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: n * 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let init: Vec<f32> = (0..n).map(|i| (i % 17) as f32 * 0.01).collect();
    q.write_buffer(&buf, 0, bytemuck::cast_slice(&init));
    let wait = || {
        dev.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    };
    // empty submit
    for _ in 0..3 {
        let t0 = Instant::now();
        for _ in 0..20 {
            q.submit([]);
            wait();
        }
        println!("empty submit+wait: {:.3} ms", t0.elapsed().as_secs_f64() * 50.0);
    }
    let ubuf = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 256 * 1024,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let uvals: Vec<u32> = (0..1024 * 64).map(|i| ((i / 64) % 7 + 40) as u32).collect();
    q.write_buffer(&ubuf, 0, bytemuck::cast_slice(&uvals));
    let args: Vec<String> = std::env::args().skip(1).collect();
    // each arg: entry:groups:reps
    for a in &args {
        let parts: Vec<&str> = a.split(':').collect();
        let entry = parts[0];
        let groups: u32 = parts[1].parse().unwrap();
        let reps: u32 = parts[2].parse().unwrap();
        let vary = parts.get(3) == Some(&"vary");
        let bgl = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: None,
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pl = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[Some(&bgl)],
            immediate_size: 0,
        });
        let p = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: Some(&pl),
            module: &m,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &p.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &ubuf,
                        offset: 0,
                        size: std::num::NonZeroU64::new(16),
                    }),
                },
            ],
        });
        for _ in 0..3 {
            let t0 = Instant::now();
            let mut enc = dev.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&p);
                for r in 0..reps {
                    let off = if vary { (r % 1000) * 256 } else { 0 };
                    pass.set_bind_group(0, &bg, &[off]);
                    pass.dispatch_workgroups(groups, 1, 1);
                }
            }
            q.submit([enc.finish()]);
            wait();
            let s = t0.elapsed().as_secs_f64();
            println!(
                "{entry} groups={groups} reps={reps}: {:.3} ms total, {:.4} ms/dispatch",
                s * 1e3,
                s * 1e3 / reps as f64
            );
        }
    }
}
