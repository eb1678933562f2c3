//! The packed product of [`crate::kernels::matmul_packed`] on AVX2+FMA, in intrinsics.
//!
//! The portable kernel (plain Rust over fixed-size blocks) vectorises well for AVX-512, but
//! compiled for AVX2 LLVM split its accumulators into 128-bit halves and spilled them to the
//! stack on every step (measured at H = 512: 80% of an update in the product, at a fifth of
//! the AVX-512 rate). Here the accumulators are `__m256`/`__m256d` values, so they stay in the
//! 16 ymm registers.
//!
//! Every entry of C is one FMA chain over k in order, starting from zero, exactly as in the
//! portable kernel: the result is the same bits on every instruction set with FMA and however
//! the rows are blocked or split across threads.

#![cfg(target_arch = "x86_64")]

use std::any::TypeId;
use std::arch::x86_64::*;

use crate::float::Float;
use crate::kernels::NB;
use crate::linalg::{cast_slice, View, ViewMut};

macro_rules! kernel {
    ($t:ty, $vec:ty, $lanes:expr, $zero:ident, $set1:ident, $loadu:ident, $fmadd:ident,
     $storeu:ident, $maskstore:ident, $mask:ident) => {
        /// One `R × V·LANES` block of C (`R` rows of it) at columns `jb..`, from `arows`, the
        /// R rows of A (k entries each): V vectors side by side, each in its own place of B's
        /// panels (`b`, the packing's data).
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn tile<const R: usize, const V: usize>(
            arows: &[*const $t; R],
            k: usize,
            b: &[$t],
            jb: usize,
            c: &mut ViewMut<'_, $t>,
        ) {
            let (n, ldc, c, b) = (c.cols(), c.rs(), c.as_mut_ptr(), b.as_ptr());
            let cols: [usize; V] = std::array::from_fn(|v| jb + v * $lanes);
            let bp: [*const $t; V] =
                std::array::from_fn(|v| b.add((cols[v] / NB) * k * NB + cols[v] % NB));
            let mut acc = [[$zero(); V]; R];
            for kk in 0..k {
                let bv: [$vec; V] = std::array::from_fn(|v| $loadu(bp[v].add(kk * NB)));
                for (accr, ar) in acc.iter_mut().zip(arows) {
                    let av = $set1(*ar.add(kk));
                    for (slot, bvv) in accr.iter_mut().zip(&bv) {
                        *slot = $fmadd(av, *bvv, *slot);
                    }
                }
            }
            for (r, accr) in acc.iter().enumerate() {
                let row = c.add(r * ldc);
                for (v, slot) in accr.iter().enumerate() {
                    let col = cols[v];
                    if col + $lanes <= n {
                        $storeu(row.add(col), *slot);
                    } else if col < n {
                        // Padding columns are computed (as zeros) but not stored.
                        $maskstore(row.add(col), $mask(n - col), *slot);
                    }
                }
            }
        }

        /// Rows `r0..r0 + R` of C, all columns: tiles `V` vectors wide across the padded
        /// width, the rest two vectors at a time.
        ///
        /// # Safety
        /// As for [`all`], and `r0 + R ≤ a.rows()`.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn row_block<const R: usize, const V: usize>(
            a: View<'_, $t>,
            b: &[$t],
            c: &mut ViewMut<'_, $t>,
            r0: usize,
        ) {
            let (k, n, lda, a) = (a.cols(), c.cols(), a.rs(), a.as_ptr());
            let arows: [*const $t; R] = std::array::from_fn(|r| a.add((r0 + r) * lda));
            let mut c = c.block_unchecked(r0, 0, R, n);
            let np = crate::kernels::padded(n);
            let mut jb = 0;
            while jb + V * $lanes <= np {
                tile::<R, V>(&arows, k, b, jb, &mut c);
                jb += V * $lanes;
            }
            while jb < n {
                tile::<R, 2>(&arows, k, b, jb, &mut c);
                jb += 2 * $lanes;
            }
        }

        /// All rows, in blocks of at most 6 as even as possible (12 accumulators of two
        /// vectors per row); a block of one or two rows runs 8 or 4 vectors side by side
        /// instead, so that it still has enough independent FMA chains.
        ///
        /// # Safety
        /// As for [`run`](super::run).
        #[target_feature(enable = "avx2,fma")]
        pub(super) unsafe fn all(a: View<'_, $t>, b: &[$t], mut c: ViewMut<'_, $t>) {
            let rows = a.rows();
            let c = &mut c;
            let mut r0 = 0;
            while r0 < rows {
                let left = rows - r0;
                let size = left.div_ceil(left.div_ceil(6));
                match size {
                    6 => row_block::<6, 2>(a, b, c, r0),
                    5 => row_block::<5, 2>(a, b, c, r0),
                    4 => row_block::<4, 2>(a, b, c, r0),
                    3 => row_block::<3, 2>(a, b, c, r0),
                    2 => row_block::<2, 4>(a, b, c, r0),
                    _ => row_block::<1, 8>(a, b, c, r0),
                }
                r0 += size;
            }
        }
    };
}

/// The lanes `0..w` of a `maskstore` of f32.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn mask32(w: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(w as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// The lanes `0..w` of a `maskstore` of f64.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn mask64(w: usize) -> __m256i {
    _mm256_cmpgt_epi64(_mm256_set1_epi64x(w as i64), _mm256_setr_epi64x(0, 1, 2, 3))
}

mod f32k {
    use super::*;
    kernel!(
        f32,
        __m256,
        8,
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps,
        _mm256_maskstore_ps,
        mask32
    );
}

mod f64k {
    use super::*;
    kernel!(
        f64,
        __m256d,
        4,
        _mm256_setzero_pd,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_fmadd_pd,
        _mm256_storeu_pd,
        _mm256_maskstore_pd,
        mask64
    );
}

/// `C (rows × n) = A (rows × k) · B` with B packed in [`NB`]-wide panels (`b` holds
/// `k × padded(n)` entries), as [`crate::kernels::matmul_packed`] defines it.
///
/// # Safety
/// The CPU has AVX2 and FMA; A is `rows × k` and C `rows × n`, both with contiguous rows
/// (checked by the caller).
pub(crate) unsafe fn run<T: Float>(a: View<'_, T>, b: &[T], c: ViewMut<'_, T>) {
    let (k, n) = (a.cols(), c.cols());
    assert!(
        b.len() >= k * crate::kernels::padded(n),
        "B is not packed for k × n"
    );
    // T is f32 or f64 (the only Floats); the casts below are to that same type.
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        f32k::all(a.cast(), cast_slice(b), c.cast());
    } else if TypeId::of::<T>() == TypeId::of::<f64>() {
        f64k::all(a.cast(), cast_slice(b), c.cast());
    } else {
        unreachable!("Float is implemented for f32 and f64 only");
    }
}

#[cfg(test)]
mod tests {
    use crate::kernels::PackedMatrix;
    use crate::linalg::{View, ViewMut};

    /// The AVX2 kernel against one FMA chain per entry over k in order, written out here: the
    /// same bits (so the same as the AVX-512 kernel), for every row-block size and column
    /// remainder, and the columns past n of C left alone.
    fn same_bits_as_dispatched<T: crate::float::Float + std::fmt::Debug>() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        for &(rows, k, n) in &[
            (1usize, 300usize, 300usize),
            (1, 7, 88),
            (2, 50, 70),
            (3, 33, 16),
            (6, 64, 64),
            (7, 5, 130),
            (13, 100, 50),
            (20, 1, 1),
        ] {
            let (a, m) = crate::kernels::test_operands::<T>(rows * (k + 2), k * n);
            let mut p = PackedMatrix::new();
            p.pack(&m, k, n);
            let ldc = n + 3;
            let mut want = vec![T::from_f64(7.0); rows * ldc];
            for r in 0..rows {
                for j in 0..n {
                    want[r * ldc + j] = (0..k).fold(T::ZERO, |acc, kk| {
                        a[1 + r * (k + 2) + kk].mul_add(m[kk * n + j], acc)
                    });
                }
            }
            let mut got = vec![T::from_f64(7.0); rows * ldc];
            let (av, cv) = (
                View::strided(&a, 1, rows, k, k + 2, 1),
                ViewMut::strided(&mut got, 0, rows, n, ldc, 1),
            );
            // SAFETY: the CPU has AVX2 and FMA (checked above); A, B and C are shaped as
            // matmul_packed requires.
            unsafe { super::run(av, &p.data, cv) };
            let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "({rows},{k},{n})");
        }
    }

    #[test]
    fn f32_gives_the_same_bits_as_the_dispatched_kernel() {
        same_bits_as_dispatched::<f32>();
    }

    #[test]
    fn f64_gives_the_same_bits_as_the_dispatched_kernel() {
        same_bits_as_dispatched::<f64>();
    }
}
