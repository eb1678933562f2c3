// Backpropagation through time (eqs. 3–5), persistent form: one workgroup per sequence runs
// t = S−1 down to 0 inside one dispatch, keeping g_{t+1} in workgroup memory.
//
//   v_t = (W_recᵀ g_{t+1}) ⊙ σ'(x_t)          the error carried back from step t+1 (g_{t+1} J_t)
//   g_t = v_t + (W_outᵀ dy_t) ⊙ σ'(x_t)       adding the read-out's error where the mask is on
//
// v_t is stored as well: Ω (eq. 9) needs ‖v_k‖ = ‖g_{k+1} J_k‖ and eq. (10)'s gradient needs v_k.
// Slot 0 gets v_0 = ∂E/∂x_0 and g_0 = 0 (x_0 is not a parameter here).

const WG: u32 = 64u;
const MAX_H: u32 = 1024u;

var<workgroup> g_sh: array<f32, 2048>; // g_{t+1} and g_t, double-buffered by the parity of t

@compute @workgroup_size(64)
fn backward_seq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wid.x;
    let n_h = cfg.n_hidden;
    let n_o = cfg.n_out;
    let n_s = cfg.slots;
    var t = n_s;
    loop {
        if t == 0u {
            break;
        }
        t -= 1u;
        let nxt = ((t + 1u) % 2u) * MAX_H;
        let cur = (t % 2u) * MAX_H;
        let on = t > 0u && mask_at(t - 1u, b) != 0.0;
        for (var j = lid; j < n_h; j += WG) {
            var carry = 0.0;
            if t + 1u < n_s {
                for (var i = 0u; i < n_h; i++) {
                    carry += theta[i * n_h + j] * g_sh[nxt + i];
                }
            }
            let sd = dact(hs[sidx(b, t, j)]);
            let v = carry * sd;
            vs[sidx(b, t, j)] = v;
            var g = v;
            if on {
                var local = 0.0;
                for (var o = 0u; o < n_o; o++) {
                    local += theta[cfg.off_w_out + o * n_h + j] * dy[yidx(b, t, o)];
                }
                g += local * sd;
            }
            if t == 0u {
                g = 0.0;
            }
            gs[sidx(b, t, j)] = g;
            g_sh[cur + j] = g;
        }
        workgroupBarrier();
    }
}
