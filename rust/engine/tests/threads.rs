//! Results do not depend on the thread count: a batch of one scored at most steps (the music
//! models: the read-out over the whole sequence, v_t kept for Ω's fold) gives the same bits on
//! one, two and three threads, with and without Ω, in f32 and f64.

use rnnstab_engine::{
    loss_and_grads, make_pool, Activation, Batch, Dims, Float, InitialState, Loss, ModelConfig,
    OmegaConfig, OmegaForm, Params, Settings, Targets, TimeReduction, Workspace,
};

/// Deterministic values in [−scale, scale] (a multiplicative hash of the index).
fn values<T: Float>(n: usize, seed: u64, scale: f64) -> Vec<T> {
    (0..n as u64)
        .map(|i| {
            let x = (i.wrapping_add(seed)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
            T::from_f64(scale * (2.0 * x as f64 / (1u64 << 53) as f64 - 1.0))
        })
        .collect()
}

/// (E, Ω, pairs, the gradient's bits, x_T's bits) on `threads` threads.
fn run<T: Float>(threads: usize, loss: Loss, alpha: f64) -> (u64, u64, usize, Vec<u64>, Vec<u64>) {
    let (i, h, o, steps) = (5, 200, 6, 40);
    let dims = Dims {
        n_in: i,
        n_hidden: h,
        n_out: o,
    };
    let mut params = Params::<T>::zeros(dims, false);
    // Weights of spectral radius about one: neither vanishing nor exploding over 40 steps.
    params.w_rec = values(h * h, 1, 1.2 / (h as f64).sqrt());
    params.w_in = values(h * i, 2, 0.5);
    params.b = values(h, 3, 0.1);
    params.w_out = values(o * h, 4, 0.3);
    params.b_out = values(o, 5, 0.1);
    let inputs = values::<T>(steps * i, 6, 1.0);
    let classes: Vec<i64> = (0..steps as i64).map(|t| (t * 7) % o as i64).collect();
    let targets_v: Vec<T> = (0..steps * o)
        .map(|k| T::from_f64(((k * 5) % 3 == 0) as u8 as f64))
        .collect();
    // Every step scored but every seventh: the read-out runs over the whole sequence.
    let mask: Vec<T> = (0..steps)
        .map(|t| T::from_f64(if t % 7 == 3 { 0.0 } else { 1.0 }))
        .collect();
    let x0 = values::<T>(h, 7, 0.5);
    let batch = Batch {
        steps,
        batch: 1,
        inputs: &inputs,
        targets: match loss {
            Loss::SoftmaxCe => Targets::Classes(&classes),
            _ => Targets::Values(&targets_v),
        },
        mask: &mask,
    };
    let settings = Settings {
        model: ModelConfig {
            activation: Activation::Tanh,
            loss,
            time_reduction: TimeReduction::Mean,
        },
        omega: OmegaConfig {
            alpha,
            form: OmegaForm::Norm,
        },
        full_length: true,
    };
    let pool = make_pool(Some(threads)).expect("a small pool");
    let mut ws = Workspace::new();
    let mut grads = params.zeros_like();
    let out = loss_and_grads(
        &pool,
        &params,
        &batch,
        InitialState::PerExample(&x0),
        &settings,
        &mut ws,
        &mut grads,
    )
    .expect("a well-formed batch");
    let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
    let grad_bits = grads.tensors().iter().flat_map(|t| bits(t)).collect();
    (
        out.loss.to_bits(),
        out.omega.to_bits(),
        out.omega_pairs,
        grad_bits,
        bits(ws.final_state()),
    )
}

fn same_bits_on_any_thread_count<T: Float>() {
    for loss in [Loss::SoftmaxCe, Loss::Bce] {
        for alpha in [0.0, 1.0] {
            let one = run::<T>(1, loss, alpha);
            assert!(one.2 > 30, "Ω's pairs are counted");
            for threads in [2, 3] {
                assert!(
                    run::<T>(threads, loss, alpha) == one,
                    "{threads} threads changed the bits ({loss:?}, α = {alpha})"
                );
            }
        }
    }
}

#[test]
fn a_batch_of_one_gives_the_same_bits_on_any_thread_count_f32() {
    same_bits_on_any_thread_count::<f32>();
}

#[test]
fn a_batch_of_one_gives_the_same_bits_on_any_thread_count_f64() {
    same_bits_on_any_thread_count::<f64>();
}
