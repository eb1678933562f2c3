//! Clipping rules: what a trainer does with a finite gradient before the optimiser sees it.
//!
//! [`Clip`] names a rule and its parameters (plain data, part of the trainer's config);
//! [`ClipRule`] is its state machine, shared by the CPU and the GPU trainers. Before a step
//! [`ClipRule::action`] says what to do with the pre-clipping norm ‖ĝ‖ (a function of the
//! norms of *earlier* steps only, so the threshold in force never depends on the gradient it
//! clips); after the step [`ClipRule::observe`] takes that norm in. Only finite norms are
//! observed: a non-finite gradient is the non-finite policy's business, not the rule's.
//!
//! The rules (threshold_t is the threshold in force at step t; g_t the pre-clipping norm):
//!
//! - `none`; `norm` (Algorithm 1 of Pascanu et al. 2013, §3.2: if ‖ĝ‖ ≥ t then
//!   ĝ ← (t/‖ĝ‖)·ĝ); `value` (Mikolov 2012: every entry clamped to ±t).
//! - `auto`: §3.2's heuristic, "One good heuristic for setting this threshold is to look at
//!   statistics on the average norm over a sufficiently large number of updates":
//!   threshold_t = factor × mean(g_{t−window}, …, g_{t−1}) over the last `window` finite norms,
//!   applied as Algorithm 1. Until `window` norms have been seen there is no clipping: the
//!   average is not yet over "a sufficiently large number of updates".
//! - `percentile`: AutoClip (Seetharaman et al. 2020, "AutoClip: Adaptive gradient clipping
//!   for source separation networks"): threshold_t = the p-th percentile of all earlier finite
//!   norms (linear interpolation between order statistics, numpy's default, as their code
//!   uses), applied as Algorithm 1; no clipping at the first step.
//! - `zscore`: ZClip-like (Kumar et al. 2025, "ZClip: Adaptive spike mitigation for LLM
//!   pre-training"): exponential moving mean μ and variance σ² of the norm with weight β on
//!   the past; once `warmup` norms have been seen, a norm with (g − μ)/σ > z is rescaled to
//!   μ + z·σ, i.e. Algorithm 1 with threshold_t = μ + z·σ. As in ZClip, the statistics take in
//!   the norm *after* clipping, min(g, threshold_t), so a spike does not inflate them.
//! - `skip`: skip-on-spike: once `warmup` norms have been seen, an update whose norm exceeds
//!   threshold_t = factor × EMA_β(earlier norms) is not applied (parameters and optimiser
//!   state untouched) and counts as skipped. The EMA takes the spike in, so a lasting rise of
//!   the norm is accepted after a few updates instead of stalling training.
//! - `agc`: adaptive gradient clipping (Brock et al. 2021, "High-performance large-scale image
//!   recognition without normalization", §4.1), unit-wise: for each row i of a weight matrix
//!   (the weights into one unit), if ‖G_i‖ > λ·max(‖W_i‖, ε) then
//!   G_i ← λ·max(‖W_i‖, ε)/‖G_i‖ · G_i; each entry of a vector (biases, x0) is its own unit,
//!   as in the NFNets reference code. ε = [`AGC_EPS`]. Every tensor is clipped, the read-out
//!   included (Brock et al. leave the final layer out; this model has no other layer kind).

use std::collections::VecDeque;

use crate::error::{EngineError, Result};
use crate::float::Float;
use crate::model::Params;

/// ε of AGC (Brock et al. 2021, §4.1): the floor on a unit's weight norm, so that units
/// initialised at zero (biases) can still move.
pub const AGC_EPS: f64 = 1e-3;
/// The longest `auto` window: far beyond any sensible average, small enough that the
/// window's memory (8 bytes a norm) stays negligible.
pub const MAX_WINDOW: usize = 1_000_000;

/// A clipping rule and its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clip {
    None,
    /// Algorithm 1 with this threshold.
    Norm(f64),
    /// Element-wise clipping at ± this value.
    Value(f64),
    /// §3.2's heuristic: factor × the mean of the last `window` norms.
    Auto {
        window: usize,
        factor: f64,
    },
    /// AutoClip: the p-th percentile (0 < p ≤ 100) of every earlier norm.
    Percentile {
        p: f64,
    },
    /// ZClip-like: μ + z·σ of the norm's exponential moving statistics.
    ZScore {
        z: f64,
        beta: f64,
        warmup: usize,
    },
    /// Skip the update when the norm exceeds factor × its exponential moving mean.
    Skip {
        factor: f64,
        beta: f64,
        warmup: usize,
    },
    /// Unit-wise adaptive gradient clipping with ratio λ.
    Agc {
        lambda: f64,
        eps: f64,
    },
}

/// The parameters every rule draws its own from; the defaults are the sources' (ZClip's z =
/// 2.5, β = 0.97, 25 warm-up steps; AutoClip's p = 10; AGC's λ = 0.01).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipParams {
    /// `norm` and `value`.
    pub threshold: f64,
    /// `auto`.
    pub window: usize,
    /// `auto` and `skip`.
    pub factor: f64,
    /// `percentile`.
    pub percentile: f64,
    /// `zscore`.
    pub z: f64,
    /// `zscore` and `skip`.
    pub beta: f64,
    /// `zscore` and `skip`.
    pub warmup: usize,
    /// `agc`.
    pub lambda: f64,
}

impl Default for ClipParams {
    fn default() -> Self {
        ClipParams {
            threshold: 6.0,
            window: 100,
            factor: 2.0,
            percentile: 10.0,
            z: 2.5,
            beta: 0.97,
            warmup: 25,
            lambda: 0.01,
        }
    }
}

pub const CLIP_NAMES: &str = "none, norm, value, auto, percentile, zscore, skip, agc";

fn positive(name: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(EngineError::invalid(format!(
            "{name} must be finite and > 0, got {v}"
        )))
    }
}

impl Clip {
    /// The rule `name` with a threshold and every other parameter at its default.
    pub fn parse(name: &str, threshold: f64) -> Result<Self> {
        Self::parse_with(
            name,
            &ClipParams {
                threshold,
                ..ClipParams::default()
            },
        )
    }

    /// The rule `name` with its parameters from `p` (the others are not looked at), each
    /// checked against its domain.
    pub fn parse_with(name: &str, p: &ClipParams) -> Result<Self> {
        let count = |what: &str, n: usize, max: usize| {
            if (1..=max).contains(&n) {
                Ok(n)
            } else {
                Err(EngineError::invalid(format!(
                    "{what} must be between 1 and {max}, got {n}"
                )))
            }
        };
        let beta = |b: f64| {
            if b.is_finite() && 0.0 < b && b < 1.0 {
                Ok(b)
            } else {
                Err(EngineError::invalid(format!(
                    "clip_beta must be in (0, 1), got {b}"
                )))
            }
        };
        Ok(match name {
            "none" => Clip::None,
            "norm" => Clip::Norm(positive("the clipping threshold", p.threshold)?),
            "value" => Clip::Value(positive("the clipping threshold", p.threshold)?),
            "auto" => Clip::Auto {
                window: count("clip_window", p.window, MAX_WINDOW)?,
                factor: positive("clip_factor", p.factor)?,
            },
            "percentile" => {
                if !(p.percentile.is_finite() && p.percentile > 0.0 && p.percentile <= 100.0) {
                    return Err(EngineError::invalid(format!(
                        "clip_percentile must be in (0, 100], got {}",
                        p.percentile
                    )));
                }
                Clip::Percentile { p: p.percentile }
            }
            "zscore" => Clip::ZScore {
                z: positive("clip_z", p.z)?,
                beta: beta(p.beta)?,
                warmup: count("clip_warmup", p.warmup, usize::MAX)?,
            },
            "skip" => Clip::Skip {
                factor: positive("clip_factor", p.factor)?,
                beta: beta(p.beta)?,
                warmup: count("clip_warmup", p.warmup, usize::MAX)?,
            },
            "agc" => Clip::Agc {
                lambda: positive("clip_lambda", p.lambda)?,
                eps: AGC_EPS,
            },
            _ => {
                return Err(EngineError::UnknownName {
                    what: "clipping mode",
                    got: name.to_string(),
                    choices: CLIP_NAMES,
                })
            }
        })
    }

    /// The rule's name, as [`Clip::parse`] takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Clip::None => "none",
            Clip::Norm(_) => "norm",
            Clip::Value(_) => "value",
            Clip::Auto { .. } => "auto",
            Clip::Percentile { .. } => "percentile",
            Clip::ZScore { .. } => "zscore",
            Clip::Skip { .. } => "skip",
            Clip::Agc { .. } => "agc",
        }
    }

    fn tag(&self) -> f64 {
        match self {
            Clip::None => 0.0,
            Clip::Norm(_) => 1.0,
            Clip::Value(_) => 2.0,
            Clip::Auto { .. } => 3.0,
            Clip::Percentile { .. } => 4.0,
            Clip::ZScore { .. } => 5.0,
            Clip::Skip { .. } => 6.0,
            Clip::Agc { .. } => 7.0,
        }
    }
}

/// What to do with this step's finite gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Apply it as it is.
    Keep,
    /// Algorithm 1 with this threshold (it fires only when ‖ĝ‖ ≥ threshold).
    Rescale(f64),
    /// Clamp every entry to ± this value.
    ClampValue(f64),
    /// AGC with ratio λ and floor ε.
    UnitWise { lambda: f64, eps: f64 },
    /// Do not apply the update.
    Skip,
}

/// A rule with its state: the norms it has seen, as each rule needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipRule {
    clip: Clip,
    /// Finite norms observed so far.
    seen: u64,
    /// `auto`: the last `window` norms, oldest first. `percentile`: every norm, sorted.
    history: VecDeque<f64>,
    /// `zscore`, `skip`: the exponential moving mean and variance.
    mean: f64,
    var: f64,
}

/// Entries of [`ClipRule::state`] before the history: tag, seen, mean, var.
const HEADER: usize = 4;

impl ClipRule {
    pub fn new(clip: Clip) -> Self {
        ClipRule {
            clip,
            seen: 0,
            history: VecDeque::new(),
            mean: 0.0,
            var: 0.0,
        }
    }

    pub fn clip(&self) -> Clip {
        self.clip
    }

    /// The threshold in force for the next step, from earlier norms only: the norm bound for
    /// the norm-type rules, the entry bound for `value`, the spike bound for `skip`, the ratio
    /// λ for `agc`; None while a rule has no threshold (`none`, warm-up).
    pub fn threshold(&self) -> Option<f64> {
        match self.clip {
            Clip::None => None,
            Clip::Norm(t) | Clip::Value(t) => Some(t),
            Clip::Auto { window, factor } => (self.history.len() >= window).then(|| {
                // Summed oldest first, so a restored window gives the same bits.
                factor * self.history.iter().sum::<f64>() / self.history.len() as f64
            }),
            Clip::Percentile { p } => percentile(&self.history, p),
            Clip::ZScore { z, warmup, .. } => {
                (self.seen >= warmup as u64).then(|| self.mean + z * self.var.sqrt())
            }
            Clip::Skip { factor, warmup, .. } => {
                (self.seen >= warmup as u64).then_some(factor * self.mean)
            }
            Clip::Agc { lambda, .. } => Some(lambda),
        }
    }

    /// What to do with a finite pre-clipping norm `norm` this step.
    pub fn action(&self, norm: f64) -> Action {
        let t = self.threshold();
        match (self.clip, t) {
            (Clip::None, _) | (_, None) => Action::Keep,
            (Clip::Value(v), _) => Action::ClampValue(v),
            (Clip::Agc { lambda, eps }, _) => Action::UnitWise { lambda, eps },
            (Clip::Skip { .. }, Some(t)) => {
                if norm > t {
                    Action::Skip
                } else {
                    Action::Keep
                }
            }
            (_, Some(t)) => Action::Rescale(t),
        }
    }

    /// Takes in this step's pre-clipping norm (a non-finite one is ignored). Call it after
    /// [`ClipRule::action`]: `zscore` needs the threshold that was in force.
    pub fn observe(&mut self, norm: f64) {
        if !norm.is_finite() {
            return;
        }
        match self.clip {
            Clip::None | Clip::Norm(_) | Clip::Value(_) | Clip::Agc { .. } => {}
            Clip::Auto { window, .. } => {
                self.history.push_back(norm);
                while self.history.len() > window {
                    self.history.pop_front();
                }
            }
            Clip::Percentile { .. } => {
                let at = self.history.partition_point(|&v| v < norm);
                self.history.insert(at, norm);
            }
            Clip::ZScore { beta, .. } => {
                let g = self.threshold().map_or(norm, |t| norm.min(t));
                self.ema(g, beta);
            }
            Clip::Skip { beta, .. } => self.ema(norm, beta),
        }
        self.seen += 1;
    }

    /// Exponential moving mean and variance with weight β on the past (Finch 2009,
    /// "Incremental calculation of weighted mean and variance", eq. 143): δ = g − μ,
    /// μ ← μ + (1−β)δ, σ² ← β(σ² + (1−β)δ²). The first norm starts μ at itself, σ² at 0.
    fn ema(&mut self, g: f64, beta: f64) {
        if self.seen == 0 {
            self.mean = g;
            self.var = 0.0;
            return;
        }
        let d = g - self.mean;
        self.mean += (1.0 - beta) * d;
        self.var = beta * (self.var + (1.0 - beta) * d * d);
    }

    /// The state as flat numbers, for a checkpoint: [tag, seen, mean, var, history…].
    pub fn state(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(HEADER + self.history.len());
        out.extend([self.clip.tag(), self.seen as f64, self.mean, self.var]);
        out.extend(self.history.iter().copied());
        out
    }

    /// Restores [`ClipRule::state`]'s output, checked against this rule.
    pub fn set_state(&mut self, state: &[f64]) -> Result<()> {
        let bad = |why: &str| {
            Err(EngineError::invalid(format!(
                "the clipping state does not fit the '{}' rule: {why}",
                self.clip.name()
            )))
        };
        if state.len() < HEADER {
            return bad("too short");
        }
        if state[0] != self.clip.tag() {
            return bad("it belongs to another rule");
        }
        let (seen, mean, var) = (state[1], state[2], state[3]);
        let history = &state[HEADER..];
        if !(seen.is_finite() && seen >= 0.0 && seen.fract() == 0.0 && seen < 2f64.powi(53)) {
            return bad("bad count of norms seen");
        }
        if !(mean.is_finite() && var.is_finite() && var >= 0.0) {
            return bad("non-finite moving statistics");
        }
        if history.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return bad("a norm that is negative or not finite");
        }
        let fits = match self.clip {
            Clip::Auto { window, .. } => history.len() <= window,
            Clip::Percentile { .. } => {
                history.len() as f64 == seen && history.windows(2).all(|w| w[0] <= w[1])
            }
            _ => history.is_empty(),
        };
        if !fits {
            return bad("its history has the wrong length or order");
        }
        self.seen = seen as u64;
        self.mean = mean;
        self.var = var;
        self.history = history.iter().copied().collect();
        Ok(())
    }
}

/// The p-th percentile of sorted values, linear between order statistics (numpy's default):
/// rank r = p/100·(n−1), value s_⌊r⌋ + (r − ⌊r⌋)(s_⌊r⌋+1 − s_⌊r⌋). None when empty.
pub fn percentile(sorted: &VecDeque<f64>, p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = p / 100.0 * (n - 1) as f64;
    let lo = (rank.floor() as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let frac = rank - lo as f64;
    Some(sorted[lo] + frac * (sorted[hi] - sorted[lo]))
}

/// AGC (Brock et al. 2021), unit-wise: each row of W_rec, W_in and W_out, and each entry of
/// b, b_out and x0, is a unit i; if ‖G_i‖ > λ·max(‖W_i‖, ε) then
/// G_i ← λ·max(‖W_i‖, ε)/‖G_i‖ · G_i. Returns how many units were clipped.
pub fn clip_unitwise<T: Float>(
    grads: &mut Params<T>,
    params: &Params<T>,
    lambda: f64,
    eps: f64,
) -> usize {
    let d = params.dims;
    // Row width of each tensor in PARAM_NAMES order: a matrix's rows, a vector's entries.
    let widths = [d.n_hidden, d.n_in, 1, d.n_hidden, 1, 1];
    let mut count = 0;
    for ((g, w), width) in grads
        .tensors_mut()
        .into_iter()
        .zip(params.tensors())
        .zip(widths)
    {
        if width == 0 {
            continue;
        }
        for (gr, wr) in g.chunks_mut(width).zip(w.chunks(width)) {
            let sq = |r: &[T]| r.iter().map(|v| v.to_f64() * v.to_f64()).sum::<f64>();
            let (gn, wn) = (sq(gr).sqrt(), sq(wr).sqrt());
            let bound = lambda * wn.max(eps);
            if gn > bound {
                let scale = T::from_f64(bound / gn);
                gr.iter_mut().for_each(|v| *v *= scale);
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dims;

    fn rule(name: &str, p: ClipParams) -> ClipRule {
        ClipRule::new(Clip::parse_with(name, &p).expect("valid rule"))
    }

    #[test]
    fn auto_is_factor_times_the_window_mean_and_idle_until_the_window_fills() {
        let mut r = rule(
            "auto",
            ClipParams {
                window: 3,
                factor: 2.0,
                ..Default::default()
            },
        );
        for g in [1.0, 2.0] {
            assert_eq!(r.threshold(), None);
            assert_eq!(r.action(100.0), Action::Keep);
            r.observe(g);
        }
        r.observe(f64::NAN); // not counted
        assert_eq!(r.threshold(), None);
        r.observe(3.0);
        assert_eq!(r.threshold(), Some(4.0)); // 2 × mean(1, 2, 3)
        r.observe(6.0);
        assert_eq!(r.threshold(), Some(2.0 * 11.0 / 3.0)); // window slides: 2, 3, 6
        assert_eq!(r.action(1.0), Action::Rescale(22.0 / 3.0));
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let mut r = rule(
            "percentile",
            ClipParams {
                percentile: 25.0,
                ..Default::default()
            },
        );
        assert_eq!(r.threshold(), None);
        for g in [4.0, 1.0, 3.0, 2.0, 5.0] {
            r.observe(g);
        }
        // np.percentile([1, 2, 3, 4, 5], 25) = 2.0; at 10: 1.4; at 100: 5.
        assert_eq!(r.threshold(), Some(2.0));
        let s: VecDeque<f64> = [1.0, 2.0, 3.0, 4.0, 5.0].into();
        assert!((percentile(&s, 10.0).unwrap_or(0.0) - 1.4).abs() < 1e-12);
        assert_eq!(percentile(&s, 100.0), Some(5.0));
    }

    #[test]
    fn percentile_of_a_constant_history_is_that_constant() {
        let mut r = rule("percentile", ClipParams::default());
        for _ in 0..7 {
            r.observe(1.5);
        }
        assert_eq!(r.threshold(), Some(1.5));
    }

    #[test]
    fn zscore_follows_the_moving_statistics_and_takes_in_clipped_norms() {
        let mut r = rule(
            "zscore",
            ClipParams {
                z: 2.0,
                beta: 0.5,
                warmup: 2,
                ..Default::default()
            },
        );
        r.observe(1.0); // μ = 1, σ² = 0
        assert_eq!(r.threshold(), None);
        r.observe(3.0); // δ = 2: μ = 2, σ² = 0.5·(0 + 0.5·4) = 1
        assert_eq!(r.threshold(), Some(2.0 + 2.0 * 1.0));
        assert_eq!(r.action(10.0), Action::Rescale(4.0));
        r.observe(10.0); // takes in min(10, 4) = 4: δ = 2, μ = 3, σ² = 0.5·(1 + 2) = 1.5
        assert_eq!(r.threshold(), Some(3.0 + 2.0 * 1.5f64.sqrt()));
    }

    #[test]
    fn skip_fires_above_factor_times_the_moving_mean() {
        let mut r = rule(
            "skip",
            ClipParams {
                factor: 3.0,
                beta: 0.5,
                warmup: 1,
                ..Default::default()
            },
        );
        assert_eq!(r.action(1e9), Action::Keep); // warm-up
        r.observe(2.0);
        assert_eq!(r.threshold(), Some(6.0));
        assert_eq!(r.action(6.0), Action::Keep);
        assert_eq!(r.action(6.5), Action::Skip);
        r.observe(10.0); // the spike moves the mean: 2 + 0.5·8 = 6
        assert_eq!(r.threshold(), Some(18.0));
    }

    #[test]
    fn agc_bounds_each_units_ratio() {
        let dims = Dims {
            n_in: 2,
            n_hidden: 3,
            n_out: 2,
        };
        let mut w = Params::<f64>::zeros(dims, false);
        let mut g = Params::<f64>::zeros(dims, false);
        for (k, (gt, wt)) in g.tensors_mut().into_iter().zip(w.tensors_mut()).enumerate() {
            for (i, (gv, wv)) in gt.iter_mut().zip(wt.iter_mut()).enumerate() {
                *gv = 5.0 * ((k * 5 + i) as f64).sin();
                *wv = ((k * 3 + i) as f64 * 0.3).cos();
            }
        }
        let n = clip_unitwise(&mut g, &w, 0.1, AGC_EPS);
        assert!(n > 0);
        let widths = [3, 2, 1, 3, 1, 1];
        for ((gt, wt), width) in g.tensors().iter().zip(w.tensors()).zip(widths) {
            for (gr, wr) in gt.chunks(width).zip(wt.chunks(width)) {
                let gn = gr.iter().map(|v| v * v).sum::<f64>().sqrt();
                let wn = wr.iter().map(|v| v * v).sum::<f64>().sqrt();
                assert!(gn <= 0.1 * wn.max(AGC_EPS) * (1.0 + 1e-12));
            }
        }
    }

    #[test]
    fn the_state_round_trips_and_refuses_another_rules() {
        let mut a = rule(
            "auto",
            ClipParams {
                window: 4,
                ..Default::default()
            },
        );
        for g in [1.0, 5.0, 2.0, 7.0, 3.0] {
            a.observe(g);
        }
        let mut b = rule(
            "auto",
            ClipParams {
                window: 4,
                ..Default::default()
            },
        );
        b.set_state(&a.state()).expect("same rule");
        assert_eq!(a, b);
        let mut z = rule("zscore", ClipParams::default());
        assert!(z.set_state(&a.state()).is_err());
        let mut p = rule("percentile", ClipParams::default());
        assert!(p.set_state(&[4.0, 2.0, 0.0, 0.0, 3.0, 1.0]).is_err()); // unsorted
    }

    #[test]
    fn bad_parameters_are_refused_with_their_names() {
        let msg = |name: &str, p: ClipParams| match Clip::parse_with(name, &p) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("{name} accepted as {c:?}"),
        };
        let d = ClipParams::default();
        assert!(msg("auto", ClipParams { window: 0, ..d }).contains("clip_window"));
        assert!(msg("auto", ClipParams { factor: -1.0, ..d }).contains("clip_factor"));
        assert!(msg(
            "percentile",
            ClipParams {
                percentile: 0.0,
                ..d
            }
        )
        .contains("clip_percentile"));
        assert!(msg(
            "percentile",
            ClipParams {
                percentile: 101.0,
                ..d
            }
        )
        .contains("(0, 100]"));
        assert!(msg("zscore", ClipParams { z: f64::NAN, ..d }).contains("clip_z"));
        assert!(msg("zscore", ClipParams { beta: 1.0, ..d }).contains("clip_beta"));
        assert!(msg("skip", ClipParams { warmup: 0, ..d }).contains("clip_warmup"));
        assert!(msg("agc", ClipParams { lambda: 0.0, ..d }).contains("clip_lambda"));
        assert!(msg("bogus", d).contains("agc"));
    }
}
