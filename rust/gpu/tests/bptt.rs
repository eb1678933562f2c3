//! The BPTT kernels (backward.wgsl, backward_step.wgsl) and the weight-gradient reduction
//! (grads.wgsl), with α = 0, against `rnnstab_engine::loss_and_grads` in f64.
//!
//! Tolerance: 1e-4 of each tensor's largest entry. Each gradient entry is a sum over
//! B·T ≤ 120 (example, step) products (rounding ≲ √n·2^-24 relative to Σ|terms|, cancellation
//! can raise it relative to the result), and g_t itself went back through up to 30 f32
//! matrix-vector products (~1e-6 each); 1e-4 leaves a 10× margin over what we observe while
//! any indexing or formula error (a wrong slot, a missing σ', a dropped read-out term) gives
//! errors of order 1.
mod common;
use common::*;
use rnnstab_engine::{Activation, Loss, OmegaForm, TimeReduction};

const TOL: f64 = 1e-4;

#[test]
fn gradients_match_the_cpu_engine_for_every_activation_loss_and_mask() {
    let dims = dims(3, 12, 4);
    let mut worst = 0f64;
    let mut n = 0;
    for act in [Activation::Tanh, Activation::Sigmoid, Activation::Relu] {
        for loss in [Loss::SoftmaxCe, Loss::Mse, Loss::Bce] {
            for mask in [MaskKind::LastStep, MaskKind::Every, MaskKind::Sparse] {
                n += 1;
                let p = random_params(dims, 1.0, n);
                let b = OwnedBatch::random(dims, loss, 25, 4, mask, n);
                let tr = if n % 2 == 0 {
                    TimeReduction::Sum
                } else {
                    TimeReduction::Mean
                };
                let s = settings(act, loss, 0.0, OmegaForm::Norm, tr);
                let (cpu, cg, _) = cpu_grads(&p, &b, &s);
                for mode in MODES {
                    let Some(mut g) = grads_trainer("bptt", &p, s, mode) else {
                        return;
                    };
                    let (out, grads) = g.loss_and_grads(&b.f32()).unwrap();
                    let what = format!("{act:?}/{loss:?}/{mask:?}/{tr:?}/{mode:?}");
                    worst = worst.max(assert_params_close(&what, &grads, &cg, TOL));
                    assert!(
                        (out.loss - cpu.loss).abs() <= 1e-5 * cpu.loss.abs().max(1e-3),
                        "{what}: loss"
                    );
                }
            }
        }
    }
    report("BPTT gradients", worst);
}

#[test]
fn error_signal_profile_matches_the_cpu_engine() {
    // ‖∂E/∂x_t‖ for every t checks g_t of the backward kernels directly (and v_0 = ∂E/∂x_0),
    // not only through the weight-gradient sums.
    let dims = dims(2, 10, 3);
    let p = random_params(dims, 1.2, 7);
    let b = OwnedBatch::random(dims, Loss::SoftmaxCe, 40, 3, MaskKind::LastStep, 7);
    let s = tanh_ce(0.0);
    let (_, _, ws) = cpu_grads(&p, &b, &s);
    let cpu = ws.error_signal_profile(dims.n_hidden);
    let mut worst = 0f64;
    for mode in MODES {
        let Some(mut g) = grads_trainer("profile", &p, s, mode) else {
            return;
        };
        g.loss_and_grads(&b.f32()).unwrap();
        let gpu = g.error_signal_profile().unwrap();
        assert_eq!(gpu.len(), cpu.len());
        let gpu32: Vec<f32> = gpu.iter().map(|v| *v as f32).collect();
        let e = rel_err(&gpu32, &cpu);
        assert!(e < TOL, "{mode:?}: profile differs by {e:.2e}");
        // the signal decays backwards from the scored last step (eq. 7)
        assert!(gpu[1] < gpu[gpu.len() - 1]);
        worst = worst.max(e);
    }
    report("error signal profile", worst);
}

#[test]
fn gradients_are_deterministic() {
    let dims = dims(4, 20, 4);
    let p = random_params(dims, 1.0, 9);
    let b = OwnedBatch::random(dims, Loss::SoftmaxCe, 30, 6, MaskKind::Every, 9);
    let s = tanh_ce(1.0);
    for mode in MODES {
        let Some(mut g) = grads_trainer("determinism", &p, s, mode) else {
            return;
        };
        let (o1, g1) = g.loss_and_grads(&b.f32()).unwrap();
        let (o2, g2) = g.loss_and_grads(&b.f32()).unwrap();
        assert_eq!(o1, o2, "{mode:?}");
        assert_eq!(
            g1, g2,
            "{mode:?}: gradients differ between two identical runs"
        );
    }
}
