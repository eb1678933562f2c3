// Forward pass of eq. (2), persistent form: one workgroup per sequence loops over all T steps
// inside one dispatch, keeping h_{t−1} and y_t in workgroup memory.
//
//   x_t = W_rec·σ(x_{t−1}) + W_in·u_t + b,  h_t = σ(x_t),  y_t = W_out·h_t + b_out
//
// At each step whose mask m is on it evaluates ℓ(y_t, target_t) and writes
// dy_t = m·row_scale·∂ℓ/∂y_t (row_scale = 1/B, or 1/(B·#scored) for the "mean" reduction).

const WG: u32 = 64u;
const MAX_H: u32 = 1024u;
const MAX_O: u32 = 1024u;

var<workgroup> h_sh: array<f32, 2048>;   // h_{t−1} and h_t, double-buffered by the parity of t
var<workgroup> y_sh: array<f32, MAX_O>;  // y_t
var<workgroup> lse_sh: f32;              // log Σ exp y (softmax) of the current step
var<workgroup> on_sh: u32;               // is the mask on at this step?

@compute @workgroup_size(64)
fn forward_seq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wid.x;
    let n_h = cfg.n_hidden;
    let n_o = cfg.n_out;
    let h0 = act(0.0); // x_0 = 0
    for (var j = lid; j < n_h; j += WG) {
        h_sh[j] = h0;
        hs[sidx(b, 0u, j)] = h0;
    }
    for (var o = lid; o < n_o; o += WG) {
        dy[yidx(b, 0u, o)] = 0.0;
    }
    var loss_acc = 0.0; // used by invocation 0 only
    workgroupBarrier();
    for (var t = 1u; t < cfg.slots; t++) {
        let prev = ((t + 1u) % 2u) * MAX_H;
        let cur = (t % 2u) * MAX_H;
        for (var j = lid; j < n_h; j += WG) {
            var x = input_drive(b, t, j);
            let w = j * n_h;
            for (var k = 0u; k < n_h; k++) {
                x += theta[w + k] * h_sh[prev + k];
            }
            let h = act(x);
            h_sh[cur + j] = h;
            hs[sidx(b, t, j)] = h;
        }
        if lid == 0u {
            on_sh = select(0u, 1u, mask_at(t - 1u, b) != 0.0);
        }
        // A barrier as well as a load: h_t is complete after it.
        let on = workgroupUniformLoad(&on_sh);
        if on == 1u {
            for (var o = lid; o < n_o; o += WG) {
                var y = theta[cfg.off_b_out + o];
                let w = cfg.off_w_out + o * n_h;
                for (var j = 0u; j < n_h; j++) {
                    y += theta[w + j] * h_sh[cur + j];
                }
                y_sh[o] = y;
            }
            workgroupBarrier();
            let m = mask_at(t - 1u, b);
            if lid == 0u {
                var l = 0.0;
                switch cfg.loss {
                    case 0u: {
                        // softmax cross-entropy: ℓ = log Σ_o e^{y_o} − y_c
                        var mx = y_sh[0];
                        for (var o = 1u; o < n_o; o++) { mx = max(mx, y_sh[o]); }
                        var z = 0.0;
                        for (var o = 0u; o < n_o; o++) { z += exp(y_sh[o] - mx); }
                        let lse = mx + log(z);
                        lse_sh = lse;
                        l = lse - y_sh[target_class(t - 1u, b)];
                    }
                    case 1u: {
                        // squared error summed over outputs
                        for (var o = 0u; o < n_o; o++) {
                            let e = y_sh[o] - target_value(t - 1u, b, o);
                            l += e * e;
                        }
                    }
                    default: {
                        // Bernoulli outputs: softplus(y) − t·y = −[t log σ(y) + (1−t) log(1−σ(y))]
                        for (var o = 0u; o < n_o; o++) {
                            l += softplus(y_sh[o]) - target_value(t - 1u, b, o) * y_sh[o];
                        }
                    }
                }
                loss_acc += m * l;
            }
            workgroupBarrier();
            let wgt = m * batch[cfg.off_scale + b];
            for (var o = lid; o < n_o; o += WG) {
                let y = y_sh[o];
                var d = 0.0;
                switch cfg.loss {
                    case 0u: {
                        d = exp(y - lse_sh) - select(0.0, 1.0, o == target_class(t - 1u, b));
                    }
                    case 1u: { d = 2.0 * (y - target_value(t - 1u, b, o)); }
                    default: { d = 1.0 / (1.0 + exp(-y)) - target_value(t - 1u, b, o); }
                }
                dy[yidx(b, t, o)] = wgt * d;
            }
        } else {
            for (var o = lid; o < n_o; o += WG) {
                dy[yidx(b, t, o)] = 0.0;
            }
        }
        // Nobody may overwrite on_sh, y_sh or lse_sh for step t+1 before all have read them.
        workgroupBarrier();
    }
    if lid == 0u {
        row_loss[b] = loss_acc;
    }
}
