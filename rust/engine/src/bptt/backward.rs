//! Step 2 of BPTT for one row block: the error signal g_t = ∂E/∂x_t of eq. (5) from t = T
//! down to x_0, with the two norms of every Ω pair.

use super::omega::{record_pair, sq_norm};
use super::workspace::Block;
use super::{block_scored, Ctx};
use crate::float::Float;
use crate::kernels::{matmul_packed, PackedMatrix};
use crate::linalg::{gemm, View, ViewMut};

/// Step 2: g_t = (g_{t+1}·W_rec) ⊙ σ'(x_t) + (∂E/∂y_t·W_out) ⊙ σ'(x_t), t = T..1 (eq. 5), the
/// signal reaching x_0, and the norms of every Ω pair.
#[inline(always)]
pub(super) fn backward_block<T: Float>(
    ctx: &Ctx<'_, T>,
    blk: &mut Block<'_, T>,
    w_rec: &PackedMatrix<T>,
) {
    let p = ctx.p;
    let (h, o) = (p.dims.n_hidden, p.dims.n_out);
    let (s, n) = (ctx.slots, blk.n);
    let act = ctx.cfg.activation;
    let np = w_rec.np;
    if ctx.dense_out {
        // ∂E/∂y_t·W_out for every slot at once, parked in G: slot t is read just before the
        // loop below overwrites it with g_t.
        matmul_packed(
            View::new(blk.dy, n * s, o),
            ctx.w_out,
            ViewMut::new(blk.gs, n * s, h),
        );
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
            matmul_packed(
                View::strided(blk.gs, (t + 1) * h, n, h, s * h, 1),
                w_rec,
                ViewMut::strided(&mut carry, 0, n, h, np, 1),
            );
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
