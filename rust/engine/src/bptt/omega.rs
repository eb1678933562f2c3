//! The Ω regulariser of eq. (9): each pair's term and eq. (10)'s coefficient, and step 4,
//! Ω's immediate gradient folded into the states.

use super::settings::{OmegaForm, OMEGA_MIN_SIGNAL};
use super::workspace::Block;
use super::Ctx;
use crate::float::Float;
use crate::kernels::matmul_packed;
use crate::linalg::{View, ViewMut};

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
pub(super) fn record_pair(
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
pub(super) fn sq_norm<T: Float>(v: &[T]) -> f64 {
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
pub(super) fn fold_omega_block<T: Float>(ctx: &Ctx<'_, T>, blk: &mut Block<'_, T>, beta: f64) {
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
                let (a_off, rows) = ((r * s + lo + 1) * h, hi + 1 - lo);
                matmul_packed(
                    View::strided(blk.gs, a_off, rows, h, h, 1),
                    ctx.w_rec,
                    ViewMut::strided(&mut carry, 0, rows, h, np, 1),
                );
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
pub(super) fn keeps_v(dense_out: bool, alpha: f64) -> bool {
    dense_out && alpha != 0.0
}

/// Slots per product in the Ω fold: 32 rows of g_{k+1} make a product with full register
/// tiles, and their results (32 × H) stay in L2 next to W_rec.
const FOLD_SLOTS: usize = 32;
