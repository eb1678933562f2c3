//! A stateful trainer: it owns the parameters, the optimiser state, the thread pool and the
//! work buffers, so a training loop hands it batches and never copies weights per step.
//!
//! One step reads top to bottom: loss and gradients (BPTT + Ω) → norm → non-finite policy →
//! clipping → optimiser update.

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::bptt::{loss_and_grads, Settings, Workspace};
use crate::clip::{clip_by_norm, clip_by_value, global_norm};
pub use crate::clip_rules::Clip;
use crate::clip_rules::{clip_unitwise, Action, ClipRule};
use crate::error::{EngineError, Result};
use crate::float::Float;
use crate::model::{Batch, InitialState, Params};
use crate::optim::{Optimizer, OptimizerConfig};

/// What happens when the gradient or the loss is NaN or infinite. The weights never see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonFinitePolicy {
    /// Leave the parameters as they are and go on.
    Skip,
    /// The authors' code: W_rec ← W_rec − lr·0.02·W_rec, the other parameters untouched, to
    /// pull the dynamics back from the exploding regime. The factor is bounded as
    /// [`shrink_factor`] says, so the shrink never grows, negates or zeroes W_rec.
    Shrink,
    /// Stop with [`EngineError::NonFiniteGradient`].
    Error,
}

/// The smallest factor the shrink applies: W_rec at most halves per skipped update.
pub const SHRINK_FLOOR: f64 = 0.5;

/// The factor the "shrink" policy multiplies W_rec by: the authors' 1 − 0.02·lr while that is
/// at least [`SHRINK_FLOOR`] (lr ≤ 25, which covers every learning rate the paper uses), and
/// [`SHRINK_FLOOR`] above. Unbounded, the rule is negative for lr > 50 and larger than 1 in
/// size for lr > 100, so repeated shrinks would flip the sign of W_rec and grow it to ±inf.
pub fn shrink_factor(lr: f64) -> f64 {
    (1.0 - 0.02 * lr).clamp(SHRINK_FLOOR, 1.0)
}

impl NonFinitePolicy {
    pub const CHOICES: &'static str = "skip, shrink, error";

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "skip" => Ok(NonFinitePolicy::Skip),
            "shrink" => Ok(NonFinitePolicy::Shrink),
            "error" => Ok(NonFinitePolicy::Error),
            _ => Err(EngineError::UnknownName {
                what: "non-finite policy",
                got: name.to_string(),
                choices: Self::CHOICES,
            }),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TrainerConfig {
    pub settings: Settings,
    pub clip: Clip,
    pub optimizer: OptimizerConfig,
    pub nonfinite: NonFinitePolicy,
    /// Truncated BPTT over a stream: each step starts from the previous step's x_T (when the
    /// batch size matches) instead of x_0 = 0, and runs every step of the batch.
    pub carry_state: bool,
    /// Keep the biases b and b_out at their values (the paper's language model has none):
    /// their gradients are zeroed before the norm is taken, so they neither move nor count.
    pub freeze_biases: bool,
}

/// What one update did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    pub loss: f64,
    pub omega: f64,
    /// ‖∂(E + αΩ)/∂θ‖ before clipping.
    pub grad_norm: f64,
    pub clipped: bool,
    /// The update was not applied: the gradient was non-finite (the update was skipped or
    /// replaced by the shrink), or the `skip` rule found a spike.
    pub skipped: bool,
    pub omega_pairs: usize,
    /// The clipping rule's threshold in force at this step (see
    /// [`ClipRule::threshold`](crate::clip_rules::ClipRule::threshold)); NaN when none is.
    pub clip_threshold: f64,
}

pub struct Trainer<T: Float> {
    config: TrainerConfig,
    params: Params<T>,
    grads: Params<T>,
    optimizer: Optimizer<T>,
    rule: ClipRule,
    workspace: Workspace<T>,
    pool: ThreadPool,
    /// The carried state `(B, H)`, empty until the first step with `carry_state`.
    state: Vec<T>,
}

/// Ω's weight α (eq. 9) must be finite and ≥ 0: a negative α would reward the vanishing
/// gradients Ω is there to prevent.
pub fn check_alpha(alpha: f64) -> Result<()> {
    if alpha.is_finite() && alpha >= 0.0 {
        Ok(())
    } else {
        Err(EngineError::invalid(format!(
            "omega_alpha must be finite and ≥ 0, got {alpha}"
        )))
    }
}

/// The most worker threads a pool may have: far beyond any core count this runs on, and low
/// enough that a typo (1000) is refused instead of slowing every update down.
pub const MAX_THREADS: usize = 256;

/// A thread pool of `threads` workers (`None`: one per core).
pub fn make_pool(threads: Option<usize>) -> Result<ThreadPool> {
    let n = match threads {
        Some(n) if n == 0 || n > MAX_THREADS => {
            return Err(EngineError::invalid(format!(
                "threads must be between 1 and {MAX_THREADS}, got {n}"
            )))
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    ThreadPoolBuilder::new()
        .num_threads(n)
        .start_handler(|_| crate::fpmode::FlushDenormals::set_for_thread())
        .build()
        .map_err(|e| EngineError::invalid(format!("could not start {n} threads: {e}")))
}

impl<T: Float> Trainer<T> {
    pub fn new(params: Params<T>, config: TrainerConfig, threads: Option<usize>) -> Result<Self> {
        let optimizer = Optimizer::new(config.optimizer, &params)?;
        check_alpha(config.settings.omega.alpha)?;
        if config.carry_state && params.has_x0() {
            return Err(EngineError::invalid(
                "a learned initial state (x0) and a carried state exclude each other",
            ));
        }
        let mut config = config;
        config.settings.full_length |= config.carry_state;
        Ok(Trainer {
            state: Vec::new(),
            config,
            grads: params.zeros_like(),
            params,
            optimizer,
            rule: ClipRule::new(config.clip),
            workspace: Workspace::new(),
            pool: make_pool(threads)?,
        })
    }

    /// One update. `x0` overrides the carried state when given.
    pub fn step(&mut self, batch: &Batch<'_, T>, x0: InitialState<'_, T>) -> Result<StepStats> {
        let h = self.params.dims.n_hidden;
        let carried = self.config.carry_state && self.state.len() == batch.batch * h;
        let x0 = match x0 {
            InitialState::Zero if carried => InitialState::PerExample(&self.state),
            other => other,
        };
        let out = loss_and_grads(
            &self.pool,
            &self.params,
            batch,
            x0,
            &self.config.settings,
            &mut self.workspace,
            &mut self.grads,
        )?;
        if self.config.freeze_biases {
            self.grads.b.fill(T::ZERO);
            self.grads.b_out.fill(T::ZERO);
        }
        if self.config.carry_state {
            self.state.clear();
            self.state.extend_from_slice(self.workspace.final_state());
        }
        let norm = global_norm(&self.grads);
        let mut stats = StepStats {
            loss: out.loss,
            omega: out.omega,
            grad_norm: norm,
            clipped: false,
            skipped: false,
            omega_pairs: out.omega_pairs,
            clip_threshold: self.rule.threshold().unwrap_or(f64::NAN),
        };
        if !norm.is_finite() || !out.loss.is_finite() {
            self.not_applied(
                &mut stats,
                EngineError::NonFiniteGradient {
                    norm,
                    loss: out.loss,
                },
            )?;
            return Ok(stats);
        }
        let action = self.rule.action(norm);
        // The rule takes the norm in now: its threshold for this step is already fixed.
        self.rule.observe(norm);
        stats.clipped = match action {
            Action::Keep => false,
            Action::Rescale(t) => clip_by_norm(&mut self.grads, t).1,
            Action::ClampValue(t) => clip_by_value(&mut self.grads, t) > 0,
            Action::UnitWise { lambda, eps } => {
                clip_unitwise(&mut self.grads, &self.params, lambda, eps) > 0
            }
            Action::Skip => {
                // A spike: parameters and optimiser state stay as they are.
                stats.skipped = true;
                return Ok(stats);
            }
        };
        if !self.optimizer.apply(&mut self.params, &self.grads) {
            // A finite gradient whose update overflows (a huge learning rate without clipping)
            // is treated as a non-finite gradient: the weights never see it.
            self.not_applied(
                &mut stats,
                EngineError::NonFiniteUpdate {
                    norm,
                    lr: self.config.optimizer.lr,
                },
            )?;
        }
        Ok(stats)
    }

    /// What the non-finite policy does with an update that could not be applied.
    fn not_applied(&mut self, stats: &mut StepStats, error: EngineError) -> Result<()> {
        stats.skipped = true;
        match self.config.nonfinite {
            NonFinitePolicy::Skip => Ok(()),
            NonFinitePolicy::Shrink => {
                let f = T::from_f64(shrink_factor(self.config.optimizer.lr));
                self.params.w_rec.iter_mut().for_each(|w| *w *= f);
                Ok(())
            }
            NonFinitePolicy::Error => Err(error),
        }
    }

    pub fn params(&self) -> &Params<T> {
        &self.params
    }

    /// Replaces the parameters (same shapes), e.g. when resuming from a checkpoint.
    pub fn set_params(&mut self, params: Params<T>) -> Result<()> {
        if params.dims != self.params.dims || params.has_x0() != self.params.has_x0() {
            return Err(EngineError::invalid(
                "new parameters do not have the trainer's shapes",
            ));
        }
        self.params = params;
        Ok(())
    }

    /// The gradient of the last step, after clipping.
    pub fn grads(&self) -> &Params<T> {
        &self.grads
    }

    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        let mut c = self.config.optimizer;
        c.lr = lr;
        c.validate()?;
        self.config.optimizer = c;
        self.optimizer.config = c;
        Ok(())
    }

    pub fn set_omega_alpha(&mut self, alpha: f64) -> Result<()> {
        check_alpha(alpha)?;
        self.config.settings.omega.alpha = alpha;
        Ok(())
    }

    /// The clipping rule's state (see [`ClipRule::state`]), for a checkpoint.
    pub fn clip_state(&self) -> Vec<f64> {
        self.rule.state()
    }

    pub fn set_clip_state(&mut self, state: &[f64]) -> Result<()> {
        self.rule.set_state(state)
    }

    pub fn optimizer_state(&self) -> Option<&Params<T>> {
        self.optimizer.state.as_ref()
    }

    pub fn set_optimizer_state(&mut self, state: Params<T>) -> Result<()> {
        match &self.optimizer.state {
            Some(cur) if cur.dims == state.dims && cur.has_x0() == state.has_x0() => {
                self.optimizer.state = Some(state);
                Ok(())
            }
            Some(_) => Err(EngineError::invalid(
                "optimizer state does not have the parameters' shapes",
            )),
            None => Err(EngineError::invalid("this optimizer keeps no state")),
        }
    }

    /// x_T `(B, H)` of the last step, to carry into the next segment.
    pub fn final_state(&self) -> &[T] {
        self.workspace.final_state()
    }

    /// Forget the carried state: the next step starts from x_0 = 0 (a new pass over a stream).
    pub fn reset_state(&mut self) {
        self.state.clear();
    }

    pub fn error_signal_profile(&self) -> Vec<f64> {
        self.workspace
            .error_signal_profile(self.params.dims.n_hidden)
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    pub fn pool(&self) -> &ThreadPool {
        &self.pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shrink_never_grows_negates_or_zeroes_w_rec() {
        assert_eq!(shrink_factor(0.0), 1.0);
        assert!((shrink_factor(0.1) - 0.998).abs() < 1e-15); // the authors' rule
        assert!((shrink_factor(25.0) - 0.5).abs() < 1e-15);
        for lr in [50.0, 60.0, 100.0, 150.0, 1e9, f64::MAX] {
            assert_eq!(shrink_factor(lr), SHRINK_FLOOR, "lr {lr}");
        }
    }
}
