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

    /// Rows per chunk of the packed path: a panel of B is then 128 rows of 32 f32, 16 KiB.
    const KC_PACKED: usize = 128;

    /// From this size on, rows of A and B are copied into panels first. Wide rows are far
    /// apart in memory (2 KiB at 512 f32), so the rows a tile reads fall into a handful of
    /// L1 sets and evict each other; with two or more row blocks each panel of B is read by
    /// several tiles, which pays for the copy.
    const PACK_MIN_M: usize = 16;
    const PACK_MIN_N: usize = 128;

    /// Stamps out the tile kernel and its driver for one element type.
    macro_rules! kernel {
        ($t:ty, $vec:ty, $mask:ty, $lanes:expr,
         $zero:ident, $set1:ident, $loadu:ident, $maskz_loadu:ident, $fmadd:ident,
         $mask_storeu:ident) => {
            thread_local! {
                /// Each thread's panels for [`all_packed`].
                static PANELS: std::cell::RefCell<Vec<$t>> =
                    const { std::cell::RefCell::new(Vec::new()) };
            }

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

            /// One tile of `rr ≤ 8` rows at a time (the last row block of a packed chunk).
            #[inline]
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn tile_of<const V: usize>(
                rr: usize,
                k: usize,
                a: *const $t,
                b: *const $t,
                ldb: usize,
                mask: $mask,
                out: *mut $t,
                ldo: usize,
                first: bool,
            ) {
                match rr {
                    8 => tile::<8, V>(k, a, rr, b, ldb, mask, out, ldo, first),
                    7 => tile::<7, V>(k, a, rr, b, ldb, mask, out, ldo, first),
                    6 => tile::<6, V>(k, a, rr, b, ldb, mask, out, ldo, first),
                    5 => tile::<5, V>(k, a, rr, b, ldb, mask, out, ldo, first),
                    4 => tile::<4, V>(k, a, rr, b, ldb, mask, out, ldo, first),
                    3 => tile::<3, V>(k, a, rr, b, ldb, mask, out, ldo, first),
                    2 => tile::<2, V>(k, a, rr, b, ldb, mask, out, ldo, first),
                    _ => tile::<1, V>(k, a, rr, b, ldb, mask, out, ldo, first),
                }
            }

            /// All of `out` for wide operands, over chunks of [`KC_PACKED`] rows: each chunk
            /// of B is copied into panels one tile wide and each of A into panels one row
            /// block wide, so every tile reads both in order. Then one panel of B (16 KiB in
            /// f32) stays in L1 while the row blocks of A stream past it.
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn all_packed(
                k: usize,
                a: *const $t,
                lda: usize,
                b: *const $t,
                ldb: usize,
                n: usize,
                out: *mut $t,
                m: usize,
            ) {
                const TW: usize = 2 * $lanes; // a tile's width
                let panels = n.div_ceil(TW);
                // The panels live in this thread's buffer, kept from call to call (every
                // update makes the same products). Stale values in it are never read: each
                // chunk writes the entries its tiles load, and masks skip the rest.
                PANELS.with_borrow_mut(|buf| {
                    let (bn, an) = (KC_PACKED * panels * TW, KC_PACKED * m);
                    if buf.len() < bn + an {
                        buf.resize(bn + an, 0.0);
                    }
                    let (bp, ap) = buf.split_at_mut(bn);
                    packed_chunks(k, a, lda, b, ldb, n, out, m, bp, &mut ap[..an]);
                });
            }

            /// The chunks of [`all_packed`], with its panel buffers.
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn packed_chunks(
                k: usize,
                a: *const $t,
                lda: usize,
                b: *const $t,
                ldb: usize,
                n: usize,
                out: *mut $t,
                m: usize,
                bp: &mut [$t],
                ap: &mut [$t],
            ) {
                const TW: usize = 2 * $lanes;
                let (panels, blocks) = (n.div_ceil(TW), m.div_ceil(8));
                let mut r0 = 0;
                while r0 < k {
                    let kn = KC_PACKED.min(k - r0);
                    for p in 0..panels {
                        let (c0, panel) = (p * TW, &mut bp[p * kn * TW..][..kn * TW]);
                        let w = TW.min(n - c0);
                        for (r, dst) in panel.chunks_exact_mut(TW).enumerate() {
                            let src = std::slice::from_raw_parts(b.add((r0 + r) * ldb + c0), w);
                            dst[..w].copy_from_slice(src);
                        }
                    }
                    // Row block q holds columns 8q.. of A's rows, `rr` of them per row.
                    for q in 0..blocks {
                        let (i0, rr) = (8 * q, 8.min(m - 8 * q));
                        let panel = &mut ap[kn * i0..][..kn * rr];
                        for (r, dst) in panel.chunks_exact_mut(rr).enumerate() {
                            let src = std::slice::from_raw_parts(a.add((r0 + r) * lda + i0), rr);
                            dst.copy_from_slice(src);
                        }
                    }
                    let first = r0 == 0;
                    for p in 0..panels {
                        let (c0, bpp) = (p * TW, bp.as_ptr().add(p * kn * TW));
                        let w = TW.min(n - c0);
                        for q in 0..blocks {
                            let (i0, rr) = (8 * q, 8.min(m - 8 * q));
                            let (app, o) = (ap.as_ptr().add(kn * i0), out.add(i0 * n + c0));
                            if w > $lanes {
                                let mask = (<$mask>::MAX) >> (TW - w);
                                tile_of::<2>(rr, kn, app, bpp, TW, mask, o, n, first);
                            } else {
                                let mask = (<$mask>::MAX) >> ($lanes - w);
                                tile_of::<1>(rr, kn, app, bpp, TW, mask, o, n, first);
                            }
                        }
                    }
                    r0 += kn;
                }
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
                if m >= PACK_MIN_M && n >= PACK_MIN_N {
                    return all_packed(k, a, lda, b, ldb, n, out, m);
                }
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
        // the widths; k past one chunk of rows (KC = 64) continues stored sums. The last three
        // take the packed path (m ≥ 16, n ≥ 128), with partial row blocks and tiles, k past
        // its chunks of 128 rows, and k shorter than one.
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
            (300, 21, 150),
            (129, 16, 128),
            (5, 40, 140),
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
            // Rounding bound: k terms of magnitude ≤ 1, partial sums ≤ k, so at most k²·ε:
            // 2e-11 in f64 and 1.1e-2 in f32 at k = 300, the largest k here (f32 inputs are
            // rounded too, adding k·ε). An indexing error would be off by whole products,
            // O(0.1) or more; the largest tolerance is that only at k = 300.
            let kk = (k * k) as f64;
            let (tol64, tol32) = (kk * 2.3e-16, kk * 1.2e-7 + 1e-6);
            for (idx, w) in want.iter().enumerate() {
                assert!((got[idx] - w).abs() <= tol64, "f64 ({k},{m},{n}) at {idx}");
                assert!(
                    (got32[idx] as f64 - w).abs() <= tol32,
                    "f32 ({k},{m},{n}) at {idx}"
                );
            }
        }
    }

    #[test]
    fn packed_and_direct_paths_give_the_same_bits() {
        // All 40 output rows at once take the packed path; 5 rows at a time (what a split
        // across threads can leave) the direct one. Every entry is the same FMA chain either
        // way, so the bits must agree, which keeps results independent of the thread count.
        let (k, m, n, lda, ldb) = (300usize, 40usize, 150usize, 43usize, 151usize);
        let a: Vec<f32> = (0..k * lda)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let b: Vec<f32> = (0..k * ldb)
            .map(|i| ((i * 53) % 97) as f32 / 48.0 - 1.0)
            .collect();
        let mut whole = vec![0.0f32; m * n];
        matmul_at_b(k, &a, lda, 0, &b, ldb, n, &mut whole);
        for (piece, rows) in whole.chunks_exact(5 * n).enumerate() {
            let mut part = vec![0.0f32; 5 * n];
            matmul_at_b(k, &a, lda, 5 * piece, &b, ldb, n, &mut part);
            assert!(
                part.iter()
                    .zip(rows)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "rows {}..{}",
                5 * piece,
                5 * piece + 5
            );
        }
    }
}
