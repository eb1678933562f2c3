//! The Ω kernels (omega.wgsl): the pair terms of eq. (9), their reduction, and eq. (10)'s
//! immediate gradient folded into ∂W_rec, against `rnnstab_engine::loss_and_grads` in f64.
//!
//! Tolerances: Ω 1e-4 relative (a mean of ratios ‖v‖/‖a‖ of f32 norms, each ~1e-6 relative,
//! over ≤ B·T pairs); the gradient 1e-4 of each tensor's largest entry as in bptt.rs. The
//! comparison is made with α large enough that Ω's part of ∂W_rec is comparable to E's, so a
//! wrong fold coefficient could not hide under the tolerance (checked below).
mod common;
use common::*;
use rnnstab_engine::{Activation, Loss, OmegaForm, TimeReduction};

const TOL: f64 = 1e-4;

#[test]
fn omega_and_its_gradient_match_the_cpu_engine() {
    let dims = dims(3, 12, 4);
    let mut worst = 0f64;
    let mut n = 100;
    for form in [OmegaForm::Norm, OmegaForm::Squared] {
        for act in [Activation::Tanh, Activation::Sigmoid, Activation::Relu] {
            for mask in [MaskKind::LastStep, MaskKind::Every] {
                n += 1;
                let p = random_params(dims, 1.1, n);
                let b = OwnedBatch::random(dims, Loss::SoftmaxCe, 20, 4, mask, n);
                let s0 = settings(act, Loss::SoftmaxCe, 0.0, form, TimeReduction::Sum);
                let s = settings(act, Loss::SoftmaxCe, 2.0, form, TimeReduction::Sum);
                let (cpu, cg, _) = cpu_grads(&p, &b, &s);
                let (_, cg0, _) = cpu_grads(&p, &b, &s0);
                // Ω must visibly change ∂W_rec, or this test could not see a broken fold.
                let g32: Vec<f32> = cg0.w_rec.iter().map(|v| *v as f32).collect();
                let shift = rel_err(&g32, &cg.w_rec);
                assert!(
                    shift > 10.0 * TOL,
                    "{form:?}/{act:?}/{mask:?}: Ω moves ∂W_rec by only {shift:.1e}"
                );
                for mode in MODES {
                    let Some(mut g) = grads_trainer("omega", &p, s, mode) else {
                        return;
                    };
                    let (out, grads) = g.loss_and_grads(&b.f32()).unwrap();
                    let what = format!("{form:?}/{act:?}/{mask:?}/{mode:?}");
                    assert_eq!(out.omega_pairs, cpu.omega_pairs, "{what}: pair count");
                    let e_om = (out.omega - cpu.omega).abs() / cpu.omega.abs().max(1e-12);
                    assert!(
                        e_om < TOL,
                        "{what}: Ω {} vs CPU {} ({e_om:.2e})",
                        out.omega,
                        cpu.omega
                    );
                    worst = worst
                        .max(e_om)
                        .max(assert_params_close(&what, &grads, &cg, TOL));
                }
            }
        }
    }
    report("Ω and ∂(E+αΩ)", worst);
}

#[test]
fn pairs_without_error_signal_are_left_out() {
    // Mask on at step 10 of 20 only: pairs k ≥ 10 have g_{k+1} = 0 and do not count; the
    // steps after 10 are not even run. N = B·10 pairs, as on the CPU.
    let dims = dims(2, 8, 3);
    let p = random_params(dims, 1.0, 5);
    let mut mask = vec![0f32; 20 * 3];
    mask[9 * 3..10 * 3].iter_mut().for_each(|m| *m = 1.0);
    let b = OwnedBatch::random(dims, Loss::SoftmaxCe, 20, 3, MaskKind::Every, 5).with_mask(mask);
    let s = tanh_ce(0.5);
    let (cpu, _, _) = cpu_grads(&p, &b, &s);
    assert_eq!(cpu.omega_pairs, 30);
    for mode in MODES {
        let Some(mut g) = grads_trainer("omega_pairs", &p, s, mode) else {
            return;
        };
        let (out, _) = g.loss_and_grads(&b.f32()).unwrap();
        assert_eq!(out.omega_pairs, 30, "{mode:?}");
        assert!((out.omega - cpu.omega).abs() < TOL * cpu.omega, "{mode:?}");
    }
}
