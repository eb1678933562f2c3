//! Inference: the outputs of eq. (2)'s network for evaluation, without the states BPTT keeps.

use rayon::prelude::*;
use rayon::ThreadPool;

use super::schedule::{block_counts, starts};
use super::workspace::take_rows;
use crate::activation::Activation;
use crate::error::{EngineError, Result};
use crate::float::Float;
use crate::fpmode::FlushDenormals;
use crate::kernels::{matmul_packed, PackedMatrix};
use crate::linalg::{View, ViewMut};
use crate::model::{InitialState, Params};

/// The outputs y_t `(T, B, O)` of eq. (2)'s network for evaluation, and x_T `(B, H)`. Keeps
/// only two states per example, so it scores long sequences in large batches.
// The binding's entry point: one argument per array or setting of the Python `forward` call.
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
            let u_t = View::strided(inputs, (t * batch + r0) * i, n, i, i, 1);
            matmul_packed(u_t, &w_in_t, ViewMut::strided(&mut cur, 0, n, h, hp, 1));
            let prev_v = View::strided(&prev, 0, n, h, hp, 1);
            matmul_packed(prev_v, &w_rec_t, ViewMut::strided(&mut rec, 0, n, h, hp, 1));
            for r in 0..n {
                let row = &mut cur[r * hp..r * hp + h];
                for ((x, rc), bj) in row.iter_mut().zip(&rec[r * hp..r * hp + h]).zip(&params.b) {
                    *x += *rc + *bj;
                }
                fin[r * h..(r + 1) * h].copy_from_slice(row);
                activation.apply_slice(row);
            }
            let cur_v = View::strided(&cur, 0, n, h, hp, 1);
            matmul_packed(cur_v, &w_out_t, ViewMut::strided(&mut y, 0, n, o, op, 1));
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
