// Declarations shared by every rnnstab kernel: the configuration, the buffers, σ of eq. (2)
// and the per-step losses. Every kernel file is compiled as `common.wgsl` + itself.
//
// Layouts (row-major, as in the CPU engine, rust/engine/src/bptt/workspace.rs):
//   theta, grad, opt_state  θ = [W_rec (H,H) | W_in (H,I) | b (H) | W_out (O,H) | b_out (O)]
//   batch                   [u (T,B,I) | targets (T,B) class index as f32, or (T,B,O) | mask (T,B)
//                           | row_scale (B)]
//   hs, gs, vs, zs          (B,S,H): h_t = σ(x_t); g_t = ∂E/∂x_t; v_t = (W_recᵀ g_{t+1}) ⊙ σ'(x_t),
//                           the part of g_t carried back from step t+1 (= g_{t+1} J_t);
//                           Z_t = h_t + Ω's fold of eq. (10) (see omega.wgsl). Slot 0 is x_0 = 0.
//   dy                      (B,S,O): ∂E/∂y_t, zero where the mask is off
//   pairs                   (B,S,3): Ω pair k = slot k: [valid, Ω_k, c_k]
//   row_loss                (B): Σ_t m_t ℓ_t per example
//   stats                   the scalars read back after a step, indices STAT_* below

struct Cfg {
    n_hidden: u32,
    n_in: u32,
    n_out: u32,
    batch: u32,
    // S = (scored steps) + 1 state slots; `steps` is T of the uploaded batch.
    slots: u32,
    steps: u32,
    activation: u32,   // 0 tanh, 1 sigmoid, 2 relu, 3 linear
    loss: u32,         // 0 softmax_ce, 1 mse, 2 bce
    off_targets: u32,  // offsets into `batch`
    off_mask: u32,
    off_scale: u32,
    n_params: u32,
    off_w_in: u32,     // offsets into θ
    off_b: u32,
    off_w_out: u32,
    off_b_out: u32,
    omega_form: u32,   // 0 norm, 1 squared
    clip_kind: u32,    // 0 none, 1 norm (Algorithm 1), 2 element-wise value, 3 skip on a spike,
                       // 4 AGC (threshold = λ)
    optimizer: u32,    // 0 sgd, 1 momentum, 2 nesterov, 3 rmsprop, 4 adagrad
    nonfinite: u32,    // 0 skip, 1 shrink, 2 error
    alpha: f32,
    clip_threshold: f32,
    lr: f32,
    momentum: f32,
    rho: f32,
    eps: f32,
    shrink: f32,       // 1 − lr·0.02, the authors' W_rec shrink on a non-finite gradient
    freeze_biases: u32, // 1: ∂b = ∂b_out = 0 (they neither move nor count in the norm)
}

@group(0) @binding(0) var<storage, read> cfg: Cfg;
@group(0) @binding(1) var<storage, read_write> theta: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> opt_state: array<f32>;
@group(0) @binding(4) var<storage, read> batch: array<f32>;
@group(0) @binding(5) var<storage, read_write> hs: array<f32>;
@group(0) @binding(6) var<storage, read_write> gs: array<f32>;
@group(0) @binding(7) var<storage, read_write> vs: array<f32>;
@group(0) @binding(8) var<storage, read_write> zs: array<f32>;
@group(0) @binding(9) var<storage, read_write> dy: array<f32>;
@group(0) @binding(10) var<storage, read_write> pairs: array<f32>;
@group(0) @binding(11) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(12) var<storage, read_write> stats: array<f32>;

const STAT_LOSS: u32 = 0u;
const STAT_OMEGA_SUM: u32 = 1u;
const STAT_PAIRS: u32 = 2u;
const STAT_OMEGA: u32 = 3u;
const STAT_BETA: u32 = 4u;
const STAT_NORM: u32 = 5u;
const STAT_MAXABS: u32 = 6u;
const STAT_NONFINITE: u32 = 7u;
const STAT_CLIPPED: u32 = 8u;
const STAT_SCALE: u32 = 9u;
const STAT_SPIKE: u32 = 10u;  // 1: the norm exceeded the skip rule's threshold

// Pairs whose ‖g_{k+1}‖² is below this carry no error signal (engine: OMEGA_MIN_SIGNAL).
const OMEGA_MIN_SIGNAL: f32 = 1e-20;

// The flat index of an element-wise invocation. Large grids are dispatched as (X, Y) workgroups
// of 64 because one dimension holds at most 65535 workgroups.
fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.y * nwg.x * 64u + gid.x;
}

// Index of (example b, slot t, unit j) in the (B,S,H) state buffers.
fn sidx(b: u32, t: u32, j: u32) -> u32 {
    return (b * cfg.slots + t) * cfg.n_hidden + j;
}

// Index of (example b, slot t, output o) in dy.
fn yidx(b: u32, t: u32, o: u32) -> u32 {
    return (b * cfg.slots + t) * cfg.n_out + o;
}

// Input u_{t}[i] of example b at 0-based step t.
fn input_at(t: u32, b: u32, i: u32) -> f32 {
    return batch[(t * cfg.batch + b) * cfg.n_in + i];
}

fn mask_at(t: u32, b: u32) -> f32 {
    return batch[cfg.off_mask + t * cfg.batch + b];
}

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// tanh without overflow and without the cancellation of (1 − e^{−2|x|}) near 0: a Taylor
// polynomial below 0.3 (next term < 1e-9 relative), the exponential form above.
fn tanh_accurate(x: f32) -> f32 {
    let a = abs(x);
    if a < 0.3 {
        let x2 = x * x;
        return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0
            + x2 * (62.0 / 2835.0 + x2 * (-1382.0 / 155925.0))))));
    }
    let e = exp(-2.0 * a);
    return sign(x) * (1.0 - e) / (1.0 + e);
}

// σ of eq. (2).
fn act(x: f32) -> f32 {
    switch cfg.activation {
        case 0u: { return tanh_accurate(x); }
        case 1u: { return 1.0 / (1.0 + exp(-x)); }
        case 2u: { return max(x, 0.0); }
        default: { return x; }
    }
}

// σ'(x) written in terms of h = σ(x), as the engine stores h and never x.
fn dact(h: f32) -> f32 {
    switch cfg.activation {
        case 0u: { return 1.0 - h * h; }
        case 1u: { return h * (1.0 - h); }
        case 2u: { return select(0.0, 1.0, h > 0.0); }
        default: { return 1.0; }
    }
}

// The input part of eq. (2)'s pre-activation, Σ_i W_in[j,i] u_t[i] + b[j], for the 1-based
// slot t; the callers add Σ_k W_rec[j,k] h_{t−1}[k] from wherever they keep h_{t−1}.
fn input_drive(b: u32, t: u32, j: u32) -> f32 {
    let n_in = cfg.n_in;
    var x = theta[cfg.off_b + j];
    let w = cfg.off_w_in + j * n_in;
    for (var i = 0u; i < n_in; i++) {
        x += theta[w + i] * input_at(t - 1u, b, i);
    }
    return x;
}

fn softplus(y: f32) -> f32 {
    return max(y, 0.0) + log(1.0 + exp(-abs(y)));
}

fn target_value(t: u32, b: u32, o: u32) -> f32 {
    return batch[cfg.off_targets + (t * cfg.batch + b) * cfg.n_out + o];
}

fn target_class(t: u32, b: u32) -> u32 {
    return u32(batch[cfg.off_targets + t * cfg.batch + b]);
}
