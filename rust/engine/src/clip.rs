//! Gradient clipping: Algorithm 1's norm rescaling (§3.2) and Mikolov's element-wise clipping.

use crate::float::Float;
use crate::model::Params;

/// The global L2 norm over every gradient tensor (Ω's contribution included, since it sits in
/// W_rec's gradient). Summed in f64 in a fixed order: entry j of the concatenated tensors goes
/// to lane j mod 8, and the lanes are added in order at the end. One running sum would be a
/// chain of dependent additions (a batch of one spent 7% of its update here); eight lanes
/// vectorise, and the order still depends on the shapes alone.
pub fn global_norm<T: Float>(grads: &Params<T>) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let mut lane = 0;
    for t in grads.tensors() {
        // Continue the lane pattern across tensors, so it is the concatenation's.
        let (head, rest) = t.split_at(((LANES - lane) % LANES).min(t.len()));
        for v in head {
            acc[lane] += v.to_f64() * v.to_f64();
            lane = (lane + 1) % LANES;
        }
        let chunks = rest.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for (a, v) in acc.iter_mut().zip(c) {
                *a += v.to_f64() * v.to_f64();
            }
        }
        for v in tail {
            acc[lane] += v.to_f64() * v.to_f64();
            lane = (lane + 1) % LANES;
        }
    }
    acc.iter().sum::<f64>().sqrt()
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
    fn global_norm_is_the_l2_norm_of_all_tensors_with_the_lane_order_fixed() {
        // Tensor lengths 6, 1, 18, 3, 2 (+ x0 of 0): the lane pattern crosses every boundary.
        let mut g = Params::zeros(
            Dims {
                n_in: 6,
                n_hidden: 3,
                n_out: 1,
            },
            false,
        );
        for (j, t) in g.tensors_mut().into_iter().enumerate() {
            for (i, v) in t.iter_mut().enumerate() {
                *v = ((i * 7 + j * 3) % 11) as f64 * 0.37 - 1.5;
            }
        }
        let naive: f64 = g
            .tensors()
            .iter()
            .flat_map(|t| t.iter())
            .map(|v| v * v)
            .sum();
        // 30 terms of magnitude ≤ 4: the two summation orders differ by a few ulp at most.
        assert!((global_norm(&g) - naive.sqrt()).abs() <= 1e-14 * naive.sqrt());
        // The lanes: entry j of the concatenation goes to lane j mod 8.
        let flat: Vec<f64> = g.tensors().iter().flat_map(|t| t.iter().copied()).collect();
        let mut lanes = [0.0f64; 8];
        for (j, v) in flat.iter().enumerate() {
            lanes[j % 8] += v * v;
        }
        assert_eq!(global_norm(&g), lanes.iter().sum::<f64>().sqrt());
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
