//! The buffers BPTT keeps from one call to the next, and their division into row blocks of
//! contiguous examples.

use super::gradients::GradParts;
use super::BlockPacks;
use crate::error::{EngineError, Result};
use crate::float::Float;
use crate::kernels::PackedMatrix;

/// Buffers kept from one call to the next so a training step allocates nothing large.
pub struct Workspace<T> {
    /// (B, S, H) h_t = σ(x_t); during step 4, Z_t of eq. (10)'s fold
    pub(super) hs: Vec<T>,
    /// (B, S, H) g_t = ∂E/∂x_t, slot 0 zero
    pub(super) gs: Vec<T>,
    /// (B, S, H) v_t = g_{t+1}J_t where Ω's fold needs it kept
    pub(super) vs: Vec<T>,
    /// (B, S, O) ∂E/∂y_t, zero where unscored
    pub(super) dy: Vec<T>,
    /// (B, S, I+1) the inputs, batch-major, then a 1; slot 0 zero
    pub(super) us: Vec<T>,
    /// (B, H) ∂E/∂x_0
    pub(super) v0: Vec<T>,
    /// (B, H) x_T, the state to carry into the next segment
    pub(super) x_final: Vec<T>,
    /// (B,) Σ_t m·ℓ per example
    pub(super) row_loss: Vec<f64>,
    /// (B,) the example's weight in E
    pub(super) row_scale: Vec<f64>,
    /// (B, S) eq. (10)'s coefficient of pair k (slot k)
    pub(super) omega_c: Vec<f64>,
    /// (B,) Σ_k Ω_k over the example's pairs
    pub(super) row_omega: Vec<f64>,
    /// (B, S) pair k carries error signal
    pub(super) omega_valid: Vec<bool>,
    /// (O, H) one scored slot's share of ∂W_out
    pub(super) w_out_part: Vec<T>,
    /// Each group's share of the weight gradients
    pub(super) parts: GradParts<T>,
    /// Each recurrence block's own packings
    pub(super) block_packs: Vec<BlockPacks<T>>,
    pub(super) w_rec_packed: PackedMatrix<T>,
    pub(super) w_out_t_packed: PackedMatrix<T>,
    pub(super) w_out_packed: PackedMatrix<T>,
    pub(super) batch: usize,
    pub(super) slots: usize,
}

/// The product of buffer dimensions, or [`EngineError::OutOfMemory`] when it overflows.
pub(super) fn product(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .ok_or(EngineError::OutOfMemory {
            what: "the BPTT work buffers",
            bytes: dims.iter().map(|d| *d as u128).product(),
        })
}

/// `v.resize(n, fill)` that reports a failed allocation instead of aborting.
pub(super) fn try_resize<V: Clone>(v: &mut Vec<V>, n: usize, fill: V) -> Result<()> {
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
    pub(super) fn prepare(
        &mut self,
        batch: usize,
        slots: usize,
        h: usize,
        i: usize,
        o: usize,
    ) -> Result<()> {
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

/// One contiguous range of examples and its slices of every per-example buffer.
pub(super) struct Block<'a, T> {
    pub(super) r0: usize,
    pub(super) n: usize,
    pub(super) hs: &'a mut [T],
    pub(super) gs: &'a mut [T],
    /// Empty unless the fold reads v_t from it (see [`keeps_v`](super::omega::keeps_v)).
    pub(super) vs: &'a mut [T],
    pub(super) dy: &'a mut [T],
    pub(super) us: &'a mut [T],
    pub(super) v0: &'a mut [T],
    pub(super) x_final: &'a mut [T],
    pub(super) row_loss: &'a mut [f64],
    pub(super) row_scale: &'a [f64],
    pub(super) omega_c: &'a mut [f64],
    pub(super) row_omega: &'a mut [f64],
    pub(super) omega_valid: &'a mut [bool],
}

pub(super) fn take_rows<'a, U>(rest: &mut &'a mut [U], rows: usize, width: usize) -> &'a mut [U] {
    let (head, tail) = std::mem::take(rest).split_at_mut(rows * width);
    *rest = tail;
    head
}

pub(super) fn make_blocks<'a, T: Float>(
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
