//! Step 1 of BPTT for one row block: the forward pass of eq. (2) and the read-out's error
//! signal ∂E/∂y_t at the scored steps.

use super::workspace::Block;
use super::{block_scored, BlockPacks, Ctx};
use crate::float::Float;
use crate::kernels::matmul_packed;
use crate::linalg::{gemm, View, ViewMut};
use crate::loss::loss_and_grad;

/// Step 1: the forward pass of eq. (2) over the block's examples, and ∂E/∂y at scored steps.
#[inline(always)]
pub(super) fn forward_block<T: Float>(
    ctx: &Ctx<'_, T>,
    blk: &mut Block<'_, T>,
    packs: &BlockPacks<T>,
) {
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
    matmul_packed(
        View::strided(blk.us, 0, n * s, i, iw, 1),
        &packs.w_in_t,
        ViewMut::new(blk.hs, n * s, h),
    );
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
        matmul_packed(
            View::strided(blk.hs, (t - 1) * h, n, h, s * h, 1),
            w_rec_t,
            ViewMut::strided(&mut rec, 0, n, h, np, 1),
        );
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
    matmul_packed(
        View::new(blk.hs, n * s, h),
        ctx.w_out_t,
        ViewMut::new(blk.dy, n * s, o),
    );
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
