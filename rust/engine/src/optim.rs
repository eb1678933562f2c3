//! Parameter updates: the paper's plain SGD, and momentum, Nesterov momentum, RMSProp and
//! Adagrad (the adaptive methods the lecture notes motivate as alternatives to clipping).

use crate::error::{EngineError, Result};
use crate::float::Float;
use crate::model::Params;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    Sgd,
    Momentum,
    Nesterov,
    RmsProp,
    Adagrad,
}

impl OptimizerKind {
    pub const CHOICES: &'static str = "sgd, momentum, nesterov, rmsprop, adagrad";

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "sgd" => Ok(OptimizerKind::Sgd),
            "momentum" => Ok(OptimizerKind::Momentum),
            "nesterov" => Ok(OptimizerKind::Nesterov),
            "rmsprop" => Ok(OptimizerKind::RmsProp),
            "adagrad" => Ok(OptimizerKind::Adagrad),
            _ => Err(EngineError::UnknownName {
                what: "optimizer",
                got: name.to_string(),
                choices: Self::CHOICES,
            }),
        }
    }

    /// Whether the optimiser keeps one state tensor per parameter.
    pub fn has_state(self) -> bool {
        !matches!(self, OptimizerKind::Sgd)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// μ for momentum and Nesterov.
    pub momentum: f64,
    /// ρ, the decay of RMSProp's running mean of g².
    pub rho: f64,
    /// ε in the adaptive methods' denominators.
    pub eps: f64,
}

impl OptimizerConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(EngineError::invalid(format!(
                "the learning rate must be finite and ≥ 0, got {}",
                self.lr
            )));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(EngineError::invalid(format!(
                "momentum must be in [0, 1), got {}",
                self.momentum
            )));
        }
        if !(0.0..1.0).contains(&self.rho) {
            return Err(EngineError::invalid(format!(
                "rho must be in [0, 1), got {}",
                self.rho
            )));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(EngineError::invalid(format!(
                "eps must be finite and > 0, got {}",
                self.eps
            )));
        }
        Ok(())
    }
}

/// An optimiser and its state: velocities (momentum, Nesterov) or accumulated squares
/// (RMSProp, Adagrad), shaped like the parameters.
#[derive(Debug, Clone)]
pub struct Optimizer<T> {
    pub config: OptimizerConfig,
    pub state: Option<Params<T>>,
}

impl<T: Float> Optimizer<T> {
    pub fn new(config: OptimizerConfig, params: &Params<T>) -> Result<Self> {
        config.validate()?;
        let state = config.kind.has_state().then(|| params.zeros_like());
        Ok(Optimizer { config, state })
    }

    /// θ ← θ − update(g), unless some parameter or state entry would become NaN or infinite:
    /// then nothing changes and this returns false. A finite gradient times a large learning
    /// rate can overflow (f32 reaches ±inf at 3.4e38), so the candidate values are checked in
    /// a first pass and written in a second; both passes are O(parameters), small beside
    /// BPTT's O(T·B·H²).
    pub fn apply(&mut self, params: &mut Params<T>, grads: &Params<T>) -> bool {
        let k = Coefs::new(&self.config);
        let kind = self.config.kind;
        let gs = grads.tensors();
        let finite = match &self.state {
            None => params.tensors().into_iter().zip(gs.iter()).all(|(p, g)| {
                p.iter()
                    .zip(g.iter())
                    .all(|(w, d)| k.next(OptimizerKind::Sgd, *w, *d, T::ZERO).0.is_finite())
            }),
            Some(st) => params
                .tensors()
                .into_iter()
                .zip(gs.iter())
                .zip(st.tensors())
                .all(|((p, g), s)| {
                    p.iter().zip(g.iter()).zip(s).all(|((w, d), v)| {
                        let (w, v) = k.next(kind, *w, *d, *v);
                        w.is_finite() && v.is_finite()
                    })
                }),
        };
        if !finite {
            return false;
        }
        match &mut self.state {
            None => {
                for (p, g) in params.tensors_mut().into_iter().zip(gs) {
                    for (w, d) in p.iter_mut().zip(g) {
                        *w = k.next(OptimizerKind::Sgd, *w, *d, T::ZERO).0;
                    }
                }
            }
            Some(st) => {
                let ps = params.tensors_mut();
                for ((p, g), s) in ps.into_iter().zip(gs).zip(st.tensors_mut()) {
                    for ((w, d), v) in p.iter_mut().zip(g).zip(s.iter_mut()) {
                        (*w, *v) = k.next(kind, *w, *d, *v);
                    }
                }
            }
        }
        true
    }
}

/// The optimiser's constants in the parameters' precision.
struct Coefs<T> {
    lr: T,
    mu: T,
    rho: T,
    eps: T,
}

impl<T: Float> Coefs<T> {
    fn new(c: &OptimizerConfig) -> Self {
        Coefs {
            lr: T::from_f64(c.lr),
            mu: T::from_f64(c.momentum),
            rho: T::from_f64(c.rho),
            eps: T::from_f64(c.eps),
        }
    }

    /// One entry's new (θ, state) from its gradient `d` and its old state `v`.
    #[inline(always)]
    fn next(&self, kind: OptimizerKind, w: T, d: T, v: T) -> (T, T) {
        let one = T::ONE;
        match kind {
            OptimizerKind::Sgd => (w - self.lr * d, v),
            OptimizerKind::Momentum => {
                let v = self.mu * v - self.lr * d;
                (w + v, v)
            }
            OptimizerKind::Nesterov => {
                // Sutskever et al. (2013): θ += −μ·v_old + (1 + μ)·v_new.
                let new = self.mu * v - self.lr * d;
                (w + (-(self.mu * v) + (one + self.mu) * new), new)
            }
            OptimizerKind::RmsProp => {
                let v = self.rho * v + (one - self.rho) * d * d;
                (w - self.lr * d / (v.sqrt() + self.eps), v)
            }
            OptimizerKind::Adagrad => {
                let v = v + d * d;
                (w - self.lr * d / (v.sqrt() + self.eps), v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dims;

    fn setup(kind: OptimizerKind) -> (Optimizer<f64>, Params<f64>, Params<f64>) {
        let dims = Dims {
            n_in: 1,
            n_hidden: 1,
            n_out: 1,
        };
        let mut p = Params::zeros(dims, false);
        p.w_rec[0] = 1.0;
        let mut g = p.zeros_like();
        g.w_rec[0] = 0.5;
        let cfg = OptimizerConfig {
            kind,
            lr: 0.1,
            momentum: 0.9,
            rho: 0.9,
            eps: 1e-8,
        };
        (Optimizer::new(cfg, &p).unwrap(), p, g)
    }

    #[test]
    fn updates_follow_their_formulas() {
        let (mut o, mut p, g) = setup(OptimizerKind::Sgd);
        o.apply(&mut p, &g);
        assert!((p.w_rec[0] - 0.95).abs() < 1e-15);

        let (mut o, mut p, g) = setup(OptimizerKind::Momentum);
        o.apply(&mut p, &g); // v = −0.05
        o.apply(&mut p, &g); // v = 0.9·(−0.05) − 0.05 = −0.095
        assert!((p.w_rec[0] - (1.0 - 0.05 - 0.095)).abs() < 1e-15);

        let (mut o, mut p, g) = setup(OptimizerKind::Nesterov);
        o.apply(&mut p, &g); // v: 0 → −0.05; θ += 1.9·(−0.05)
        assert!((p.w_rec[0] - (1.0 - 0.095)).abs() < 1e-15);

        let (mut o, mut p, g) = setup(OptimizerKind::RmsProp);
        o.apply(&mut p, &g); // s = 0.1·0.25 = 0.025
        assert!((p.w_rec[0] - (1.0 - 0.1 * 0.5 / (0.025f64.sqrt() + 1e-8))).abs() < 1e-12);

        let (mut o, mut p, g) = setup(OptimizerKind::Adagrad);
        o.apply(&mut p, &g); // s = 0.25
        assert!((p.w_rec[0] - (1.0 - 0.1 * 0.5 / (0.5 + 1e-8))).abs() < 1e-12);
    }

    #[test]
    fn bad_hyper_parameters_are_rejected() {
        let p: Params<f64> = Params::zeros(
            Dims {
                n_in: 1,
                n_hidden: 1,
                n_out: 1,
            },
            false,
        );
        let mut cfg = OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: -1.0,
            momentum: 0.9,
            rho: 0.9,
            eps: 1e-8,
        };
        let msg = Optimizer::new(cfg, &p).unwrap_err().to_string();
        assert!(msg.contains("learning rate"), "{msg}");
        cfg.lr = 0.1;
        cfg.momentum = 1.5;
        assert!(Optimizer::new(cfg, &p).is_err());
    }

    #[test]
    fn an_update_that_would_overflow_changes_nothing() {
        for kind in [
            OptimizerKind::Sgd,
            OptimizerKind::Momentum,
            OptimizerKind::Nesterov,
            OptimizerKind::RmsProp,
            OptimizerKind::Adagrad,
        ] {
            let dims = Dims {
                n_in: 1,
                n_hidden: 2,
                n_out: 1,
            };
            let mut p: Params<f32> = Params::zeros(dims, false);
            p.w_rec.copy_from_slice(&[1.0, -2.0, 3.0, 0.5]);
            let mut g = p.zeros_like();
            g.w_rec.copy_from_slice(&[1e30, 1.0, 1.0, 1.0]);
            let cfg = OptimizerConfig {
                kind,
                lr: 1e30,
                momentum: 0.9,
                rho: 0.9,
                eps: 1e-8,
            };
            let mut o = Optimizer::new(cfg, &p).unwrap();
            let before = p.clone();
            assert!(!o.apply(&mut p, &g), "{kind:?}");
            assert_eq!(p.w_rec, before.w_rec, "{kind:?}");
            if let Some(st) = &o.state {
                assert!(st.w_rec.iter().all(|v| *v == 0.0), "{kind:?}");
            }
        }
    }
}
