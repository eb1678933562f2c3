//! The norm and clipping kernel (update.wgsl: grad_norm, and the clipping part of
//! apply_update): ‖ĝ‖ against `rnnstab_engine::global_norm`, Algorithm 1 and element-wise
//! clipping firing or not, through one SGD step compared with the CPU trainer in f64.
//!
//! Tolerance: the norm 1e-5 relative (a scaled f32 sum of squares of gradients that already
//! agree to ~1e-6); parameters after one step 1e-6 absolute·(1 + |θ|) since lr·ĝ is ≤ 0.1 and
//! agrees to 1e-4 of its scale.
mod common;
use common::*;
use rnnstab_engine::{global_norm, Clip, InitialState, Loss, OptimizerKind, Trainer};

#[test]
fn the_norm_matches_and_clipping_fires_exactly_when_the_cpu_says_so() {
    let dims = dims(3, 10, 4);
    let p = random_params(dims, 1.3, 21);
    let b = OwnedBatch::random(dims, Loss::SoftmaxCe, 20, 4, MaskKind::Every, 21);
    let s = tanh_ce(1.0);
    let (_, cg, _) = cpu_grads(&p, &b, &s);
    let norm = global_norm(&cg);
    let max_abs = cg
        .tensors()
        .iter()
        .flat_map(|t| t.iter())
        .fold(0f64, |m, v| m.max(v.abs()));
    let mut worst = 0f64;
    let cases = [
        (Clip::None, false),
        (Clip::Norm(norm * 0.5), true),
        (Clip::Norm(norm * 2.0), false),
        (Clip::Value(max_abs * 0.3), true),
        (Clip::Value(max_abs * 2.0), false),
    ];
    for (clip, fires) in cases {
        let cfg = trainer_config(s, clip, OptimizerKind::Sgd, 0.1);
        let mut cpu = Trainer::new(to_f64(&p), cfg, Some(1)).unwrap();
        let cs = cpu.step(&b.f64(), InitialState::Zero).unwrap();
        assert_eq!(cs.clipped, fires, "CPU reference for {clip:?}");
        for mode in MODES {
            let Some(mut g) = gpu_trainer("clip", &p, cfg, mode) else {
                return;
            };
            let gs = g.step(&b.f32()).unwrap();
            let what = format!("{clip:?}/{mode:?}");
            let e_norm = (gs.grad_norm - norm).abs() / norm;
            assert!(e_norm < 1e-5, "{what}: norm {} vs {norm}", gs.grad_norm);
            assert_eq!(gs.clipped, fires, "{what}: clipped flag");
            assert!(!gs.skipped);
            // the clipped gradient itself, then the parameters it moved
            worst = worst.max(e_norm).max(assert_params_close(
                &what,
                &g.grads().unwrap(),
                cpu.grads(),
                1e-4,
            ));
            assert_entries_close(&what, &g.params().unwrap(), cpu.params(), 1e-6);
            if let Clip::Value(t) = clip {
                let g_after = g.grads().unwrap();
                assert!(tensors32(&g_after)
                    .iter()
                    .all(|t32| t32.iter().all(|v| (v.abs() as f64) <= t * (1.0 + 1e-6))));
            }
        }
    }
    report("grad norm and clipping", worst);
}
