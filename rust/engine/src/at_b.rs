//! The weight-gradient product `out (m × n) = Aᵀ·B` for A `k × m` and B `k × n`: a sum of outer
//! products `a_rᵀ ⊗ b_r` over all (example, step) rows r, the shape of ∂W_rec, ∂W_in and ∂W_out.
//!
//! On AVX-512 an `R × V·L` tile of the output (L lanes per vector) stays in registers while r
//! runs over all k rows: each row broadcasts R contiguous entries of `a_r` and FMAs them with V
//! vectors of `b_r`, so neither operand is transposed or packed; the last vector of a row is a
//! masked load, so widths that are not a multiple of L need no padding. Written with
//! intrinsics: left to itself, LLVM vectorises this loop nest along the wrong axis (across the
//! R broadcasts, with the accumulators gathered and scattered through memory), which made an
//! auto-vectorised version 6× slower than the generic GEMM it replaces.
//!
//! Every entry is one FMA chain over r = 0..k in order, so the result does not depend on how
//! the rows of `out` are split across threads. Other instruction sets use the generic GEMM.

use crate::float::Float;
use crate::linalg::{gemm, View, ViewMut};

/// Rows `i0..i0 + out.len()/n` of `Aᵀ·B`, with A and B row-major with row strides `lda`, `ldb`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_at_b<T: Float>(
    k: usize,
    a: &[T],
    lda: usize,
    i0: usize,
    b: &[T],
    ldb: usize,
    n: usize,
    out: &mut [T],
) {
    if n == 0 || out.is_empty() {
        return;
    }
    let m = out.len() / n;
    assert_eq!(out.len(), m * n, "output is not whole rows");
    if k == 0 {
        out.fill(T::ZERO);
        return;
    }
    assert!(
        (k - 1) * lda + i0 + m <= a.len() && (k - 1) * ldb + n <= b.len(),
        "A or B out of bounds"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::has_avx512() {
        // SAFETY: the CPU has AVX-512F; the bounds of every row of A and B read were checked
        // above, and the kernels read and write nothing else.
        unsafe { avx512::run(k, a, lda, i0, b, ldb, n, out) };
        return;
    }
    let at = View::strided(a, i0, m, k, 1, lda);
    let bv = View::strided(b, 0, k, n, ldb, 1);
    gemm(T::ONE, at, bv, T::ZERO, ViewMut::new(out, m, n));
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::any::TypeId;
    use std::arch::x86_64::*;

    use crate::float::Float;

    /// Rows of A and B per chunk: 64 rows of two 50-wide f32 operands are 25 KiB, inside L1.
    const KC: usize = 64;

    /// Stamps out the tile kernel and its driver for one element type.
    macro_rules! kernel {
        ($t:ty, $vec:ty, $mask:ty, $lanes:expr,
         $zero:ident, $set1:ident, $loadu:ident, $maskz_loadu:ident, $fmadd:ident,
         $mask_storeu:ident) => {
            /// One `R × V·L` tile at (row `ia` of Aᵀ, column `jb` of B); `mask` selects the
            /// columns of the tile's last vector that exist.
            #[inline]
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn tile<const R: usize, const V: usize>(
                k: usize,
                a: *const $t,
                lda: usize,
                b: *const $t,
                ldb: usize,
                mask: $mask,
                out: *mut $t,
                ldo: usize,
                first: bool,
            ) {
                // A later chunk of rows continues the sums the previous chunk stored: the
                // round trip through memory is exact, so the FMA chain is unchanged.
                let mut acc = [[$zero(); V]; R];
                if !first {
                    for (ii, accr) in acc.iter_mut().enumerate() {
                        for (v, slot) in accr.iter_mut().enumerate() {
                            let m = if v + 1 == V { mask } else { <$mask>::MAX };
                            *slot = $maskz_loadu(m, out.add(ii * ldo + v * $lanes));
                        }
                    }
                }
                let (mut ap, mut bp) = (a, b);
                for _ in 0..k {
                    let mut bv = [$zero(); V];
                    for (v, slot) in bv.iter_mut().enumerate() {
                        *slot = if v + 1 == V {
                            $maskz_loadu(mask, bp.add(v * $lanes))
                        } else {
                            $loadu(bp.add(v * $lanes))
                        };
                    }
                    for (ii, accr) in acc.iter_mut().enumerate() {
                        let av = $set1(*ap.add(ii));
                        for (slot, bvv) in accr.iter_mut().zip(&bv) {
                            *slot = $fmadd(av, *bvv, *slot);
                        }
                    }
                    ap = ap.add(lda);
                    bp = bp.add(ldb);
                }
                for (ii, accr) in acc.iter().enumerate() {
                    for (v, slot) in accr.iter().enumerate() {
                        let m = if v + 1 == V { mask } else { <$mask>::MAX };
                        $mask_storeu(out.add(ii * ldo + v * $lanes), m, *slot);
                    }
                }
            }

            /// Output rows `row..` in blocks of `R`, all columns; returns the first row left.
            #[inline]
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn rows<const R: usize>(
                k: usize,
                a: *const $t,
                lda: usize,
                b: *const $t,
                ldb: usize,
                n: usize,
                out: *mut $t,
                m: usize,
                mut row: usize,
                first: bool,
            ) -> usize {
                while row + R <= m {
                    let (ar, or) = (a.add(row), out.add(row * n));
                    let mut jb = 0;
                    // Two-vector tiles while more than one vector's worth is left, the last
                    // masked; then at most one single-vector tile.
                    while n - jb > $lanes {
                        let width = (n - jb).min(2 * $lanes);
                        let mask = (<$mask>::MAX) >> (2 * $lanes - width);
                        tile::<R, 2>(k, ar, lda, b.add(jb), ldb, mask, or.add(jb), n, first);
                        jb += width;
                    }
                    if jb < n {
                        let mask = (<$mask>::MAX) >> ($lanes - (n - jb));
                        tile::<R, 1>(k, ar, lda, b.add(jb), ldb, mask, or.add(jb), n, first);
                    }
                    row += R;
                }
                row
            }

            /// All rows of `out`: blocks of 8 (16 accumulators), then one of the rest, over chunks of
            /// [`KC`] rows of A and B so that each chunk is read from L1 by every tile.
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn all(
                k: usize,
                a: *const $t,
                lda: usize,
                b: *const $t,
                ldb: usize,
                n: usize,
                out: *mut $t,
                m: usize,
            ) {
                let mut r0 = 0;
                while r0 < k {
                    let kn = KC.min(k - r0);
                    let (a, b, first) = (a.add(r0 * lda), b.add(r0 * ldb), r0 == 0);
                    let row = rows::<8>(kn, a, lda, b, ldb, n, out, m, 0, first);
                    // The rows left (fewer than 8) as one block: split into blocks of 4, 2
                    // and 1 they would have too few independent FMA chains to keep both FMA
                    // units busy ([U 1]ᵀG for ∂W_in and ∂b has I + 1 = 7 rows).
                    match m - row {
                        1 => rows::<1>(kn, a, lda, b, ldb, n, out, m, row, first),
                        2 => rows::<2>(kn, a, lda, b, ldb, n, out, m, row, first),
                        3 => rows::<3>(kn, a, lda, b, ldb, n, out, m, row, first),
                        4 => rows::<4>(kn, a, lda, b, ldb, n, out, m, row, first),
                        5 => rows::<5>(kn, a, lda, b, ldb, n, out, m, row, first),
                        6 => rows::<6>(kn, a, lda, b, ldb, n, out, m, row, first),
                        7 => rows::<7>(kn, a, lda, b, ldb, n, out, m, row, first),
                        _ => row,
                    };
                    r0 += kn;
                }
            }
        };
    }

    mod f32k {
        use super::*;
        kernel!(
            f32,
            __m512,
            u16,
            16,
            _mm512_setzero_ps,
            _mm512_set1_ps,
            _mm512_loadu_ps,
            _mm512_maskz_loadu_ps,
            _mm512_fmadd_ps,
            _mm512_mask_storeu_ps
        );
    }

    mod f64k {
        use super::*;
        kernel!(
            f64,
            __m512d,
            u8,
            8,
            _mm512_setzero_pd,
            _mm512_set1_pd,
            _mm512_loadu_pd,
            _mm512_maskz_loadu_pd,
            _mm512_fmadd_pd,
            _mm512_mask_storeu_pd
        );
    }

    /// # Safety
    /// The CPU has AVX-512F, and every row r < k of A holds columns `i0..i0 + m` and of B
    /// columns `0..n` (checked by the caller).
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn run<T: Float>(
        k: usize,
        a: &[T],
        lda: usize,
        i0: usize,
        b: &[T],
        ldb: usize,
        n: usize,
        out: &mut [T],
    ) {
        let m = out.len() / n;
        // T is f32 or f64 (the only Floats); the casts below are of that same type.
        let (a, b, out) = (a.as_ptr().add(i0), b.as_ptr(), out.as_mut_ptr());
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            f32k::all(k, a.cast(), lda, b.cast(), ldb, n, out.cast(), m);
        } else if TypeId::of::<T>() == TypeId::of::<f64>() {
            f64k::all(k, a.cast(), lda, b.cast(), ldb, n, out.cast(), m);
        } else {
            unreachable!("Float is implemented for f32 and f64 only");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn naive(
        k: usize,
        a: &[f64],
        lda: usize,
        i0: usize,
        m: usize,
        b: &[f64],
        ldb: usize,
        n: usize,
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for r in 0..k {
                    c[i * n + j] += a[r * lda + i0 + i] * b[r * ldb + j];
                }
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_for_every_tile_shape() {
        // Row counts hit the block of 8 and every remainder (1 to 7); widths every column case:
        // below one vector, exactly one, between one and two, two, and more; strides exceed
        // the widths; k past one chunk of rows (KC = 64) continues stored sums.
        for &(k, m, n) in &[
            (1usize, 1usize, 1usize),
            (130, 14, 20),
            (70, 12, 40),
            (7, 50, 50),
            (40, 15, 6),
            (33, 9, 4),
            (5, 3, 16),
            (12, 8, 17),
            (9, 21, 32),
            (6, 11, 33),
            (4, 2, 70),
        ] {
            let (lda, ldb, i0) = (m + 5, n + 3, 2);
            let a: Vec<f64> = (0..k * lda + i0)
                .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
                .collect();
            let b: Vec<f64> = (0..k * ldb)
                .map(|i| ((i * 53) % 97) as f64 / 48.0 - 1.0)
                .collect();
            let want = naive(k, &a, lda, i0, m, &b, ldb, n);
            let mut got = vec![f64::NAN; m * n];
            matmul_at_b(k, &a, lda, i0, &b, ldb, n, &mut got);
            let a32: Vec<f32> = a.iter().map(|x| *x as f32).collect();
            let b32: Vec<f32> = b.iter().map(|x| *x as f32).collect();
            let mut got32 = vec![f32::NAN; m * n];
            matmul_at_b(k, &a32, lda, i0, &b32, ldb, n, &mut got32);
            for (idx, w) in want.iter().enumerate() {
                // Rounding bound: k terms of magnitude ≤ 1, partial sums ≤ k, so at most
                // k²·ε: 2e-12 in f64 and 1e-3 in f32 at k = 130. An indexing error would be
                // off by whole products, O(0.1) or more, far above either tolerance.
                assert!((got[idx] - w).abs() < 1e-10, "f64 ({k},{m},{n}) at {idx}");
                assert!(
                    (got32[idx] as f64 - w).abs() < 2e-3,
                    "f32 ({k},{m},{n}) at {idx}"
                );
            }
        }
    }
}
