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
//! 4. Ω's immediate gradient folded into the states (see
//!    [`fold_omega_block`](omega::fold_omega_block));
//! 5. `∂W_rec = Σ_t g_tᵀ·h_{t−1}`, and `∂W_in = Σ_t g_tᵀ·u_t` with `∂b = Σ_t g_t` as one product
//!    (the inputs carry a column of ones).
//!
//! Steps 3 (when most steps are scored), 4 and 5 run per group of examples in one parallel
//! pass ([`gradient_group`]), so a thread reads the rows its own block has just written.
//!
//! # Files
//! - `settings.rs`: the public settings and results ([`Settings`], [`LossOutput`], …);
//! - `workspace.rs`: the [`Workspace`] and its division into row blocks;
//! - `forward.rs`: step 1, the per-block forward pass and read-out;
//! - `backward.rs`: step 2, the per-block backward pass;
//! - `omega.rs`: Ω's terms and coefficients, and step 4, its fold into the states;
//! - `gradients.rs`: steps 3 to 5, the weight gradients per group of examples;
//! - `schedule.rs`: the split of the batch and its placement on the pool's threads;
//! - `infer.rs`: [`forward`], the outputs alone for evaluation;
//! - here: [`loss_and_grads`], which runs the steps in order.

mod backward;
mod forward;
mod gradients;
mod infer;
mod omega;
mod schedule;
mod settings;
mod workspace;

use rayon::ThreadPool;

use crate::at_b::matmul_at_b;
use crate::error::{EngineError, Result};
use crate::float::Float;
use crate::fpmode::FlushDenormals;
use crate::kernels::{simd_dispatch, PackedMatrix};
use crate::linalg::{View, ViewMut};
use crate::loss::TimeReduction;
use crate::model::{Batch, InitialState, Params};

use backward::backward_block;
use forward::forward_block;
use gradients::{column_sums, gradient_group, gradient_groups, GradPart};
use omega::keeps_v;
use schedule::{block_counts, owners, recurrence_blocks, run_on_owners, run_shared_out};
use workspace::{make_blocks, product, try_resize, Block};

pub use infer::forward;
pub use settings::{LossOutput, ModelConfig, OmegaConfig, OmegaForm, Settings, OMEGA_MIN_SIGNAL};
pub use workspace::Workspace;

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

/// Does any example of the block have its mask on at 0-based step `t`?
#[inline(always)]
fn block_scored<T: Float>(batch: &Batch<'_, T>, r0: usize, n: usize, t: usize) -> bool {
    (r0..r0 + n).any(|b| batch.mask_at(t, b) != T::ZERO)
}

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
            let dy = View::strided(&ws.dy, t * o, nb, o, s * o, 1);
            let hs = View::strided(&ws.hs, t * h, nb, h, s * h, 1);
            matmul_at_b(dy, hs, ViewMut::new(&mut ws.w_out_part, o, h));
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
