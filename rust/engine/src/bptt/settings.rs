//! The settings one BPTT call takes and the values it returns: the model's activation and
//! cost, the form and weight of the Ω regulariser (eq. 9), and E and Ω for the batch.

use crate::activation::Activation;
use crate::error::{EngineError, Result};
use crate::loss::{Loss, TimeReduction};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelConfig {
    pub activation: Activation,
    pub loss: Loss,
    pub time_reduction: TimeReduction,
}

/// Which quantity Ω averages: the paper's eq. (9) uses the norm ratio r_k; the authors'
/// released code squares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OmegaForm {
    /// (‖g_{k+1} J_k‖ / ‖g_{k+1}‖ − 1)²
    Norm,
    /// (‖g_{k+1} J_k‖² / ‖g_{k+1}‖² − 1)²
    Squared,
}

impl OmegaForm {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "norm" => Ok(OmegaForm::Norm),
            "squared" => Ok(OmegaForm::Squared),
            _ => Err(EngineError::UnknownName {
                what: "omega form",
                got: name.to_string(),
                choices: "norm, squared",
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OmegaConfig {
    /// The weight α of Ω's gradient in W_rec's; Ω's value is computed whatever α is.
    pub alpha: f64,
    pub form: OmegaForm,
}

/// Pairs whose ‖g_{k+1}‖² falls below this carry no error signal: they are left out of Ω's
/// mean (as in the authors' code) rather than divided by a vanishing norm.
pub const OMEGA_MIN_SIGNAL: f64 = 1e-20;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOutput {
    /// E, the cost of eq. (3) averaged over the batch.
    pub loss: f64,
    /// Ω of eq. (9): the mean over the (k, example) pairs that carry error signal.
    pub omega: f64,
    /// How many (k, example) pairs entered Ω.
    pub omega_pairs: usize,
}

/// Everything one call needs besides the parameters and the batch.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub model: ModelConfig,
    pub omega: OmegaConfig,
    /// Run all T steps even after the last scored one (needed when x_T is carried on).
    pub full_length: bool,
}
