//! The adaptive clipping rules on the GPU (the host's `ClipRule` feeding the uniform's
//! threshold; `skip` and AGC in update.wgsl) against the CPU trainer in f64, step by step:
//! the same threshold in force, the same clipped and skipped flags, the same parameters.
//!
//! Tolerance: thresholds 1e-4 relative (they are functions of norms that agree to ~1e-6, fed
//! back over a few steps); parameters 1e-4·(1 + |θ|) after six momentum steps with lr = 0.2
//! (f32 rounding of ĝ accumulates in the velocity: 1.3e-5 seen at step 5).
mod common;
use common::*;
use rnnstab_engine::{Clip, ClipParams, InitialState, Loss, OptimizerKind, Trainer};
use rnnstab_gpu::KernelMode;

fn rules() -> Vec<Clip> {
    let p = ClipParams {
        window: 2,
        factor: 1.1,
        percentile: 40.0,
        z: 0.5,
        beta: 0.5,
        warmup: 2,
        lambda: 0.05,
        ..ClipParams::default()
    };
    ["auto", "percentile", "zscore", "skip", "agc"]
        .iter()
        .map(|name| Clip::parse_with(name, &p).expect("valid rule"))
        .collect()
}

#[test]
fn every_adaptive_rule_matches_the_cpu_step_by_step() {
    let dims = dims(3, 10, 4);
    let p = random_params(dims, 1.1, 33);
    let batches: Vec<OwnedBatch> = (0..6)
        .map(|k| OwnedBatch::random(dims, Loss::SoftmaxCe, 12, 4, MaskKind::Every, 40 + k))
        .collect();
    let mut worst = 0f64;
    for clip in rules() {
        let cfg = trainer_config(tanh_ce(0.0), clip, OptimizerKind::Momentum, 0.2);
        let mut cpu = Trainer::new(to_f64(&p), cfg, Some(1)).expect("CPU trainer");
        let Some(mut gpu) = gpu_trainer("clip_rules", &p, cfg, KernelMode::PerStep) else {
            return;
        };
        let mut fired = 0;
        for (k, b) in batches.iter().enumerate() {
            let what = format!("{} step {k}", clip.name());
            let cs = cpu.step(&b.f64(), InitialState::Zero).expect("CPU step");
            let gs = gpu.step(&b.f32()).expect("GPU step");
            assert_eq!(
                cs.clip_threshold.is_nan(),
                gs.clip_threshold.is_nan(),
                "{what}"
            );
            if cs.clip_threshold.is_finite() {
                let e = (gs.clip_threshold - cs.clip_threshold).abs() / cs.clip_threshold;
                assert!(
                    e < 1e-4,
                    "{what}: threshold {} vs {}",
                    gs.clip_threshold,
                    cs.clip_threshold
                );
                worst = worst.max(e);
            }
            assert_eq!(gs.clipped, cs.clipped, "{what}: clipped flag");
            assert_eq!(gs.skipped, cs.skipped, "{what}: skipped flag");
            fired += usize::from(cs.clipped || cs.skipped);
            worst = worst.max(assert_entries_close(
                &what,
                &gpu.params().expect("download"),
                cpu.params(),
                1e-4,
            ));
        }
        assert!(
            fired > 0,
            "{}: the rule never acted; the test proves nothing",
            clip.name()
        );
        assert_eq!(gpu.clip_state().len(), cpu.clip_state().len());
    }
    report("adaptive clipping rules", worst);
}
