// Weight gradients: one invocation per element of θ, each summing over the (example, step)
// rows in a fixed order (example-major, then time) — deterministic, no atomics.
//
//   ∂W_rec[i,j] = Σ_{b,t≥1} g_t[i] Z_{t−1}[j]     (Z = h plus Ω's fold, omega.wgsl)
//   ∂W_in[i,j]  = Σ_{b,t≥1} g_t[i] u_t[j]
//   ∂b[i]       = Σ_{b,t≥1} g_t[i]
//   ∂W_out[o,j] = Σ_{b,t≥1} dy_t[o] h_t[j]
//   ∂b_out[o]   = Σ_{b,t≥1} dy_t[o]

@compute @workgroup_size(64)
fn weight_grads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = flat_id(gid, nwg);
    if p >= cfg.n_params {
        return;
    }
    let n_h = cfg.n_hidden;
    let n_s = cfg.slots;
    var acc = 0.0;
    if p < cfg.off_w_in {
        let i = p / n_h;
        let j = p % n_h;
        for (var b = 0u; b < cfg.batch; b++) {
            for (var t = 1u; t < n_s; t++) {
                acc += gs[sidx(b, t, i)] * zs[sidx(b, t - 1u, j)];
            }
        }
    } else if p < cfg.off_b {
        let q = p - cfg.off_w_in;
        let i = q / cfg.n_in;
        let j = q % cfg.n_in;
        for (var b = 0u; b < cfg.batch; b++) {
            for (var t = 1u; t < n_s; t++) {
                acc += gs[sidx(b, t, i)] * input_at(t - 1u, b, j);
            }
        }
    } else if p < cfg.off_w_out {
        let i = p - cfg.off_b;
        for (var b = 0u; b < cfg.batch; b++) {
            for (var t = 1u; t < n_s; t++) {
                acc += gs[sidx(b, t, i)];
            }
        }
    } else if p < cfg.off_b_out {
        let q = p - cfg.off_w_out;
        let o = q / n_h;
        let j = q % n_h;
        for (var b = 0u; b < cfg.batch; b++) {
            for (var t = 1u; t < n_s; t++) {
                acc += dy[yidx(b, t, o)] * hs[sidx(b, t, j)];
            }
        }
    } else {
        let o = p - cfg.off_b_out;
        for (var b = 0u; b < cfg.batch; b++) {
            for (var t = 1u; t < n_s; t++) {
                acc += dy[yidx(b, t, o)];
            }
        }
    }
    let is_bias = (p >= cfg.off_b && p < cfg.off_w_out) || p >= cfg.off_b_out;
    if cfg.freeze_biases == 1u && is_bias {
        acc = 0.0;
    }
    grad[p] = acc;
}
