//! Times the engine's kernels in isolation at the paper's sizes, to compare with the FMA peak.
//! Usage: kernel_bench [H] [rows] [T]

use rnnstab_engine::at_b::matmul_at_b;
use rnnstab_engine::kernels::{matmul_packed, tanh_f32_slice, PackedMatrix};
use rnnstab_engine::linalg::{View, ViewMut};
use std::time::Instant;

/// Prints the time per call of `f`: the best of ten windows of `reps / 10` calls, so a window
/// in which another process had the core does not count.
fn time(name: &str, fmas: f64, reps: usize, mut f: impl FnMut()) {
    f();
    let per_window = (reps / 10).max(1);
    let dt = (0..10)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_window {
                f();
            }
            t.elapsed().as_secs_f64() / per_window as f64
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "{name:<28} {:>9.2} us  {:>7.1} GFLOP/s",
        dt * 1e6,
        2.0 * fmas / dt / 1e9
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let get = |i: usize, d: usize| args.get(i).copied().unwrap_or(d);
    let (h, rows, t) = (get(0, 50), get(1, 20), get(2, 200));
    let w: Vec<f32> = (0..h * h)
        .map(|i| ((i * 37) % 101) as f32 / 500.0)
        .collect();
    let mut p = PackedMatrix::new();
    p.pack_transposed(&w, h, h);
    let a: Vec<f32> = (0..rows * h)
        .map(|i| ((i * 53) % 97) as f32 / 97.0)
        .collect();
    let mut c = vec![0.0f32; rows * p.np];
    let fl = (rows * h * h) as f64;
    time("step product (rows×H·H×H)", fl, 20000, || {
        let (av, cv) = (
            View::new(&a, rows, h),
            ViewMut::strided(&mut c, 0, rows, h, p.np, 1),
        );
        matmul_packed(av, &p, cv)
    });
    let mut x: Vec<f32> = (0..rows * h).map(|i| (i % 17) as f32 / 5.0 - 1.7).collect();
    time("tanh (rows×H)", 0.0, 20000, || {
        for r in x.chunks_exact_mut(h) {
            tanh_f32_slice(r)
        }
    });
    let k = rows * (t + 1);
    let g: Vec<f32> = (0..k * h).map(|i| ((i * 7) % 13) as f32 / 13.0).collect();
    let hs: Vec<f32> = (0..k * h).map(|i| ((i * 11) % 19) as f32 / 19.0).collect();
    // A weight-gradient product AᵀB over all k rows, A with m columns, B with H.
    let at_b = |name: &str, a: &[f32], m: usize, b: &[f32]| {
        let mut out = vec![0.0f32; m * h];
        time(name, (k * m * h) as f64, 200, || {
            let (av, bv) = (View::new(a, k, m), View::new(b, k, h));
            matmul_at_b(av, bv, ViewMut::new(&mut out, m, h))
        });
    };
    at_b("dW_rec = GᵀH (k×H, k×H)", &g, h, &hs);
    // ∂W_inᵀ and ∂b in one product: the inputs (I = 6) and a column of ones, against G.
    let u: Vec<f32> = (0..k * 7).map(|i| ((i * 5) % 7) as f32 / 7.0).collect();
    at_b("dW_in,db = [U 1]ᵀG (k×7, k×H)", &u, 7, &g);
}
