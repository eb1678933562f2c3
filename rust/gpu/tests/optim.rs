//! The optimiser kernel (update.wgsl: apply_update) for every optimiser and the non-finite
//! policies, against the CPU trainer (`rnnstab_engine::Trainer<f64>`).
//!
//! Tolerance after 5 updates: |θ_gpu − θ_cpu| ≤ 1e-5·(1 + |θ|) and the same for the optimiser
//! state relative to its largest entry (1e-4). Each update moves θ by ≤ lr·(gradient or a
//! normalised gradient) = O(0.01), computed from gradients that agree to ~1e-6 relative, so
//! the parameters agree to ~1e-7 after 5 steps; a wrong formula (e.g. μ applied twice,
//! ρ and 1−ρ swapped, a missing √) moves them by O(lr) = 1e-2.
mod common;
use common::*;
use rnnstab_engine::{
    Activation, Clip, EngineError, InitialState, Loss, NonFinitePolicy, OmegaForm, OptimizerKind,
    TimeReduction, Trainer,
};
use rnnstab_gpu::GpuError;

#[test]
fn every_optimizer_follows_the_cpu_trainer() {
    let dims = dims(3, 10, 4);
    let p = random_params(dims, 1.0, 31);
    let b = OwnedBatch::random(dims, Loss::SoftmaxCe, 15, 4, MaskKind::Every, 31);
    let s = settings(
        Activation::Tanh,
        Loss::SoftmaxCe,
        0.5,
        OmegaForm::Squared,
        TimeReduction::Mean,
    );
    let mut worst = 0f64;
    for kind in [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Nesterov,
        OptimizerKind::RmsProp,
        OptimizerKind::Adagrad,
    ] {
        let cfg = trainer_config(s, Clip::Norm(1.0), kind, 0.01);
        let mut cpu = Trainer::new(to_f64(&p), cfg, Some(1)).unwrap();
        for mode in MODES {
            let Some(mut g) = gpu_trainer("optim", &p, cfg, mode) else {
                return;
            };
            if mode == MODES[0] {
                for _ in 0..5 {
                    cpu.step(&b.f64(), InitialState::Zero).unwrap();
                }
            }
            for _ in 0..5 {
                g.step(&b.f32()).unwrap();
            }
            let what = format!("{kind:?}/{mode:?}");
            worst = worst.max(assert_entries_close(
                &what,
                &g.params().unwrap(),
                cpu.params(),
                1e-5,
            ));
            match (g.optimizer_state().unwrap(), cpu.optimizer_state()) {
                (None, None) => {}
                (Some(gs), Some(cs)) => {
                    worst = worst.max(assert_params_close(&what, &gs, cs, 1e-4))
                }
                _ => panic!("{what}: optimiser state presence differs"),
            }
        }
    }
    report("optimisers after 5 updates", worst);
}

/// Parameters whose activations overflow f32 within a few steps (ReLU, huge W_rec).
fn exploding() -> (rnnstab_engine::Params<f32>, OwnedBatch) {
    let dims = dims(2, 6, 3);
    let mut p = random_params(dims, 1.0, 41);
    p.w_rec.iter_mut().for_each(|w| *w = w.abs() * 1e6);
    p.w_in.iter_mut().for_each(|w| *w = w.abs() + 0.5);
    let r = OwnedBatch::random(dims, Loss::Mse, 12, 2, MaskKind::Every, 41);
    let inputs = r.inputs.iter().map(|v| v.abs() + 0.1).collect();
    (p, r.with_inputs(inputs))
}

#[test]
fn non_finite_gradients_follow_the_policy() {
    let (p, b) = exploding();
    let s = settings(
        Activation::Relu,
        Loss::Mse,
        0.0,
        OmegaForm::Norm,
        TimeReduction::Sum,
    );
    for policy in [
        NonFinitePolicy::Skip,
        NonFinitePolicy::Shrink,
        NonFinitePolicy::Error,
    ] {
        let mut cfg = trainer_config(s, Clip::Norm(1.0), OptimizerKind::Momentum, 0.5);
        cfg.nonfinite = policy;
        let mut cpu = Trainer::new(p.clone(), cfg, Some(1)).unwrap();
        let cpu_res = cpu.step(&b.f32(), InitialState::Zero);
        for mode in MODES {
            let Some(mut g) = gpu_trainer("nonfinite", &p, cfg, mode) else {
                return;
            };
            let res = g.step(&b.f32());
            let what = format!("{policy:?}/{mode:?}");
            match policy {
                NonFinitePolicy::Error => {
                    assert!(
                        matches!(cpu_res, Err(EngineError::NonFiniteGradient { .. })),
                        "CPU reference"
                    );
                    assert!(
                        matches!(
                            res,
                            Err(GpuError::Engine(EngineError::NonFiniteGradient { .. }))
                        ),
                        "{what}: {res:?}"
                    );
                }
                _ => {
                    let st = res.unwrap();
                    assert!(
                        st.skipped && cpu_res.as_ref().unwrap().skipped,
                        "{what}: {st:?}"
                    );
                    assert!(!st.grad_norm.is_finite() || !st.loss.is_finite());
                }
            }
            // θ: untouched, or W_rec shrunk by (1 − lr·0.02) — exactly the CPU's f32 result.
            assert_eq!(
                &g.params().unwrap(),
                cpu.params(),
                "{what}: parameters after the step"
            );
            let state = g.optimizer_state().unwrap().unwrap();
            assert!(
                state.w_rec.iter().all(|v| *v == 0.0),
                "{what}: the velocity must not see the NaN"
            );
        }
    }
}

#[test]
fn frozen_biases_neither_move_nor_count() {
    let dims = dims(3, 8, 4);
    let p = random_params(dims, 1.0, 81);
    let b = OwnedBatch::random(dims, Loss::SoftmaxCe, 10, 3, MaskKind::Every, 81);
    let s = tanh_ce(0.0);
    let mut cfg = trainer_config(s, Clip::Norm(0.1), OptimizerKind::Sgd, 0.1);
    cfg.freeze_biases = true;
    let mut cpu = Trainer::new(to_f64(&p), cfg, Some(1)).unwrap();
    let cs = cpu.step(&b.f64(), InitialState::Zero).unwrap();
    for mode in MODES {
        let Some(mut g) = gpu_trainer("freeze_biases", &p, cfg, mode) else {
            return;
        };
        let st = g.step(&b.f32()).unwrap();
        assert!(
            (st.grad_norm - cs.grad_norm).abs() < 1e-5 * cs.grad_norm,
            "{mode:?}: norm without the biases"
        );
        let after = g.params().unwrap();
        assert_eq!(
            (&after.b, &after.b_out),
            (&p.b, &p.b_out),
            "{mode:?}: biases moved"
        );
        assert_params_close(&format!("{mode:?}"), &g.grads().unwrap(), cpu.grads(), 1e-4);
    }
}
