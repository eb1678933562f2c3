// BPTT, one dispatch per step: `backward_step` is dispatched for t = S−1 down to 0 and computes
// the same v_t and g_t as backward.wgsl for every (example, unit), reading g_{t+1} from gs.

struct Step {
    t: u32,
}

@group(1) @binding(0) var<storage, read> step: Step;

@compute @workgroup_size(64)
fn backward_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat_id(gid, nwg);
    let n_h = cfg.n_hidden;
    if e >= cfg.batch * n_h {
        return;
    }
    let t = step.t;
    let b = e / n_h;
    let j = e % n_h;
    var carry = 0.0;
    if t + 1u < cfg.slots {
        let next = sidx(b, t + 1u, 0u);
        for (var i = 0u; i < n_h; i++) {
            carry += theta[i * n_h + j] * gs[next + i];
        }
    }
    let sd = dact(hs[sidx(b, t, j)]);
    let v = carry * sd;
    vs[sidx(b, t, j)] = v;
    var g = v;
    if t > 0u && mask_at(t - 1u, b) != 0.0 {
        var local = 0.0;
        for (var o = 0u; o < cfg.n_out; o++) {
            local += theta[cfg.off_w_out + o * n_h + j] * dy[yidx(b, t, o)];
        }
        g += local * sd;
    }
    if t == 0u {
        g = 0.0;
    }
    gs[sidx(b, t, j)] = g;
}
