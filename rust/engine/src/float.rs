//! The two element types the engine runs in. Everything numeric is generic over [`Float`], so
//! the f32 and f64 paths are one code path.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

pub trait Float:
    Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    const ZERO: Self;
    const ONE: Self;
    /// numpy's name for the type, for error messages.
    const NAME: &'static str;

    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn is_finite(self) -> bool;
    /// `self·a + b` in one rounding: one FMA instruction where the kernel is compiled with FMA.
    fn mul_add(self, a: Self, b: Self) -> Self;

    /// tanh over a slice in place (f32: the vectorised kernel of [`crate::kernels`]).
    fn tanh_in_place(xs: &mut [Self]);
    /// The logistic sigmoid over a slice in place.
    fn sigmoid_in_place(xs: &mut [Self]);

    /// The strided product for this type: `matrixmultiply`'s sgemm or dgemm.
    const GEMM: GemmFn<Self>;
}

/// `C ← alpha·A·B + beta·C` on strided matrices, with the arguments of `matrixmultiply`'s
/// sgemm and dgemm: `(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)`, a row
/// stride and a column stride per operand. A function pointer rather than a trait method so
/// that the library's functions are the implementations themselves, with no wrapper repeating
/// their fourteen parameters.
///
/// Calling one is unsafe: the pointers and strides must describe matrices that lie inside live
/// allocations, and C must not overlap A or B. [`crate::linalg::gemm`] is the safe entry point.
pub type GemmFn<T> = unsafe fn(
    usize,
    usize,
    usize,
    T,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    T,
    *mut T,
    isize,
    isize,
);

macro_rules! impl_float {
    ($t:ty, $name:expr, $gemm:path, $tanh:expr, $sigmoid:expr) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAME: &'static str = $name;

            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }

            fn tanh_in_place(xs: &mut [Self]) {
                $tanh(xs)
            }
            fn sigmoid_in_place(xs: &mut [Self]) {
                $sigmoid(xs)
            }

            const GEMM: GemmFn<Self> = $gemm;
        }
    };
}

impl_float!(
    f32,
    "float32",
    matrixmultiply::sgemm,
    crate::kernels::tanh_f32_slice,
    crate::kernels::sigmoid_f32_slice
);
impl_float!(
    f64,
    "float64",
    matrixmultiply::dgemm,
    tanh_f64_slice,
    sigmoid_f64_slice
);

/// f64 keeps libm's correctly rounded functions: it is the precision the gradient checks use.
fn tanh_f64_slice(xs: &mut [f64]) {
    xs.iter_mut().for_each(|x| *x = x.tanh());
}

fn sigmoid_f64_slice(xs: &mut [f64]) {
    xs.iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp()));
}
