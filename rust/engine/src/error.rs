//! The engine's one error type. Every user mistake is an `Err` with a message that names the
//! argument; the binding layer maps each variant to one Python exception class.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum EngineError {
    /// An array whose shape does not fit the model or the other arrays.
    #[error("{name} has shape {got:?}, expected {expected}")]
    Shape {
        name: String,
        got: Vec<usize>,
        expected: String,
    },
    /// A name (activation, loss, optimiser, ...) that the engine does not know.
    #[error("unknown {what} '{got}'; expected one of: {choices}")]
    UnknownName {
        what: &'static str,
        got: String,
        choices: &'static str,
    },
    /// A value outside its domain: NaN in the inputs, a class index out of range, a negative
    /// learning rate.
    #[error("{0}")]
    InvalidValue(String),
    /// The gradient (or the loss) was NaN or infinite and the policy says to stop.
    #[error("non-finite gradient (norm {norm}, loss {loss}); lower the learning rate or enable clipping")]
    NonFiniteGradient { norm: f64, loss: f64 },
    /// The gradient was finite but the update would have made a weight (or the optimiser's
    /// state) NaN or infinite, and the policy says to stop.
    #[error("the update would make the weights non-finite (gradient norm {norm}, learning rate {lr}); lower the learning rate or enable clipping")]
    NonFiniteUpdate { norm: f64, lr: f64 },
    /// A buffer whose size comes from the caller (T, B, H) could not be allocated.
    #[error("cannot allocate {what}: {bytes} bytes needed; use a shorter length, a smaller batch or fewer hidden units")]
    OutOfMemory { what: &'static str, bytes: u128 },
}

pub type Result<T> = std::result::Result<T, EngineError>;

impl EngineError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        EngineError::InvalidValue(msg.into())
    }
}
