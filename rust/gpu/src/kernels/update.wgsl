// The end of a step: the global gradient norm and the clipping decision (`grad_norm`, one
// workgroup), then the update of every parameter (`apply_update`, one invocation each).
//
// Norm: ‖ĝ‖ over all of θ (Ω's part included, it sits in W_rec's gradient), computed as
// max|g|·sqrt(Σ (g/max|g|)²) so that f32 squares neither overflow nor underflow.
// Algorithm 1 (§3.2): if ‖ĝ‖ ≥ threshold then ĝ ← (threshold/‖ĝ‖)·ĝ. Element-wise clipping
// clamps each entry to ±threshold. The skip rule (clip_kind 3) leaves θ and the optimiser's
// state untouched when ‖ĝ‖ > threshold (a spike). AGC (clip_kind 4, threshold = λ) rescales
// each unit's row of ĝ in `agc_clip`, dispatched between the two. The adaptive rules'
// thresholds come from the host (rnnstab_engine::ClipRule), as the uniform's threshold of
// each step. A non-finite norm or loss leaves θ untouched ("skip",
// "error") or shrinks W_rec by the factor `cfg.shrink` ("shrink": the authors' 1 − lr·0.02,
// bounded to [0.5, 1] by rnnstab_engine::shrink_factor). An update that would make some entry
// of θ or of the optimiser's state non-finite (a finite gradient times a huge learning rate)
// is found by `grad_norm` before anything is written and is treated the same way; the stat
// then reads 2 instead of 1.

const RED: u32 = 256u;

var<workgroup> red_max: array<f32, RED>;
var<workgroup> red_bad: array<u32, RED>;  // bit 0: some entry is ±inf or NaN; bit 1: NaN
var<workgroup> red_sum: array<f32, RED>;
var<workgroup> max_sh: f32;
var<workgroup> scale_sh: f32;
var<workgroup> clipped_sh: f32;
var<workgroup> agc_skip_sh: f32;

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
        var spike = 0.0;
        if !nonfinite {
            let thr = cfg.clip_threshold;
            if cfg.clip_kind == 1u && norm >= thr && norm != 0.0 {
                clipped = 1.0;
                scale = thr / norm;
            } else if cfg.clip_kind == 2u && m > thr {
                clipped = 1.0;
            } else if cfg.clip_kind == 3u && norm > thr {
                spike = 1.0;
            }
        }
        stats[STAT_SPIKE] = spike;
        stats[STAT_NORM] = norm;
        stats[STAT_MAXABS] = m;
        stats[STAT_NONFINITE] = select(0.0, 1.0, nonfinite);
        stats[STAT_CLIPPED] = clipped;
        stats[STAT_SCALE] = scale;
        scale_sh = scale;
        clipped_sh = clipped;
    }
    // Would the update overflow? The candidates are computed exactly as apply_update will.
    // Under AGC the gradient is not final yet: agc_clip checks after clipping instead.
    if cfg.clip_kind == 4u {
        return;
    }
    let sc = workgroupUniformLoad(&scale_sh);
    let cl = workgroupUniformLoad(&clipped_sh) != 0.0;
    var overflow = 0u;
    for (var p = lid; p < n; p += RED) {
        let g = grad[p];
        if is_finite(g) {
            let next = updated(p, clipped_grad(g, cl, sc));
            if !is_finite(next.x) || !is_finite(next.y) {
                overflow = 1u;
            }
        }
    }
    let any_overflow = any_in_workgroup(lid, overflow);
    // A skipped spike is never applied, so it cannot overflow anything.
    if lid == 0u && any_overflow && stats[STAT_NONFINITE] == 0.0 && stats[STAT_SPIKE] == 0.0 {
        stats[STAT_NONFINITE] = 2.0;
    }
}

// ε of AGC (rnnstab_engine::AGC_EPS): the floor on a unit's weight norm.
const AGC_EPS: f32 = 1e-3;

// Unit u of θ for AGC as (first index, width): the rows of W_rec, W_in and W_out (the weights
// into one unit), and each entry of b and b_out.
fn agc_unit(u: u32) -> vec2<u32> {
    let h = cfg.n_hidden;
    if u < h {
        return vec2<u32>(u * h, h);
    }
    if u < 2u * h {
        return vec2<u32>(cfg.off_w_in + (u - h) * cfg.n_in, cfg.n_in);
    }
    if u < 3u * h {
        return vec2<u32>(cfg.off_b + (u - 2u * h), 1u);
    }
    if u < 3u * h + cfg.n_out {
        return vec2<u32>(cfg.off_w_out + (u - 3u * h) * h, h);
    }
    return vec2<u32>(cfg.off_b_out + (u - 3u * h - cfg.n_out), 1u);
}

// ‖row‖ of `grad` (which = 0) or `theta` (1), as max|x|·sqrt(Σ (x/max|x|)²) so that f32 squares
// neither overflow nor underflow.
fn row_norm(start: u32, width: u32, which: u32) -> f32 {
    var m = 0.0;
    for (var j = 0u; j < width; j++) {
        let x = select(grad[start + j], theta[start + j], which == 1u);
        m = max(m, abs(x));
    }
    if m == 0.0 {
        return 0.0;
    }
    var s = 0.0;
    for (var j = 0u; j < width; j++) {
        let q = select(grad[start + j], theta[start + j], which == 1u) / m;
        s += q * q;
    }
    return m * sqrt(s);
}

// AGC (Brock et al. 2021), one workgroup: for each unit i, if ‖G_i‖ > λ·max(‖W_i‖, ε) then
// G_i ← λ·max(‖W_i‖, ε)/‖G_i‖ · G_i, in place; then the overflow check grad_norm left to it.
@compute @workgroup_size(256)
fn agc_clip(@builtin(local_invocation_index) lid: u32) {
    // The non-finite flag of grad_norm, made uniform for the barriers below.
    if lid == 0u {
        agc_skip_sh = stats[STAT_NONFINITE];
    }
    let skip = workgroupUniformLoad(&agc_skip_sh) != 0.0;
    var fired = 0u;
    if !skip {
        let units = 3u * cfg.n_hidden + 2u * cfg.n_out;
        for (var u = lid; u < units; u += RED) {
            let r = agc_unit(u);
            let gn = row_norm(r.x, r.y, 0u);
            let bound = cfg.clip_threshold * max(row_norm(r.x, r.y, 1u), AGC_EPS);
            if gn > bound {
                let scale = bound / gn;
                for (var j = 0u; j < r.y; j++) {
                    grad[r.x + j] *= scale;
                }
                fired = 1u;
            }
        }
    }
    storageBarrier();
    let any_fired = any_in_workgroup(lid, fired);
    if lid == 0u && !skip {
        stats[STAT_CLIPPED] = select(0.0, 1.0, any_fired);
    }
    workgroupBarrier();
    if skip {
        return;
    }
    var overflow = 0u;
    for (var p = lid; p < cfg.n_params; p += RED) {
        let next = updated(p, grad[p]);
        if !is_finite(next.x) || !is_finite(next.y) {
            overflow = 1u;
        }
    }
    let any_overflow = any_in_workgroup(lid, overflow);
    if lid == 0u && any_overflow {
        stats[STAT_NONFINITE] = 2.0;
    }
}

// The gradient entry after clipping (Algorithm 1's common scale, or element-wise; AGC's is
// already in `grad`).
// Whether any invocation of the workgroup passed a non-zero `flag`: an OR-reduction through
// `red_bad`. Call it in uniform control flow; every invocation gets the answer. A later write
// to `red_bad` needs a workgroupBarrier() first, as every reuse of a workgroup array does.
fn any_in_workgroup(lid: u32, flag: u32) -> bool {
    red_bad[lid] = flag;
    workgroupBarrier();
    for (var half = RED / 2u; half > 0u; half /= 2u) {
        if lid < half {
            red_bad[lid] |= red_bad[lid + half];
        }
        workgroupBarrier();
    }
    return red_bad[0] != 0u;
}

fn clipped_grad(g: f32, clipped: bool, scale: f32) -> f32 {
    var d = g;
    if cfg.clip_kind == 1u && clipped {
        d *= scale;
    } else if cfg.clip_kind == 2u {
        d = clamp(d, -cfg.clip_threshold, cfg.clip_threshold);
    }
    return d;
}

// (θ', state') of entry p after the optimiser's update with gradient d.
fn updated(p: u32, d: f32) -> vec2<f32> {
    let lr = cfg.lr;
    let mu = cfg.momentum;
    let th = theta[p];
    switch cfg.optimizer {
        case 1u: {
            // momentum: v ← μv − lr·g; θ ← θ + v
            let v = mu * opt_state[p] - lr * d;
            return vec2<f32>(th + v, v);
        }
        case 2u: {
            // Nesterov (Sutskever et al., 2013): θ ← θ − μ·v_old + (1 + μ)·v_new
            let old = opt_state[p];
            let v = mu * old - lr * d;
            return vec2<f32>(th + (-(mu * old) + (1.0 + mu) * v), v);
        }
        case 3u: {
            // RMSProp: s ← ρs + (1 − ρ)g²; θ ← θ − lr·g / (√s + ε)
            let s = cfg.rho * opt_state[p] + (1.0 - cfg.rho) * d * d;
            return vec2<f32>(th - lr * d / (sqrt(s) + cfg.eps), s);
        }
        case 4u: {
            // Adagrad: s ← s + g²; θ ← θ − lr·g / (√s + ε)
            let s = opt_state[p] + d * d;
            return vec2<f32>(th - lr * d / (sqrt(s) + cfg.eps), s);
        }
        default: {
            // the paper's plain SGD; it keeps no state
            return vec2<f32>(th - lr * d, 0.0);
        }
    }
}

@compute @workgroup_size(64)
fn apply_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = flat_id(gid, nwg);
    if p >= cfg.n_params || stats[STAT_SPIKE] != 0.0 {
        return;
    }
    if stats[STAT_NONFINITE] != 0.0 {
        if cfg.nonfinite == 1u && p < cfg.off_w_in {
            theta[p] *= cfg.shrink;
        }
        return;
    }
    let d = clipped_grad(grad[p], stats[STAT_CLIPPED] != 0.0, stats[STAT_SCALE]);
    grad[p] = d; // the clipped gradient, as the CPU trainer keeps it
    let next = updated(p, d);
    theta[p] = next.x;
    if cfg.optimizer != 0u {
        opt_state[p] = next.y;
    }
}
