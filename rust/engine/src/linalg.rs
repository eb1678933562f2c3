//! Safe strided matrix views over slices and the matrix products the engine is built from.

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::at_b::matmul_at_b;
use crate::float::Float;

/// A read-only matrix inside a slice: entry (i, j) is `data[offset + i*rs + j*cs]`.
#[derive(Clone, Copy)]
pub struct View<'a, T> {
    data: &'a [T],
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> View<'a, T> {
    /// A dense row-major `rows × cols` matrix at the start of `data`.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, 0, rows, cols, cols, 1)
    }

    pub fn strided(
        data: &'a [T],
        offset: usize,
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Self {
        let v = View {
            data,
            offset,
            rows,
            cols,
            rs,
            cs,
        };
        assert!(
            fits(data.len(), offset, rows, cols, rs, cs),
            "matrix view out of bounds"
        );
        v
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// A mutable matrix inside a slice, laid out like [`View`].
pub struct ViewMut<'a, T> {
    data: &'a mut [T],
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> ViewMut<'a, T> {
    pub fn new(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, 0, rows, cols, cols, 1)
    }

    pub fn strided(
        data: &'a mut [T],
        offset: usize,
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Self {
        assert!(
            fits(data.len(), offset, rows, cols, rs, cs),
            "matrix view out of bounds"
        );
        ViewMut {
            data,
            offset,
            rows,
            cols,
            rs,
            cs,
        }
    }
}

fn fits(len: usize, offset: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || offset + (rows - 1) * rs + (cols - 1) * cs < len
}

/// `C ← alpha·A·B + beta·C`. With `beta = 0` the old contents of C are never read, so C may
/// hold garbage (even NaN) on entry.
pub fn gemm<T: Float>(alpha: T, a: View<'_, T>, b: View<'_, T>, beta: T, c: ViewMut<'_, T>) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    assert_eq!(a.rows, c.rows, "output rows differ");
    assert_eq!(b.cols, c.cols, "output columns differ");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                let x = &mut c.data[c.offset + i * c.rs + j * c.cs];
                *x = if beta == T::ZERO { T::ZERO } else { beta * *x };
            }
        }
        return;
    }
    // SAFETY: the three views were bounds-checked on construction; C is borrowed mutably, so
    // it cannot overlap A or B.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr().add(a.offset),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr().add(b.offset),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr().add(c.offset),
            c.rs as isize,
            c.cs as isize,
        );
    }
}

/// Multiply-adds below which [`par_matmul_at_b`] runs a product on the calling thread.
const SPLIT_MIN_MACS: usize = 1 << 26;

/// `out (m × n) = Aᵀ·B` ([`matmul_at_b`], A `k × m` and B `k × n` row-major with leading
/// dimensions `lda`, `ldb`) with the rows of `out` shared out among the pool's threads: for the
/// weight gradients of a batch too small to give every thread a group of examples (a batch of
/// one). Each entry stays one FMA chain over all k rows, so the split never changes a bit.
#[allow(clippy::too_many_arguments)]
pub fn par_matmul_at_b<T: Float>(
    pool: &ThreadPool,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    n: usize,
    out: &mut [T],
) {
    let m = out.len() / n.max(1);
    let threads = pool.current_num_threads().max(1);
    // Small products are not worth a fork: waking the pool and moving A and B to the other
    // core's cache cost more than half the product saves below SPLIT_MIN_MACS (a batch of
    // one at H = 300, T = 200: ∂W_rec is 18M multiply-adds, and splitting the three weight
    // products made the update 19% slower on two threads than on one). Each piece streams all
    // of B, so there should be one
    // piece per thread, in whole row blocks of the kernel (8 rows on AVX-512, 6 on AVX2); where
    // rounding to those would unbalance the threads by more than a quarter (50 rows on two
    // threads: 32 + 18), pieces of one block shared out by work stealing run as 26 + 24.
    let block = crate::at_b::row_block();
    let chunk_rows = if threads == 1 || k * m * n < SPLIT_MIN_MACS {
        m
    } else {
        let even = m.div_ceil(threads).div_ceil(block) * block;
        if 4 * even > 5 * m.div_ceil(threads) {
            block
        } else {
            even
        }
    };
    let work = |(ci, oc): (usize, &mut [T])| {
        matmul_at_b(k, a, lda, ci * chunk_rows, b, ldb, n, oc);
    };
    if chunk_rows >= m {
        work((0, out));
    } else {
        pool.install(|| {
            out.par_chunks_mut(chunk_rows * n)
                .enumerate()
                .for_each(work)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    c[i * n + j] += a[i * k + l] * b[l * n + j];
                }
            }
        }
        c
    }

    #[test]
    fn gemm_matches_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut c = vec![f64::NAN; m * n];
        gemm(
            1.0,
            View::new(&a, m, k),
            View::new(&b, k, n),
            0.0,
            ViewMut::new(&mut c, m, n),
        );
        for (x, y) in c.iter().zip(naive(&a, &b, m, k, n)) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn transposed_views_and_accumulation() {
        let (m, k, n) = (4, 3, 2);
        let a_t: Vec<f64> = (0..k * m).map(|i| i as f64 - 3.0).collect(); // A stored as k × m
        let b: Vec<f64> = (0..k * n).map(|i| 0.5 * i as f64).collect();
        let mut a = vec![0.0; m * k];
        for i in 0..m {
            for l in 0..k {
                a[i * k + l] = a_t[l * m + i];
            }
        }
        let mut c = vec![1.0; m * n];
        gemm(
            2.0,
            View::new(&a_t, k, m).t(),
            View::new(&b, k, n),
            1.0,
            ViewMut::new(&mut c, m, n),
        );
        let want = naive(&a, &b, m, k, n);
        for (x, y) in c.iter().zip(want) {
            assert!((x - (2.0 * y + 1.0)).abs() < 1e-12);
        }
    }

    #[test]
    fn row_split_at_b_is_identical_across_thread_counts() {
        // Large enough to be split (k·m·n ≥ SPLIT_MIN_MACS).
        let (k, m, n) = (2100, 70, 460);
        assert!(k * m * n >= SPLIT_MIN_MACS);
        let a: Vec<f32> = (0..k * m)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104729) % 1000) as f32 / 991.0 - 0.5)
            .collect();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![0.0f32; m * n];
            par_matmul_at_b(&pool, k, &a, m, &b, n, n, &mut out);
            out
        };
        let mut whole = vec![0.0f32; m * n];
        matmul_at_b(k, &a, m, 0, &b, n, n, &mut whole);
        for t in [1, 2, 3, 4] {
            assert_eq!(whole, run(t), "{t} threads changed the bits");
        }
    }
}
