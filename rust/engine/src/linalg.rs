//! Safe strided matrix views over slices and the matrix products the engine is built from.

use std::any::TypeId;

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::at_b::matmul_at_b;
use crate::float::Float;

/// A read-only matrix inside a slice: entry (i, j) is `data[offset + i*rs + j*cs]`.
pub struct View<'a, T> {
    data: &'a [T],
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// The shape accessors, the same for both kinds of view.
macro_rules! shape_accessors {
    ($view:ident) => {
        impl<T> $view<'_, T> {
            #[inline(always)]
            pub fn rows(&self) -> usize {
                self.rows
            }

            #[inline(always)]
            pub fn cols(&self) -> usize {
                self.cols
            }

            /// How far apart in the slice consecutive rows start.
            #[inline(always)]
            pub fn rs(&self) -> usize {
                self.rs
            }

            /// How far apart in the slice consecutive entries of a row are.
            #[inline(always)]
            pub fn cs(&self) -> usize {
                self.cs
            }
        }
    };
}

shape_accessors!(View);
shape_accessors!(ViewMut);

// Copy whatever T is, being a shared borrow and five numbers (a derive would require `T: Copy`):
// the kernels pass views by value and cut blocks from them.
impl<T> Clone for View<'_, T> {
    #[inline(always)]
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for View<'_, T> {}

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

    /// Entry (i, j).
    #[inline(always)]
    pub fn get(&self, i: usize, j: usize) -> T
    where
        T: Copy,
    {
        assert!(i < self.rows && j < self.cols, "entry out of bounds");
        self.data[self.offset + i * self.rs + j * self.cs]
    }

    /// The slice from entry (0, 0) on: entry (i, j) is `tail()[i·rs + j·cs]`.
    #[inline(always)]
    pub fn tail(&self) -> &'a [T] {
        &self.data[self.offset..]
    }

    /// Where entry (0, 0) is, for kernels that walk the matrix with raw pointers. Never
    /// dereferenced here, so computing it is safe even for an empty view.
    #[inline(always)]
    pub fn as_ptr(&self) -> *const T {
        self.data.as_ptr().wrapping_add(self.offset)
    }

    /// Rows `r0..r0 + rows` (a block of consecutive rows, all columns).
    #[inline(always)]
    pub fn row_range(self, r0: usize, rows: usize) -> Self {
        self.block(r0, 0, rows, self.cols)
    }

    /// The `rows × cols` block whose entry (0, 0) is this view's entry (r0, c0).
    #[inline(always)]
    pub fn block(self, r0: usize, c0: usize, rows: usize, cols: usize) -> Self {
        assert!(
            within(r0, rows, self.rows) && within(c0, cols, self.cols),
            "matrix block out of bounds"
        );
        View {
            offset: self.offset + r0 * self.rs + c0 * self.cs,
            rows,
            cols,
            ..self
        }
    }

    /// [`View::block`] without the bounds check, for the SIMD kernels' tiles: they are cut
    /// from an operand inside a loop whose bounds already keep them inside it, and the check
    /// would run once per tile.
    ///
    /// # Safety
    /// `r0 + rows ≤ self.rows()` and `c0 + cols ≤ self.cols()`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only the x86 kernels use it
    #[inline(always)]
    pub(crate) unsafe fn block_unchecked(
        self,
        r0: usize,
        c0: usize,
        rows: usize,
        cols: usize,
    ) -> Self {
        debug_assert!(within(r0, rows, self.rows) && within(c0, cols, self.cols));
        View {
            offset: self.offset + r0 * self.rs + c0 * self.cs,
            rows,
            cols,
            ..self
        }
    }
}

impl<'a, T: 'static> View<'a, T> {
    /// This view with its element type spelt `U`, which must be `T` itself: how a kernel
    /// generic over [`Float`] hands its operands to code written for f32 or f64.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only the x86 kernels use it
    #[inline(always)]
    pub(crate) fn cast<U: 'static>(self) -> View<'a, U> {
        View {
            data: cast_slice(self.data),
            offset: self.offset,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
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

    /// The slice from entry (0, 0) on: entry (i, j) is `tail_mut()[i·rs + j·cs]`.
    #[inline(always)]
    pub fn tail_mut(&mut self) -> &mut [T] {
        &mut self.data[self.offset..]
    }

    /// Where entry (0, 0) is, for kernels that write through raw pointers (see
    /// [`View::as_ptr`]).
    #[inline(always)]
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.data.as_mut_ptr().wrapping_add(self.offset)
    }

    /// A shorter-lived view of the same matrix, for handing to a kernel and using again.
    #[inline(always)]
    pub fn reborrow(&mut self) -> ViewMut<'_, T> {
        ViewMut {
            data: &mut *self.data,
            offset: self.offset,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }

    /// The `rows × cols` block whose entry (0, 0) is this view's entry (r0, c0), borrowed,
    /// without a bounds check (see [`View::block_unchecked`]).
    ///
    /// # Safety
    /// `r0 + rows ≤ self.rows()` and `c0 + cols ≤ self.cols()`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only the x86 kernels use it
    #[inline(always)]
    pub(crate) unsafe fn block_unchecked(
        &mut self,
        r0: usize,
        c0: usize,
        rows: usize,
        cols: usize,
    ) -> ViewMut<'_, T> {
        debug_assert!(within(r0, rows, self.rows) && within(c0, cols, self.cols));
        ViewMut {
            offset: self.offset + r0 * self.rs + c0 * self.cs,
            rows,
            cols,
            ..self.reborrow()
        }
    }
}

impl<'a, T: 'static> ViewMut<'a, T> {
    /// This view with its element type spelt `U`, which must be `T` itself (see
    /// [`View::cast`]).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only the x86 kernels use it
    #[inline(always)]
    pub(crate) fn cast<U: 'static>(self) -> ViewMut<'a, U> {
        ViewMut {
            data: cast_slice_mut(self.data),
            offset: self.offset,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }
}

fn fits(len: usize, offset: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || offset + (rows - 1) * rs + (cols - 1) * cs < len
}

/// Whether `start..start + count` lies inside `0..len` (without overflowing).
#[inline(always)]
fn within(start: usize, count: usize, len: usize) -> bool {
    start <= len && count <= len - start
}

/// `xs` as a slice of `U`, which must be `T` itself.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only the x86 kernels use it
#[inline(always)]
pub(crate) fn cast_slice<T: 'static, U: 'static>(xs: &[T]) -> &[U] {
    assert!(
        TypeId::of::<T>() == TypeId::of::<U>(),
        "element types differ"
    );
    // SAFETY: U is T, so the slice is reread as the very type it holds.
    unsafe { std::slice::from_raw_parts(xs.as_ptr().cast(), xs.len()) }
}

/// [`cast_slice`] for a mutable slice.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only the x86 kernels use it
#[inline(always)]
pub(crate) fn cast_slice_mut<T: 'static, U: 'static>(xs: &mut [T]) -> &mut [U] {
    assert!(
        TypeId::of::<T>() == TypeId::of::<U>(),
        "element types differ"
    );
    // SAFETY: as in cast_slice; the borrow is handed on, not duplicated.
    unsafe { std::slice::from_raw_parts_mut(xs.as_mut_ptr().cast(), xs.len()) }
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
        (T::GEMM)(
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

/// `out (m × n) = Aᵀ·B` ([`matmul_at_b`], A `k × m` and B `k × n`, rows contiguous) with the
/// rows of `out` shared out among the pool's threads: for the weight gradients of a batch too
/// small to give every thread a group of examples (a batch of one). Each entry stays one FMA
/// chain over all k rows, so the split never changes a bit.
pub fn par_matmul_at_b<T: Float>(
    pool: &ThreadPool,
    a: View<'_, T>,
    b: View<'_, T>,
    out: ViewMut<'_, T>,
) {
    let (k, m, n) = (a.rows, a.cols, b.cols);
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
    if chunk_rows >= m {
        return matmul_at_b(a, b, out);
    }
    // Pieces of whole rows of `out`: chunk i holds rows i·chunk_rows.. (fewer in the last).
    assert!(
        out.rows == m && out.cols == n && out.cs == 1,
        "output is not m × n with contiguous rows"
    );
    let ldo = out.rs;
    let rows = &mut out.data[out.offset..][..(m - 1) * ldo + n];
    pool.install(|| {
        rows.par_chunks_mut(chunk_rows * ldo)
            .enumerate()
            .for_each(|(ci, oc)| {
                let (i0, mi) = (ci * chunk_rows, chunk_rows.min(m - ci * chunk_rows));
                let piece = ViewMut::strided(oc, 0, mi, n, ldo, 1);
                matmul_at_b(a.block(0, i0, k, mi), b, piece);
            })
    });
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
            let (av, bv) = (View::new(&a, k, m), View::new(&b, k, n));
            par_matmul_at_b(&pool, av, bv, ViewMut::new(&mut out, m, n));
            out
        };
        let mut whole = vec![0.0f32; m * n];
        let (av, bv) = (View::new(&a, k, m), View::new(&b, k, n));
        matmul_at_b(av, bv, ViewMut::new(&mut whole, m, n));
        for t in [1, 2, 3, 4] {
            assert_eq!(whole, run(t), "{t} threads changed the bits");
        }
    }
}
