//! The forward pass of eq. (2), backpropagation through time (eqs. 3–5), the Ω regulariser
//! (eq. 9) and its immediate gradient (eq. 10), for one batch.
//!
//! # Layout and data flow
//! States are kept batch-major, `(B, S, ·)` with `S = T + 1` slots: slot 0 holds the initial
//! state, slot t the step-t quantity. Each example's rows are contiguous, so the batch splits
//! into row blocks that run the whole forward and backward recurrence independently on the
//! pool's threads. Every weight gradient is a sum over all (example, step) rows, taken as one
//! product per group of examples, the groups fixed by the shapes alone ([`gradient_groups`]),
//! and the groups' sums added in order; no sum ever depends on the thread count, so results
//! are bit-identical on any number of threads.
//!
//! 1. forward (per block): `HS[b,t] = h_t = σ(W_rec·h_{t−1} + W_in·u_t + b)` and, at scored
//!    steps, `DY[b,t] = ∂E/∂y_t`;
//! 2. backward (per block): `G[b,t] = g_t = ∂E/∂x_t` from t = T down to 1, the error signal
//!    reaching x_0, and for each pair k the two norms Ω needs;
//! 3. `∂W_out = DYᵀ·HS`;
//! 4. Ω's immediate gradient folded into the states (see [`fold_omega_block`]);
//! 5. `∂W_rec = Σ_t g_tᵀ·h_{t−1}`, and `∂W_in = Σ_t g_tᵀ·u_t` with `∂b = Σ_t g_t` as one product
//!    (the inputs carry a column of ones).
//!
//! Steps 3 (when most steps are scored), 4 and 5 run per group of examples in one parallel
//! pass ([`gradient_group`]), so a thread reads the rows its own block has just written.

use std::sync::Mutex;

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::activation::Activation;
use crate::at_b::matmul_at_b;
use crate::error::{EngineError, Result};
use crate::float::Float;
use crate::fpmode::FlushDenormals;
use crate::kernels::{matmul_packed, simd_dispatch, PackedMatrix};
use crate::linalg::{gemm, par_matmul_at_b, View, ViewMut};
use crate::loss::{loss_and_grad, Loss, TimeReduction};
use crate::model::{Batch, Dims, InitialState, Params};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelConfig {
    pub activation: Activation,
    pub loss: Loss,
    pub time_reduction: TimeReduction,
}

/// Which quantity Ω averages: the paper's eq. (9) uses the norm ratio r_k; the authors'
/// released code squares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OmegaForm {
    /// (‖g_{k+1} J_k‖ / ‖g_{k+1}‖ − 1)²
    Norm,
    /// (‖g_{k+1} J_k‖² / ‖g_{k+1}‖² − 1)²
    Squared,
}

impl OmegaForm {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "norm" => Ok(OmegaForm::Norm),
            "squared" => Ok(OmegaForm::Squared),
            _ => Err(EngineError::UnknownName {
                what: "omega form",
                got: name.to_string(),
                choices: "norm, squared",
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OmegaConfig {
    /// The weight α of Ω's gradient in W_rec's; Ω's value is computed whatever α is.
    pub alpha: f64,
    pub form: OmegaForm,
}

/// Pairs whose ‖g_{k+1}‖² falls below this carry no error signal: they are left out of Ω's
/// mean (as in the authors' code) rather than divided by a vanishing norm.
pub const OMEGA_MIN_SIGNAL: f64 = 1e-20;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOutput {
    /// E, the cost of eq. (3) averaged over the batch.
    pub loss: f64,
    /// Ω of eq. (9): the mean over the (k, example) pairs that carry error signal.
    pub omega: f64,
    /// How many (k, example) pairs entered Ω.
    pub omega_pairs: usize,
}

/// Buffers kept from one call to the next so a training step allocates nothing large.
pub struct Workspace<T> {
    hs: Vec<T>,             // (B, S, H)  h_t = σ(x_t); during step 4, Z_t of eq. (10)'s fold
    gs: Vec<T>,             // (B, S, H)  g_t = ∂E/∂x_t, slot 0 zero
    vs: Vec<T>,             // (B, S, H)  v_t = g_{t+1}J_t where Ω's fold needs it kept
    dy: Vec<T>,             // (B, S, O)  ∂E/∂y_t, zero where unscored
    us: Vec<T>,             // (B, S, I+1) the inputs, batch-major, then a 1; slot 0 zero
    v0: Vec<T>,             // (B, H)     ∂E/∂x_0
    x_final: Vec<T>,        // (B, H)     x_T, the state to carry into the next segment
    row_loss: Vec<f64>,     // (B,)       Σ_t m·ℓ per example
    row_scale: Vec<f64>,    // (B,)       the example's weight in E
    omega_c: Vec<f64>,      // (B, S)     eq. (10)'s coefficient of pair k (slot k)
    row_omega: Vec<f64>,    // (B,)       Σ_k Ω_k over the example's pairs
    omega_valid: Vec<bool>, // (B, S)  pair k carries error signal
    w_out_part: Vec<T>,     // (O, H)     one scored slot's share of ∂W_out
    parts: GradParts<T>,    // each group's share of the weight gradients
    block_packs: Vec<BlockPacks<T>>, // each recurrence block's own packings
    w_rec_packed: PackedMatrix<T>,
    w_out_t_packed: PackedMatrix<T>,
    w_out_packed: PackedMatrix<T>,
    batch: usize,
    slots: usize,
}

/// The product of buffer dimensions, or [`EngineError::OutOfMemory`] when it overflows.
fn product(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .ok_or(EngineError::OutOfMemory {
            what: "the BPTT work buffers",
            bytes: dims.iter().map(|d| *d as u128).product(),
        })
}

/// `v.resize(n, fill)` that reports a failed allocation instead of aborting.
fn try_resize<V: Clone>(v: &mut Vec<V>, n: usize, fill: V) -> Result<()> {
    if n > v.len() {
        v.try_reserve_exact(n - v.len())
            .map_err(|_| EngineError::OutOfMemory {
                what: "the BPTT work buffers",
                bytes: n as u128 * std::mem::size_of::<V>() as u128,
            })?;
    }
    v.resize(n, fill);
    Ok(())
}

impl<T: Float> Default for Workspace<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Workspace<T> {
    pub fn new() -> Self {
        Workspace {
            hs: Vec::new(),
            gs: Vec::new(),
            vs: Vec::new(),
            dy: Vec::new(),
            us: Vec::new(),
            v0: Vec::new(),
            x_final: Vec::new(),
            row_loss: Vec::new(),
            row_scale: Vec::new(),
            omega_c: Vec::new(),
            row_omega: Vec::new(),
            omega_valid: Vec::new(),
            w_out_part: Vec::new(),
            parts: GradParts::default(),
            block_packs: Vec::new(),
            w_rec_packed: PackedMatrix::new(),
            w_out_t_packed: PackedMatrix::new(),
            w_out_packed: PackedMatrix::new(),
            batch: 0,
            slots: 0,
        }
    }

    /// Sizes the buffers for a batch; an allocation that fails (T, B and H come from the
    /// caller) is an [`EngineError::OutOfMemory`], not an abort.
    fn prepare(&mut self, batch: usize, slots: usize, h: usize, i: usize, o: usize) -> Result<()> {
        let rows = product(&[batch, slots])?;
        try_resize(&mut self.hs, product(&[rows, h])?, T::ZERO)?;
        try_resize(&mut self.gs, product(&[rows, h])?, T::ZERO)?;
        try_resize(&mut self.dy, product(&[rows, o])?, T::ZERO)?;
        try_resize(&mut self.us, product(&[rows, i + 1])?, T::ZERO)?;
        try_resize(&mut self.v0, product(&[batch, h])?, T::ZERO)?;
        try_resize(&mut self.x_final, product(&[batch, h])?, T::ZERO)?;
        try_resize(&mut self.row_loss, batch, 0.0)?;
        try_resize(&mut self.row_scale, batch, 0.0)?;
        try_resize(&mut self.omega_c, rows, 0.0)?;
        try_resize(&mut self.row_omega, batch, 0.0)?;
        try_resize(&mut self.omega_valid, rows, false)?;
        try_resize(&mut self.w_out_part, product(&[o, h])?, T::ZERO)?;
        self.batch = batch;
        self.slots = slots;
        Ok(())
    }

    /// x_T per example `(B, H)` after the last call (the pre-activation state).
    pub fn final_state(&self) -> &[T] {
        &self.x_final
    }

    /// ‖∂E/∂x_t‖ for t = 0..T of the last call, averaged over the batch: the temporal profile
    /// of the error signal (eq. 7's η^{t−k} decay made visible).
    pub fn error_signal_profile(&self, h: usize) -> Vec<f64> {
        let (b, s) = (self.batch, self.slots);
        let mut prof = vec![0.0; s];
        for r in 0..b {
            let v0: f64 = self.v0[r * h..(r + 1) * h]
                .iter()
                .map(|v| v.to_f64().powi(2))
                .sum();
            prof[0] += v0.sqrt();
            for (t, p) in prof.iter_mut().enumerate().skip(1) {
                let g = &self.gs[(r * s + t) * h..(r * s + t + 1) * h];
                *p += g.iter().map(|v| v.to_f64().powi(2)).sum::<f64>().sqrt();
            }
        }
        prof.iter_mut().for_each(|p| *p /= b.max(1) as f64);
        prof
    }
}

/// The read-only context every row block shares.
struct Ctx<'a, T> {
    p: &'a Params<T>,
    batch: &'a Batch<'a, T>,
    x0: InitialState<'a, T>,
    cfg: ModelConfig,
    form: OmegaForm,
    slots: usize,
    /// W_rec packed for the product g_{t+1}·W_rec of the Ω fold.
    w_rec: &'a PackedMatrix<T>,
    /// Most steps are scored (next-step prediction): the read-out and its error signal run
    /// as one product over all of a block's steps instead of one small product per step,
    /// since neither depends on the recurrence of the same pass.
    dense_out: bool,
    /// W_outᵀ (for y_t = W_out·h_t) and W_out (for ∂E/∂y_t·W_out), packed when `dense_out`.
    w_out_t: &'a PackedMatrix<T>,
    w_out: &'a PackedMatrix<T>,
}

/// One contiguous range of examples and its slices of every per-example buffer.
struct Block<'a, T> {
    r0: usize,
    n: usize,
    hs: &'a mut [T],
    gs: &'a mut [T],
    /// Empty unless the fold reads v_t from it (see [`keeps_v`]).
    vs: &'a mut [T],
    dy: &'a mut [T],
    us: &'a mut [T],
    v0: &'a mut [T],
    x_final: &'a mut [T],
    row_loss: &'a mut [f64],
    row_scale: &'a [f64],
    omega_c: &'a mut [f64],
    row_omega: &'a mut [f64],
    omega_valid: &'a mut [bool],
}

/// Splits the batch into `pieces` near-equal contiguous ranges, as counts.
fn block_counts(batch: usize, pieces: usize) -> Vec<usize> {
    let pieces = pieces.clamp(1, batch.max(1));
    (0..pieces)
        .map(|i| (i + 1) * batch / pieces - i * batch / pieces)
        .collect()
}

fn take_rows<'a, U>(rest: &mut &'a mut [U], rows: usize, width: usize) -> &'a mut [U] {
    let (head, tail) = std::mem::take(rest).split_at_mut(rows * width);
    *rest = tail;
    head
}

fn make_blocks<'a, T: Float>(
    ws: &'a mut Workspace<T>,
    counts: &[usize],
    h: usize,
    i: usize,
    o: usize,
) -> Vec<Block<'a, T>> {
    let s = ws.slots;
    let (mut hs, mut gs, mut dy, mut us) = (
        &mut ws.hs[..],
        &mut ws.gs[..],
        &mut ws.dy[..],
        &mut ws.us[..],
    );
    let v_width = if ws.vs.is_empty() { 0 } else { s * h };
    let mut vs = &mut ws.vs[..];
    let (mut v0, mut xf) = (&mut ws.v0[..], &mut ws.x_final[..]);
    let (mut rl, mut rs) = (&mut ws.row_loss[..], &ws.row_scale[..]);
    let (mut oc, mut ot, mut ov) = (
        &mut ws.omega_c[..],
        &mut ws.row_omega[..],
        &mut ws.omega_valid[..],
    );
    let mut r0 = 0;
    let mut blocks = Vec::with_capacity(counts.len());
    for &n in counts {
        let (scale, rs_rest) = rs.split_at(n);
        rs = rs_rest;
        blocks.push(Block {
            r0,
            n,
            hs: take_rows(&mut hs, n, s * h),
            gs: take_rows(&mut gs, n, s * h),
            vs: take_rows(&mut vs, n, v_width),
            dy: take_rows(&mut dy, n, s * o),
            us: take_rows(&mut us, n, s * (i + 1)),
            v0: take_rows(&mut v0, n, h),
            x_final: take_rows(&mut xf, n, h),
            row_loss: take_rows(&mut rl, n, 1),
            row_scale: scale,
            omega_c: take_rows(&mut oc, n, s),
            row_omega: take_rows(&mut ot, n, 1),
            omega_valid: take_rows(&mut ov, n, s),
        });
        r0 += n;
    }
    blocks
}

/// Does any example of the block have its mask on at 0-based step `t`?
#[inline(always)]
fn block_scored<T: Float>(batch: &Batch<'_, T>, r0: usize, n: usize, t: usize) -> bool {
    (r0..r0 + n).any(|b| batch.mask_at(t, b) != T::ZERO)
}

/// Step 1: the forward pass of eq. (2) over the block's examples, and ∂E/∂y at scored steps.
#[inline(always)]
fn forward_block<T: Float>(ctx: &Ctx<'_, T>, blk: &mut Block<'_, T>, packs: &BlockPacks<T>) {
    let p = ctx.p;
    let (h, i, o) = (p.dims.n_hidden, p.dims.n_in, p.dims.n_out);
    let (s, n, nb) = (ctx.slots, blk.n, ctx.batch.batch);
    let act = ctx.cfg.activation;
    let iw = i + 1;
    for r in 0..n {
        let b = blk.r0 + r;
        blk.us[r * s * iw..(r * s + 1) * iw].fill(T::ZERO);
        for t in 1..s {
            let src = ((t - 1) * nb + b) * i;
            let dst = &mut blk.us[(r * s + t) * iw..(r * s + t + 1) * iw];
            dst[..i].copy_from_slice(&ctx.batch.inputs[src..src + i]);
            // The ones that make ∂b = Σ_t g_t a column of the ∂W_in product.
            dst[i] = T::ONE;
        }
    }
    // W_in·u_t for every slot of every example at once: one ((n·S) × I)·(I × H) product
    // (the ones column of `us` is past the I columns it reads).
    matmul_packed(blk.us, 0, iw, n * s, &packs.w_in_t, blk.hs, h);
    let w_rec_t = &packs.w_rec;
    for r in 0..n {
        let row = &mut blk.hs[r * s * h..(r * s + 1) * h];
        match ctx.x0.row(blk.r0 + r, h) {
            Some(x0) => row.copy_from_slice(x0),
            None => row.fill(T::ZERO),
        }
        if s == 1 {
            blk.x_final[r * h..(r + 1) * h].copy_from_slice(row);
        }
        act.apply_slice(row);
    }
    blk.dy.fill(T::ZERO);
    blk.row_loss.fill(0.0);
    let np = w_rec_t.np;
    let mut rec = vec![T::ZERO; n * np];
    let mut y = vec![T::ZERO; n * o];
    for t in 1..s {
        // W_rec·h_{t−1} for the block's rows, with W_rec packed once per batch by the block.
        matmul_packed(blk.hs, (t - 1) * h, s * h, n, w_rec_t, &mut rec, np);
        for r in 0..n {
            let row = &mut blk.hs[(r * s + t) * h..(r * s + t + 1) * h];
            let rec = &rec[r * np..r * np + h];
            for ((x, rc), bj) in row.iter_mut().zip(rec).zip(&p.b) {
                *x += *rc + *bj;
            }
            if t == s - 1 {
                blk.x_final[r * h..(r + 1) * h].copy_from_slice(row);
            }
            act.apply_slice(row);
        }
        if ctx.dense_out || !block_scored(ctx.batch, blk.r0, n, t - 1) {
            continue;
        }
        gemm(
            T::ONE,
            View::strided(blk.hs, t * h, n, h, s * h, 1),
            View::new(&p.w_out, o, h).t(),
            T::ZERO,
            ViewMut::new(&mut y, n, o),
        );
        for r in 0..n {
            let b = blk.r0 + r;
            let m = ctx.batch.mask_at(t - 1, b);
            if m == T::ZERO {
                continue;
            }
            let yr = &mut y[r * o..(r + 1) * o];
            for (v, bo) in yr.iter_mut().zip(&p.b_out) {
                *v += *bo;
            }
            let target = ctx.batch.target_at(t - 1, b, o);
            let m = m.to_f64();
            let dy = &mut blk.dy[(r * s + t) * o..(r * s + t + 1) * o];
            let l = loss_and_grad(ctx.cfg.loss, yr, target, m * blk.row_scale[r], dy);
            blk.row_loss[r] += m * l;
        }
    }
    if ctx.dense_out {
        dense_read_out(ctx, blk);
    }
}

/// The read-out of step 1 when most steps are scored: `Y = HS·W_outᵀ` for every slot of the
/// block in one product (into DY, which it then overwrites with ∂E/∂y_t slot by slot).
#[inline(always)]
fn dense_read_out<T: Float>(ctx: &Ctx<'_, T>, blk: &mut Block<'_, T>) {
    let p = ctx.p;
    let (h, o) = (p.dims.n_hidden, p.dims.n_out);
    let (s, n) = (ctx.slots, blk.n);
    matmul_packed(blk.hs, 0, h, n * s, ctx.w_out_t, blk.dy, o);
    let mut y = vec![T::ZERO; o];
    for r in 0..n {
        let b = blk.r0 + r;
        for t in 0..s {
            let dy = &mut blk.dy[(r * s + t) * o..(r * s + t + 1) * o];
            let m = if t == 0 {
                T::ZERO
            } else {
                ctx.batch.mask_at(t - 1, b)
            };
            if m == T::ZERO {
                dy.fill(T::ZERO);
                continue;
            }
            for ((v, wh), bo) in y.iter_mut().zip(dy.iter()).zip(&p.b_out) {
                *v = *wh + *bo;
            }
            let target = ctx.batch.target_at(t - 1, b, o);
            let m = m.to_f64();
            let l = loss_and_grad(ctx.cfg.loss, &y, target, m * blk.row_scale[r], dy);
            blk.row_loss[r] += m * l;
        }
    }
}

/// Ω_k and eq. (10)'s coefficient for one pair, from ‖g_{k+1}‖² and ‖g_{k+1}J_k‖².
///
/// With a = g_{k+1}, s = σ'(x_k) and v = (W_recᵀa) ⊙ s = g_{k+1}J_k, the immediate partial of
/// ‖v‖ with respect to W_rec[i][j] is a_i·v_j·s_j / ‖v‖. Each pair's gradient is therefore
/// `c · a ⊗ (v ⊙ s)` with the scalar c returned here.
#[inline(always)]
fn omega_pair(form: OmegaForm, a2: f64, v2: f64) -> (f64, f64) {
    match form {
        OmegaForm::Norm => {
            let r = (v2 / a2).sqrt();
            // At v = 0 the norm is not differentiable; its subgradient 0 is used.
            let c = if v2 > 0.0 {
                2.0 * (r - 1.0) / (v2.sqrt() * a2.sqrt())
            } else {
                0.0
            };
            ((r - 1.0).powi(2), c)
        }
        OmegaForm::Squared => {
            let r2 = v2 / a2;
            ((r2 - 1.0).powi(2), 4.0 * (r2 - 1.0) / a2)
        }
    }
}

/// Records pair `at` (row r, slot k): its validity and its eq. (10) coefficient; returns Ω_k.
#[inline(always)]
fn record_pair(
    form: OmegaForm,
    blk: &mut Block<'_, impl Float>,
    at: usize,
    a2: f64,
    v2: f64,
) -> f64 {
    let valid = a2 >= OMEGA_MIN_SIGNAL;
    blk.omega_valid[at] = valid;
    let (term, c) = if valid {
        omega_pair(form, a2, v2)
    } else {
        (0.0, 0.0)
    };
    blk.omega_c[at] = c;
    term
}

/// ‖v‖², summed in the element type over 16 interleaved lanes (so the loop vectorises; a single
/// running sum would be a serial dependency chain) and returned as f64.
#[inline(always)]
fn sq_norm<T: Float>(v: &[T]) -> f64 {
    let mut acc = [T::ZERO; 16];
    let chunks = v.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..16 {
            acc[j] = c[j].mul_add(c[j], acc[j]);
        }
    }
    let mut total = rest.iter().fold(T::ZERO, |a, x| a + *x * *x);
    for a in acc {
        total += a;
    }
    total.to_f64()
}

/// Step 2: g_t = (g_{t+1}·W_rec) ⊙ σ'(x_t) + (∂E/∂y_t·W_out) ⊙ σ'(x_t), t = T..1 (eq. 5), the
/// signal reaching x_0, and the norms of every Ω pair.
#[inline(always)]
fn backward_block<T: Float>(ctx: &Ctx<'_, T>, blk: &mut Block<'_, T>, w_rec: &PackedMatrix<T>) {
    let p = ctx.p;
    let (h, o) = (p.dims.n_hidden, p.dims.n_out);
    let (s, n) = (ctx.slots, blk.n);
    let act = ctx.cfg.activation;
    let np = w_rec.np;
    if ctx.dense_out {
        // ∂E/∂y_t·W_out for every slot at once, parked in G: slot t is read just before the
        // loop below overwrites it with g_t.
        matmul_packed(blk.dy, 0, o, n * s, ctx.w_out, blk.gs, h);
    }
    // Slots 1..S of G are all written below; slot 0 must read as zero in the weight products.
    for r in 0..n {
        blk.gs[r * s * h..(r * s + 1) * h].fill(T::ZERO);
    }
    blk.omega_valid.fill(false);
    blk.omega_c.fill(0.0);
    let mut carry = vec![T::ZERO; n * np]; // g_{t+1}·W_rec, i.e. (W_recᵀ g_{t+1})ᵀ
    let mut local = vec![T::ZERO; n * h]; // ∂E/∂y_t·W_out
    let mut sd = vec![T::ZERO; h]; // σ'(x_t) of one row
    let mut g2_next = vec![0.0f64; n]; // ‖g_{t+1}‖² per row, from the previous iteration

    // Σ_k Ω_k per row, summed here rather than in the block's slice of the workspace: rows of
    // two blocks can share a cache line, and the threads would pass it back and forth.
    let mut omega_sum = vec![0.0f64; n];
    for t in (0..s).rev() {
        let has_next = t + 1 < s;
        if has_next {
            matmul_packed(blk.gs, (t + 1) * h, s * h, n, w_rec, &mut carry, np);
        }
        if t == 0 {
            break;
        }
        let scored = block_scored(ctx.batch, blk.r0, n, t - 1);
        if scored && !ctx.dense_out {
            gemm(
                T::ONE,
                View::strided(blk.dy, t * o, n, o, s * o, 1),
                View::new(&p.w_out, o, h),
                T::ZERO,
                ViewMut::new(&mut local, n, h),
            );
        }
        for r in 0..n {
            let at = r * s + t;
            let on = scored && ctx.batch.mask_at(t - 1, blk.r0 + r) != T::ZERO;
            if on && ctx.dense_out {
                local[r * h..(r + 1) * h].copy_from_slice(&blk.gs[at * h..(at + 1) * h]);
            }
            let hrow = &blk.hs[at * h..(at + 1) * h];
            let g = &mut blk.gs[at * h..(at + 1) * h];
            if has_next {
                act.mul_derivative_slice(hrow, &carry[r * np..r * np + h], g);
            } else {
                g.fill(T::ZERO);
            }
            // g holds v_t = g_{t+1}J_t here, before the read-out term is added.
            let v2 = if has_next { sq_norm(g) } else { 0.0 };
            if on && has_next && !blk.vs.is_empty() {
                blk.vs[at * h..(at + 1) * h].copy_from_slice(g);
            }
            // Most steps are unscored: there g = v_t, and its norm is already known.
            let g2 = if on {
                act.derivative_slice(hrow, &mut sd);
                for ((gj, l), d) in g.iter_mut().zip(&local[r * h..(r + 1) * h]).zip(&sd) {
                    *gj += *l * *d;
                }
                sq_norm(g)
            } else if has_next {
                v2
            } else {
                0.0
            };
            if has_next {
                omega_sum[r] += record_pair(ctx.form, blk, at, g2_next[r], v2);
            }
            g2_next[r] = g2;
        }
    }
    // Pair k = 0 and ∂E/∂x_0 = (g_1·W_rec) ⊙ σ'(x_0).
    for r in 0..n {
        let at = r * s;
        let v0 = &mut blk.v0[r * h..(r + 1) * h];
        if s < 2 {
            v0.fill(T::ZERO);
            continue;
        }
        act.derivative_slice(&blk.hs[at * h..(at + 1) * h], &mut sd);
        for ((v, c), d) in v0.iter_mut().zip(&carry[r * np..r * np + h]).zip(&sd) {
            *v = *c * *d;
        }
        let v2 = sq_norm(v0);
        omega_sum[r] += record_pair(ctx.form, blk, at, g2_next[r], v2);
    }
    blk.row_omega.copy_from_slice(&omega_sum);
}

/// Step 4: eq. (10) folded into the W_rec product.
///
/// ∂E/∂W_rec = Σ_k g_{k+1}ᵀ h_k and α·∂⁺Ω/∂W_rec = (α/N) Σ_k c_k g_{k+1}ᵀ (v_k ⊙ s_k) share their
/// left factor g_{k+1}, so overwriting h_k with Z_k = h_k + (α/N)·c_k·(v_k ⊙ s_k) makes the one
/// product Σ_k g_{k+1}ᵀ Z_k yield both: Ω costs no second pass over the weights and no extra
/// (T·B·H) storage. N is known only once every pair has been seen, hence this separate pass.
///
/// v_k = (g_{k+1}·W_rec) ⊙ s_k equals the stored g_k wherever step k is unscored. At scored
/// steps g_k also holds the read-out term, and v_k is either kept from the backward pass (see
/// [`keeps_v`]) or recomputed exactly as that pass computed it: recovering it by subtraction
/// would cancel catastrophically in f32 when v_k is much smaller than the read-out term. With
/// the cost at the last step only (the synthetic tasks) no step needs either.
#[inline(always)]
fn fold_omega_block<T: Float>(ctx: &Ctx<'_, T>, blk: &mut Block<'_, T>, beta: f64) {
    let p = ctx.p;
    let h = p.dims.n_hidden;
    let (s, n) = (ctx.slots, blk.n);
    let act = ctx.cfg.activation;
    let np = ctx.w_rec.np;
    let mut carry = vec![T::ZERO; FOLD_SLOTS * np];
    let mut vbuf = vec![T::ZERO; h];
    for r in 0..n {
        let on = |k: usize| k >= 1 && ctx.batch.mask_at(k - 1, blk.r0 + r) != T::ZERO;
        for k0 in (0..s - 1).step_by(FOLD_SLOTS) {
            let k1 = (k0 + FOLD_SLOTS).min(s - 1);
            // g_{k+1}·W_rec for the scored slots of this stretch, as one product over the
            // rows from the first to the last of them: those slots' rows of G are
            // contiguous, and one product over many rows runs at a multiple of the rate of
            // one per step (a batch of one scored at every step: 32 matrix-vector products
            // become one matrix product).
            let first = (k0..k1).find(|&k| on(k));
            let kept = !blk.vs.is_empty();
            if let (Some(lo), false) = (first, kept) {
                let hi = (lo..k1).rev().find(|&k| on(k)).unwrap_or(lo);
                let a_off = (r * s + lo + 1) * h;
                matmul_packed(blk.gs, a_off, h, hi + 1 - lo, ctx.w_rec, &mut carry, np);
            }
            for k in k0..k1 {
                let at = r * s + k;
                if !blk.omega_valid[at] {
                    continue;
                }
                let coef = T::from_f64(beta * blk.omega_c[at]);
                let hrow = &mut blk.hs[at * h..(at + 1) * h];
                let v: &[T] = if k == 0 {
                    &blk.v0[r * h..(r + 1) * h]
                } else if on(k) && kept {
                    &blk.vs[at * h..(at + 1) * h]
                } else if on(k) {
                    let c = (k - first.unwrap_or(k)) * np;
                    act.mul_derivative_slice(hrow, &carry[c..c + h], &mut vbuf);
                    &vbuf
                } else {
                    &blk.gs[at * h..(at + 1) * h]
                };
                act.add_scaled_derivative(hrow, v, coef);
            }
        }
    }
}

/// Whether the backward pass keeps v_k of the scored steps for the fold, in a (B, S, H) buffer
/// of its own: where most steps are scored and Ω's gradient is used, recomputing them was a
/// fourth pass over W_rec for every step (Table 2's model, H = 500, B = 32: SGD-CR 46% slower
/// than SGD-C), which the copy saves for half again the memory of the states.
fn keeps_v(dense_out: bool, alpha: f64) -> bool {
    dense_out && alpha != 0.0
}

/// Slots per product in the Ω fold: 32 rows of g_{k+1} make a product with full register
/// tiles, and their results (32 × H) stay in L2 next to W_rec.
const FOLD_SLOTS: usize = 32;

/// Steps 1 and 2 for one block, with W_rec packed by the block itself: transposed for the
/// forward pass, then as it is for the backward pass. A packing shared by all blocks, read by
/// two cores at once, made each block 10% slower (paired runs at H = 256 on two threads).
#[inline(always)]
fn forward_backward_block<T: Float>(
    ctx: &Ctx<'_, T>,
    blk: &mut Block<'_, T>,
    packs: &mut BlockPacks<T>,
) {
    let (h, i) = (ctx.p.dims.n_hidden, ctx.p.dims.n_in);
    packs.w_rec.pack_transposed(&ctx.p.w_rec, h, h);
    packs.w_in_t.pack_transposed(&ctx.p.w_in, h, i);
    forward_block(ctx, blk, packs);
    packs.w_rec.pack(&ctx.p.w_rec, h, h);
    backward_block(ctx, blk, &packs.w_rec);
}

/// One recurrence block's packed weights: W_rec (transposed for the forward pass, then as it
/// is for the backward pass, in one buffer) and W_inᵀ.
struct BlockPacks<T> {
    w_rec: PackedMatrix<T>,
    w_in_t: PackedMatrix<T>,
}

impl<T: Float> Default for BlockPacks<T> {
    fn default() -> Self {
        BlockPacks {
            w_rec: PackedMatrix::new(),
            w_in_t: PackedMatrix::new(),
        }
    }
}

// The per-block passes, compiled per instruction set (see `simd_dispatch`).
simd_dispatch!(
    block_pass,
    forward_backward_block,
    (ctx: &Ctx<'_, T>, blk: &mut Block<'_, T>, packs: &mut BlockPacks<T>)
);

/// Everything one call needs besides the parameters and the batch.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub model: ModelConfig,
    pub omega: OmegaConfig,
    /// Run all T steps even after the last scored one (needed when x_T is carried on).
    pub full_length: bool,
}

/// E, Ω and the gradient of E + α·Ω (Ω through its immediate partial only) into `grads`.
pub fn loss_and_grads<T: Float>(
    pool: &ThreadPool,
    params: &Params<T>,
    batch: &Batch<'_, T>,
    x0: InitialState<'_, T>,
    settings: &Settings,
    ws: &mut Workspace<T>,
    grads: &mut Params<T>,
) -> Result<LossOutput> {
    let _ftz = FlushDenormals::new();
    let dims = params.dims;
    let (h, i, o) = (dims.n_hidden, dims.n_in, dims.n_out);
    let x0 = if params.has_x0() {
        if !matches!(x0, InitialState::Zero) {
            return Err(EngineError::invalid(
                "the initial state is a learned parameter (x0 in params); do not also pass x0",
            ));
        }
        InitialState::Shared(&params.x0)
    } else {
        x0
    };
    if let InitialState::PerExample(x) = x0 {
        if x.len() != batch.batch * h {
            return Err(EngineError::invalid("x0 does not have one row per example"));
        }
    }
    if grads.dims != dims || grads.has_x0() != params.has_x0() {
        *grads = params.zeros_like();
    }
    let steps = if settings.full_length {
        batch.steps
    } else {
        batch.last_scored_step()
    };
    let s = steps + 1;
    let nb = batch.batch;
    ws.prepare(nb, s, h, i, o)?;
    for (b, scale) in ws.row_scale.iter_mut().enumerate() {
        let scored: f64 = (0..batch.steps).map(|t| batch.mask_at(t, b).to_f64()).sum();
        let per_seq = match settings.model.time_reduction {
            TimeReduction::Sum => 1.0,
            TimeReduction::Mean if scored > 0.0 => 1.0 / scored,
            TimeReduction::Mean => 0.0,
        };
        *scale = per_seq / nb as f64;
    }
    // The packings live outside the workspace while the blocks borrow it.
    let mut w_rec = std::mem::take(&mut ws.w_rec_packed);
    if settings.omega.alpha != 0.0 {
        // Only the Ω fold reads this packing (the recurrences pack their own).
        w_rec.pack(&params.w_rec, h, h);
    }
    // Step 3 needs the scored slots too (below).
    let scored: Vec<usize> = (1..s)
        .filter(|&t| block_scored(batch, 0, nb, t - 1))
        .collect();
    let dense_out = scored.len() * 4 >= s - 1;
    let kept_v = if keeps_v(dense_out, settings.omega.alpha) {
        product(&[nb, s, h])?
    } else {
        0
    };
    try_resize(&mut ws.vs, kept_v, T::ZERO)?;
    let (mut w_out_t, mut w_out) = (
        std::mem::take(&mut ws.w_out_t_packed),
        std::mem::take(&mut ws.w_out_packed),
    );
    if dense_out {
        w_out_t.pack_transposed(&params.w_out, o, h);
        w_out.pack(&params.w_out, o, h);
    }
    let ctx = Ctx {
        p: params,
        batch,
        x0,
        cfg: settings.model,
        form: settings.omega.form,
        slots: s,
        w_rec: &w_rec,
        dense_out,
        w_out_t: &w_out_t,
        w_out: &w_out,
    };
    let counts = block_counts(nb, recurrence_blocks(nb, h, pool.current_num_threads()));
    let mut packs = std::mem::take(&mut ws.block_packs);
    packs.resize_with(counts.len(), BlockPacks::default);
    let ran_on = {
        let blocks = make_blocks(ws, &counts, h, i, o);
        let jobs: Vec<_> = blocks.into_iter().zip(packs.iter_mut()).collect();
        run_shared_out(pool, jobs, |(blk, pack)| block_pass::run(&ctx, blk, pack))
    };
    ws.block_packs = packs;

    // Reductions over examples in a fixed order.
    let loss: f64 = ws
        .row_loss
        .iter()
        .zip(&ws.row_scale)
        .map(|(l, s)| l * s)
        .sum();
    let n_pairs = ws.omega_valid.iter().filter(|v| **v).count();
    let omega_sum: f64 = ws.row_omega.iter().sum();
    let omega = if n_pairs > 0 {
        omega_sum / n_pairs as f64
    } else {
        0.0
    };

    // Step 3: ∂W_out = Σ_t ∂E/∂y_tᵀ·h_t, before step 4 overwrites the states. ∂E/∂y_t is zero
    // at unscored steps (the synthetic tasks score one step in T), so when few steps are
    // scored the sum runs over the scored slots alone, slot by slot in order; otherwise each
    // group of examples takes its share below.
    if dense_out {
        column_sums(&ws.dy, o, &mut grads.b_out);
    } else {
        grads.w_out.fill(T::ZERO);
        for &t in &scored {
            let (dy, hs) = (&ws.dy[t * o..], &ws.hs[t * h..]);
            matmul_at_b(nb, dy, s * o, 0, hs, s * h, h, &mut ws.w_out_part);
            for (g, v) in grads.w_out.iter_mut().zip(&ws.w_out_part) {
                *g += *v;
            }
        }
        // ∂b_out = Σ ∂E/∂y_t over the scored slots alone, in the order of the dense sum: the
        // terms skipped are zeros.
        grads.b_out.fill(T::ZERO);
        for row in ws.dy.chunks_exact(s * o) {
            for &t in &scored {
                for (acc, v) in grads.b_out.iter_mut().zip(&row[t * o..(t + 1) * o]) {
                    *acc += *v;
                }
            }
        }
    }

    // Steps 3 (dense), 4 and 5, one group of examples at a time.
    let alpha = settings.omega.alpha;
    let beta = (alpha != 0.0 && n_pairs > 0).then(|| alpha / n_pairs as f64);
    let groups = block_counts(nb, gradient_groups(nb, s, h));
    let mut parts = std::mem::take(&mut ws.parts);
    parts.prepare(groups.len(), &dims, dense_out)?;
    {
        let blocks = make_blocks(ws, &groups, h, i, o);
        let jobs: Vec<_> = blocks.into_iter().zip(parts.split(grads, &dims)).collect();
        // A batch smaller than the pool (a batch of one) shares each product out instead.
        let split = (groups.len() < pool.current_num_threads()).then_some(pool);
        let owner: Vec<usize> = owners(&groups, &counts)
            .iter()
            .map(|&b| ran_on[b])
            .collect();
        run_on_owners(pool, jobs, &owner, |(blk, part)| {
            gradient_pass::run(&ctx, blk, part, beta, dense_out, split)
        });
    }
    parts.add_into(grads, &dims, dense_out);
    ws.parts = parts;
    if params.has_x0() {
        column_sums(&ws.v0, h, &mut grads.x0);
    }
    ws.w_rec_packed = w_rec;
    (ws.w_out_t_packed, ws.w_out_packed) = (w_out_t, w_out);
    Ok(LossOutput {
        loss,
        omega,
        omega_pairs: n_pairs,
    })
}

/// How many groups of examples the weight gradients are summed in: one per example up to 8
/// (enough for a laptop's cores), fewer when the groups' extra H × H sums would pass 1/32 of
/// the stored states (so that memory stays close to what BPTT must hold), but two wherever
/// the one extra sum is at most 1/8 of them: with one group, two threads had to share each
/// product's rows, reading states the other core had written (Table 2's model, H = 500,
/// B = 32: two threads gave 1.5× one). Depends on the shapes alone, never on the thread
/// count; a pool with more threads than groups shares each product's rows out instead.
fn gradient_groups(batch: usize, slots: usize, h: usize) -> usize {
    let h = h.max(1);
    let pair = if 4 * h <= batch * slots { 2 } else { 1 };
    (1 + batch * slots / (16 * h))
        .max(pair)
        .min(batch)
        .clamp(1, 8)
}

/// One group's share of the weight gradients; the first group's ∂W_rec and ∂W_out go straight
/// into the gradient.
struct GradPart<'a, T> {
    w_rec: &'a mut [T],
    /// `(I+1) × H`: ∂W_inᵀ with ∂b as its last row.
    w_in_b: &'a mut [T],
    w_out: &'a mut [T],
}

/// The groups' shares of the weight gradients, kept from one call to the next.
struct GradParts<T> {
    w_rec: Vec<T>,  // (G−1, H, H)
    w_in_b: Vec<T>, // (G, I+1, H)
    w_out: Vec<T>,  // (G−1, O, H), only when step 3 runs per group
}

impl<T> Default for GradParts<T> {
    fn default() -> Self {
        GradParts {
            w_rec: Vec::new(),
            w_in_b: Vec::new(),
            w_out: Vec::new(),
        }
    }
}

impl<T: Float> GradParts<T> {
    fn prepare(&mut self, groups: usize, dims: &Dims, dense_out: bool) -> Result<()> {
        let (h, i, o) = (dims.n_hidden, dims.n_in, dims.n_out);
        try_resize(&mut self.w_rec, product(&[groups - 1, h, h])?, T::ZERO)?;
        try_resize(&mut self.w_in_b, product(&[groups, i + 1, h])?, T::ZERO)?;
        let out = if dense_out {
            product(&[groups - 1, o, h])?
        } else {
            0
        };
        try_resize(&mut self.w_out, out, T::ZERO)
    }

    fn split<'a>(&'a mut self, grads: &'a mut Params<T>, dims: &Dims) -> Vec<GradPart<'a, T>> {
        let (h, i, o) = (dims.n_hidden, dims.n_in, dims.n_out);
        let rec = std::iter::once(&mut grads.w_rec[..]).chain(self.w_rec.chunks_exact_mut(h * h));
        let out = std::iter::once(&mut grads.w_out[..]).chain(self.w_out.chunks_exact_mut(o * h));
        // Without per-group ∂W_out there is no chunk to hand out past the first. One share per
        // group: w_in_b holds exactly one chunk per group.
        let out = out.chain(std::iter::repeat_with(|| &mut [][..]));
        rec.zip(self.w_in_b.chunks_exact_mut((i + 1) * h))
            .zip(out)
            .map(|((w_rec, w_in_b), w_out)| GradPart {
                w_rec,
                w_in_b,
                w_out,
            })
            .collect()
    }

    /// Adds the groups' shares into the gradient, in group order.
    fn add_into(&mut self, grads: &mut Params<T>, dims: &Dims, dense_out: bool) {
        let (h, i) = (dims.n_hidden, dims.n_in);
        add_rows(&mut grads.w_rec, &self.w_rec);
        if dense_out {
            add_rows(&mut grads.w_out, &self.w_out);
        }
        let (sum, rest) = self.w_in_b.split_at_mut((i + 1) * h);
        add_rows(sum, rest);
        // sum is ∂W_inᵀ (I × H) followed by ∂b.
        for (j, row) in grads.w_in.chunks_exact_mut(i).enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = sum[c * h + j];
            }
        }
        grads.b.copy_from_slice(&sum[i * h..]);
    }
}

/// `acc += Σ_j parts[j]` for the equal-sized chunks of `parts`, in order.
fn add_rows<T: Float>(acc: &mut [T], parts: &[T]) {
    for part in parts.chunks_exact(acc.len().max(1)) {
        for (a, v) in acc.iter_mut().zip(part) {
            *a += *v;
        }
    }
}

/// Steps 3 (when dense), 4 and 5 for one group of examples, into its share of the gradient.
/// With `split`, each product's output rows are shared among that pool's threads.
#[inline(always)]
fn gradient_group<T: Float>(
    ctx: &Ctx<'_, T>,
    blk: &mut Block<'_, T>,
    part: &mut GradPart<'_, T>,
    beta: Option<f64>,
    dense_out: bool,
    split: Option<&ThreadPool>,
) {
    let p = ctx.p;
    let (h, i, o) = (p.dims.n_hidden, p.dims.n_in, p.dims.n_out);
    let rows = blk.n * ctx.slots;
    let at_b = |k, a: &[T], lda, b: &[T], out: &mut [T]| match split {
        Some(pool) => par_matmul_at_b(pool, k, a, lda, b, h, h, out),
        None => matmul_at_b(k, a, lda, 0, b, h, h, out),
    };
    if dense_out {
        at_b(rows, blk.dy, o, blk.hs, part.w_out);
    }
    if let Some(beta) = beta {
        fold_omega_block(ctx, blk, beta);
    }
    // g_t pairs with h_{t−1}, one row earlier; slot 0 of G is zero, so the pairs that straddle
    // two examples add nothing.
    at_b(rows - 1, &blk.gs[h..], h, blk.hs, part.w_rec);
    at_b(rows, blk.us, i + 1, blk.gs, part.w_in_b);
}

simd_dispatch!(
    gradient_pass,
    gradient_group,
    (
        ctx: &Ctx<'_, T>,
        blk: &mut Block<'_, T>,
        part: &mut GradPart<'_, T>,
        beta: Option<f64>,
        dense_out: bool,
        split: Option<&ThreadPool>
    )
);

/// How many blocks of examples the recurrences run in: one per thread, or up to four per
/// thread where each keeps at least max(8, H/8) examples. The threads take blocks as they free
/// up, so a core that runs slower for a while (on a virtual machine the two cores were measured
/// running the same work in 12.7 and 20.4 ms at once) takes fewer blocks instead of holding up
/// the other. The floor keeps the step product efficient: each pass over W_rec (from L2 once
/// H·H no longer fits L1) must serve enough rows (measured at H = 512: 8 blocks of 16 rows ran
/// slower than 2 of 64; at H = 100, 8 blocks of 8 ran ~10% faster than 2).
fn recurrence_blocks(batch: usize, h: usize, threads: usize) -> usize {
    if threads <= 1 {
        1
    } else {
        (batch / (h / 8).max(8)).clamp(threads, 4 * threads)
    }
}

/// Runs `f` on every item, shared out among the pool's threads by work stealing; on the caller
/// when the pool has one thread or there is one item. Returns the index of the thread that
/// ran each item (0 when run on the caller).
fn run_shared_out<I: Send, F>(pool: &ThreadPool, mut items: Vec<I>, f: F) -> Vec<usize>
where
    F: Fn(&mut I) + Sync,
{
    if pool.current_num_threads() == 1 || items.len() == 1 {
        items.iter_mut().for_each(&f);
        return vec![0; items.len()];
    }
    let mut ran_on = vec![0; items.len()];
    pool.install(|| {
        items
            .par_iter_mut()
            .zip(ran_on.par_iter_mut())
            .with_max_len(1)
            .for_each(|(item, thread)| {
                *thread = rayon::current_thread_index().unwrap_or(0);
                f(item);
            })
    });
    ran_on
}

/// Runs `f` on every item, item j on pool thread `owner[j]`; on the caller when the pool has
/// one thread or there is one item.
///
/// The owners are the threads that ran the forward and backward recurrences of the items'
/// examples, so each sums their weight gradients from its own core's cache (left to work
/// stealing, the two halves of the batch changed threads half of the time, and reading the
/// other core's rows made the gradient pass up to twice as slow).
fn run_on_owners<I: Send, F>(pool: &ThreadPool, items: Vec<I>, owner: &[usize], f: F)
where
    F: Fn(&mut I) + Sync,
{
    if pool.current_num_threads() == 1 || items.len() == 1 {
        items.into_iter().for_each(|mut item| f(&mut item));
        return;
    }
    let slots: Vec<Mutex<Option<I>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    pool.broadcast(|ctx| {
        for (slot, _) in slots.iter().zip(owner).filter(|(_, &w)| w == ctx.index()) {
            // Each item is taken once, by its owner; a poisoned lock means f panicked, which
            // the broadcast re-raises on the caller.
            if let Some(mut item) = slot.lock().ok().and_then(|mut s| s.take()) {
                f(&mut item);
            }
        }
    });
}

/// For each range of examples (as counts), the index of the range of `blocks` that holds its
/// first example.
fn owners(ranges: &[usize], blocks: &[usize]) -> Vec<usize> {
    let block_starts = starts(blocks);
    starts(ranges)
        .into_iter()
        .map(|e| block_starts.partition_point(|&b| b <= e).saturating_sub(1))
        .collect()
}

/// The first example of each range, from the ranges' counts.
fn starts(counts: &[usize]) -> Vec<usize> {
    counts
        .iter()
        .scan(0, |acc, &n| {
            let start = *acc;
            *acc += n;
            Some(start)
        })
        .collect()
}

/// `out[j] = Σ_r m[r][j]` over the rows of a row-major matrix, in row order.
fn column_sums<T: Float>(m: &[T], width: usize, out: &mut [T]) {
    out.fill(T::ZERO);
    for row in m.chunks_exact(width) {
        for (acc, v) in out.iter_mut().zip(row) {
            *acc += *v;
        }
    }
}

/// The outputs y_t `(T, B, O)` of eq. (2)'s network for evaluation, and x_T `(B, H)`. Keeps
/// only two states per example, so it scores long sequences in large batches.
#[allow(clippy::too_many_arguments)]
pub fn forward<T: Float>(
    pool: &ThreadPool,
    params: &Params<T>,
    inputs: &[T],
    steps: usize,
    batch: usize,
    x0: InitialState<'_, T>,
    activation: Activation,
    outputs: &mut [T],
    final_state: &mut [T],
) -> Result<()> {
    let _ftz = FlushDenormals::new();
    let (h, i, o) = (params.dims.n_hidden, params.dims.n_in, params.dims.n_out);
    if inputs.len() != steps * batch * i
        || outputs.len() != steps * batch * o
        || final_state.len() != batch * h
    {
        return Err(EngineError::invalid(
            "forward: buffer sizes do not match (T, B)",
        ));
    }
    let x0 = if params.has_x0() {
        InitialState::Shared(&params.x0)
    } else {
        x0
    };
    let counts = block_counts(batch, pool.current_num_threads());
    let starts = starts(&counts);
    let mut finals: Vec<&mut [T]> = Vec::new();
    let mut rest = &mut final_state[..];
    for &c in &counts {
        finals.push(take_rows(&mut rest, c, h));
    }
    let mut w_rec_t = PackedMatrix::new();
    let mut w_in_t = PackedMatrix::new();
    let mut w_out_t = PackedMatrix::new();
    w_rec_t.pack_transposed(&params.w_rec, h, h);
    w_in_t.pack_transposed(&params.w_in, h, i);
    w_out_t.pack_transposed(&params.w_out, o, h);
    let (hp, op) = (w_rec_t.np, w_out_t.np);
    let run = |(r0, fin): (usize, &mut [T])| -> Vec<T> {
        let n = fin.len() / h;
        let mut prev = vec![T::ZERO; n * hp];
        let mut cur = vec![T::ZERO; n * hp];
        let mut rec = vec![T::ZERO; n * hp];
        let mut y = vec![T::ZERO; n * op];
        let mut out = vec![T::ZERO; steps * n * o];
        for r in 0..n {
            let row = &mut prev[r * hp..r * hp + h];
            match x0.row(r0 + r, h) {
                Some(x) => row.copy_from_slice(x),
                None => row.fill(T::ZERO),
            }
            fin[r * h..(r + 1) * h].copy_from_slice(row);
            activation.apply_slice(row);
        }
        for t in 0..steps {
            matmul_packed(inputs, (t * batch + r0) * i, i, n, &w_in_t, &mut cur, hp);
            matmul_packed(&prev, 0, hp, n, &w_rec_t, &mut rec, hp);
            for r in 0..n {
                let row = &mut cur[r * hp..r * hp + h];
                for ((x, rc), bj) in row.iter_mut().zip(&rec[r * hp..r * hp + h]).zip(&params.b) {
                    *x += *rc + *bj;
                }
                fin[r * h..(r + 1) * h].copy_from_slice(row);
                activation.apply_slice(row);
            }
            matmul_packed(&cur, 0, hp, n, &w_out_t, &mut y, op);
            let yt = &mut out[t * n * o..(t + 1) * n * o];
            for (r, row) in yt.chunks_exact_mut(o).enumerate() {
                for ((v, yv), bo) in row
                    .iter_mut()
                    .zip(&y[r * op..r * op + o])
                    .zip(&params.b_out)
                {
                    *v = *yv + *bo;
                }
            }
            std::mem::swap(&mut prev, &mut cur);
        }
        out
    };
    let parts: Vec<Vec<T>> = if counts.len() == 1 {
        starts.into_iter().zip(finals).map(run).collect()
    } else {
        pool.install(|| starts.into_par_iter().zip(finals).map(run).collect())
    };
    let mut r0 = 0;
    for (part, &n) in parts.iter().zip(&counts) {
        for t in 0..steps {
            let dst = (t * batch + r0) * o;
            outputs[dst..dst + n * o].copy_from_slice(&part[t * n * o..(t + 1) * n * o]);
        }
        r0 += n;
    }
    Ok(())
}
