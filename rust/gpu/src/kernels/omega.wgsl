// The Ω regulariser of eq. (9) and its immediate gradient, eq. (10).
//
// For every (example, k), k = 0..S−2, with a = g_{k+1} and v = g_{k+1} J_k = v_k (backward.wgsl):
//   form "norm":    Ω_k = (‖v‖/‖a‖ − 1)²,    c_k = 2(‖v‖/‖a‖ − 1) / (‖v‖‖a‖)
//   form "squared": Ω_k = (‖v‖²/‖a‖² − 1)², c_k = 4(‖v‖²/‖a‖² − 1) / ‖a‖²
// so that ∂⁺Ω_k/∂W_rec = c_k · a ⊗ (v ⊙ σ'(x_k)). Pairs with ‖a‖² < 1e-20 carry no error
// signal and are left out of Ω's mean over N valid pairs (as in the CPU engine).
//
// `omega_fold` folds α·∂⁺Ω/∂W_rec = (α/N) Σ_k c_k g_{k+1}ᵀ (v_k ⊙ σ'(x_k)) into the W_rec
// product: with Z_k = h_k + (α/N)·c_k·(v_k ⊙ σ'(x_k)), Σ_k g_{k+1}ᵀ Z_k is ∂(E + αΩ)/∂W_rec.

const RED: u32 = 256u;

var<workgroup> red_a: array<f32, RED>;
var<workgroup> red_b: array<f32, RED>;
var<workgroup> red_c: array<f32, RED>;

@compute @workgroup_size(64)
fn omega_pairs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_id(gid, nwg); // row (b, k) of the (B,S) grid
    let n_s = cfg.slots;
    if r >= cfg.batch * n_s {
        return;
    }
    let k = r % n_s;
    var valid = 0.0;
    var term = 0.0;
    var c = 0.0;
    if k + 1u < n_s {
        let n_h = cfg.n_hidden;
        var a2 = 0.0;
        var v2 = 0.0;
        for (var j = 0u; j < n_h; j++) {
            let a = gs[(r + 1u) * n_h + j];
            let v = vs[r * n_h + j];
            a2 += a * a;
            v2 += v * v;
        }
        if a2 >= OMEGA_MIN_SIGNAL {
            valid = 1.0;
            if cfg.omega_form == 0u {
                let ratio = sqrt(v2 / a2);
                term = (ratio - 1.0) * (ratio - 1.0);
                // at v = 0 the norm is not differentiable; its subgradient 0 is used
                c = select(0.0, 2.0 * (ratio - 1.0) / (sqrt(v2) * sqrt(a2)), v2 > 0.0);
            } else {
                let r2 = v2 / a2;
                term = (r2 - 1.0) * (r2 - 1.0);
                c = 4.0 * (r2 - 1.0) / a2;
            }
        }
    }
    pairs[r * 3u] = valid;
    pairs[r * 3u + 1u] = term;
    pairs[r * 3u + 2u] = c;
}

// One workgroup: E = Σ_b row_loss_b·row_scale_b, Σ Ω_k, N, Ω = ΣΩ_k / N and β = α/N.
// Each invocation sums a fixed strided subset in order, then a fixed tree: deterministic.
@compute @workgroup_size(256)
fn reduce_stats(@builtin(local_invocation_index) lid: u32) {
    var loss = 0.0;
    for (var b = lid; b < cfg.batch; b += RED) {
        loss += row_loss[b] * batch[cfg.off_scale + b];
    }
    var om = 0.0;
    var n = 0.0;
    for (var r = lid; r < cfg.batch * cfg.slots; r += RED) {
        n += pairs[r * 3u];
        om += pairs[r * 3u + 1u];
    }
    red_a[lid] = loss;
    red_b[lid] = om;
    red_c[lid] = n;
    workgroupBarrier();
    for (var half = RED / 2u; half > 0u; half /= 2u) {
        if lid < half {
            red_a[lid] += red_a[lid + half];
            red_b[lid] += red_b[lid + half];
            red_c[lid] += red_c[lid + half];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        let n_pairs = red_c[0];
        stats[STAT_LOSS] = red_a[0];
        stats[STAT_OMEGA_SUM] = red_b[0];
        stats[STAT_PAIRS] = n_pairs;
        stats[STAT_OMEGA] = select(0.0, red_b[0] / n_pairs, n_pairs > 0.0);
        stats[STAT_BETA] = select(0.0, cfg.alpha / n_pairs, n_pairs > 0.0 && cfg.alpha != 0.0);
    }
}

// Z_k = h_k + β·c_k·(v_k ⊙ σ'(x_k)) for every (example, slot, unit); Z_k = h_k when α = 0 or
// the pair is not valid.
@compute @workgroup_size(64)
fn omega_fold(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat_id(gid, nwg);
    let n_h = cfg.n_hidden;
    if e >= cfg.batch * cfg.slots * n_h {
        return;
    }
    let r = e / n_h;
    let h = hs[e];
    let beta = stats[STAT_BETA];
    var z = h;
    if beta != 0.0 && pairs[r * 3u] != 0.0 {
        z = h + beta * pairs[r * 3u + 2u] * vs[e] * dact(h);
    }
    zs[e] = z;
}
