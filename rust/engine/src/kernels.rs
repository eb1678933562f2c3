//! Hand-written SIMD kernels for the recurrence's hot loop, chosen at run time by CPU feature
//! (AVX-512, AVX2+FMA, or portable code).
//!
//! At the paper's sizes (H ≈ 50, B ≈ 20) a step's work is a (rows × H)·(H × H) product and H·rows
//! activations. A general GEMM re-packs W_rec on every one of the T calls and libm's tanh costs
//! tens of nanoseconds; here W_rec is packed once per batch ([`PackedMatrix`]), the product is a
//! register-blocked broadcast-FMA kernel over that packing, and tanh/sigmoid in f32 use a
//! rational approximation that vectorises. Each kernel is written once as plain Rust over
//! fixed-size blocks and compiled several times with different `target_feature`s; LLVM turns
//! the blocks into vector registers.

use crate::float::Float;
use crate::linalg::{View, ViewMut};

/// Packed widths are padded to a multiple of this; every kernel's column block divides it.
pub const NB: usize = 32;

/// Pads a width to a whole number of column blocks.
pub fn padded(width: usize) -> usize {
    width.div_ceil(NB) * NB
}

/// A `K × N` matrix with `N` padded to [`padded`]`(N)` (extra columns zero), stored as
/// column panels [`NB`] wide: panel `p` holds columns `p·NB .. (p+1)·NB` of all `K` rows, row
/// after row. The product kernel walks one panel from top to bottom for each block of output
/// columns, so it reads memory in order: with plain row-major storage those reads were `N`
/// apart, and for `N` = 512 (a 2 KiB stride) every one of them landed in the same few L1 sets
/// and defeated the prefetchers.
pub struct PackedMatrix<T> {
    pub k: usize,
    pub n: usize,
    pub np: usize,
    pub data: Vec<T>,
}

impl<T: Float> PackedMatrix<T> {
    pub fn new() -> Self {
        PackedMatrix {
            k: 0,
            n: 0,
            np: 0,
            data: Vec::new(),
        }
    }

    /// Packs `M` (`k × n` row-major) as is.
    pub fn pack(&mut self, m: &[T], k: usize, n: usize) {
        self.reset(k, n);
        for c0 in (0..n).step_by(NB) {
            let width = NB.min(n - c0);
            let panel = &mut self.data[c0 * k..][..k * NB];
            for (r, row) in panel.chunks_exact_mut(NB).enumerate() {
                row[..width].copy_from_slice(&m[r * n + c0..][..width]);
            }
        }
    }

    /// Packs `Mᵀ` where `M` is `n × k` row-major.
    pub fn pack_transposed(&mut self, m: &[T], n: usize, k: usize) {
        self.reset(k, n);
        for c in 0..n {
            let (panel, j) = (c / NB, c % NB);
            for (r, &v) in m[c * k..][..k].iter().enumerate() {
                self.data[(panel * k + r) * NB + j] = v;
            }
        }
    }

    /// Entry (r, c) of the packed matrix.
    pub fn get(&self, r: usize, c: usize) -> T {
        self.data[((c / NB) * self.k + r) * NB + c % NB]
    }

    fn reset(&mut self, k: usize, n: usize) {
        self.k = k;
        self.n = n;
        self.np = padded(n);
        self.data.clear();
        self.data.resize(k * self.np, T::ZERO);
    }
}

impl<T: Float> Default for PackedMatrix<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// `C (rows × n) = A (rows × k) · B` with B packed. The rows of A and C must be contiguous
/// (column stride 1); only C's n columns are written, so C can be a block of a wider array.
pub fn matmul_packed<T: Float>(a: View<'_, T>, b: &PackedMatrix<T>, c: ViewMut<'_, T>) {
    assert_eq!(a.cols(), b.k, "inner dimensions differ");
    assert_eq!(a.rows(), c.rows(), "output rows differ");
    assert_eq!(c.cols(), b.n, "output columns differ");
    assert!(a.cs() == 1 && c.cs() == 1, "rows are not contiguous");
    assert!(c.rs() >= c.cols(), "output rows overlap");
    matmul::run::<T>(a, &b.data, c);
}

/// The portable kernel: `R` rows by `P` blocks of `W` columns of C live in registers while k
/// runs; each step broadcasts one A entry per row and FMAs it with the next `W` entries of
/// each block's panel (see [`PackedMatrix`]; `b` is its data). Computes rows `r0..rows` in
/// blocks of `R` and returns the first row it did not reach. `W` must divide [`NB`].
/// Instantiated per instruction set with block sizes that fit its register file.
///
/// `P > 1` serves products of one or two rows (a batch of one, or what a thread's share of a
/// small batch leaves): one row's `W` columns are only one or two vector accumulators, whose
/// FMA chains would each wait out the FMA latency, so `P` column blocks (in their own panels)
/// run side by side. Every entry of C is the same FMA chain over k in order whatever `R` and
/// `P` are, so results do not depend on how the rows are blocked.
#[inline(always)]
fn matmul_rows<
    T: Float,
    const R: usize,
    const W: usize,
    const P: usize,
    const PW: usize,
    const FMA: bool,
>(
    a: View<'_, T>,
    b: &[T],
    c: &mut ViewMut<'_, T>,
    r0: usize,
    rows: usize,
) -> usize {
    let (k, n, lda, a) = (a.cols(), c.cols(), a.rs(), a.tail());
    let np = padded(n);
    let b = &b[..k * np];
    let mut r0 = r0;
    while r0 + R <= rows {
        // The R rows of A, bounds-checked once here rather than in the inner loop.
        let arows: [&[T]; R] = std::array::from_fn(|r| &a[(r0 + r) * lda..][..k]);
        let mut jb = 0;
        while jb + P * W <= np {
            column_blocks::<T, R, W, P, PW, FMA>(&arows, k, b, jb, c, r0);
            jb += P * W;
        }
        while jb < n {
            column_blocks::<T, R, W, 1, W, FMA>(&arows, k, b, jb, c, r0);
            jb += W;
        }
        r0 += R;
    }
    r0
}

/// The `R × P·W` block of C at rows `r0..`, columns `jb..` (P column blocks of width W), from
/// `arows`, the R rows of A (k entries each).
#[inline(always)]
fn column_blocks<
    T: Float,
    const R: usize,
    const W: usize,
    const P: usize,
    const PW: usize,
    const FMA: bool,
>(
    arows: &[&[T]; R],
    k: usize,
    b: &[T],
    jb: usize,
    c: &mut ViewMut<'_, T>,
    r0: usize,
) {
    // The P blocks side by side as one row of P·W accumulators (PW = P·W): indexed as
    // [R][P][W], LLVM kept them in memory and ran scalar FMAs (1.6× slower for one row).
    let mut acc = [[T::ZERO; PW]; R];
    // Where each column block starts in its panel: row kk of block p is at offs[p] + kk·NB.
    let offs: [usize; P] = std::array::from_fn(|p| {
        let col = jb + p * W;
        (col / NB) * k * NB + col % NB
    });
    assert!(PW == P * W);
    assert!(k == 0 || offs.iter().all(|&o| o + (k - 1) * NB + W <= b.len()));
    for kk in 0..k {
        let mut brow = [T::ZERO; PW];
        for (p, o) in offs.iter().enumerate() {
            brow[p * W..(p + 1) * W].copy_from_slice(&b[o + kk * NB..][..W]);
        }
        for r in 0..R {
            let av = arows[r][kk];
            for j in 0..PW {
                acc[r][j] = madd::<T, FMA>(av, brow[j], acc[r][j]);
            }
        }
    }
    let (n, ldc, c) = (c.cols(), c.rs(), c.tail_mut());
    for p in 0..P {
        let col = jb + p * W;
        if col + W <= n {
            for (r, accr) in acc.iter().enumerate() {
                c[(r0 + r) * ldc + col..][..W].copy_from_slice(&accr[p * W..(p + 1) * W]);
            }
        } else if col < n {
            // The last block's padding columns are computed (as zeros) but not stored.
            // A store of fixed width above keeps `acc` in registers; this one is rare.
            let spilled: [[T; W]; R] = std::array::from_fn(|r| {
                let mut v = [T::ZERO; W];
                v.copy_from_slice(&acc[r][p * W..(p + 1) * W]);
                v
            });
            store_part(&spilled, c, r0 * ldc + col, ldc, n - col);
        }
    }
}

/// The first `w` columns of an `R × W` block of accumulators into C at `at`, rows `ldc` apart.
/// Kept out of line so that the hot loop's accumulators are never spilled for it.
#[inline(never)]
fn store_part<T: Float, const R: usize, const W: usize>(
    acc: &[[T; W]; R],
    c: &mut [T],
    at: usize,
    ldc: usize,
    w: usize,
) {
    for (r, accr) in acc.iter().enumerate() {
        c[at + r * ldc..][..w].copy_from_slice(&accr[..w]);
    }
}

/// All rows, in blocks of at most `R` rows as even as possible (10 rows run as 5 + 5, 20 as
/// 7 + 7 + 6). A block of one or two rows has too few accumulators to hide the FMA latency, so
/// a leftover row costs as much as a full block; even blocks leave none. Blocks of one or two
/// rows (a batch of one) take four or two column blocks at a time instead.
#[inline(always)]
fn matmul_blocked<
    T: Float,
    const R: usize,
    const W: usize,
    const W2: usize,
    const W4: usize,
    const FMA: bool,
>(
    a: View<'_, T>,
    b: &[T],
    mut c: ViewMut<'_, T>,
) {
    // W2 = 2·W and W4 = 4·W, spelt out by the callers (stable Rust has no const arithmetic
    // on generic parameters).
    assert!(W2 == 2 * W && W4 == 4 * W);
    let rows = a.rows();
    let c = &mut c;
    let mut r0 = 0;
    while r0 < rows {
        let left = rows - r0;
        let size = left.div_ceil(left.div_ceil(R));
        let end = r0 + size;
        r0 = match size {
            8 => matmul_rows::<T, 8, W, 1, W, FMA>(a, b, c, r0, end),
            7 => matmul_rows::<T, 7, W, 1, W, FMA>(a, b, c, r0, end),
            6 => matmul_rows::<T, 6, W, 1, W, FMA>(a, b, c, r0, end),
            5 => matmul_rows::<T, 5, W, 1, W, FMA>(a, b, c, r0, end),
            4 => matmul_rows::<T, 4, W, 1, W, FMA>(a, b, c, r0, end),
            3 => matmul_rows::<T, 3, W, 1, W, FMA>(a, b, c, r0, end),
            2 => matmul_rows::<T, 2, W, 2, W2, FMA>(a, b, c, r0, end),
            _ => matmul_rows::<T, 1, W, 4, W4, FMA>(a, b, c, r0, end),
        };
    }
}

/// a·b + c, fused where the instruction set has FMA (without it, `mul_add` would fall back to a
/// slow software routine).
#[inline(always)]
fn madd<T: Float, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

mod matmul {
    use super::*;

    // 32 zmm registers: 8 rows × 32 columns is 16 (f32) or 32 (f64) accumulators; f64 uses 4
    // rows so the B row and the broadcast still fit.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn avx512<T: Float>(a: View<'_, T>, b: &[T], c: ViewMut<'_, T>) {
        if std::mem::size_of::<T>() == 4 {
            matmul_blocked::<T, 8, 32, 64, 128, true>(a, b, c)
        } else {
            matmul_blocked::<T, 4, 32, 64, 128, true>(a, b, c)
        }
    }

    /// `c = a·B` for `b` the data of a [`PackedMatrix`] of `a.cols() × c.cols()`, with the
    /// best kernel the CPU runs; the shapes and strides are [`matmul_packed`]'s to check.
    pub fn run<T: Float>(a: View<'_, T>, b: &[T], c: ViewMut<'_, T>) {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx512() {
                // SAFETY: the CPU has the features this copy was compiled for.
                return unsafe { avx512::<T>(a, b, c) };
            }
            if has_avx2() {
                // SAFETY: as above; matmul_packed checked the shapes of A and C (the views
                // their bounds), and `b` is a packing of k × n.
                return unsafe { crate::matmul_avx2::run(a, b, c) };
            }
        }
        matmul_blocked::<T, 2, 8, 16, 32, false>(a, b, c)
    }
}

/// The instruction sets the engine's own kernels are compiled for, from least to most capable.
/// (`matrixmultiply`, which the engine uses for some products, picks its kernels itself.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    Portable,
    Avx2,
    Avx512,
}

impl SimdLevel {
    pub const NAMES: [&'static str; 3] = ["portable", "avx2", "avx512"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(name: &str) -> Option<SimdLevel> {
        match name {
            "portable" => Some(SimdLevel::Portable),
            "avx2" => Some(SimdLevel::Avx2),
            "avx512" => Some(SimdLevel::Avx512),
            _ => None,
        }
    }
}

/// Caps the instruction set (`avx2`, `portable`), so that one machine can measure what users
/// without AVX-512 (or without AVX2) get. Read once; an unknown value caps nothing (the Python
/// layer refuses it with a message before the engine runs).
pub const SIMD_ENV: &str = "RNNSTAB_SIMD";

/// The best instruction set this CPU has.
pub fn detected_simd() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return SimdLevel::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return SimdLevel::Avx2;
        }
    }
    SimdLevel::Portable
}

/// The instruction set the kernels run: the CPU's best, capped by [`SIMD_ENV`].
pub fn simd_level() -> SimdLevel {
    static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var(SIMD_ENV)
            .ok()
            .and_then(|v| SimdLevel::parse(v.trim()));
        let best = detected_simd();
        cap.map_or(best, |c| c.min(best))
    })
}

#[cfg(target_arch = "x86_64")]
#[inline]
pub fn has_avx512() -> bool {
    simd_level() >= SimdLevel::Avx512
}

#[cfg(target_arch = "x86_64")]
#[inline]
pub fn has_avx2() -> bool {
    simd_level() >= SimdLevel::Avx2
}

/// tanh in f32 as x·P(x²)/Q(x²), the [13/6] rational minimax approximation on [−7.9, 7.9]
/// (beyond that tanh rounds to ±1 in f32). Branch-free, so the loop vectorises.
/// Accuracy (tested in `tanh_f32_error_bound` against f64 tanh): absolute error ≤ 5e-7
/// everywhere (the worst, 4.3e-7, near |x| = 5.8 where tanh ≈ 0.99998), relative error ≤ 3e-7
/// for |x| < 1 — a few f32 ulp; f64 runs use libm's tanh.
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_6e-3;
    const B4: f32 = 1.185_347e-4;
    const B6: f32 = 1.198_258_4e-6;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let p = ((((((A13 * x2 + A11) * x2 + A9) * x2 + A7) * x2 + A5) * x2 + A3) * x2 + A1) * x;
    let q = ((B6 * x2 + B4) * x2 + B2) * x2 + B0;
    p / q
}

#[inline(always)]
fn tanh_slice_f32(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = tanh_f32(*x);
    }
}

/// σ(x) = (1 + tanh(x/2))/2, exact as an identity, so it inherits tanh's absolute error / 2.
#[inline(always)]
fn sigmoid_slice_f32(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = 0.5 + 0.5 * tanh_f32(0.5 * *x);
    }
}

/// Stamps out copies of a generic function `$generic<T: Float>` compiled for AVX-512 and for
/// AVX2+FMA, plus `run`, which picks one at run time. Everything the function inlines is
/// compiled for that instruction set too, which is how the engine's element-wise loops get
/// vectorised without giving up portability.
macro_rules! simd_dispatch {
    ($name:ident, $generic:path, ($($arg:ident : $ty:ty),*)) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            unsafe fn avx512<T: Float>($($arg: $ty),*) {
                $generic($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<T: Float>($($arg: $ty),*) {
                $generic($($arg),*)
            }

            pub(super) fn run<T: Float>($($arg: $ty),*) {
                #[cfg(target_arch = "x86_64")]
                {
                    if $crate::kernels::has_avx512() {
                        // SAFETY: the CPU has the features this copy was compiled for.
                        return unsafe { avx512::<T>($($arg),*) };
                    }
                    if $crate::kernels::has_avx2() {
                        // SAFETY: as above.
                        return unsafe { avx2::<T>($($arg),*) };
                    }
                }
                $generic($($arg),*)
            }
        }
    };
}
pub(crate) use simd_dispatch;

macro_rules! dispatched_f32 {
    ($name:ident, $body:path) => {
        pub(crate) mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            unsafe fn avx512(xs: &mut [f32]) {
                $body(xs)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(xs: &mut [f32]) {
                $body(xs)
            }

            pub fn run(xs: &mut [f32]) {
                #[cfg(target_arch = "x86_64")]
                {
                    if $crate::kernels::has_avx512() {
                        // SAFETY: the CPU has the features this copy was compiled for.
                        return unsafe { avx512(xs) };
                    }
                    if $crate::kernels::has_avx2() {
                        // SAFETY: as above.
                        return unsafe { avx2(xs) };
                    }
                }
                $body(xs)
            }
        }
    };
}

dispatched_f32!(tanh32, tanh_slice_f32);
dispatched_f32!(sigmoid32, sigmoid_slice_f32);

/// Vectorised tanh over a slice of f32.
pub fn tanh_f32_slice(xs: &mut [f32]) {
    tanh32::run(xs)
}

/// Vectorised logistic sigmoid over a slice of f32.
pub fn sigmoid_f32_slice(xs: &mut [f32]) {
    sigmoid32::run(xs)
}

/// Deterministic operands of the products' tests: A's and B's entries in [−1, 1].
#[cfg(test)]
pub(crate) fn test_operands<T: Float>(a_len: usize, b_len: usize) -> (Vec<T>, Vec<T>) {
    let a = (0..a_len)
        .map(|i| T::from_f64(((i * 37) % 101) as f64 / 50.0 - 1.0))
        .collect();
    let b = (0..b_len)
        .map(|i| T::from_f64(((i * 53) % 97) as f64 / 48.0 - 1.0))
        .collect();
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_f32_error_bound() {
        // Dense sweep over the range where tanh is not ±1 in f32, plus the tails.
        let mut xs: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 5e-5).collect();
        xs.extend([-1e30f32, -50.0, -9.0, 9.0, 50.0, 1e30]);
        let mut ys = xs.clone();
        tanh_f32_slice(&mut ys);
        let mut worst = 0.0f64;
        let mut worst_rel_small = 0.0f64;
        for (x, y) in xs.iter().zip(&ys) {
            let want = (*x as f64).tanh();
            let err = (*y as f64 - want).abs();
            worst = worst.max(err);
            if x.abs() < 1.0 && x.abs() > 1e-30 {
                worst_rel_small = worst_rel_small.max(err / want.abs());
            }
        }
        // The documented bounds (see tanh_f32).
        assert!(worst <= 5e-7, "max |error| {worst:e}");
        assert!(
            worst_rel_small <= 3e-7,
            "max relative error for |x| < 1: {worst_rel_small:e}"
        );
        assert!(ys.iter().all(|y| y.abs() <= 1.0));
    }

    #[test]
    fn sigmoid_f32_error_bound() {
        let xs: Vec<f32> = (-100_000..=100_000).map(|i| i as f32 * 4e-4).collect();
        let mut ys = xs.clone();
        sigmoid_f32_slice(&mut ys);
        let worst = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| (*y as f64 - 1.0 / (1.0 + (-(*x as f64)).exp())).abs())
            .fold(0.0, f64::max);
        // Half of tanh's bound, by the identity σ(x) = (1 + tanh(x/2))/2.
        assert!(worst <= 2.5e-7, "max |error| {worst:e}");
    }

    #[test]
    fn packed_product_matches_naive() {
        for &(rows, k, n) in &[
            (1usize, 1usize, 1usize),
            (5, 50, 50),
            (9, 33, 70),
            (4, 7, 32),
            (13, 64, 3),
            (3, 100, 130),
            // One and two rows run several column blocks side by side, with a remainder.
            (1, 64, 300),
            (2, 40, 200),
            (1, 300, 88),
            (2, 5, 20),
        ] {
            let (a, m) = test_operands::<f64>(rows * (k + 3), k * n);
            let mut p = PackedMatrix::new();
            p.pack(&m, k, n);
            for r in 0..k {
                for j in 0..p.np {
                    assert_eq!(p.get(r, j), if j < n { m[r * n + j] } else { 0.0 });
                }
            }
            // C's rows two wider than B: the two extra columns must be left as they were.
            let ldc = n + 2;
            let mut c = vec![f64::NAN; rows * ldc];
            let av = View::strided(&a, 2, rows, k, k + 3, 1);
            matmul_packed(av, &p, ViewMut::strided(&mut c, 0, rows, n, ldc, 1));
            for r in 0..rows {
                for j in 0..n {
                    let want: f64 = (0..k).map(|l| a[2 + r * (k + 3) + l] * m[l * n + j]).sum();
                    assert!(
                        (c[r * ldc + j] - want).abs() < 1e-12,
                        "({rows},{k},{n}) at {r},{j}"
                    );
                }
                assert!(c[r * ldc + n..][..2].iter().all(|v| v.is_nan()));
            }
            let mut pt = PackedMatrix::new();
            pt.pack_transposed(&m, k, n); // m is (k × n), so the packing holds mᵀ (n × k)
            assert_eq!((pt.k, pt.n), (n, k));
            for r in 0..n {
                for j in 0..k {
                    assert_eq!(pt.get(r, j), m[j * n + r]);
                }
            }
        }
    }
}
