//! [`GpuTrainer`]: the CPU engine's `Trainer<f32>` on a GPU. θ, the gradient and the optimiser
//! state live in device buffers; a step uploads the batch, records every kernel into one
//! command buffer and reads back a handful of scalars.
//!
//! One step, top to bottom (each line one kernel, see `kernels/*.wgsl`):
//! forward (eq. 2, loss, ∂E/∂y) → BPTT (g_t and v_t = g_{t+1}J_t) → Ω pairs (eq. 9) → loss/Ω
//! reduction → Ω fold (eq. 10) → weight gradients → norm and clipping decision (Algorithm 1)
//! → non-finite policy, clipping and optimiser update.

use bytemuck::{Pod, Zeroable};
use rnnstab_engine::{
    Activation, Batch, Clip, ClipRule, Dims, EngineError, Loss, NonFinitePolicy, OmegaForm,
    OptimizerKind, Params, StepStats, Targets, TimeReduction, TrainerConfig,
};

use crate::device::{AdapterSummary, Gpu};
use crate::error::{GpuError, Result};
use crate::kernels::{grid, Kernels, MAX_PERSISTENT_WIDTH, STEP_STRIDE};

/// How the time recurrences (forward and BPTT) are dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelMode {
    /// One workgroup per sequence loops over time inside a single dispatch.
    Persistent,
    /// One dispatch per time step (two in the forward pass: state, then read-out).
    PerStep,
    /// The measured faster one on lavapipe for the paper's configuration: per-step (see the
    /// crate documentation for the numbers).
    Auto,
}

/// What [`GpuTrainer::loss_and_grads`] returns besides the gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuLossOutput {
    pub loss: f64,
    pub omega: f64,
    pub omega_pairs: usize,
    /// ‖∂(E + αΩ)/∂θ‖, before any clipping.
    pub grad_norm: f64,
}

/// The uniform every kernel reads (`struct Cfg` in common.wgsl, same field order).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Cfg {
    n_hidden: u32,
    n_in: u32,
    n_out: u32,
    batch: u32,
    slots: u32,
    steps: u32,
    activation: u32,
    loss: u32,
    off_targets: u32,
    off_mask: u32,
    off_scale: u32,
    n_params: u32,
    off_w_in: u32,
    off_b: u32,
    off_w_out: u32,
    off_b_out: u32,
    omega_form: u32,
    clip_kind: u32,
    optimizer: u32,
    nonfinite: u32,
    alpha: f32,
    clip_threshold: f32,
    lr: f32,
    momentum: f32,
    rho: f32,
    eps: f32,
    shrink: f32,
    freeze_biases: u32,
}

// Indices into the stats buffer (STAT_* in common.wgsl).
const STAT_LOSS: usize = 0;
const STAT_PAIRS: usize = 2;
const STAT_OMEGA: usize = 3;
const STAT_NORM: usize = 5;
const STAT_NONFINITE: usize = 7;
const STAT_CLIPPED: usize = 8;
const STAT_SPIKE: usize = 10;
const N_STATS: usize = 16;

/// Device buffers whose size depends on the batch (B) and the number of slots (S); they only
/// grow, so a training loop with a fixed batch shape allocates once.
struct Workspace {
    batch_cap: usize, // f32 entries of the batch buffer
    rows_cap: usize,  // B·S
    b_cap: usize,
    slots_cap: usize,
    batch_buf: wgpu::Buffer,
    hs: wgpu::Buffer,
    gs: wgpu::Buffer,
    vs: wgpu::Buffer,
    #[allow(dead_code)] // bound in main_group; kept alive with it
    zs: wgpu::Buffer,
    #[allow(dead_code)]
    dy: wgpu::Buffer,
    #[allow(dead_code)]
    pairs: wgpu::Buffer,
    #[allow(dead_code)]
    row_loss: wgpu::Buffer,
    #[allow(dead_code)]
    step_buf: wgpu::Buffer,
    main_group: wgpu::BindGroup,
    step_group: wgpu::BindGroup,
}

/// The layout of the last batch, for the download helpers.
#[derive(Debug, Clone, Copy, Default)]
struct LastShape {
    batch: usize,
    slots: usize,
}

pub struct GpuTrainer {
    gpu: Gpu,
    kernels: Kernels,
    config: TrainerConfig,
    /// The clipping rule's state, kept on the host: it turns earlier norms into this step's
    /// threshold, which the uniform carries to the shader.
    rule: ClipRule,
    dims: Dims,
    mode: KernelMode,
    n_params: usize,
    cfg_buf: wgpu::Buffer,
    theta: wgpu::Buffer,
    grad: wgpu::Buffer,
    opt_state: wgpu::Buffer,
    stats: wgpu::Buffer,
    readback: wgpu::Buffer,
    ws: Option<Workspace>,
    last: LastShape,
}

fn storage(device: &wgpu::Device, label: &str, floats: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (floats.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

/// θ as one flat vector: [W_rec | W_in | b | W_out | b_out].
fn flatten(p: &Params<f32>) -> Vec<f32> {
    let mut v = Vec::with_capacity(
        p.w_rec.len() + p.w_in.len() + p.b.len() + p.w_out.len() + p.b_out.len(),
    );
    for t in [&p.w_rec, &p.w_in, &p.b, &p.w_out, &p.b_out] {
        v.extend_from_slice(t);
    }
    v
}

fn unflatten(dims: Dims, flat: &[f32]) -> Params<f32> {
    let mut p = Params::zeros(dims, false);
    let mut at = 0;
    for t in [
        &mut p.w_rec,
        &mut p.w_in,
        &mut p.b,
        &mut p.w_out,
        &mut p.b_out,
    ] {
        let n = t.len();
        t.copy_from_slice(&flat[at..at + n]);
        at += n;
    }
    p
}

fn n_params(d: Dims) -> usize {
    let (i, h, o) = (d.n_in, d.n_hidden, d.n_out);
    h * h + h * i + h + o * h + o
}

fn check_params(p: &Params<f32>) -> Result<()> {
    if p.has_x0() {
        return Err(GpuError::Unsupported(
            "a learned initial state (x0 in params)".into(),
        ));
    }
    let d = p.dims;
    let lens = [
        d.n_hidden * d.n_hidden,
        d.n_hidden * d.n_in,
        d.n_hidden,
        d.n_out * d.n_hidden,
        d.n_out,
    ];
    let got = [
        p.w_rec.len(),
        p.w_in.len(),
        p.b.len(),
        p.w_out.len(),
        p.b_out.len(),
    ];
    if lens != got || d.n_hidden == 0 || d.n_out == 0 {
        return Err(EngineError::invalid("parameter buffers do not match their dims").into());
    }
    if let Some(pos) = flatten(p).iter().position(|v| !v.is_finite()) {
        return Err(EngineError::invalid(format!(
            "parameters hold a non-finite value at flat index {pos}"
        ))
        .into());
    }
    Ok(())
}

impl GpuTrainer {
    /// A trainer on the best adapter (or the one `RNNSTAB_GPU_ADAPTER` names), with the kernel
    /// mode chosen automatically.
    pub fn new(params: Params<f32>, config: TrainerConfig) -> Result<Self> {
        Self::with_mode(params, config, KernelMode::Auto)
    }

    pub fn with_mode(params: Params<f32>, config: TrainerConfig, mode: KernelMode) -> Result<Self> {
        check_params(&params)?;
        if config.carry_state {
            return Err(GpuError::Unsupported(
                "carry_state (truncated BPTT over a stream)".into(),
            ));
        }
        config.optimizer.validate()?;
        rnnstab_engine::check_alpha(config.settings.omega.alpha)?;
        let dims = params.dims;
        let wide = dims.n_hidden.max(dims.n_out) > MAX_PERSISTENT_WIDTH;
        let mode = match mode {
            KernelMode::Auto => KernelMode::PerStep,
            KernelMode::Persistent if wide => {
                return Err(GpuError::Unsupported(format!(
                    "the persistent kernels with H or O above {MAX_PERSISTENT_WIDTH} (use KernelMode::PerStep)"
                )))
            }
            m => m,
        };
        let gpu = Gpu::open()?;
        let kernels = Kernels::new(&gpu.device)?;
        let n = n_params(dims);
        let device = &gpu.device;
        let theta = storage(device, "theta", n);
        let grad = storage(device, "grad", n);
        let opt_state = storage(device, "opt_state", n);
        let stats = storage(device, "stats", N_STATS);
        let cfg_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("cfg"),
            size: std::mem::size_of::<Cfg>() as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("stats readback"),
            size: (N_STATS * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.queue
            .write_buffer(&theta, 0, bytemuck::cast_slice(&flatten(&params)));
        gpu.queue
            .write_buffer(&opt_state, 0, bytemuck::cast_slice(&vec![0f32; n]));
        gpu.queue
            .write_buffer(&grad, 0, bytemuck::cast_slice(&vec![0f32; n]));
        gpu.queue
            .write_buffer(&stats, 0, bytemuck::cast_slice(&[0f32; N_STATS]));
        let t = GpuTrainer {
            gpu,
            kernels,
            config,
            rule: ClipRule::new(config.clip),
            dims,
            mode,
            n_params: n,
            cfg_buf,
            theta,
            grad,
            opt_state,
            stats,
            readback,
            ws: None,
            last: LastShape::default(),
        };
        t.gpu.wait()?;
        Ok(t)
    }

    pub fn adapter_info(&self) -> AdapterSummary {
        self.gpu.summary()
    }

    pub fn mode(&self) -> KernelMode {
        self.mode
    }

    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    pub fn dims(&self) -> Dims {
        self.dims
    }

    /// Downloads θ.
    pub fn params(&self) -> Result<Params<f32>> {
        let flat = self.gpu.download(&self.theta, 0, self.n_params)?;
        Ok(unflatten(self.dims, &flat))
    }

    /// Replaces θ (same shapes), e.g. when resuming from a checkpoint.
    pub fn set_params(&mut self, params: Params<f32>) -> Result<()> {
        if params.dims != self.dims {
            return Err(
                EngineError::invalid("new parameters do not have the trainer's shapes").into(),
            );
        }
        check_params(&params)?;
        self.gpu
            .queue
            .write_buffer(&self.theta, 0, bytemuck::cast_slice(&flatten(&params)));
        self.gpu.wait()
    }

    /// The gradient of the last step (after clipping), or of the last `loss_and_grads` call.
    pub fn grads(&self) -> Result<Params<f32>> {
        let flat = self.gpu.download(&self.grad, 0, self.n_params)?;
        Ok(unflatten(self.dims, &flat))
    }

    /// Velocities or accumulated squares, shaped like θ; `None` for plain SGD.
    pub fn optimizer_state(&self) -> Result<Option<Params<f32>>> {
        if !self.config.optimizer.kind.has_state() {
            return Ok(None);
        }
        let flat = self.gpu.download(&self.opt_state, 0, self.n_params)?;
        Ok(Some(unflatten(self.dims, &flat)))
    }

    pub fn set_optimizer_state(&mut self, state: Params<f32>) -> Result<()> {
        if !self.config.optimizer.kind.has_state() {
            return Err(EngineError::invalid("this optimizer keeps no state").into());
        }
        if state.dims != self.dims || state.has_x0() {
            return Err(EngineError::invalid(
                "optimizer state does not have the parameters' shapes",
            )
            .into());
        }
        self.gpu
            .queue
            .write_buffer(&self.opt_state, 0, bytemuck::cast_slice(&flatten(&state)));
        self.gpu.wait()
    }

    /// The clipping rule's state (see `ClipRule::state`), for a checkpoint.
    pub fn clip_state(&self) -> Vec<f64> {
        self.rule.state()
    }

    pub fn set_clip_state(&mut self, state: &[f64]) -> Result<()> {
        Ok(self.rule.set_state(state)?)
    }

    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        let mut c = self.config.optimizer;
        c.lr = lr;
        c.validate()?;
        self.config.optimizer = c;
        Ok(())
    }

    pub fn set_omega_alpha(&mut self, alpha: f64) -> Result<()> {
        rnnstab_engine::check_alpha(alpha)?;
        self.config.settings.omega.alpha = alpha;
        Ok(())
    }

    /// One update, as `rnnstab_engine::Trainer::step(batch, InitialState::Zero)`.
    pub fn step(&mut self, batch: &Batch<'_, f32>) -> Result<StepStats> {
        let threshold = self.rule.threshold().unwrap_or(f64::NAN);
        let s = self.run(batch, true)?;
        let nonfinite = s[STAT_NONFINITE] != 0.0;
        let stats = StepStats {
            loss: s[STAT_LOSS] as f64,
            omega: s[STAT_OMEGA] as f64,
            grad_norm: s[STAT_NORM] as f64,
            clipped: s[STAT_CLIPPED] != 0.0,
            skipped: nonfinite || s[STAT_SPIKE] != 0.0,
            omega_pairs: s[STAT_PAIRS] as usize,
            clip_threshold: threshold,
        };
        // As on the CPU: the rule takes in every norm whose loss and gradient were finite
        // (1 marks a non-finite one; 2 a finite gradient whose update would overflow).
        if s[STAT_NONFINITE] != 1.0 {
            self.rule.observe(stats.grad_norm);
        }
        if nonfinite && self.config.nonfinite == NonFinitePolicy::Error {
            // grad_norm writes 2 when the gradient was finite but the update overflowed.
            let err = if s[STAT_NONFINITE] == 2.0 {
                EngineError::NonFiniteUpdate {
                    norm: stats.grad_norm,
                    lr: self.config.optimizer.lr,
                }
            } else {
                EngineError::NonFiniteGradient {
                    norm: stats.grad_norm,
                    loss: stats.loss,
                }
            };
            return Err(err.into());
        }
        Ok(stats)
    }

    /// E, Ω and ∂(E + αΩ)/∂θ (Ω through its immediate partial) without updating θ, as
    /// `rnnstab_engine::loss_and_grads` with x_0 = 0.
    pub fn loss_and_grads(
        &mut self,
        batch: &Batch<'_, f32>,
    ) -> Result<(GpuLossOutput, Params<f32>)> {
        let s = self.run(batch, false)?;
        let out = GpuLossOutput {
            loss: s[STAT_LOSS] as f64,
            omega: s[STAT_OMEGA] as f64,
            omega_pairs: s[STAT_PAIRS] as usize,
            grad_norm: s[STAT_NORM] as f64,
        };
        Ok((out, self.grads()?))
    }

    /// h_t = σ(x_t) of the last batch, `(B, S, H)` with S = (steps run) + 1 and slot 0 = σ(x_0).
    pub fn hidden_states(&self) -> Result<(Vec<f32>, usize)> {
        let ws = self
            .ws
            .as_ref()
            .ok_or_else(|| EngineError::invalid("no batch has been run yet"))?;
        let n = self.last.batch * self.last.slots * self.dims.n_hidden;
        Ok((self.gpu.download(&ws.hs, 0, n)?, self.last.slots))
    }

    /// ‖∂E/∂x_t‖ for t = 0..S−1 of the last batch, averaged over the batch (the CPU engine's
    /// `Workspace::error_signal_profile`; slot 0 is the signal reaching x_0).
    pub fn error_signal_profile(&self) -> Result<Vec<f64>> {
        let ws = self
            .ws
            .as_ref()
            .ok_or_else(|| EngineError::invalid("no batch has been run yet"))?;
        let (b, s, h) = (self.last.batch, self.last.slots, self.dims.n_hidden);
        let gs = self.gpu.download(&ws.gs, 0, b * s * h)?;
        // v_0 (in the vs buffer, slot 0) is ∂E/∂x_0; g_0 itself is stored as 0.
        let vs = self.download_vs_slot0(b, s, h)?;
        let mut prof = vec![0.0; s];
        for r in 0..b {
            prof[0] += vs[r * h..(r + 1) * h]
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            for (t, p) in prof.iter_mut().enumerate().skip(1) {
                let g = &gs[(r * s + t) * h..(r * s + t + 1) * h];
                *p += g.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
            }
        }
        prof.iter_mut().for_each(|p| *p /= b.max(1) as f64);
        Ok(prof)
    }

    fn download_vs_slot0(&self, b: usize, s: usize, h: usize) -> Result<Vec<f32>> {
        let ws = self
            .ws
            .as_ref()
            .ok_or_else(|| EngineError::invalid("no batch has been run yet"))?;
        let vs = self.gpu.download(&ws.vs, 0, b * s * h)?;
        Ok((0..b)
            .flat_map(|r| vs[r * s * h..r * s * h + h].iter().copied())
            .collect())
    }

    /// The uniform for this batch.
    fn cfg_for(
        &self,
        batch: &Batch<'_, f32>,
        slots: usize,
        off_targets: usize,
        off_mask: usize,
        off_scale: usize,
    ) -> Cfg {
        let d = self.dims;
        let (h, i, o) = (d.n_hidden, d.n_in, d.n_out);
        let c = &self.config;
        let o_w_in = h * h;
        let o_b = o_w_in + h * i;
        let o_w_out = o_b + h;
        let o_b_out = o_w_out + o * h;
        // The threshold in force from earlier norms (the rule has not seen this step's yet).
        let (clip_kind, thr) = match (c.clip, self.rule.threshold()) {
            (Clip::Value(t), _) => (2, t),
            (Clip::Agc { lambda, .. }, _) => (4, lambda),
            (Clip::None, _) | (_, None) => (0, 0.0),
            (Clip::Skip { .. }, Some(t)) => (3, t),
            // norm, auto, percentile, zscore: Algorithm 1 with this step's threshold.
            (_, Some(t)) => (1, t),
        };
        let opt = &c.optimizer;
        Cfg {
            n_hidden: h as u32,
            n_in: i as u32,
            n_out: o as u32,
            batch: batch.batch as u32,
            slots: slots as u32,
            steps: batch.steps as u32,
            activation: match c.settings.model.activation {
                Activation::Tanh => 0,
                Activation::Sigmoid => 1,
                Activation::Relu => 2,
                Activation::Linear => 3,
            },
            loss: match c.settings.model.loss {
                Loss::SoftmaxCe => 0,
                Loss::Mse => 1,
                Loss::Bce => 2,
            },
            off_targets: off_targets as u32,
            off_mask: off_mask as u32,
            off_scale: off_scale as u32,
            n_params: self.n_params as u32,
            off_w_in: o_w_in as u32,
            off_b: o_b as u32,
            off_w_out: o_w_out as u32,
            off_b_out: o_b_out as u32,
            omega_form: match c.settings.omega.form {
                OmegaForm::Norm => 0,
                OmegaForm::Squared => 1,
            },
            clip_kind,
            optimizer: match opt.kind {
                OptimizerKind::Sgd => 0,
                OptimizerKind::Momentum => 1,
                OptimizerKind::Nesterov => 2,
                OptimizerKind::RmsProp => 3,
                OptimizerKind::Adagrad => 4,
            },
            nonfinite: match c.nonfinite {
                NonFinitePolicy::Skip => 0,
                NonFinitePolicy::Shrink => 1,
                NonFinitePolicy::Error => 2,
            },
            alpha: c.settings.omega.alpha as f32,
            clip_threshold: thr as f32,
            lr: opt.lr as f32,
            momentum: opt.momentum as f32,
            rho: opt.rho as f32,
            eps: opt.eps as f32,
            shrink: rnnstab_engine::shrink_factor(opt.lr) as f32,
            freeze_biases: u32::from(c.freeze_biases),
        }
    }

    /// Checks the batch against the model and packs [u | targets | mask | row_scale].
    fn pack_batch(&self, batch: &Batch<'_, f32>) -> Result<(Vec<f32>, usize, usize, usize)> {
        let d = self.dims;
        let (t, b) = (batch.steps, batch.batch);
        if b == 0 {
            return Err(EngineError::invalid("the batch is empty (B = 0)").into());
        }
        if batch.inputs.len() != t * b * d.n_in {
            return Err(EngineError::invalid(format!(
                "inputs do not have shape ({t}, {b}, {})",
                d.n_in
            ))
            .into());
        }
        if batch.mask.len() != t * b {
            return Err(
                EngineError::invalid(format!("mask does not have shape ({t}, {b})")).into(),
            );
        }
        let mut packed = Vec::with_capacity(t * b * (d.n_in + d.n_out + 1) + b);
        packed.extend_from_slice(batch.inputs);
        let off_targets = packed.len();
        match (self.config.settings.model.loss, batch.targets) {
            (Loss::SoftmaxCe, Targets::Classes(c)) if c.len() == t * b => {
                // Class indices travel as f32: exact below 2^24, far above any output width.
                for (p, &k) in c.iter().enumerate() {
                    let scored = batch.mask[p] != 0.0;
                    if scored && (k < 0 || k as usize >= d.n_out) {
                        return Err(EngineError::invalid(format!(
                            "targets hold a class index outside [0, {}) at step {}, example {}",
                            d.n_out,
                            p / b,
                            p % b
                        ))
                        .into());
                    }
                    packed.push(if scored { k as f32 } else { 0.0 });
                }
            }
            (Loss::Mse | Loss::Bce, Targets::Values(v)) if v.len() == t * b * d.n_out => packed.extend_from_slice(v),
            _ => {
                return Err(EngineError::invalid(
                    "targets do not fit the loss: softmax_ce takes class indices (T, B), mse and bce values (T, B, O)",
                )
                .into())
            }
        }
        let off_mask = packed.len();
        packed.extend_from_slice(batch.mask);
        let off_scale = packed.len();
        for r in 0..b {
            let scored: f64 = (0..t).map(|s| batch.mask[s * b + r] as f64).sum();
            let per_seq = match self.config.settings.model.time_reduction {
                TimeReduction::Sum => 1.0,
                TimeReduction::Mean if scored > 0.0 => 1.0 / scored,
                TimeReduction::Mean => 0.0,
            };
            packed.push((per_seq / b as f64) as f32);
        }
        Ok((packed, off_targets, off_mask, off_scale))
    }

    fn ensure_workspace(&mut self, batch_len: usize, b: usize, slots: usize) -> Result<()> {
        let rows = b * slots;
        if let Some(ws) = &self.ws {
            if ws.batch_cap >= batch_len
                && ws.rows_cap >= rows
                && ws.b_cap >= b
                && ws.slots_cap >= slots
            {
                return Ok(());
            }
        }
        let d = self.dims;
        let limit = self.gpu.limits.max_storage_buffer_binding_size as usize;
        let biggest = (rows * d.n_hidden.max(d.n_out).max(3))
            .max(batch_len)
            .max(self.n_params)
            * 4;
        if biggest > limit {
            return Err(GpuError::MissingFeature(format!(
                "storage buffers of {biggest} bytes (the adapter allows {limit}); use a smaller batch or --device cpu"
            )));
        }
        let dev = &self.gpu.device;
        let batch_buf = storage(dev, "batch", batch_len);
        let hs = storage(dev, "hs", rows * d.n_hidden);
        let gs = storage(dev, "gs", rows * d.n_hidden);
        let vs = storage(dev, "vs", rows * d.n_hidden);
        let zs = storage(dev, "zs", rows * d.n_hidden);
        let dy = storage(dev, "dy", rows * d.n_out);
        let pairs = storage(dev, "pairs", rows * 3);
        let row_loss = storage(dev, "row_loss", b);
        let step_buf = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step index"),
            size: STEP_STRIDE * slots as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut idx = vec![0u32; slots * (STEP_STRIDE as usize / 4)];
        for t in 0..slots {
            idx[t * (STEP_STRIDE as usize / 4)] = t as u32;
        }
        self.gpu
            .queue
            .write_buffer(&step_buf, 0, bytemuck::cast_slice(&idx));
        let bufs: [&wgpu::Buffer; 13] = [
            &self.cfg_buf,
            &self.theta,
            &self.grad,
            &self.opt_state,
            &batch_buf,
            &hs,
            &gs,
            &vs,
            &zs,
            &dy,
            &pairs,
            &row_loss,
            &self.stats,
        ];
        let entries: Vec<wgpu::BindGroupEntry<'_>> = bufs
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let main_group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("rnnstab main"),
            layout: &self.kernels.main_layout,
            entries: &entries,
        });
        let step_group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("rnnstab step index"),
            layout: &self.kernels.step_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &step_buf,
                    offset: 0,
                    size: std::num::NonZeroU64::new(16),
                }),
            }],
        });
        self.ws = Some(Workspace {
            batch_cap: batch_len,
            rows_cap: rows,
            b_cap: b,
            slots_cap: slots,
            batch_buf,
            hs,
            gs,
            vs,
            zs,
            dy,
            pairs,
            row_loss,
            step_buf,
            main_group,
            step_group,
        });
        self.gpu.check()
    }

    /// Times each kernel on its own (submit and wait after each; the best of three) for a
    /// batch, plus an empty submit-and-wait and the whole step (one submit, one readback).
    /// A diagnostic for choosing kernel strategies, not for training.
    #[doc(hidden)]
    pub fn profile(&mut self, batch: &Batch<'_, f32>) -> Result<Vec<(&'static str, f64)>> {
        self.run(batch, false)?;
        let (b, slots, h) = (self.last.batch, self.last.slots, self.dims.n_hidden);
        let max_dim = self.gpu.limits.max_compute_workgroups_per_dimension;
        let ws = self
            .ws
            .as_ref()
            .ok_or_else(|| GpuError::Device("workspace missing".into()))?;
        let k = &self.kernels;
        let persistent = self.mode == KernelMode::Persistent;
        // (name, pipeline, workgroups, dispatched once per slot)
        let mut stages: Vec<(&'static str, &wgpu::ComputePipeline, (u32, u32), bool)> =
            if persistent {
                vec![
                    ("forward", &k.forward_seq, (b as u32, 1), false),
                    ("backward", &k.backward_seq, (b as u32, 1), false),
                ]
            } else {
                vec![
                    ("forward", &k.forward_step, grid(b * h, max_dim), true),
                    (
                        "readout",
                        &k.readout_step,
                        ((b as u32).div_ceil(64), 1),
                        true,
                    ),
                    ("backward", &k.backward_step, grid(b * h, max_dim), true),
                ]
            };
        stages.extend([
            (
                "omega_pairs",
                &k.omega_pairs,
                grid(b * slots, max_dim),
                false,
            ),
            ("reduce_stats", &k.reduce_stats, (1, 1), false),
            (
                "omega_fold",
                &k.omega_fold,
                grid(b * slots * h, max_dim),
                false,
            ),
            (
                "weight_grads",
                &k.weight_grads,
                grid(self.n_params, max_dim),
                false,
            ),
            ("grad_norm", &k.grad_norm, (1, 1), false),
        ]);
        let mut out = Vec::new();
        for (name, p, (x, y), each_slot) in stages {
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t0 = std::time::Instant::now();
                let mut enc = self
                    .gpu
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: None,
                    });
                    pass.set_bind_group(0, &ws.main_group, &[]);
                    pass.set_bind_group(1, &ws.step_group, &[0]);
                    pass.set_pipeline(p);
                    let reps = if each_slot { slots } else { 1 };
                    for t in 0..reps {
                        pass.set_bind_group(
                            1,
                            &ws.step_group,
                            &[(t.max(1) as u64 * STEP_STRIDE) as u32],
                        );
                        pass.dispatch_workgroups(x, y, 1);
                    }
                }
                self.gpu.queue.submit([enc.finish()]);
                self.gpu.wait()?;
                best = best.min(t0.elapsed().as_secs_f64());
            }
            out.push((name, best));
        }
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t0 = std::time::Instant::now();
            self.gpu.queue.submit([]);
            self.gpu.wait()?;
            best = best.min(t0.elapsed().as_secs_f64());
        }
        out.push(("empty submit+wait", best));
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t0 = std::time::Instant::now();
            self.run(batch, false)?;
            best = best.min(t0.elapsed().as_secs_f64());
        }
        out.push(("whole step", best));
        Ok(out)
    }

    /// Uploads the batch, records every kernel, submits, and reads the scalars back.
    fn run(&mut self, batch: &Batch<'_, f32>, update: bool) -> Result<Vec<f32>> {
        let (packed, off_t, off_m, off_s) = self.pack_batch(batch)?;
        let steps = if self.config.settings.full_length {
            batch.steps
        } else {
            batch.last_scored_step()
        };
        let slots = steps + 1;
        let b = batch.batch;
        self.ensure_workspace(packed.len(), b, slots)?;
        let cfg = self.cfg_for(batch, slots, off_t, off_m, off_s);
        let ws = self
            .ws
            .as_ref()
            .ok_or_else(|| GpuError::Device("workspace missing".into()))?;
        let q = &self.gpu.queue;
        q.write_buffer(&self.cfg_buf, 0, bytemuck::bytes_of(&cfg));
        q.write_buffer(&ws.batch_buf, 0, bytemuck::cast_slice(&packed));
        let k = &self.kernels;
        let h = self.dims.n_hidden;
        let max_dim = self.gpu.limits.max_compute_workgroups_per_dimension;
        let mut enc = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("step"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("step"),
                timestamp_writes: None,
            });
            let dispatch =
                |pass: &mut wgpu::ComputePass<'_>, p: &wgpu::ComputePipeline, n: usize| {
                    let (x, y) = grid(n, max_dim);
                    pass.set_pipeline(p);
                    pass.dispatch_workgroups(x, y, 1);
                };
            pass.set_bind_group(0, &ws.main_group, &[]);
            match self.mode {
                KernelMode::PerStep => {
                    pass.set_bind_group(1, &ws.step_group, &[0]);
                    dispatch(&mut pass, &k.forward_init, b * h);
                    for t in 1..slots {
                        pass.set_bind_group(1, &ws.step_group, &[(t as u64 * STEP_STRIDE) as u32]);
                        dispatch(&mut pass, &k.forward_step, b * h);
                        pass.set_pipeline(&k.readout_step);
                        pass.dispatch_workgroups((b as u32).div_ceil(64), 1, 1);
                    }
                    for t in (0..slots).rev() {
                        pass.set_bind_group(1, &ws.step_group, &[(t as u64 * STEP_STRIDE) as u32]);
                        dispatch(&mut pass, &k.backward_step, b * h);
                    }
                }
                _ => {
                    // one workgroup per sequence
                    pass.set_pipeline(&k.forward_seq);
                    pass.dispatch_workgroups(b as u32, 1, 1);
                    pass.set_pipeline(&k.backward_seq);
                    pass.dispatch_workgroups(b as u32, 1, 1);
                }
            }
            dispatch(&mut pass, &k.omega_pairs, b * slots);
            pass.set_pipeline(&k.reduce_stats);
            pass.dispatch_workgroups(1, 1, 1);
            dispatch(&mut pass, &k.omega_fold, b * slots * h);
            dispatch(&mut pass, &k.weight_grads, self.n_params);
            pass.set_pipeline(&k.grad_norm);
            pass.dispatch_workgroups(1, 1, 1);
            if update && matches!(self.config.clip, Clip::Agc { .. }) {
                pass.set_pipeline(&k.agc_clip);
                pass.dispatch_workgroups(1, 1, 1);
            }
            if update {
                dispatch(&mut pass, &k.apply_update, self.n_params);
            }
        }
        enc.copy_buffer_to_buffer(&self.stats, 0, &self.readback, 0, (N_STATS * 4) as u64);
        q.submit([enc.finish()]);
        self.last = LastShape { batch: b, slots };
        self.gpu.read_mapped(&self.readback, N_STATS)
    }
}
