//! Runs training steps of a given size for profiling (`valgrind --tool=callgrind`, `perf`).
//! Usage: profile_step [H] [B] [T] [steps] [threads] [alpha] [I]

use rnnstab_engine::*;

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let get = |i: usize, d: usize| args.get(i).copied().unwrap_or(d);
    let (h, b, t, steps, threads, alpha) = (
        get(0, 50),
        get(1, 20),
        get(2, 200),
        get(3, 50),
        get(4, 1),
        get(5, 2),
    );
    let (i, o) = (get(6, 6), 4);
    let mut params = Params::<f32>::zeros(
        Dims {
            n_in: i,
            n_hidden: h,
            n_out: o,
        },
        false,
    );
    let mut seed = 12345u64;
    let mut rnd = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.2
    };
    for tns in params.tensors_mut() {
        tns.iter_mut().for_each(|v| *v = rnd());
    }
    let inputs: Vec<f32> = (0..t * b * i).map(|_| rnd()).collect();
    let targets: Vec<i64> = (0..t * b).map(|k| (k % o) as i64).collect();
    let mut mask = vec![0.0f32; t * b];
    mask[(t - 1) * b..].fill(1.0);
    let batch = Batch::new(
        params.dims,
        Loss::SoftmaxCe,
        (&inputs, &[t, b, i]),
        (Targets::Classes(&targets), &[t, b]),
        (&mask, &[t, b]),
    )?;
    let cfg = TrainerConfig {
        settings: Settings {
            model: ModelConfig {
                activation: Activation::Tanh,
                loss: Loss::SoftmaxCe,
                time_reduction: TimeReduction::Sum,
            },
            omega: OmegaConfig {
                alpha: alpha as f64,
                form: OmegaForm::Norm,
            },
            full_length: false,
        },
        clip: Clip::Norm(6.0),
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 0.001,
            momentum: 0.9,
            rho: 0.9,
            eps: 1e-8,
        },
        nonfinite: NonFinitePolicy::Skip,
        carry_state: false,
        freeze_biases: false,
    };
    let mut tr = Trainer::new(params, cfg, Some(threads))?;
    let start = std::time::Instant::now();
    for _ in 0..steps {
        tr.step(&batch, InitialState::Zero)?;
    }
    let dt = start.elapsed().as_secs_f64();
    println!(
        "{steps} steps in {dt:.3} s: {:.1} updates/s",
        steps as f64 / dt
    );
    Ok(())
}
