//! The weight-gradient product `out (m × n) = Aᵀ·B` for A `k × m` and B `k × n`: a sum of outer
//! products `a_rᵀ ⊗ b_r` over all (example, step) rows r, the shape of ∂W_rec, ∂W_in and ∂W_out.
//!
//! On AVX-512 and on AVX2 an `R × V·L` tile of the output (L lanes per vector) stays in
//! registers while r runs over all k rows: each row broadcasts R contiguous entries of `a_r`
//! and FMAs them with V vectors of `b_r`, so neither operand is transposed or packed; the last
//! vector of a row is a masked load, so widths that are not a multiple of L need no padding.
//! Written with intrinsics: left to itself, LLVM vectorises this loop nest along the wrong axis
//! (across the R broadcasts, with the accumulators gathered and scattered through memory),
//! which made an auto-vectorised version 6× slower than the generic GEMM it replaces. One
//! macro stamps the kernel for each instruction set and element type.
//!
//! Every entry is one FMA chain over r = 0..k in order, so the result does not depend on how
//! the rows of `out` are split across threads. Without AVX2 and FMA the generic GEMM runs
//! (`matrixmultiply`, which picks its kernels itself: the engine's own AVX2 kernel is what
//! lets `RNNSTAB_SIMD=avx2` measure on an AVX-512 machine what AVX2 users get).

use crate::float::Float;
use crate::kernels::SimdLevel;
use crate::linalg::{gemm, View, ViewMut};

/// `out (m × n) = Aᵀ·B` for A `k × m` and B `k × n`. The rows of all three must be contiguous
/// (column stride 1); a block of A's columns gives a block of the product's rows.
pub fn matmul_at_b<T: Float>(a: View<'_, T>, b: View<'_, T>, out: ViewMut<'_, T>) {
    matmul_at_b_on(crate::kernels::simd_level(), a, b, out);
}

/// Output rows per tile of the kernel [`matmul_at_b`] runs: a split of the rows across threads
/// in multiples of it leaves no narrow tiles, whose few FMA chains cannot fill the FMA units.
pub fn row_block() -> usize {
    match crate::kernels::simd_level() {
        SimdLevel::Avx2 => AVX2_ROWS,
        SimdLevel::Avx512 | SimdLevel::Portable => AVX512_ROWS,
    }
}

/// Rows per tile: 8 rows of 2 vectors are 16 of the 32 zmm registers; on AVX2, 6 rows of 2
/// are 12 of the 16 ymm registers, which leaves 2 for the row of B and 1 for a broadcast.
const AVX512_ROWS: usize = 8;
const AVX2_ROWS: usize = 6;

/// [`matmul_at_b`] with the kernel of `level`, or of the best instruction set the CPU has if
/// that is less (so that tests and timings can run every kernel on one machine).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn matmul_at_b_on<T: Float>(level: SimdLevel, a: View<'_, T>, b: View<'_, T>, out: ViewMut<'_, T>) {
    let (k, m, n) = (a.rows(), a.cols(), b.cols());
    assert_eq!(b.rows(), k, "A and B have different numbers of rows");
    assert!(out.rows() == m && out.cols() == n, "output is not m × n");
    // Checked whichever kernel runs, so that a caller's layout error shows on every CPU.
    assert!(
        a.cs() == 1 && b.cs() == 1 && out.cs() == 1,
        "rows are not contiguous"
    );
    #[cfg(target_arch = "x86_64")]
    {
        let level = level.min(crate::kernels::detected_simd());
        if level >= SimdLevel::Avx2 && k > 0 && m > 0 && n > 0 {
            // SAFETY: the CPU has the instruction set of `level`; the views were bounds-checked
            // on construction, their rows are contiguous (checked above), and the kernels read
            // and write nothing outside them.
            unsafe { simd::run(level, a, b, out) };
            return;
        }
    }
    // Also the empty cases: with k = 0 the GEMM writes zeros.
    gemm(T::ONE, a.t(), b, T::ZERO, out);
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::any::TypeId;
    use std::arch::x86_64::*;

    use super::{AVX2_ROWS, AVX512_ROWS};
    use crate::float::Float;
    use crate::kernels::SimdLevel;
    use crate::linalg::{View, ViewMut};

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

    /// Whether the AVX-512 kernel copies an `m × n` product with rows of A and B `lda_bytes`
    /// and `ldb_bytes` apart into panels.
    fn packs_avx512(m: usize, n: usize, _lda_bytes: usize, _ldb_bytes: usize) -> bool {
        m >= PACK_MIN_M && n >= PACK_MIN_N
    }

    /// The AVX2 kernel also wants the rows of both A and B a multiple of 2 KiB apart: L1 has
    /// 64 sets of 64-byte lines (4 KiB a way), so such rows share 2 sets. Otherwise, at half
    /// AVX-512's FMA rate, the direct path has time to fetch rows from L2 and the copy does
    /// not pay (+10% at 512 × 512 and +50% at 1024 × 1024 in f32, −5 to −30% at 500 × 500,
    /// 129 × 512 and 16 × 512: docs/decisions/at-b-avx2-kernel.md).
    fn packs_avx2(m: usize, n: usize, lda_bytes: usize, ldb_bytes: usize) -> bool {
        packs_avx512(m, n, lda_bytes, ldb_bytes)
            && lda_bytes.is_multiple_of(2048)
            && ldb_bytes.is_multiple_of(2048)
    }

    /// Stamps out the tile kernel and its driver for one instruction set and element type:
    /// functions compiled for `$feature`, tiles of up to `$rmax` rows (`$r` lists the smaller
    /// row counts, from `$rmax - 1` down to 1) and two vectors of `$lanes` lanes; `$packs`
    /// chooses between the direct and the packed path.
    /// `$mask_of(c)` selects the first c lanes of a vector; `$maskz_loadu(mask, p)` reads
    /// those (the others are zero) and `$mask_storeu(p, mask, v)` writes only those.
    macro_rules! kernel {
        ($feature:literal, $rmax:ident, [$($r:literal)+], $packs:ident,
         $t:ty, $mask:ty, $lanes:expr, $mask_of:ident,
         $zero:ident, $set1:ident, $loadu:ident, $maskz_loadu:ident, $fmadd:ident,
         $storeu:ident, $mask_storeu:ident) => {
            const _: () = assert!([$($r),+][0] + 1 == $rmax, "row counts below the tile's");

            thread_local! {
                /// Each thread's panels for [`all_packed`].
                static PANELS: std::cell::RefCell<Vec<$t>> =
                    const { std::cell::RefCell::new(Vec::new()) };
            }

            /// One `R × V·L` tile `out += aᵀ·b` (or `=` on the `first` chunk of rows), for `a`
            /// the tile's `k × R` block of A and `b` its `k × w` block of B, `w ≤ V·L`;
            /// `mask` selects the columns of the tile's last vector that exist.
            ///
            /// # Safety
            /// The CPU has `$feature`; the blocks' rows are contiguous, `out` is `R × w`, and
            /// the first `V − 1` vectors of a row of `b` and `out` are whole.
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn tile<const R: usize, const V: usize>(
                a: View<'_, $t>,
                b: View<'_, $t>,
                mut out: ViewMut<'_, $t>,
                mask: $mask,
                first: bool,
            ) {
                let (k, lda, ldb, ldo) = (a.rows(), a.rs(), b.rs(), out.rs());
                let (a, b, out) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
                // A later chunk of rows continues the sums the previous chunk stored: the
                // round trip through memory is exact, so the FMA chain is unchanged.
                let mut acc = [[$zero(); V]; R];
                if !first {
                    for (ii, accr) in acc.iter_mut().enumerate() {
                        for (v, slot) in accr.iter_mut().enumerate() {
                            let p = out.add(ii * ldo + v * $lanes);
                            *slot = if v + 1 == V { $maskz_loadu(mask, p) } else { $loadu(p) };
                        }
                    }
                }
                let (mut ap, mut bp) = (a, b);
                for _ in 0..k {
                    let mut bv = [$zero(); V];
                    for (v, slot) in bv.iter_mut().enumerate() {
                        let p = bp.add(v * $lanes);
                        *slot = if v + 1 == V { $maskz_loadu(mask, p) } else { $loadu(p) };
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
                        let p = out.add(ii * ldo + v * $lanes);
                        if v + 1 == V {
                            $mask_storeu(p, mask, *slot);
                        } else {
                            $storeu(p, *slot);
                        }
                    }
                }
            }

            /// Rows `row..` of `out = aᵀ·b` (a chunk of the rows of A and B) in blocks of `R`,
            /// all columns; returns the first row left.
            ///
            /// # Safety
            /// As for [`all`], and `out` is `a.cols() × b.cols()`.
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn rows<const R: usize>(
                a: View<'_, $t>,
                b: View<'_, $t>,
                out: &mut ViewMut<'_, $t>,
                mut row: usize,
                first: bool,
            ) -> usize {
                let (k, m, n) = (a.rows(), a.cols(), b.cols());
                while row + R <= m {
                    // SAFETY (of the blocks): `row + R ≤ m` here and `jb + width ≤ n` below.
                    let ar = a.block_unchecked(0, row, k, R);
                    let mut or = out.block_unchecked(row, 0, R, n);
                    let mut jb = 0;
                    // Two-vector tiles while more than one vector's worth is left, the last
                    // masked; then at most one single-vector tile.
                    while n - jb > $lanes {
                        let width = (n - jb).min(2 * $lanes);
                        let mask = $mask_of(width - $lanes);
                        let bt = b.block_unchecked(0, jb, k, width);
                        tile::<R, 2>(ar, bt, or.block_unchecked(0, jb, R, width), mask, first);
                        jb += width;
                    }
                    if jb < n {
                        let mask = $mask_of(n - jb);
                        let bt = b.block_unchecked(0, jb, k, n - jb);
                        tile::<R, 1>(ar, bt, or.block_unchecked(0, jb, R, n - jb), mask, first);
                    }
                    row += R;
                }
                row
            }

            /// One tile of `a.cols() ≤ $rmax` rows at a time (the last row block of a packed
            /// chunk); the arguments are [`tile`]'s.
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn tile_of<const V: usize>(
                a: View<'_, $t>,
                b: View<'_, $t>,
                out: ViewMut<'_, $t>,
                mask: $mask,
                first: bool,
            ) {
                match a.cols() {
                    $($r => tile::<$r, V>(a, b, out, mask, first),)+
                    _ => tile::<$rmax, V>(a, b, out, mask, first),
                }
            }

            /// All of `out` for wide operands, over chunks of [`KC_PACKED`] rows: each chunk
            /// of B is copied into panels one tile wide and each of A into panels one row
            /// block wide, so every tile reads both in order. Then one panel of B (16 KiB in
            /// f32 on AVX-512) stays in L1 while the row blocks of A stream past it.
            #[target_feature(enable = $feature)]
            unsafe fn all_packed(a: View<'_, $t>, b: View<'_, $t>, out: ViewMut<'_, $t>) {
                const TW: usize = 2 * $lanes; // a tile's width
                let (m, n) = (a.cols(), b.cols());
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
                    packed_chunks(a, b, out, bp, &mut ap[..an]);
                });
            }

            /// The chunks of [`all_packed`], with its panel buffers: `bp` for
            /// [`KC_PACKED`] rows of every panel of B, `ap` for as many rows of A.
            #[target_feature(enable = $feature)]
            unsafe fn packed_chunks(
                a: View<'_, $t>,
                b: View<'_, $t>,
                mut out: ViewMut<'_, $t>,
                bp: &mut [$t],
                ap: &mut [$t],
            ) {
                const TW: usize = 2 * $lanes;
                let (k, m, n) = (a.rows(), a.cols(), b.cols());
                let (a, lda, b, ldb) = (a.as_ptr(), a.rs(), b.as_ptr(), b.rs());
                let (panels, blocks) = (n.div_ceil(TW), m.div_ceil($rmax));
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
                    // Row block q holds columns `$rmax`·q.. of A's rows, `rr` of them per row.
                    for q in 0..blocks {
                        let (i0, rr) = ($rmax * q, $rmax.min(m - $rmax * q));
                        let panel = &mut ap[kn * i0..][..kn * rr];
                        for (r, dst) in panel.chunks_exact_mut(rr).enumerate() {
                            let src = std::slice::from_raw_parts(a.add((r0 + r) * lda + i0), rr);
                            dst.copy_from_slice(src);
                        }
                    }
                    let first = r0 == 0;
                    for p in 0..panels {
                        let c0 = p * TW;
                        let w = TW.min(n - c0);
                        let bpp = View::strided(bp, p * kn * TW, kn, w, TW, 1);
                        for q in 0..blocks {
                            let (i0, rr) = ($rmax * q, $rmax.min(m - $rmax * q));
                            let app = View::strided(ap, kn * i0, kn, rr, rr, 1);
                            // SAFETY: `i0 + rr ≤ m` and `c0 + w ≤ n`.
                            let o = out.block_unchecked(i0, c0, rr, w);
                            if w > $lanes {
                                let mask = $mask_of(w - $lanes);
                                tile_of::<2>(app, bpp, o, mask, first);
                            } else {
                                let mask = $mask_of(w);
                                tile_of::<1>(app, bpp, o, mask, first);
                            }
                        }
                    }
                    r0 += kn;
                }
            }

            /// All of `out = aᵀ·b`: blocks of `$rmax` rows, then one of the rest, over chunks
            /// of [`KC`] rows of A and B so that each chunk is read from L1 by every tile.
            ///
            /// # Safety
            /// The CPU has `$feature`; A (`k × m`), B (`k × n`) and `out` (`m × n`) have
            /// contiguous rows, and k, m and n are not zero.
            #[target_feature(enable = $feature)]
            pub(in super::super) unsafe fn all(
                a: View<'_, $t>,
                b: View<'_, $t>,
                mut out: ViewMut<'_, $t>,
            ) {
                let (k, m, n) = (a.rows(), a.cols(), b.cols());
                let size = std::mem::size_of::<$t>();
                if $packs(m, n, a.rs() * size, b.rs() * size) {
                    return all_packed(a, b, out);
                }
                let mut r0 = 0;
                while r0 < k {
                    let kn = KC.min(k - r0);
                    let (a, b, first) = (a.row_range(r0, kn), b.row_range(r0, kn), r0 == 0);
                    let row = rows::<$rmax>(a, b, &mut out, 0, first);
                    // The rows left as one block: split into blocks of 4, 2 and 1 they would
                    // have too few independent FMA chains to keep both FMA units busy ([U 1]ᵀG
                    // for ∂W_in and ∂b has I + 1 = 7 rows).
                    match m - row {
                        $($r => rows::<$r>(a, b, &mut out, row, first),)+
                        _ => row,
                    };
                    r0 += kn;
                }
            }
        };
    }

    /// AVX-512F: a mask is a bit per lane.
    mod avx512 {
        use super::*;

        #[inline]
        fn mask16(count: usize) -> u16 {
            u16::MAX >> (16 - count)
        }

        #[inline]
        fn mask8(count: usize) -> u8 {
            u8::MAX >> (8 - count)
        }

        pub(super) mod f32k {
            use super::*;
            kernel!(
                "avx512f",
                AVX512_ROWS,
                [7 6 5 4 3 2 1],
                packs_avx512,
                f32,
                u16,
                16,
                mask16,
                _mm512_setzero_ps,
                _mm512_set1_ps,
                _mm512_loadu_ps,
                _mm512_maskz_loadu_ps,
                _mm512_fmadd_ps,
                _mm512_storeu_ps,
                _mm512_mask_storeu_ps
            );
        }

        pub(super) mod f64k {
            use super::*;
            kernel!(
                "avx512f",
                AVX512_ROWS,
                [7 6 5 4 3 2 1],
                packs_avx512,
                f64,
                u8,
                8,
                mask8,
                _mm512_setzero_pd,
                _mm512_set1_pd,
                _mm512_loadu_pd,
                _mm512_maskz_loadu_pd,
                _mm512_fmadd_pd,
                _mm512_storeu_pd,
                _mm512_mask_storeu_pd
            );
        }
    }

    /// AVX2 and FMA: a mask is a vector of integers, all ones in the lanes it selects.
    mod avx2 {
        use super::*;

        #[inline]
        #[target_feature(enable = "avx2")]
        fn mask_ps(count: usize) -> __m256i {
            let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), lane)
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        fn mask_pd(count: usize) -> __m256i {
            let lane = _mm256_setr_epi64x(0, 1, 2, 3);
            _mm256_cmpgt_epi64(_mm256_set1_epi64x(count as i64), lane)
        }

        // The masked loads with their arguments in the order of AVX-512's; like those they
        // neither read nor fault on the lanes left out.

        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn maskz_loadu_ps(mask: __m256i, p: *const f32) -> __m256 {
            _mm256_maskload_ps(p, mask)
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn maskz_loadu_pd(mask: __m256i, p: *const f64) -> __m256d {
            _mm256_maskload_pd(p, mask)
        }

        pub(super) mod f32k {
            use super::*;
            kernel!(
                "avx2,fma",
                AVX2_ROWS,
                [5 4 3 2 1],
                packs_avx2,
                f32,
                __m256i,
                8,
                mask_ps,
                _mm256_setzero_ps,
                _mm256_set1_ps,
                _mm256_loadu_ps,
                maskz_loadu_ps,
                _mm256_fmadd_ps,
                _mm256_storeu_ps,
                _mm256_maskstore_ps
            );
        }

        pub(super) mod f64k {
            use super::*;
            kernel!(
                "avx2,fma",
                AVX2_ROWS,
                [5 4 3 2 1],
                packs_avx2,
                f64,
                __m256i,
                4,
                mask_pd,
                _mm256_setzero_pd,
                _mm256_set1_pd,
                _mm256_loadu_pd,
                maskz_loadu_pd,
                _mm256_fmadd_pd,
                _mm256_storeu_pd,
                _mm256_maskstore_pd
            );
        }
    }

    /// `out = Aᵀ·B` with the kernel of `level`.
    ///
    /// # Safety
    /// The CPU has the instruction set of `level`, AVX2 (with FMA) or AVX-512F; the operands
    /// are as [`matmul_at_b`](super::matmul_at_b) requires (checked by the caller), and k, m
    /// and n are not zero.
    pub(super) unsafe fn run<T: Float>(
        level: SimdLevel,
        a: View<'_, T>,
        b: View<'_, T>,
        out: ViewMut<'_, T>,
    ) {
        // T is f32 or f64 (the only Floats); the casts below are to that same type.
        let is_f32 = TypeId::of::<T>() == TypeId::of::<f32>();
        assert!(
            is_f32 || TypeId::of::<T>() == TypeId::of::<f64>(),
            "Float is implemented for f32 and f64 only"
        );
        match (level >= SimdLevel::Avx512, is_f32) {
            (true, true) => avx512::f32k::all(a.cast(), b.cast(), out.cast()),
            (true, false) => avx512::f64k::all(a.cast(), b.cast(), out.cast()),
            (false, true) => avx2::f32k::all(a.cast(), b.cast(), out.cast()),
            (false, false) => avx2::f64k::all(a.cast(), b.cast(), out.cast()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Aᵀ·B`, row-major.
    fn naive(a: View<'_, f64>, b: View<'_, f64>) -> Vec<f64> {
        let (k, m, n) = (a.rows(), a.cols(), b.cols());
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for r in 0..k {
                    c[i * n + j] += a.get(r, i) * b.get(r, j);
                }
            }
        }
        c
    }

    /// The instruction sets this CPU can run, each of which picks a different kernel: the
    /// engine's AVX-512 and AVX2 ones, and the generic GEMM.
    fn levels() -> Vec<SimdLevel> {
        let best = crate::kernels::detected_simd();
        [SimdLevel::Portable, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .filter(|l| *l <= best)
            .collect()
    }

    #[test]
    fn matches_naive_product_for_every_tile_shape() {
        // Row counts hit the blocks of 8 (AVX-512) and 6 (AVX2) and every remainder; widths
        // every column case for 16 and 8 lanes (f32) and 8 and 4 (f64): below one vector,
        // exactly one, between one and two, two, and more; strides exceed the widths; k past
        // one chunk of rows (KC = 64) continues stored sums. The last three take the packed
        // path (m ≥ 16, n ≥ 128), with partial row blocks and tiles, k past its chunks of 128
        // rows, and k shorter than one; on AVX2 only when rows are a multiple of 2 KiB apart,
        // so these run again with strides of 512.
        let shapes = [
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
            (10, 5, 12),
            (8, 4, 9),
            (300, 21, 150),
            (129, 16, 128),
            (5, 40, 140),
        ];
        let cases = shapes.iter().flat_map(|&(k, m, n)| {
            let aliased = (m >= 16 && n >= 128).then_some((k, m, n, 512, 512));
            std::iter::once((k, m, n, m + 5, n + 3)).chain(aliased)
        });
        for (k, m, n, lda, ldb) in cases {
            let i0 = 2;
            let a: Vec<f64> = (0..k * lda + i0)
                .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
                .collect();
            let b: Vec<f64> = (0..k * ldb)
                .map(|i| ((i * 53) % 97) as f64 / 48.0 - 1.0)
                .collect();
            // A's columns i0.. (a block of the product's rows).
            let av = View::strided(&a, i0, k, m, lda, 1);
            let bv = View::strided(&b, 0, k, n, ldb, 1);
            let want = naive(av, bv);
            let a32: Vec<f32> = a.iter().map(|x| *x as f32).collect();
            let b32: Vec<f32> = b.iter().map(|x| *x as f32).collect();
            let av32 = View::strided(&a32, i0, k, m, lda, 1);
            let bv32 = View::strided(&b32, 0, k, n, ldb, 1);
            // Rounding bound: k terms of magnitude ≤ 1, partial sums ≤ k, so at most k²·ε:
            // 2e-11 in f64 and 1.1e-2 in f32 at k = 300, the largest k here (f32 inputs are
            // rounded too, adding k·ε). An indexing error would be off by whole products,
            // O(0.1) or more; the largest tolerance is that only at k = 300.
            let kk = (k * k) as f64;
            let (tol64, tol32) = (kk * 2.3e-16, kk * 1.2e-7 + 1e-6);
            for level in levels() {
                let mut got = vec![f64::NAN; m * n];
                matmul_at_b_on(level, av, bv, ViewMut::new(&mut got, m, n));
                let mut got32 = vec![f32::NAN; m * n];
                matmul_at_b_on(level, av32, bv32, ViewMut::new(&mut got32, m, n));
                let at = format!("{} ({k},{m},{n}) strides {lda},{ldb}", level.name());
                for (idx, w) in want.iter().enumerate() {
                    assert!((got[idx] - w).abs() <= tol64, "f64 {at} at {idx}");
                    assert!((got32[idx] as f64 - w).abs() <= tol32, "f32 {at} at {idx}");
                }
            }
        }
    }

    #[test]
    fn packed_and_direct_paths_give_the_same_bits() {
        // All 40 output rows at once take the packed path; 5 rows at a time (what a split
        // across threads can leave) the direct one. Every entry is the same FMA chain either
        // way, so the bits must agree, which keeps results independent of the thread count.
        // Checked for the engine's own kernels (the generic GEMM promises nothing of the sort);
        // AVX2 packs only rows a multiple of 2 KiB apart, hence strides of 512 too.
        let (k, m, n) = (300usize, 40usize, 150usize);
        let levels = levels().into_iter().filter(|l| *l >= SimdLevel::Avx2);
        for (level, (lda, ldb)) in levels.flat_map(|l| [(l, (43, 151)), (l, (512, 512))]) {
            let a: Vec<f32> = (0..k * lda)
                .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
                .collect();
            let b: Vec<f32> = (0..k * ldb)
                .map(|i| ((i * 53) % 97) as f32 / 48.0 - 1.0)
                .collect();
            let bv = View::strided(&b, 0, k, n, ldb, 1);
            let mut whole = vec![0.0f32; m * n];
            let av = View::strided(&a, 0, k, m, lda, 1);
            matmul_at_b_on(level, av, bv, ViewMut::new(&mut whole, m, n));
            for (piece, rows) in whole.chunks_exact(5 * n).enumerate() {
                let mut part = vec![0.0f32; 5 * n];
                let av = View::strided(&a, 5 * piece, k, 5, lda, 1);
                matmul_at_b_on(level, av, bv, ViewMut::new(&mut part, 5, n));
                assert!(
                    part.iter()
                        .zip(rows)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{} strides {lda},{ldb}: rows {}..{}",
                    level.name(),
                    5 * piece,
                    5 * piece + 5
                );
            }
        }
    }
}
