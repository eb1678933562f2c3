//! The rnnstab engine: the recurrent network of Pascanu, Mikolov & Bengio (2013), eq. (2),
//! `x_t = W_rec·σ(x_{t−1}) + W_in·u_t + b`, trained by BPTT with the paper's two remedies:
//! gradient-norm clipping (Algorithm 1, with the adaptive rules of [`clip_rules`]) and the Ω regulariser (eq. 9) with its immediate
//! gradient (eq. 10).
//!
//! This crate knows nothing of Python or of the command line: it takes flat row-major buffers
//! with their shapes and returns [`EngineError`]s for every malformed argument.

pub mod activation;
pub mod at_b;
pub mod bptt;
pub mod clip;
pub mod clip_rules;
pub mod error;
pub mod float;
pub mod fpmode;
pub mod kernels;
pub mod linalg;
pub mod loss;
mod matmul_avx2;
pub mod model;
pub mod optim;
pub mod trainer;

pub use activation::Activation;
pub use bptt::{
    forward, loss_and_grads, LossOutput, ModelConfig, OmegaConfig, OmegaForm, Settings, Workspace,
};
pub use clip::{clip_by_norm, clip_by_value, global_norm};
pub use clip_rules::{clip_unitwise, Action, ClipParams, ClipRule, AGC_EPS, CLIP_NAMES};
pub use error::{EngineError, Result};
pub use float::Float;
pub use loss::{Loss, TimeReduction};
pub use model::{Batch, Dims, InitialState, Params, Targets, PARAM_NAMES};
pub use optim::{Optimizer, OptimizerConfig, OptimizerKind};
pub use trainer::{
    check_alpha, make_pool, shrink_factor, Clip, NonFinitePolicy, StepStats, Trainer,
    TrainerConfig, MAX_THREADS, SHRINK_FLOOR,
};
