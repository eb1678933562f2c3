//! Steps 3 to 5 of BPTT: the weight gradients, summed per group of examples fixed by the
//! shapes alone and the groups' shares added in order.

use rayon::ThreadPool;

use super::omega::fold_omega_block;
use super::workspace::{product, try_resize, Block};
use super::Ctx;
use crate::at_b::matmul_at_b;
use crate::error::Result;
use crate::float::Float;
use crate::linalg::{par_matmul_at_b, View, ViewMut};
use crate::model::{Dims, Params};

/// How many groups of examples the weight gradients are summed in: one per example up to 8
/// (enough for a laptop's cores), fewer when the groups' extra H × H sums would pass 1/32 of
/// the stored states (so that memory stays close to what BPTT must hold), but two wherever
/// the one extra sum is at most 1/8 of them: with one group, two threads had to share each
/// product's rows, reading states the other core had written (Table 2's model, H = 500,
/// B = 32: two threads gave 1.5× one). Depends on the shapes alone, never on the thread
/// count; a pool with more threads than groups shares each product's rows out instead.
pub(super) fn gradient_groups(batch: usize, slots: usize, h: usize) -> usize {
    let h = h.max(1);
    let pair = if 4 * h <= batch * slots { 2 } else { 1 };
    (1 + batch * slots / (16 * h))
        .max(pair)
        .min(batch)
        .clamp(1, 8)
}

/// One group's share of the weight gradients; the first group's ∂W_rec and ∂W_out go straight
/// into the gradient.
pub(super) struct GradPart<'a, T> {
    w_rec: &'a mut [T],
    /// `(I+1) × H`: ∂W_inᵀ with ∂b as its last row.
    w_in_b: &'a mut [T],
    w_out: &'a mut [T],
}

/// The groups' shares of the weight gradients, kept from one call to the next.
pub(super) struct GradParts<T> {
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
    pub(super) fn prepare(&mut self, groups: usize, dims: &Dims, dense_out: bool) -> Result<()> {
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

    pub(super) fn split<'a>(
        &'a mut self,
        grads: &'a mut Params<T>,
        dims: &Dims,
    ) -> Vec<GradPart<'a, T>> {
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
    pub(super) fn add_into(&mut self, grads: &mut Params<T>, dims: &Dims, dense_out: bool) {
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
pub(super) fn gradient_group<T: Float>(
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
    // out (m × H) = Aᵀ·B for the first k rows of A (m wide, rows lda apart) and of B (H wide).
    let at_b = |k, a: &[T], lda, b: &[T], out: &mut [T]| {
        let m = out.len() / h;
        let (a, b) = (View::strided(a, 0, k, m, lda, 1), View::new(b, k, h));
        let out = ViewMut::new(out, m, h);
        match split {
            Some(pool) => par_matmul_at_b(pool, a, b, out),
            None => matmul_at_b(a, b, out),
        }
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

/// `out[j] = Σ_r m[r][j]` over the rows of a row-major matrix, in row order.
pub(super) fn column_sums<T: Float>(m: &[T], width: usize, out: &mut [T]) {
    out.fill(T::ZERO);
    for row in m.chunks_exact(width) {
        for (acc, v) in out.iter_mut().zip(row) {
            *acc += *v;
        }
    }
}
