//! The forward kernels (forward.wgsl, forward_step.wgsl): h_t of eq. (2), the read-out, the
//! losses and their reduction, against the CPU engine in f64.
//!
//! Tolerance: 2e-5 relative. h_t is a chain of ≤ 30 f32 matrix-vector products of width ≤ 16
//! through a contracting σ, each adding ~H·2^-24 ≈ 1e-6 relative rounding, so states agree to a
//! few 1e-6; the loss is a sum of ≤ B·T positive terms with the same relative error.
mod common;
use common::*;
use rnnstab_engine::{
    forward, make_pool, Activation, InitialState, Loss, OmegaForm, TimeReduction,
};

const TOL: f64 = 2e-5;

#[test]
fn hidden_states_outputs_and_loss_match_the_cpu_engine() {
    let dims = dims(3, 16, 5);
    let (steps, batch) = (30, 4);
    let pool = make_pool(Some(1)).unwrap();
    let mut worst = 0f64;
    for (k, act) in [Activation::Tanh, Activation::Sigmoid, Activation::Relu]
        .into_iter()
        .enumerate()
    {
        for (l, loss) in [Loss::SoftmaxCe, Loss::Mse, Loss::Bce]
            .into_iter()
            .enumerate()
        {
            let seed = (10 * k + l) as u64;
            let p = random_params(dims, 0.9, seed);
            let b = OwnedBatch::random(dims, loss, steps, batch, MaskKind::Every, seed);
            let s = settings(act, loss, 0.0, OmegaForm::Norm, TimeReduction::Mean);
            // CPU: y_t for every step and x_T.
            let p64 = to_f64(&p);
            let mut y = vec![0f64; steps * batch * dims.n_out];
            let mut x_t = vec![0f64; batch * dims.n_hidden];
            forward(
                &pool,
                &p64,
                b.f64().inputs,
                steps,
                batch,
                InitialState::Zero,
                act,
                &mut y,
                &mut x_t,
            )
            .unwrap();
            let (cpu, _, _) = cpu_grads(&p, &b, &s);
            for mode in MODES {
                let Some(mut g) = grads_trainer("forward", &p, s, mode) else {
                    return;
                };
                let (out, _) = g.loss_and_grads(&b.f32()).unwrap();
                let (hs, slots) = g.hidden_states().unwrap();
                assert_eq!(slots, steps + 1);
                let h = dims.n_hidden;
                // y_t = W_out h_t + b_out from the GPU's h_t, against the CPU's y_t.
                let mut y_gpu = vec![0f32; y.len()];
                let mut h_last = vec![0f32; batch * h];
                for r in 0..batch {
                    for t in 1..slots {
                        let hrow = &hs[(r * slots + t) * h..(r * slots + t + 1) * h];
                        for o in 0..dims.n_out {
                            let w = &p.w_out[o * h..(o + 1) * h];
                            let v = p.b_out[o] as f64
                                + w.iter()
                                    .zip(hrow)
                                    .map(|(a, x)| *a as f64 * *x as f64)
                                    .sum::<f64>();
                            y_gpu[((t - 1) * batch + r) * dims.n_out + o] = v as f32;
                        }
                    }
                    h_last[r * h..(r + 1) * h]
                        .copy_from_slice(&hs[(r * slots + steps) * h..(r * slots + steps + 1) * h]);
                }
                let h_cpu: Vec<f64> = x_t.iter().map(|x| act.apply(*x)).collect();
                let what = format!("{act:?}/{loss:?}/{mode:?}");
                let e_y = rel_err(&y_gpu, &y);
                let e_h = rel_err(&h_last, &h_cpu);
                let e_l = (out.loss - cpu.loss).abs() / cpu.loss.abs();
                assert!(e_y < TOL, "{what}: outputs differ by {e_y:.2e}");
                assert!(e_h < TOL, "{what}: h_T differs by {e_h:.2e}");
                assert!(
                    e_l < TOL,
                    "{what}: loss {} vs CPU {} ({e_l:.2e})",
                    out.loss,
                    cpu.loss
                );
                worst = worst.max(e_y).max(e_h).max(e_l);
            }
        }
    }
    report("forward (h_t, y_t, E)", worst);
}

#[test]
fn sigmoid_starts_from_half_and_unscored_steps_are_not_run() {
    // x_0 = 0 gives h_0 = σ(0) = 0.5 for the sigmoid; with the mask on only up to step 5 of 12,
    // S = 6 slots are run (Batch::last_scored_step), as on the CPU.
    let dims = dims(2, 6, 3);
    let p = random_params(dims, 1.0, 3);
    let b = OwnedBatch::random(dims, Loss::Mse, 12, 2, MaskKind::Every, 4);
    let mut mask = b.mask.clone();
    mask.iter_mut().skip(5 * 2).for_each(|m| *m = 0.0);
    let b = b.with_mask(mask);
    let s = settings(
        Activation::Sigmoid,
        Loss::Mse,
        0.0,
        OmegaForm::Norm,
        TimeReduction::Sum,
    );
    let (cpu, _, _) = cpu_grads(&p, &b, &s);
    for mode in MODES {
        let Some(mut g) = grads_trainer("sigmoid_h0", &p, s, mode) else {
            return;
        };
        let (out, _) = g.loss_and_grads(&b.f32()).unwrap();
        let (hs, slots) = g.hidden_states().unwrap();
        assert_eq!(slots, 6, "{mode:?}");
        assert!(
            hs[..dims.n_hidden].iter().all(|v| *v == 0.5),
            "{mode:?}: h_0 = {:?}",
            &hs[..6]
        );
        assert!(
            (out.loss - cpu.loss).abs() <= TOL * cpu.loss,
            "{mode:?}: {} vs {}",
            out.loss,
            cpu.loss
        );
    }
}
