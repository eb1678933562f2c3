//! The engine's BPTT checked from Rust alone, in f64: every gradient of E against central
//! finite differences of the engine's own loss, and E, Ω (eq. 9) and Ω's immediate gradient
//! (eq. 10) against an independent, loop-by-loop model written below. So `cargo test` guards
//! the maths without Python.

use rnnstab_engine::{
    loss_and_grads, make_pool, Activation, Batch, Dims, InitialState, Loss, ModelConfig,
    OmegaConfig, OmegaForm, Params, Settings, Targets, TimeReduction, Workspace,
};

/// A small deterministic generator (xorshift64*), so the tests need no dependency.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self, scale: f64) -> f64 {
        // Irwin–Hall: close enough to a normal for test data, and branch-free.
        scale * ((0..12).map(|_| self.uniform()).sum::<f64>() - 6.0)
    }

    fn vec(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| self.normal(scale)).collect()
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n - 1)
    }
}

/// One problem: a model, a batch and the settings, all owned.
struct Case {
    params: Params<f64>,
    steps: usize,
    batch: usize,
    inputs: Vec<f64>,
    classes: Vec<i64>,
    values: Vec<f64>,
    mask: Vec<f64>,
    x0: Option<Vec<f64>>,
    settings: Settings,
}

#[derive(Clone, Copy)]
enum Start {
    Zero,
    PerExample,
    Learned,
}

fn case(
    seed: u64,
    activation: Activation,
    loss: Loss,
    reduction: TimeReduction,
    start: Start,
    alpha: f64,
    form: OmegaForm,
) -> Case {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let dims = Dims {
        n_in: 3,
        n_hidden: 4,
        n_out: 3,
    };
    let (steps, batch) = (6, 3);
    let mut params = Params::zeros(dims, matches!(start, Start::Learned));
    // Weights of order one: the recurrence neither vanishes nor saturates over six steps, so
    // every gradient entry is well away from zero and the finite differences are meaningful.
    params.w_rec = rng.vec(16, 0.5);
    params.w_in = rng.vec(12, 0.5);
    params.b = rng.vec(4, 0.2);
    params.w_out = rng.vec(12, 0.5);
    params.b_out = rng.vec(3, 0.2);
    if matches!(start, Start::Learned) {
        params.x0 = rng.vec(4, 0.5);
    }
    let inputs = rng.vec(steps * batch * 3, 1.0);
    let classes = (0..steps * batch).map(|_| rng.below(3) as i64).collect();
    let values = match loss {
        Loss::Bce => (0..steps * batch * 3)
            .map(|_| rng.below(2) as f64)
            .collect(),
        _ => rng.vec(steps * batch * 3, 1.0),
    };
    // Some unscored steps (and the last step always scored), as the synthetic tasks have.
    let mask = (0..steps * batch)
        .map(|i| {
            if i / batch == steps - 1 || rng.uniform() < 0.5 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let x0 = matches!(start, Start::PerExample).then(|| rng.vec(batch * 4, 0.5));
    Case {
        params,
        steps,
        batch,
        inputs,
        classes,
        values,
        mask,
        x0,
        settings: Settings {
            model: ModelConfig {
                activation,
                loss,
                time_reduction: reduction,
            },
            omega: OmegaConfig { alpha, form },
            full_length: false,
        },
    }
}

impl Case {
    /// (E, Ω, the gradient) from the engine, for `params`.
    fn engine(&self, params: &Params<f64>) -> (f64, f64, Params<f64>) {
        let pool = make_pool(Some(1)).expect("one thread is always allowed");
        let targets = match self.settings.model.loss {
            Loss::SoftmaxCe => Targets::Classes(&self.classes),
            _ => Targets::Values(&self.values),
        };
        let batch = Batch {
            steps: self.steps,
            batch: self.batch,
            inputs: &self.inputs,
            targets,
            mask: &self.mask,
        };
        let x0 = match &self.x0 {
            Some(x) => InitialState::PerExample(x),
            None => InitialState::Zero,
        };
        let mut ws = Workspace::new();
        let mut grads = params.zeros_like();
        let out = loss_and_grads(
            &pool,
            params,
            &batch,
            x0,
            &self.settings,
            &mut ws,
            &mut grads,
        )
        .expect("a well-formed case");
        (out.loss, out.omega, grads)
    }
}

fn act(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Relu => x.max(0.0),
        Activation::Linear => x,
    }
}

fn act_prime(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Tanh => 1.0 - x.tanh().powi(2),
        Activation::Sigmoid => act(a, x) * (1.0 - act(a, x)),
        Activation::Relu => f64::from(u8::from(x > 0.0)),
        Activation::Linear => 1.0,
    }
}

/// The independent model: E, and the states x_t and signals g_t = ∂E/∂x_t (t = 0..T) that
/// Ω is built from, by plain loops over examples and steps.
struct Trace {
    loss: f64,
    xs: Vec<Vec<Vec<f64>>>, // [b][t][h]
    gs: Vec<Vec<Vec<f64>>>, // [b][t][h]
}

fn matvec(m: &[f64], rows: usize, cols: usize, v: &[f64]) -> Vec<f64> {
    (0..rows)
        .map(|r| (0..cols).map(|c| m[r * cols + c] * v[c]).sum())
        .collect()
}

fn matvec_t(m: &[f64], rows: usize, cols: usize, v: &[f64]) -> Vec<f64> {
    (0..cols)
        .map(|c| (0..rows).map(|r| m[r * cols + c] * v[r]).sum())
        .collect()
}

fn reference(c: &Case, p: &Params<f64>) -> Trace {
    let Dims {
        n_in: ni,
        n_hidden: h,
        n_out: no,
    } = p.dims;
    let a = c.settings.model.activation;
    let mut loss = 0.0;
    let (mut xs, mut gs) = (Vec::new(), Vec::new());
    for e in 0..c.batch {
        let mut x = vec![vec![0.0; h]; c.steps + 1];
        if p.has_x0() {
            x[0] = p.x0.clone();
        } else if let Some(x0) = &c.x0 {
            x[0] = x0[e * h..(e + 1) * h].to_vec();
        }
        for t in 1..=c.steps {
            let hprev: Vec<f64> = x[t - 1].iter().map(|&v| act(a, v)).collect();
            let u = &c.inputs[((t - 1) * c.batch + e) * ni..][..ni];
            let rec = matvec(&p.w_rec, h, h, &hprev);
            let inp = matvec(&p.w_in, h, ni, u);
            x[t] = (0..h).map(|j| rec[j] + inp[j] + p.b[j]).collect();
        }
        let scored: f64 = (0..c.steps).map(|t| c.mask[t * c.batch + e]).sum();
        let mut scale = 1.0 / c.batch as f64;
        if c.settings.model.time_reduction == TimeReduction::Mean {
            scale = if scored > 0.0 { scale / scored } else { 0.0 };
        }
        let mut dys = vec![vec![0.0; no]; c.steps + 1];
        for t in 1..=c.steps {
            let m = c.mask[(t - 1) * c.batch + e];
            if m == 0.0 {
                continue;
            }
            let hid: Vec<f64> = x[t].iter().map(|&v| act(a, v)).collect();
            let y: Vec<f64> = (0..no)
                .map(|o| matvec(&p.w_out, no, h, &hid)[o] + p.b_out[o])
                .collect();
            let at = (t - 1) * c.batch + e;
            let (l, d): (f64, Vec<f64>) = match c.settings.model.loss {
                Loss::SoftmaxCe => {
                    let k = c.classes[at] as usize;
                    let top = y.iter().cloned().fold(f64::MIN, f64::max);
                    let z: f64 = y.iter().map(|v| (v - top).exp()).sum();
                    let prob: Vec<f64> = y.iter().map(|v| (v - top).exp() / z).collect();
                    let mut d = prob.clone();
                    d[k] -= 1.0;
                    (-prob[k].ln(), d)
                }
                Loss::Mse => {
                    let tgt = &c.values[at * no..][..no];
                    let err: Vec<f64> = (0..no).map(|o| y[o] - tgt[o]).collect();
                    (
                        err.iter().map(|v| v * v).sum(),
                        err.iter().map(|v| 2.0 * v).collect(),
                    )
                }
                Loss::Bce => {
                    let tgt = &c.values[at * no..][..no];
                    let l = (0..no)
                        .map(|o| (1.0 + y[o].exp()).ln() - tgt[o] * y[o])
                        .sum();
                    (
                        l,
                        (0..no)
                            .map(|o| act(Activation::Sigmoid, y[o]) - tgt[o])
                            .collect(),
                    )
                }
            };
            loss += scale * m * l;
            dys[t] = d.iter().map(|v| scale * m * v).collect();
        }
        let mut g = vec![vec![0.0; h]; c.steps + 1];
        let mut next = vec![0.0; h];
        for t in (0..=c.steps).rev() {
            let back = matvec_t(&p.w_rec, h, h, &next);
            let out = if t > 0 {
                matvec_t(&p.w_out, no, h, &dys[t])
            } else {
                vec![0.0; h]
            };
            g[t] = (0..h)
                .map(|j| (out[j] + back[j]) * act_prime(a, x[t][j]))
                .collect();
            next = g[t].clone();
        }
        xs.push(x);
        gs.push(g);
    }
    Trace { loss, xs, gs }
}

/// Ω of eq. (9) as a function of W_rec alone, with g_{k+1} and x_k held at the values of
/// `trace`: the quantity whose derivative in W_rec eq. (10) calls Ω's immediate gradient.
fn omega_frozen(c: &Case, trace: &Trace, w_rec: &[f64], h: usize) -> f64 {
    let a = c.settings.model.activation;
    let mut terms = Vec::new();
    for e in 0..c.batch {
        for k in 0..c.steps {
            let g = &trace.gs[e][k + 1];
            let g2: f64 = g.iter().map(|v| v * v).sum();
            if g2 < rnnstab_engine::bptt::OMEGA_MIN_SIGNAL {
                continue;
            }
            let v: Vec<f64> = matvec_t(w_rec, h, h, g)
                .iter()
                .zip(&trace.xs[e][k])
                .map(|(wv, &x)| wv * act_prime(a, x))
                .collect();
            let ratio2 = v.iter().map(|x| x * x).sum::<f64>() / g2;
            terms.push(match c.settings.omega.form {
                OmegaForm::Norm => (ratio2.sqrt() - 1.0).powi(2),
                OmegaForm::Squared => (ratio2 - 1.0).powi(2),
            });
        }
    }
    if terms.is_empty() {
        0.0
    } else {
        terms.iter().sum::<f64>() / terms.len() as f64
    }
}

/// Central differences of `f` at every entry of every tensor of `p`.
fn numeric_grads(p: &Params<f64>, f: impl Fn(&Params<f64>) -> f64) -> Params<f64> {
    // f64 central differences: truncation ~eps²·f''' ≈ 1e-12 and rounding ~1e-16/eps ≈ 1e-10
    // for eps = 1e-6, far below the 1e-6 the comparisons allow.
    let eps = 1e-6;
    let mut out = p.zeros_like();
    for ti in 0..6 {
        for i in 0..p.tensors()[ti].len() {
            let mut plus = p.clone();
            plus.tensors_mut()[ti][i] += eps;
            let mut minus = p.clone();
            minus.tensors_mut()[ti][i] -= eps;
            out.tensors_mut()[ti][i] = (f(&plus) - f(&minus)) / (2.0 * eps);
        }
    }
    out
}

fn assert_close(what: &str, got: &Params<f64>, want: &Params<f64>, tol: f64) {
    let tensors = got.tensors().into_iter().zip(want.tensors());
    for (name, (got, want)) in rnnstab_engine::PARAM_NAMES.iter().zip(tensors) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "{what}: {name}[{i}] is {g}, expected {w}"
            );
        }
    }
}

const SMOOTH: [Activation; 3] = [Activation::Tanh, Activation::Sigmoid, Activation::Linear];
const LOSSES: [Loss; 3] = [Loss::SoftmaxCe, Loss::Mse, Loss::Bce];

#[test]
fn every_gradient_of_e_matches_finite_differences() {
    let mut seed = 0;
    for activation in SMOOTH {
        for loss in LOSSES {
            for reduction in [TimeReduction::Sum, TimeReduction::Mean] {
                for start in [Start::Zero, Start::PerExample, Start::Learned] {
                    seed += 1;
                    let c = case(
                        seed,
                        activation,
                        loss,
                        reduction,
                        start,
                        0.0,
                        OmegaForm::Norm,
                    );
                    let (e, _, grads) = c.engine(&c.params);
                    let r = reference(&c, &c.params);
                    // Two f64 evaluations of the same sums in different orders: ~1e-15.
                    assert!(
                        (e - r.loss).abs() <= 1e-12 * (1.0 + r.loss.abs()),
                        "E {e} vs {}",
                        r.loss
                    );
                    let numeric = numeric_grads(&c.params, |p| c.engine(p).0);
                    let what = format!("{activation:?} {loss:?} {reduction:?} case {seed}");
                    assert_close(&what, &grads, &numeric, 1e-6);
                }
            }
        }
    }
}

#[test]
fn relu_gradients_match_away_from_the_kink() {
    // Central differences are exact for ReLU as long as no pre-activation crosses 0 within
    // ±eps; with these random states the nearest one is orders of magnitude further away.
    for (seed, loss) in LOSSES.into_iter().enumerate() {
        let c = case(
            100 + seed as u64,
            Activation::Relu,
            loss,
            TimeReduction::Sum,
            Start::Zero,
            0.0,
            OmegaForm::Norm,
        );
        let r = reference(&c, &c.params);
        // x_0 = 0 is never differentiated through: σ(x_0) = 0 whatever the parameters.
        let nearest =
            r.xs.iter()
                .flat_map(|x| x[1..].iter().flatten())
                .map(|x| x.abs())
                .fold(f64::MAX, f64::min);
        assert!(
            nearest > 1e-4,
            "a state sits at the kink ({nearest}); pick another seed"
        );
        let (_, _, grads) = c.engine(&c.params);
        let numeric = numeric_grads(&c.params, |p| c.engine(p).0);
        assert_close(&format!("relu {loss:?}"), &grads, &numeric, 1e-6);
    }
}

#[test]
fn omega_and_its_immediate_gradient_match_the_independent_model() {
    let alpha = 0.7;
    let mut seed = 200;
    for form in [OmegaForm::Norm, OmegaForm::Squared] {
        for activation in SMOOTH {
            for start in [Start::Zero, Start::Learned] {
                seed += 1;
                let with = case(
                    seed,
                    activation,
                    Loss::SoftmaxCe,
                    TimeReduction::Sum,
                    start,
                    alpha,
                    form,
                );
                let without = case(
                    seed,
                    activation,
                    Loss::SoftmaxCe,
                    TimeReduction::Sum,
                    start,
                    0.0,
                    form,
                );
                let (_, omega, g_with) = with.engine(&with.params);
                let (_, _, g_without) = without.engine(&without.params);
                let trace = reference(&with, &with.params);
                let h = with.params.dims.n_hidden;
                let want = omega_frozen(&with, &trace, &with.params.w_rec, h);
                assert!(
                    (omega - want).abs() <= 1e-12 * (1.0 + want),
                    "Ω {omega} vs {want}"
                );
                // Eq. (10): α·∂⁺Ω/∂W_rec is added to W_rec's gradient and nowhere else.
                let mut frozen = with.params.zeros_like();
                let numeric =
                    numeric_grads(&with.params, |p| omega_frozen(&with, &trace, &p.w_rec, h));
                frozen.w_rec = numeric.w_rec.iter().map(|v| alpha * v).collect();
                let mut diff = g_with.clone();
                for (d, w) in diff.tensors_mut().into_iter().zip(g_without.tensors()) {
                    d.iter_mut().zip(w).for_each(|(a, b)| *a -= b);
                }
                assert_close(&format!("Ω {form:?} {activation:?}"), &diff, &frozen, 1e-6);
            }
        }
    }
}
