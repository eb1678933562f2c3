//! The element-wise σ of eq. (2). The engine stores h = σ(x) and never x itself, so every
//! derivative here is written in terms of the output h: σ'(x) = f(σ(x)).

use crate::error::{EngineError, Result};
use crate::float::Float;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Tanh,
    Sigmoid,
    Relu,
    /// The identity: the linear model of the paper's analysis (§2.1, supplementary material).
    Linear,
}

/// Runs `$body` with `$d` bound to σ' (from the output) of the given activation as a closure
/// of a fixed variant, so the match happens once per call and not once per element: the loops
/// in `$body` stay branch-free and vectorise.
macro_rules! per_activation {
    ($act:expr, |$d:ident| $body:block) => {
        match $act {
            Activation::Tanh => {
                let $d = |x| Activation::Tanh.derivative_from_output(x);
                $body
            }
            Activation::Sigmoid => {
                let $d = |x| Activation::Sigmoid.derivative_from_output(x);
                $body
            }
            Activation::Relu => {
                let $d = |x| Activation::Relu.derivative_from_output(x);
                $body
            }
            Activation::Linear => {
                let $d = |x| Activation::Linear.derivative_from_output(x);
                $body
            }
        }
    };
}

impl Activation {
    pub const CHOICES: &'static str = "tanh, sigmoid, relu, linear";

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "tanh" => Ok(Activation::Tanh),
            "sigmoid" => Ok(Activation::Sigmoid),
            "relu" => Ok(Activation::Relu),
            "linear" | "identity" => Ok(Activation::Linear),
            _ => Err(EngineError::UnknownName {
                what: "activation",
                got: name.to_string(),
                choices: Self::CHOICES,
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::Linear => "linear",
        }
    }

    /// γ, the bound on |σ'| of §2.1: gradients vanish when ρ(W_rec) < 1/γ.
    /// ReLU and the identity have γ = 1.
    pub fn gamma(self) -> f64 {
        match self {
            Activation::Sigmoid => 0.25,
            _ => 1.0,
        }
    }

    #[inline(always)]
    pub fn apply<T: Float>(self, x: T) -> T {
        match self {
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => T::ONE / (T::ONE + (-x).exp()),
            Activation::Relu => {
                if x > T::ZERO {
                    x
                } else {
                    T::ZERO
                }
            }
            Activation::Linear => x,
        }
    }

    /// σ over a slice in place; the f32 tanh and sigmoid are vectorised.
    #[inline]
    pub fn apply_slice<T: Float>(self, xs: &mut [T]) {
        match self {
            Activation::Tanh => T::tanh_in_place(xs),
            Activation::Sigmoid => T::sigmoid_in_place(xs),
            Activation::Relu => xs.iter_mut().for_each(|x| {
                if *x < T::ZERO {
                    *x = T::ZERO
                }
            }),
            Activation::Linear => {}
        }
    }

    /// `out[j] = σ'(x_j)` given `h[j] = σ(x_j)`, with the choice of σ outside the loop so the
    /// loop vectorises.
    #[inline(always)]
    pub fn derivative_slice<T: Float>(self, h: &[T], out: &mut [T]) {
        let pairs = out.iter_mut().zip(h);
        match self {
            Activation::Tanh => pairs.for_each(|(d, h)| *d = T::ONE - *h * *h),
            Activation::Sigmoid => pairs.for_each(|(d, h)| *d = *h * (T::ONE - *h)),
            Activation::Relu => {
                pairs.for_each(|(d, h)| *d = if *h > T::ZERO { T::ONE } else { T::ZERO })
            }
            Activation::Linear => pairs.for_each(|(d, _)| *d = T::ONE),
        }
    }

    /// σ'(x) given h = σ(x).
    /// `out = c ⊙ σ'(x)` from `h = σ(x)`: [`derivative_slice`](Self::derivative_slice) and the
    /// product in one pass, for BPTT's `g_{t+1}·W_rec ⊙ σ'(x_t)`. Same operations, same bits.
    #[inline(always)]
    pub fn mul_derivative_slice<T: Float>(self, h: &[T], c: &[T], out: &mut [T]) {
        per_activation!(self, |d| {
            for ((o, h), c) in out.iter_mut().zip(h).zip(c) {
                *o = *c * d(*h);
            }
        })
    }

    /// `h ← h + coef · v ⊙ σ'(x)` where `h = σ(x)` on entry: eq. (10)'s fold in one pass, σ'
    /// read from each entry before it is overwritten.
    #[inline(always)]
    pub fn add_scaled_derivative<T: Float>(self, h: &mut [T], v: &[T], coef: T) {
        per_activation!(self, |d| {
            for (hk, vj) in h.iter_mut().zip(v) {
                *hk += coef * *vj * d(*hk);
            }
        })
    }

    #[inline(always)]
    pub fn derivative_from_output<T: Float>(self, h: T) -> T {
        match self {
            Activation::Tanh => T::ONE - h * h,
            Activation::Sigmoid => h * (T::ONE - h),
            Activation::Relu => {
                if h > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Activation::Linear => T::ONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_from_output_matches_finite_differences() {
        for act in [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Relu,
            Activation::Linear,
        ] {
            for &x in &[-2.3f64, -0.4, 0.3, 1.7] {
                let eps = 1e-6;
                let fd = (act.apply(x + eps) - act.apply(x - eps)) / (2.0 * eps);
                let d = act.derivative_from_output(act.apply(x));
                // central differences on smooth functions: error O(eps²) ≈ 1e-12, plus
                // cancellation ~1e-16/eps = 1e-10
                assert!((fd - d).abs() < 1e-8, "{act:?} at {x}: {fd} vs {d}");
            }
        }
    }

    #[test]
    fn parse_rejects_unknown_names() {
        assert_eq!(Activation::parse("tanh"), Ok(Activation::Tanh));
        let err = Activation::parse("softsign").unwrap_err().to_string();
        assert!(err.contains("softsign") && err.contains("sigmoid"), "{err}");
    }
}
