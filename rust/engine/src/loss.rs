//! Per-step losses ℓ(y_t, target_t) and their gradients with respect to the outputs y_t.
//!
//! The cost of a batch is E = (1/B) Σ_b Σ_t m_{t,b} ℓ_{t,b} ("sum" time reduction) or, with the
//! "mean" reduction, each sequence's sum divided by its number of scored steps (the paper's
//! music runs average over the sequence length). Losses are evaluated in f64 whatever the
//! engine's element type, so a reported loss does not depend on f32 rounding of the reduction.

use crate::error::{EngineError, Result};
use crate::float::Float;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Softmax over the outputs with an integer class target.
    SoftmaxCe,
    /// Squared error summed over the outputs: ℓ = Σ_o (y_o − t_o)².
    Mse,
    /// Independent Bernoulli outputs (sigmoid of y), targets in {0, 1}: piano rolls.
    Bce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeReduction {
    Sum,
    Mean,
}

impl Loss {
    pub const CHOICES: &'static str = "softmax_ce, mse, bce";

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "softmax_ce" => Ok(Loss::SoftmaxCe),
            "mse" => Ok(Loss::Mse),
            "bce" => Ok(Loss::Bce),
            _ => Err(EngineError::UnknownName {
                what: "loss",
                got: name.to_string(),
                choices: Self::CHOICES,
            }),
        }
    }

    /// Whether the targets are class indices (true) or values shaped like the outputs.
    pub fn has_class_targets(self) -> bool {
        matches!(self, Loss::SoftmaxCe)
    }
}

impl TimeReduction {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "sum" => Ok(TimeReduction::Sum),
            "mean" => Ok(TimeReduction::Mean),
            _ => Err(EngineError::UnknownName {
                what: "time reduction",
                got: name.to_string(),
                choices: "sum, mean",
            }),
        }
    }
}

/// The target of one (step, example).
#[derive(Clone, Copy)]
pub enum TargetRow<'a, T> {
    Class(usize),
    Values(&'a [T]),
}

/// ℓ(y, target), and `dy ← weight · ∂ℓ/∂y`.
pub fn loss_and_grad<T: Float>(
    loss: Loss,
    y: &[T],
    target: TargetRow<'_, T>,
    weight: f64,
    dy: &mut [T],
) -> f64 {
    match (loss, target) {
        (Loss::SoftmaxCe, TargetRow::Class(c)) => {
            let max = y.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v.to_f64()));
            let z: f64 = y.iter().map(|&v| (v.to_f64() - max).exp()).sum();
            let lse = max + z.ln();
            for (o, (d, &v)) in dy.iter_mut().zip(y).enumerate() {
                let p = (v.to_f64() - lse).exp();
                let onehot = if o == c { 1.0 } else { 0.0 };
                *d = T::from_f64(weight * (p - onehot));
            }
            lse - y[c].to_f64()
        }
        (Loss::Mse, TargetRow::Values(t)) => {
            let mut l = 0.0;
            for ((d, &v), &tv) in dy.iter_mut().zip(y).zip(t) {
                let e = v.to_f64() - tv.to_f64();
                l += e * e;
                *d = T::from_f64(weight * 2.0 * e);
            }
            l
        }
        (Loss::Bce, TargetRow::Values(t)) => {
            let mut l = 0.0;
            for ((d, &v), &tv) in dy.iter_mut().zip(y).zip(t) {
                let (y, t) = (v.to_f64(), tv.to_f64());
                // −[t log σ(y) + (1−t) log(1−σ(y))] = softplus(y) − t·y, written so that
                // neither exp overflows nor log underflows for large |y|.
                let softplus = y.max(0.0) + (-y.abs()).exp().ln_1p();
                l += softplus - t * y;
                let p = 1.0 / (1.0 + (-y).exp());
                *d = T::from_f64(weight * (p - t));
            }
            l
        }
        // Batch validation pairs each loss with its target kind before any compute starts.
        _ => unreachable!("target kind does not match the loss"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_gradient(loss: Loss, y: &[f64], target: TargetRow<'_, f64>) {
        let mut dy = vec![0.0; y.len()];
        loss_and_grad(loss, y, target, 1.0, &mut dy);
        for o in 0..y.len() {
            let eps = 1e-6;
            let mut yp = y.to_vec();
            let mut ym = y.to_vec();
            yp[o] += eps;
            ym[o] -= eps;
            let mut scratch = vec![0.0; y.len()];
            let fd = (loss_and_grad(loss, &yp, target, 1.0, &mut scratch)
                - loss_and_grad(loss, &ym, target, 1.0, &mut scratch))
                / (2.0 * eps);
            // f64 central differences: truncation ~eps² and rounding ~1e-16/eps ≈ 1e-10.
            assert!(
                (fd - dy[o]).abs() < 1e-7,
                "{loss:?} output {o}: fd {fd} vs {}",
                dy[o]
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let y = [0.3, -1.2, 2.5, 0.1];
        check_gradient(Loss::SoftmaxCe, &y, TargetRow::Class(2));
        let t = [0.5, 0.0, 1.0, -0.3];
        check_gradient(Loss::Mse, &y, TargetRow::Values(&t));
        let tb = [1.0, 0.0, 1.0, 0.0];
        check_gradient(Loss::Bce, &y, TargetRow::Values(&tb));
    }

    #[test]
    fn bce_is_finite_for_large_logits() {
        let mut dy = [0.0f32; 2];
        let l = loss_and_grad(
            Loss::Bce,
            &[80.0f32, -80.0],
            TargetRow::Values(&[0.0, 1.0]),
            1.0,
            &mut dy,
        );
        assert!((l - 160.0).abs() < 1e-9 && dy.iter().all(|d| d.is_finite()));
    }
}
