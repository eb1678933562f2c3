// The end of a step: the global gradient norm and the clipping decision (`grad_norm`, one
// workgroup), then the update of every parameter (`apply_update`, one invocation each).
//
// Norm: ‖ĝ‖ over all of θ (Ω's part included, it sits in W_rec's gradient), computed as
// max|g|·sqrt(Σ (g/max|g|)²) so that f32 squares neither overflow nor underflow.
// Algorithm 1 (§3.2): if ‖ĝ‖ ≥ threshold then ĝ ← (threshold/‖ĝ‖)·ĝ. Element-wise clipping
// clamps each entry to ±threshold. A non-finite norm or loss leaves θ untouched ("skip",
// "error") or shrinks W_rec by (1 − lr·0.02) ("shrink", the authors' code).

const RED: u32 = 256u;

var<workgroup> red_max: array<f32, RED>;
var<workgroup> red_bad: array<u32, RED>;  // bit 0: some entry is ±inf or NaN; bit 1: NaN
var<workgroup> red_sum: array<f32, RED>;
var<workgroup> max_sh: f32;

@compute @workgroup_size(256)
fn grad_norm(@builtin(local_invocation_index) lid: u32) {
    let n = cfg.n_params;
    var mx = 0.0;
    var bad = 0u;
    for (var p = lid; p < n; p += RED) {
        let g = grad[p];
        if is_finite(g) {
            mx = max(mx, abs(g));
        } else {
            bad |= 1u;
            if (bitcast<u32>(g) & 0x007fffffu) != 0u {
                bad |= 2u;
            }
        }
    }
    red_max[lid] = mx;
    red_bad[lid] = bad;
    workgroupBarrier();
    for (var half = RED / 2u; half > 0u; half /= 2u) {
        if lid < half {
            red_max[lid] = max(red_max[lid], red_max[lid + half]);
            red_bad[lid] |= red_bad[lid + half];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        max_sh = red_max[0];
    }
    let m = workgroupUniformLoad(&max_sh);
    var s = 0.0;
    if m > 0.0 {
        for (var p = lid; p < n; p += RED) {
            let g = grad[p];
            if is_finite(g) {
                let q = g / m;
                s += q * q;
            }
        }
    }
    red_sum[lid] = s;
    workgroupBarrier();
    for (var half = RED / 2u; half > 0u; half /= 2u) {
        if lid < half {
            red_sum[lid] += red_sum[lid + half];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        var norm = m * sqrt(red_sum[0]);
        let flags = red_bad[0];
        if (flags & 2u) != 0u {
            norm = bitcast<f32>(0x7fc00000u); // NaN
        } else if (flags & 1u) != 0u {
            norm = bitcast<f32>(0x7f800000u); // +inf
        }
        let nonfinite = !is_finite(norm) || !is_finite(stats[STAT_LOSS]);
        var clipped = 0.0;
        var scale = 1.0;
        if !nonfinite {
            let thr = cfg.clip_threshold;
            if cfg.clip_kind == 1u && norm >= thr && norm != 0.0 {
                clipped = 1.0;
                scale = thr / norm;
            } else if cfg.clip_kind == 2u && m > thr {
                clipped = 1.0;
            }
        }
        stats[STAT_NORM] = norm;
        stats[STAT_MAXABS] = m;
        stats[STAT_NONFINITE] = select(0.0, 1.0, nonfinite);
        stats[STAT_CLIPPED] = clipped;
        stats[STAT_SCALE] = scale;
    }
}

@compute @workgroup_size(64)
fn apply_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = flat_id(gid, nwg);
    if p >= cfg.n_params {
        return;
    }
    if stats[STAT_NONFINITE] != 0.0 {
        if cfg.nonfinite == 1u && p < cfg.off_w_in {
            theta[p] *= cfg.shrink;
        }
        return;
    }
    var d = grad[p];
    if cfg.clip_kind == 1u && stats[STAT_CLIPPED] != 0.0 {
        d *= stats[STAT_SCALE];
    } else if cfg.clip_kind == 2u {
        d = clamp(d, -cfg.clip_threshold, cfg.clip_threshold);
    }
    grad[p] = d; // the clipped gradient, as the CPU trainer keeps it
    let lr = cfg.lr;
    let mu = cfg.momentum;
    switch cfg.optimizer {
        case 1u: {
            // momentum: v ← μv − lr·g; θ ← θ + v
            let v = mu * opt_state[p] - lr * d;
            opt_state[p] = v;
            theta[p] += v;
        }
        case 2u: {
            // Nesterov (Sutskever et al., 2013): θ ← θ − μ·v_old + (1 + μ)·v_new
            let old = opt_state[p];
            let v = mu * old - lr * d;
            opt_state[p] = v;
            theta[p] += -(mu * old) + (1.0 + mu) * v;
        }
        case 3u: {
            // RMSProp: s ← ρs + (1 − ρ)g²; θ ← θ − lr·g / (√s + ε)
            let s = cfg.rho * opt_state[p] + (1.0 - cfg.rho) * d * d;
            opt_state[p] = s;
            theta[p] -= lr * d / (sqrt(s) + cfg.eps);
        }
        case 4u: {
            // Adagrad: s ← s + g²; θ ← θ − lr·g / (√s + ε)
            let s = opt_state[p] + d * d;
            opt_state[p] = s;
            theta[p] -= lr * d / (sqrt(s) + cfg.eps);
        }
        default: {
            // the paper's plain SGD
            theta[p] -= lr * d;
        }
    }
}
