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

    /// θ ← θ − update(g).
    pub fn apply(&mut self, params: &mut Params<T>, grads: &Params<T>) {
        let c = self.config;
        let lr = T::from_f64(c.lr);
        let mu = T::from_f64(c.momentum);
        let rho = T::from_f64(c.rho);
        let eps = T::from_f64(c.eps);
        let one = T::ONE;
        let ps = params.tensors_mut();
        let gs = grads.tensors();
        match (&mut self.state, c.kind) {
            (None, _) | (Some(_), OptimizerKind::Sgd) => {
                for (p, g) in ps.into_iter().zip(gs) {
                    for (w, d) in p.iter_mut().zip(g) {
                        *w -= lr * *d;
                    }
                }
            }
            (Some(st), kind) => {
                for ((p, g), s) in ps.into_iter().zip(gs).zip(st.tensors_mut()) {
                    for ((w, d), v) in p.iter_mut().zip(g).zip(s.iter_mut()) {
                        let d = *d;
                        match kind {
                            OptimizerKind::Momentum => {
                                *v = mu * *v - lr * d;
                                *w += *v;
                            }
                            OptimizerKind::Nesterov => {
                                // Sutskever et al. (2013): θ += −μ·v_old + (1 + μ)·v_new.
                                let old = *v;
                                *v = mu * old - lr * d;
                                *w += -(mu * old) + (one + mu) * *v;
                            }
                            OptimizerKind::RmsProp => {
                                *v = rho * *v + (one - rho) * d * d;
                                *w -= lr * d / (v.sqrt() + eps);
                            }
                            OptimizerKind::Adagrad => {
                                *v += d * d;
                                *w -= lr * d / (v.sqrt() + eps);
                            }
                            OptimizerKind::Sgd => *w -= lr * d,
                        }
                    }
                }
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
}
