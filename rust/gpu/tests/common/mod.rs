//! Shared test helpers: the one place tests find the adapter, deterministic random models and
//! batches, and the CPU engine as the reference.
#![allow(dead_code)]

use rnnstab_engine::{
    loss_and_grads, make_pool, Activation, Batch, Clip, Dims, InitialState, Loss, LossOutput,
    ModelConfig, NonFinitePolicy, OmegaConfig, OmegaForm, OptimizerConfig, OptimizerKind, Params,
    Settings, Targets, TimeReduction, TrainerConfig, Workspace,
};
use rnnstab_gpu::{list_adapters, GpuError, GpuTrainer, KernelMode};

/// Whether a GPU test may run. Without an adapter it prints why and returns false (the test
/// then passes as skipped) — unless RNNSTAB_REQUIRE_GPU=1, where a missing adapter fails.
pub fn gpu_or_skip(test: &str) -> bool {
    if !list_adapters().is_empty() {
        return true;
    }
    skip_or_fail(
        test,
        "no GPU adapter (wgpu found no Vulkan/Metal/DX12 device)",
    );
    false
}

fn skip_or_fail(test: &str, why: &str) {
    if std::env::var("RNNSTAB_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("{test}: {why}, and RNNSTAB_REQUIRE_GPU=1 forbids skipping");
    }
    eprintln!("SKIPPED {test}: {why} (set RNNSTAB_REQUIRE_GPU=1 to make this a failure)");
}

/// A GPU trainer, or None (skip) when no adapter exists. Any other error fails the test.
pub fn gpu_trainer(
    test: &str,
    params: &Params<f32>,
    config: TrainerConfig,
    mode: KernelMode,
) -> Option<GpuTrainer> {
    if !gpu_or_skip(test) {
        return None;
    }
    match GpuTrainer::with_mode(params.clone(), config, mode) {
        Ok(t) => Some(t),
        Err(GpuError::NoAdapter(why)) => {
            skip_or_fail(test, &why);
            None
        }
        Err(e) => panic!("{test}: could not create the GPU trainer: {e}"),
    }
}

/// A GPU trainer for tests that only evaluate the loss and its gradients: no clipping and plain
/// SGD, whose update such a test never takes. None (skip) when no adapter exists.
pub fn grads_trainer(
    test: &str,
    params: &Params<f32>,
    s: Settings,
    mode: KernelMode,
) -> Option<GpuTrainer> {
    let cfg = trainer_config(s, Clip::None, OptimizerKind::Sgd, 0.1);
    gpu_trainer(test, params, cfg, mode)
}

pub const MODES: [KernelMode; 2] = [KernelMode::Persistent, KernelMode::PerStep];

/// xorshift64*: deterministic, dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub fn sym(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The sizes of a model: `n_in` inputs, `n_hidden` hidden units, `n_out` outputs.
pub fn dims(n_in: usize, n_hidden: usize, n_out: usize) -> Dims {
    Dims {
        n_in,
        n_hidden,
        n_out,
    }
}

/// Random parameters with W_rec scaled to spectral radius around `rho` (entries uniform,
/// scaled by rho·sqrt(3/H)).
pub fn random_params(dims: Dims, rho: f32, seed: u64) -> Params<f32> {
    let mut r = Rng::new(seed);
    let mut p = Params::zeros(dims, false);
    let h = dims.n_hidden as f32;
    let s_rec = rho * (3.0 / h).sqrt();
    p.w_rec.iter_mut().for_each(|v| *v = s_rec * r.sym());
    p.w_in.iter_mut().for_each(|v| *v = 0.5 * r.sym());
    p.b.iter_mut().for_each(|v| *v = 0.1 * r.sym());
    p.w_out.iter_mut().for_each(|v| *v = 0.5 * r.sym());
    p.b_out.iter_mut().for_each(|v| *v = 0.1 * r.sym());
    p
}

pub fn to_f64(p: &Params<f32>) -> Params<f64> {
    Params {
        dims: p.dims,
        w_rec: widen(&p.w_rec),
        w_in: widen(&p.w_in),
        b: widen(&p.b),
        w_out: widen(&p.w_out),
        b_out: widen(&p.b_out),
        x0: widen(&p.x0),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskKind {
    LastStep,
    Every,
    /// Random 0/1 with some weights of 0.5, the last scored step before T (tests truncation).
    Sparse,
}

/// A batch with owned data in both precisions.
pub struct OwnedBatch {
    pub steps: usize,
    pub batch: usize,
    pub loss: Loss,
    pub inputs: Vec<f32>,
    pub classes: Vec<i64>,
    pub values: Vec<f32>,
    pub mask: Vec<f32>,
    inputs64: Vec<f64>,
    values64: Vec<f64>,
    mask64: Vec<f64>,
}

impl OwnedBatch {
    pub fn random(
        dims: Dims,
        loss: Loss,
        steps: usize,
        batch: usize,
        mask: MaskKind,
        seed: u64,
    ) -> Self {
        let mut r = Rng::new(seed ^ 0xABCD);
        let n = steps * batch;
        let inputs: Vec<f32> = (0..n * dims.n_in).map(|_| r.sym()).collect();
        let classes: Vec<i64> = (0..n).map(|_| r.below(dims.n_out) as i64).collect();
        let values: Vec<f32> = match loss {
            Loss::Bce => (0..n * dims.n_out).map(|_| (r.below(2)) as f32).collect(),
            _ => (0..n * dims.n_out).map(|_| r.sym()).collect(),
        };
        let mut m = vec![0f32; n];
        match mask {
            MaskKind::LastStep => m[(steps - 1) * batch..].iter_mut().for_each(|v| *v = 1.0),
            MaskKind::Every => m.iter_mut().for_each(|v| *v = 1.0),
            MaskKind::Sparse => {
                let last = steps.saturating_sub(3).max(1);
                for t in 0..last {
                    for b in 0..batch {
                        m[t * batch + b] = [0.0, 0.0, 1.0, 0.5][r.below(4)];
                    }
                }
                m[(last - 1) * batch] = 1.0;
            }
        }
        Self::from_parts(steps, batch, loss, inputs, classes, values, m)
    }

    /// The same batch scored by `mask` instead.
    pub fn with_mask(mut self, mask: Vec<f32>) -> Self {
        self.mask64 = widen(&mask);
        self.mask = mask;
        self
    }

    /// The same batch with `inputs` instead.
    pub fn with_inputs(mut self, inputs: Vec<f32>) -> Self {
        self.inputs64 = widen(&inputs);
        self.inputs = inputs;
        self
    }

    pub fn from_parts(
        steps: usize,
        batch: usize,
        loss: Loss,
        inputs: Vec<f32>,
        classes: Vec<i64>,
        values: Vec<f32>,
        mask: Vec<f32>,
    ) -> Self {
        OwnedBatch {
            inputs64: widen(&inputs),
            values64: widen(&values),
            mask64: widen(&mask),
            steps,
            batch,
            loss,
            inputs,
            classes,
            values,
            mask,
        }
    }

    pub fn f32(&self) -> Batch<'_, f32> {
        Batch {
            steps: self.steps,
            batch: self.batch,
            inputs: &self.inputs,
            targets: if self.loss.has_class_targets() {
                Targets::Classes(&self.classes)
            } else {
                Targets::Values(&self.values)
            },
            mask: &self.mask,
        }
    }

    pub fn f64(&self) -> Batch<'_, f64> {
        Batch {
            steps: self.steps,
            batch: self.batch,
            inputs: &self.inputs64,
            targets: if self.loss.has_class_targets() {
                Targets::Classes(&self.classes)
            } else {
                Targets::Values(&self.values64)
            },
            mask: &self.mask64,
        }
    }
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|x| *x as f64).collect()
}

pub fn settings(
    act: Activation,
    loss: Loss,
    alpha: f64,
    form: OmegaForm,
    tr: TimeReduction,
) -> Settings {
    Settings {
        model: ModelConfig {
            activation: act,
            loss,
            time_reduction: tr,
        },
        omega: OmegaConfig { alpha, form },
        full_length: false,
    }
}

/// The paper's model for its synthetic tasks: tanh units, softmax cross-entropy summed over
/// time, Ω in its norm form weighted by `alpha`.
pub fn tanh_ce(alpha: f64) -> Settings {
    settings(
        Activation::Tanh,
        Loss::SoftmaxCe,
        alpha,
        OmegaForm::Norm,
        TimeReduction::Sum,
    )
}

pub fn trainer_config(
    settings: Settings,
    clip: Clip,
    kind: OptimizerKind,
    lr: f64,
) -> TrainerConfig {
    TrainerConfig {
        settings,
        clip,
        optimizer: OptimizerConfig {
            kind,
            lr,
            momentum: 0.9,
            rho: 0.9,
            eps: 1e-6,
        },
        nonfinite: NonFinitePolicy::Skip,
        carry_state: false,
        freeze_biases: false,
    }
}

/// The CPU engine in f64: (E, Ω, pairs), the gradient, and its workspace (for the profile).
pub fn cpu_grads(
    params: &Params<f32>,
    b: &OwnedBatch,
    s: &Settings,
) -> (LossOutput, Params<f64>, Workspace<f64>) {
    let pool = make_pool(Some(1)).expect("pool");
    let p = to_f64(params);
    let mut ws = Workspace::new();
    let mut g = p.zeros_like();
    let out = loss_and_grads(&pool, &p, &b.f64(), InitialState::Zero, s, &mut ws, &mut g)
        .expect("cpu loss_and_grads");
    (out, g, ws)
}

/// max |gpu − cpu| / max |cpu| over one tensor (the error relative to the tensor's scale).
pub fn rel_err(gpu: &[f32], cpu: &[f64]) -> f64 {
    assert_eq!(gpu.len(), cpu.len());
    let scale = cpu.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    gpu.iter()
        .zip(cpu)
        .fold(0f64, |m, (g, c)| m.max((*g as f64 - c).abs()))
        / scale
}

pub const NAMES: [&str; 5] = ["W_rec", "W_in", "b", "W_out", "b_out"];

pub fn tensors32(p: &Params<f32>) -> [&[f32]; 5] {
    [&p.w_rec, &p.w_in, &p.b, &p.w_out, &p.b_out]
}

pub fn tensors64(p: &Params<f64>) -> [&[f64]; 5] {
    [&p.w_rec, &p.w_in, &p.b, &p.w_out, &p.b_out]
}

/// Asserts every tensor of `gpu` within `tol` of `cpu` (relative to that tensor's max entry);
/// returns the largest error seen.
pub fn assert_params_close(what: &str, gpu: &Params<f32>, cpu: &Params<f64>, tol: f64) -> f64 {
    let mut worst = 0f64;
    for ((name, g), c) in NAMES.iter().zip(tensors32(gpu)).zip(tensors64(cpu)) {
        let e = rel_err(g, c);
        assert!(
            e <= tol,
            "{what}: {name} differs by {e:.3e} (relative), tolerance {tol:.0e}"
        );
        worst = worst.max(e);
    }
    worst
}

/// Asserts every entry of `gpu` closer than `tol`·(1 + |θ|) to the matching entry θ of `cpu`;
/// returns the largest |gpu − θ| / (1 + |θ|) seen.
pub fn assert_entries_close(what: &str, gpu: &Params<f32>, cpu: &Params<f64>, tol: f64) -> f64 {
    let mut worst = 0f64;
    for ((name, a), c) in NAMES.iter().zip(tensors32(gpu)).zip(tensors64(cpu)) {
        for (x, y) in a.iter().zip(c) {
            let e = (*x as f64 - y).abs() / (1.0 + y.abs());
            assert!(e < tol, "{what}: {name} {x} vs {y}");
            worst = worst.max(e);
        }
    }
    worst
}

/// Prints a "max error" line that `cargo test -- --nocapture` shows, for the report.
pub fn report(what: &str, err: f64) {
    eprintln!("[parity] {what}: max relative error {err:.2e}");
}
