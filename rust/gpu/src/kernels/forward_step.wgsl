// Forward pass of eq. (2), one dispatch per step: `forward_init` writes h_0 = σ(0), then for
// t = 1..S−1 `forward_step` computes h_t for every (example, unit) from h_{t−1} in global
// memory and `readout_step` evaluates y_t, ℓ and dy_t (same formulas as forward.wgsl).

struct Step {
    t: u32,
}

@group(1) @binding(0) var<storage, read> step: Step;

@compute @workgroup_size(64)
fn forward_init(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat_id(gid, nwg);
    if e >= cfg.batch * cfg.n_hidden {
        return;
    }
    let b = e / cfg.n_hidden;
    let j = e % cfg.n_hidden;
    hs[sidx(b, 0u, j)] = act(0.0);
    if j == 0u {
        row_loss[b] = 0.0;
        for (var o = 0u; o < cfg.n_out; o++) {
            dy[yidx(b, 0u, o)] = 0.0;
        }
    }
}

// h_t[j] = σ(Σ_k W_rec[j,k] h_{t−1}[k] + W_in u_t + b)
@compute @workgroup_size(64)
fn forward_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat_id(gid, nwg);
    if e >= cfg.batch * cfg.n_hidden {
        return;
    }
    let t = step.t;
    let n_h = cfg.n_hidden;
    let b = e / n_h;
    let j = e % n_h;
    var x = input_drive(b, t, j);
    let w = j * n_h;
    let prev = sidx(b, t - 1u, 0u);
    for (var k = 0u; k < n_h; k++) {
        x += theta[w + k] * hs[prev + k];
    }
    hs[sidx(b, t, j)] = act(x);
}

// y_t = W_out h_t + b_out (kept in dy's row until ∂ℓ/∂y overwrites it), ℓ and dy_t.
@compute @workgroup_size(64)
fn readout_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = gid.x;
    if b >= cfg.batch {
        return;
    }
    let t = step.t;
    let n_h = cfg.n_hidden;
    let n_o = cfg.n_out;
    let m = mask_at(t - 1u, b);
    let row = yidx(b, t, 0u);
    if m == 0.0 {
        for (var o = 0u; o < n_o; o++) { dy[row + o] = 0.0; }
        return;
    }
    let h = sidx(b, t, 0u);
    for (var o = 0u; o < n_o; o++) {
        var y = theta[cfg.off_b_out + o];
        let w = cfg.off_w_out + o * n_h;
        for (var j = 0u; j < n_h; j++) {
            y += theta[w + j] * hs[h + j];
        }
        dy[row + o] = y;
    }
    let wgt = m * batch[cfg.off_scale + b];
    var l = 0.0;
    switch cfg.loss {
        case 0u: {
            var mx = dy[row];
            for (var o = 1u; o < n_o; o++) { mx = max(mx, dy[row + o]); }
            var z = 0.0;
            for (var o = 0u; o < n_o; o++) { z += exp(dy[row + o] - mx); }
            let lse = mx + log(z);
            let c = target_class(t - 1u, b);
            l = lse - dy[row + c];
            for (var o = 0u; o < n_o; o++) {
                dy[row + o] = wgt * (exp(dy[row + o] - lse) - select(0.0, 1.0, o == c));
            }
        }
        case 1u: {
            for (var o = 0u; o < n_o; o++) {
                let e = dy[row + o] - target_value(t - 1u, b, o);
                l += e * e;
                dy[row + o] = wgt * 2.0 * e;
            }
        }
        default: {
            for (var o = 0u; o < n_o; o++) {
                let y = dy[row + o];
                let tv = target_value(t - 1u, b, o);
                l += softplus(y) - tv * y;
                dy[row + o] = wgt * (1.0 / (1.0 + exp(-y)) - tv);
            }
        }
    }
    row_loss[b] += m * l;
}
