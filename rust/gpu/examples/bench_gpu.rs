//! Updates per second of the GPU trainer (both kernel modes) next to the CPU engine, for the
//! paper's configuration and a bigger one, on the current adapter.
//!
//!     CARGO_TARGET_DIR=/work/target-gpu cargo run --release -p rnnstab-gpu --example bench_gpu
//!
//! Optional: `-- H I O B T` benchmarks one configuration instead; `-- profile H I O B T` also
//! prints the seconds each kernel takes on its own.

use std::time::Instant;

use rnnstab_engine::{
    Activation, Batch, Clip, Dims, InitialState, Loss, ModelConfig, NonFinitePolicy, OmegaConfig,
    OmegaForm, OptimizerConfig, OptimizerKind, Params, Settings, Targets, TimeReduction, Trainer,
    TrainerConfig,
};
use rnnstab_gpu::{GpuTrainer, KernelMode};

fn config() -> TrainerConfig {
    TrainerConfig {
        settings: Settings {
            model: ModelConfig {
                activation: Activation::Tanh,
                loss: Loss::SoftmaxCe,
                time_reduction: TimeReduction::Sum,
            },
            // α > 0 so Ω's kernels are part of the measured step, as in the paper's runs
            omega: OmegaConfig {
                alpha: 2.0,
                form: OmegaForm::Norm,
            },
            full_length: false,
        },
        clip: Clip::Norm(1.0),
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 0.01,
            momentum: 0.9,
            rho: 0.9,
            eps: 1e-8,
        },
        nonfinite: NonFinitePolicy::Skip,
        carry_state: false,
        freeze_biases: false,
    }
}

fn params(d: Dims) -> Params<f32> {
    let mut p = Params::zeros(d, false);
    let mut s = 12345u64;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let sc = (3.0 / d.n_hidden as f32).sqrt();
    p.w_rec.iter_mut().for_each(|v| *v = sc * next());
    p.w_in.iter_mut().for_each(|v| *v = 0.3 * next());
    p.w_out.iter_mut().for_each(|v| *v = 0.3 * next());
    p
}

fn rate(mut f: impl FnMut(), min_secs: f64) -> f64 {
    f(); // warm-up (pipeline caches, buffer allocation)
    let t0 = Instant::now();
    let mut n = 0;
    while n < 3 || t0.elapsed().as_secs_f64() < min_secs {
        f();
        n += 1;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn bench(h: usize, i: usize, o: usize, b: usize, t: usize, profile: bool) {
    let d = Dims {
        n_in: i,
        n_hidden: h,
        n_out: o,
    };
    let inputs: Vec<f32> = (0..t * b * i)
        .map(|k| ((k * 7919) % 13) as f32 / 13.0 - 0.5)
        .collect();
    let classes: Vec<i64> = (0..t * b).map(|k| (k % o) as i64).collect();
    let mut mask = vec![0f32; t * b];
    mask[(t - 1) * b..].iter_mut().for_each(|m| *m = 1.0); // scored at the last step, as in §4
    let batch = Batch {
        steps: t,
        batch: b,
        inputs: &inputs,
        targets: Targets::Classes(&classes),
        mask: &mask,
    };
    let cfg = config();
    let mut cpu = match Trainer::new(params(d), cfg, None) {
        Ok(c) => c,
        Err(e) => return eprintln!("CPU trainer: {e}"),
    };
    let cpu_rate = rate(
        || {
            let _ = cpu.step(&batch, InitialState::Zero);
        },
        2.0,
    );
    print!(
        "H={h} I={i} O={o} B={b} T={t}: cpu {cpu_rate:8.1} updates/s ({} threads)",
        cpu.threads()
    );
    for mode in [KernelMode::Persistent, KernelMode::PerStep] {
        match GpuTrainer::with_mode(params(d), cfg, mode) {
            Ok(mut g) => {
                if profile {
                    match g.profile(&batch) {
                        Ok(stages) => eprintln!("{mode:?} kernel seconds: {stages:?}"),
                        Err(e) => eprintln!("{mode:?} profile: {e}"),
                    }
                }
                let r = rate(
                    || {
                        let _ = g.step(&batch);
                    },
                    2.0,
                );
                print!(" | gpu {mode:?} {r:8.1} updates/s");
            }
            Err(e) => print!(" | gpu {mode:?}: {e}"),
        }
    }
    println!();
}

fn main() {
    let profile = std::env::args().any(|a| a == "profile");
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    match rnnstab_gpu::list_adapters().first() {
        Some(a) => println!("adapter: {} ({}, {})", a.name, a.backend, a.device_type),
        None => println!("adapter: none (the GPU columns will show the error)"),
    }
    if let [h, i, o, b, t] = args[..] {
        bench(h, i, o, b, t, profile);
    } else {
        bench(50, 6, 4, 20, 200, profile); // the paper's synthetic-task model (§4), batch 20
        bench(256, 64, 64, 20, 100, profile);
    }
}
