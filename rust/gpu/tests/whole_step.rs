//! The whole update (all kernels in one submission) against the CPU trainer in f32 and f64,
//! a 200-update training run whose loss curve must follow the CPU's, and the errors.
//!
//! Tolerances: one step 1e-5·(1 + |θ|) (see optim.rs); the training curve 2e-3 relative per
//! update: f32 trajectories separate from the f64 one by accumulated rounding (~1e-6 per step,
//! amplified by the optimiser's dynamics), which over 200 small SGD+momentum steps stays far
//! below 1e-3, while a wrong kernel would change the curve by its own size within a few steps.
mod common;
use common::*;
use rnnstab_engine::{Clip, EngineError, InitialState, Loss, OptimizerKind, Params, Trainer};
use rnnstab_gpu::{ensure_f64_supported, GpuError, GpuTrainer, KernelMode};

#[test]
fn one_step_matches_the_cpu_trainer_in_f32_and_f64() {
    let dims = dims(6, 20, 4);
    let p = random_params(dims, 1.0, 51);
    let b = OwnedBatch::random(dims, Loss::SoftmaxCe, 40, 5, MaskKind::LastStep, 51);
    let s = tanh_ce(2.0);
    let cfg = trainer_config(s, Clip::Norm(0.5), OptimizerKind::Nesterov, 0.05);
    let mut c64 = Trainer::new(to_f64(&p), cfg, Some(1)).unwrap();
    let mut c32 = Trainer::new(p.clone(), cfg, Some(1)).unwrap();
    let s64 = c64.step(&b.f64(), InitialState::Zero).unwrap();
    let s32 = c32.step(&b.f32(), InitialState::Zero).unwrap();
    let mut worst = 0f64;
    for mode in MODES {
        let Some(mut g) = gpu_trainer("whole_step", &p, cfg, mode) else {
            return;
        };
        let st = g.step(&b.f32()).unwrap();
        for (what, cs) in [("f64", &s64), ("f32", &s32)] {
            assert_eq!(st.omega_pairs, cs.omega_pairs, "{mode:?} vs {what}");
            assert_eq!(st.clipped, cs.clipped, "{mode:?} vs {what}");
            assert_eq!(st.skipped, cs.skipped);
            for (name, a, c) in [
                ("loss", st.loss, cs.loss),
                ("omega", st.omega, cs.omega),
                ("norm", st.grad_norm, cs.grad_norm),
            ] {
                let e = (a - c).abs() / c.abs().max(1e-12);
                assert!(e < 1e-4, "{mode:?} vs CPU {what}: {name} {a} vs {c}");
                worst = worst.max(e);
            }
        }
        let after = g.params().unwrap();
        let f64_of_32 = to_f64(c32.params());
        for (what, cpu) in [("f64", c64.params()), ("f32", &f64_of_32)] {
            let what = format!("{mode:?} vs CPU {what}");
            worst = worst.max(assert_entries_close(&what, &after, cpu, 1e-5));
        }
    }
    report("one whole step", worst);
}

/// A small memory task: the class is the input symbol shown at step 0 (one-hot among 4),
/// followed by noise; the output is scored at the last step (as in the paper's §4 tasks).
fn memory_task(steps: usize, batch: usize, seed: u64) -> OwnedBatch {
    let mut r = Rng::new(seed);
    let n_in = 5;
    let mut inputs = vec![0f32; steps * batch * n_in];
    let mut classes = vec![0i64; steps * batch];
    let mut mask = vec![0f32; steps * batch];
    for b in 0..batch {
        let c = r.below(4);
        inputs[b * n_in + c] = 1.0;
        for t in 1..steps {
            inputs[(t * batch + b) * n_in + 4] = 0.3 * r.sym();
        }
        classes[(steps - 1) * batch + b] = c as i64;
        mask[(steps - 1) * batch + b] = 1.0;
    }
    OwnedBatch::from_parts(
        steps,
        batch,
        Loss::SoftmaxCe,
        inputs,
        classes,
        Vec::new(),
        mask,
    )
}

#[test]
fn a_200_update_training_run_follows_the_cpu_loss_curve() {
    let p = random_params(dims(5, 16, 4), 0.95, 61);
    let s = tanh_ce(0.5);
    let cfg = trainer_config(s, Clip::Norm(1.0), OptimizerKind::Momentum, 0.05);
    let batches: Vec<OwnedBatch> = (0..10).map(|k| memory_task(8, 16, 100 + k)).collect();
    let mut cpu = Trainer::new(to_f64(&p), cfg, Some(1)).unwrap();
    let cpu_curve: Vec<f64> = (0..200)
        .map(|k| {
            cpu.step(&batches[k % 10].f64(), InitialState::Zero)
                .unwrap()
                .loss
        })
        .collect();
    let Some(mut g) = gpu_trainer("training_run", &p, cfg, KernelMode::Auto) else {
        return;
    };
    let t0 = std::time::Instant::now();
    let gpu_curve: Vec<f64> = (0..200)
        .map(|k| g.step(&batches[k % 10].f32()).unwrap().loss)
        .collect();
    eprintln!(
        "200 GPU updates in {:.2}s ({:?})",
        t0.elapsed().as_secs_f64(),
        g.mode()
    );
    let mut worst = 0f64;
    for (k, (a, c)) in gpu_curve.iter().zip(&cpu_curve).enumerate() {
        let e = (a - c).abs() / c.abs().max(1e-6);
        assert!(e < 2e-3, "update {k}: GPU loss {a} vs CPU {c}");
        worst = worst.max(e);
    }
    let first: f64 = cpu_curve[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = cpu_curve[190..].iter().sum::<f64>() / 10.0;
    assert!(
        last < 0.7 * first,
        "the task must actually be learnt: {first} → {last}"
    );
    report("loss curve over 200 updates", worst);
}

#[test]
fn unsupported_options_and_bad_batches_are_errors() {
    let dims = dims(2, 4, 3);
    let s = tanh_ce(0.0);
    let cfg = trainer_config(s, Clip::None, OptimizerKind::Sgd, 0.1);
    // These are refused before any adapter is looked for.
    let mut with_x0 = Params::<f32>::zeros(dims, true);
    with_x0.w_rec[0] = 0.1;
    let e = GpuTrainer::new(with_x0, cfg).err().unwrap();
    assert!(
        matches!(&e, GpuError::Unsupported(m) if m.contains("x0")),
        "{e}"
    );
    let mut carry = cfg;
    carry.carry_state = true;
    let e = GpuTrainer::new(Params::zeros(dims, false), carry)
        .err()
        .unwrap();
    assert!(
        matches!(&e, GpuError::Unsupported(m) if m.contains("carry_state")),
        "{e}"
    );
    assert!(e.to_string().contains("--device cpu"));
    let mut bad_lr = cfg;
    bad_lr.optimizer.lr = -1.0;
    assert!(matches!(
        GpuTrainer::new(Params::zeros(dims, false), bad_lr),
        Err(GpuError::Engine(_))
    ));
    // float64 is refused with the missing feature named
    let e = ensure_f64_supported().unwrap_err();
    assert!(
        matches!(&e, GpuError::MissingFeature(m) if m.contains("SHADER_F64"))
            || matches!(e, GpuError::Unsupported(_) | GpuError::NoAdapter(_)),
        "{e}"
    );

    let p = random_params(dims, 1.0, 71);
    let Some(mut g) = gpu_trainer("errors", &p, cfg, KernelMode::Auto) else {
        return;
    };
    let b = OwnedBatch::random(dims, Loss::SoftmaxCe, 5, 2, MaskKind::Every, 71);
    let mut bad = b.f32();
    bad.inputs = &b.inputs[..b.inputs.len() - 1];
    assert!(matches!(
        g.step(&bad),
        Err(GpuError::Engine(EngineError::InvalidValue(_)))
    ));
    let mut classes = b.classes.clone();
    classes[0] = 7;
    let mut bad = b.f32();
    bad.targets = rnnstab_engine::Targets::Classes(&classes);
    let e = g.step(&bad).unwrap_err();
    assert!(e.to_string().contains("class index"), "{e}");
    // a failed step leaves the trainer usable
    assert!(g.step(&b.f32()).is_ok());
    assert!(!g.adapter_info().name.is_empty());
}
