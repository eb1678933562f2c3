//! Gradient clipping: Algorithm 1's norm rescaling (§3.2) and Mikolov's element-wise clipping.

use crate::float::Float;
use crate::model::Params;

/// The global L2 norm over every gradient tensor (Ω's contribution included, since it sits in
/// W_rec's gradient). Summed in f64 in a fixed order.
pub fn global_norm<T: Float>(grads: &Params<T>) -> f64 {
    grads
        .tensors()
        .iter()
        .flat_map(|t| t.iter())
        .map(|v| v.to_f64() * v.to_f64())
        .sum::<f64>()
        .sqrt()
}

/// Algorithm 1: if ‖ĝ‖ ≥ threshold then ĝ ← (threshold/‖ĝ‖)·ĝ. Returns the norm before clipping
/// and whether it fired. A non-finite norm is returned untouched for the caller's policy.
pub fn clip_by_norm<T: Float>(grads: &mut Params<T>, threshold: f64) -> (f64, bool) {
    let norm = global_norm(grads);
    if !norm.is_finite() || norm < threshold || norm == 0.0 {
        return (norm, false);
    }
    let scale = T::from_f64(threshold / norm);
    for t in grads.tensors_mut() {
        t.iter_mut().for_each(|v| *v *= scale);
    }
    (norm, true)
}

/// Clamps every entry to [−threshold, threshold] (Mikolov, 2012). Returns how many entries
/// were clamped.
pub fn clip_by_value<T: Float>(grads: &mut Params<T>, threshold: f64) -> usize {
    let (hi, lo) = (T::from_f64(threshold), T::from_f64(-threshold));
    let mut count = 0;
    for t in grads.tensors_mut() {
        for v in t.iter_mut() {
            if *v > hi {
                *v = hi;
                count += 1;
            } else if *v < lo {
                *v = lo;
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dims;

    fn grads(scale: f64) -> Params<f64> {
        let mut g = Params::zeros(
            Dims {
                n_in: 2,
                n_hidden: 3,
                n_out: 2,
            },
            true,
        );
        for (k, t) in g.tensors_mut().into_iter().enumerate() {
            for (i, v) in t.iter_mut().enumerate() {
                *v = scale * ((k * 7 + i) as f64 * 0.77).sin();
            }
        }
        g
    }

    #[test]
    fn norm_clipping_rescales_to_the_threshold_and_keeps_direction() {
        let mut g = grads(10.0);
        let before = g.clone();
        let (norm, fired) = clip_by_norm(&mut g, 1.5);
        assert!(fired && norm > 1.5);
        assert!((global_norm(&g) - 1.5).abs() < 1e-12);
        for (a, b) in g.tensors().iter().zip(before.tensors()) {
            for (x, y) in a.iter().zip(b.iter()) {
                assert!((x * norm / 1.5 - y).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn norm_clipping_leaves_small_gradients_alone() {
        let mut g = grads(0.01);
        let before = g.clone();
        let (_, fired) = clip_by_norm(&mut g, 100.0);
        assert!(!fired);
        assert_eq!(g, before);
    }

    #[test]
    fn value_clipping_bounds_every_entry() {
        let mut g = grads(5.0);
        let n = clip_by_value(&mut g, 1.0);
        assert!(n > 0);
        assert!(g.tensors().iter().all(|t| t.iter().all(|v| v.abs() <= 1.0)));
    }
}
