//! The model's parameters (eq. 2 and its read-out) and one batch of sequences, with the checks
//! that turn every malformed argument into an [`EngineError`] before compute starts.
//!
//! Layouts are numpy's, row-major:
//! `W_rec (H,H)`, `W_in (H,I)`, `b (H,)`, `W_out (O,H)`, `b_out (O,)`, optional learned `x0 (H,)`;
//! inputs `(T,B,I)`, class targets `(T,B)` or value targets `(T,B,O)`, mask `(T,B)`.

use crate::error::{EngineError, Result};
use crate::float::Float;
use crate::loss::{Loss, TargetRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub n_in: usize,
    pub n_hidden: usize,
    pub n_out: usize,
}

/// The parameters θ, by the paper's names. `x0` is empty unless the initial state is learned.
#[derive(Debug, Clone, PartialEq)]
pub struct Params<T> {
    pub dims: Dims,
    pub w_rec: Vec<T>,
    pub w_in: Vec<T>,
    pub b: Vec<T>,
    pub w_out: Vec<T>,
    pub b_out: Vec<T>,
    pub x0: Vec<T>,
}

/// The parameter names, in the order of [`Params::tensors`].
pub const PARAM_NAMES: [&str; 6] = ["W_rec", "W_in", "b", "W_out", "b_out", "x0"];

impl<T: Float> Params<T> {
    pub fn zeros(dims: Dims, learned_x0: bool) -> Self {
        let (i, h, o) = (dims.n_in, dims.n_hidden, dims.n_out);
        Params {
            dims,
            w_rec: vec![T::ZERO; h * h],
            w_in: vec![T::ZERO; h * i],
            b: vec![T::ZERO; h],
            w_out: vec![T::ZERO; o * h],
            b_out: vec![T::ZERO; o],
            x0: vec![T::ZERO; if learned_x0 { h } else { 0 }],
        }
    }

    pub fn zeros_like(&self) -> Self {
        Self::zeros(self.dims, self.has_x0())
    }

    pub fn has_x0(&self) -> bool {
        !self.x0.is_empty()
    }

    /// Builds parameters from flat row-major buffers and their shapes, checking every shape.
    /// `parts` holds (name, data, shape) in any order; `x0` may be absent.
    pub fn from_parts(parts: Vec<(String, Vec<T>, Vec<usize>)>) -> Result<Self> {
        let mut found: [Option<(Vec<T>, Vec<usize>)>; 6] = Default::default();
        for (name, data, shape) in parts {
            let idx = PARAM_NAMES.iter().position(|n| *n == name).ok_or_else(|| {
                EngineError::invalid(format!(
                    "unknown parameter '{name}'; expected: {}",
                    PARAM_NAMES.join(", ")
                ))
            })?;
            if shape.iter().product::<usize>() != data.len() {
                return Err(EngineError::invalid(format!(
                    "{name}: data does not fill its shape"
                )));
            }
            found[idx] = Some((data, shape));
        }
        let mut take = |i: usize| {
            found[i].take().ok_or_else(|| {
                EngineError::invalid(format!("missing parameter '{}'", PARAM_NAMES[i]))
            })
        };
        let (w_rec, s_rec) = take(0)?;
        let (w_in, s_in) = take(1)?;
        let (b, s_b) = take(2)?;
        let (w_out, s_out) = take(3)?;
        let (b_out, s_bout) = take(4)?;
        let x0 = take(5).ok();
        if s_rec.len() != 2 || s_rec[0] != s_rec[1] || s_rec[0] == 0 {
            return Err(shape_err("W_rec", &s_rec, "(H, H) with H ≥ 1".into()));
        }
        let h = s_rec[0];
        if s_in.len() != 2 || s_in[0] != h {
            return Err(shape_err("W_in", &s_in, format!("({h}, I)")));
        }
        let n_in = s_in[1];
        expect_shape("b", &s_b, &[h])?;
        if s_out.len() != 2 || s_out[1] != h || s_out[0] == 0 {
            return Err(shape_err("W_out", &s_out, format!("(O, {h}) with O ≥ 1")));
        }
        let n_out = s_out[0];
        expect_shape("b_out", &s_bout, &[n_out])?;
        let x0 = match x0 {
            Some((data, shape)) => {
                expect_shape("x0", &shape, &[h])?;
                data
            }
            None => Vec::new(),
        };
        let p = Params {
            dims: Dims {
                n_in,
                n_hidden: h,
                n_out,
            },
            w_rec,
            w_in,
            b,
            w_out,
            b_out,
            x0,
        };
        for (name, t) in PARAM_NAMES.iter().zip(p.tensors()) {
            if let Some(pos) = t.iter().position(|v| !v.is_finite()) {
                return Err(EngineError::invalid(format!(
                    "parameter {name} has a non-finite value at flat index {pos}"
                )));
            }
        }
        Ok(p)
    }

    /// The tensors in [`PARAM_NAMES`] order (x0 empty when not learned).
    pub fn tensors(&self) -> [&[T]; 6] {
        [
            &self.w_rec,
            &self.w_in,
            &self.b,
            &self.w_out,
            &self.b_out,
            &self.x0,
        ]
    }

    pub fn tensors_mut(&mut self) -> [&mut Vec<T>; 6] {
        [
            &mut self.w_rec,
            &mut self.w_in,
            &mut self.b,
            &mut self.w_out,
            &mut self.b_out,
            &mut self.x0,
        ]
    }

    /// numpy shapes of the tensors, in [`PARAM_NAMES`] order.
    pub fn shapes(&self) -> [Vec<usize>; 6] {
        let Dims {
            n_in: i,
            n_hidden: h,
            n_out: o,
        } = self.dims;
        [
            vec![h, h],
            vec![h, i],
            vec![h],
            vec![o, h],
            vec![o],
            vec![self.x0.len()],
        ]
    }

    pub fn fill_zero(&mut self) {
        for t in self.tensors_mut() {
            t.iter_mut().for_each(|v| *v = T::ZERO);
        }
    }
}

fn shape_err(name: &str, got: &[usize], expected: String) -> EngineError {
    EngineError::Shape {
        name: name.to_string(),
        got: got.to_vec(),
        expected,
    }
}

fn expect_shape(name: &str, got: &[usize], want: &[usize]) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(shape_err(name, got, format!("{want:?}")))
    }
}

/// Targets of a batch: class indices `(T,B)` or values `(T,B,O)`.
#[derive(Clone, Copy)]
pub enum Targets<'a, T> {
    Classes(&'a [i64]),
    Values(&'a [T]),
}

/// One batch of `batch` sequences of `steps` steps, time-major, as numpy hands it over.
#[derive(Clone, Copy)]
pub struct Batch<'a, T> {
    pub steps: usize,
    pub batch: usize,
    pub inputs: &'a [T],
    pub targets: Targets<'a, T>,
    pub mask: &'a [T],
}

/// x_0 when it is given rather than learned: zero, one vector for all examples, or one per
/// example (a state carried over from the previous segment in truncated BPTT).
#[derive(Clone, Copy)]
pub enum InitialState<'a, T> {
    Zero,
    Shared(&'a [T]),
    PerExample(&'a [T]),
}

impl<'a, T: Float> InitialState<'a, T> {
    /// Checks the shape: `(H,)` or `(B, H)`.
    pub fn from_array(data: &'a [T], shape: &[usize], batch: usize, h: usize) -> Result<Self> {
        if shape == [h] {
            Ok(InitialState::Shared(data))
        } else if shape == [batch, h] {
            Ok(InitialState::PerExample(data))
        } else {
            Err(shape_err("x0", shape, format!("({h},) or ({batch}, {h})")))
        }
        .and_then(|s| {
            if data.iter().all(|v| v.is_finite()) {
                Ok(s)
            } else {
                Err(EngineError::invalid("x0 contains NaN or infinity"))
            }
        })
    }

    pub fn row(&self, b: usize, h: usize) -> Option<&'a [T]> {
        match *self {
            InitialState::Zero => None,
            InitialState::Shared(x) => Some(x),
            InitialState::PerExample(x) => Some(&x[b * h..(b + 1) * h]),
        }
    }
}

impl<'a, T: Float> Batch<'a, T> {
    /// Checks shapes against `dims` and the loss, and values: finite inputs, a finite
    /// non-negative mask, class indices in range and finite value targets where the mask is on.
    pub fn new(
        dims: Dims,
        loss: Loss,
        inputs: (&'a [T], &[usize]),
        targets: (Targets<'a, T>, &[usize]),
        mask: (&'a [T], &[usize]),
    ) -> Result<Self> {
        let (x, xs) = inputs;
        if xs.len() != 3 || xs[2] != dims.n_in {
            return Err(shape_err("inputs", xs, format!("(T, B, {})", dims.n_in)));
        }
        let (steps, batch) = (xs[0], xs[1]);
        if batch == 0 {
            return Err(shape_err("inputs", xs, "(T, B, I) with B ≥ 1".into()));
        }
        expect_shape("mask", mask.1, &[steps, batch])?;
        let (tg, ts) = targets;
        match (loss.has_class_targets(), tg) {
            (true, Targets::Classes(_)) => expect_shape("targets", ts, &[steps, batch])?,
            (false, Targets::Values(_)) => {
                expect_shape("targets", ts, &[steps, batch, dims.n_out])?
            }
            (true, Targets::Values(_)) => {
                return Err(EngineError::invalid(
                    "the softmax_ce loss takes integer class targets of shape (T, B)",
                ))
            }
            (false, Targets::Classes(_)) => {
                return Err(EngineError::invalid(
                    "the mse and bce losses take float targets of shape (T, B, O)",
                ))
            }
        }
        if let Some(p) = x.iter().position(|v| !v.is_finite()) {
            let (t, b) = (p / (batch * dims.n_in), (p / dims.n_in) % batch);
            return Err(EngineError::invalid(format!(
                "inputs contain NaN or infinity (first at step {t}, example {b})"
            )));
        }
        let m = mask.0;
        if let Some(p) = m.iter().position(|v| !v.is_finite() || *v < T::ZERO) {
            return Err(EngineError::invalid(format!(
                "mask must be finite and ≥ 0 (bad value at step {}, example {})",
                p / batch,
                p % batch
            )));
        }
        for p in 0..steps * batch {
            if m[p] == T::ZERO {
                continue;
            }
            let bad = match tg {
                Targets::Classes(c) => c[p] < 0 || c[p] as usize >= dims.n_out,
                Targets::Values(v) => v[p * dims.n_out..(p + 1) * dims.n_out]
                    .iter()
                    .any(|t| !t.is_finite()),
            };
            if bad {
                let what = match tg {
                    Targets::Classes(_) => format!("a class index outside [0, {})", dims.n_out),
                    Targets::Values(_) => "NaN or infinity".to_string(),
                };
                return Err(EngineError::invalid(format!(
                    "targets hold {what} at step {}, example {} (where the mask is on)",
                    p / batch,
                    p % batch
                )));
            }
        }
        Ok(Batch {
            steps,
            batch,
            inputs: x,
            targets: tg,
            mask: m,
        })
    }

    /// Mask weight of (0-based step t, example b).
    #[inline]
    pub fn mask_at(&self, t: usize, b: usize) -> T {
        self.mask[t * self.batch + b]
    }

    #[inline]
    pub fn target_at(&self, t: usize, b: usize, n_out: usize) -> TargetRow<'a, T> {
        let p = t * self.batch + b;
        match self.targets {
            Targets::Classes(c) => TargetRow::Class(c[p] as usize),
            Targets::Values(v) => TargetRow::Values(&v[p * n_out..(p + 1) * n_out]),
        }
    }

    /// The number of steps up to and including the last one where any mask is on. Steps after it
    /// cannot change the cost, so BPTT never runs them.
    pub fn last_scored_step(&self) -> usize {
        (0..self.steps)
            .rev()
            .find(|&t| (0..self.batch).any(|b| self.mask_at(t, b) != T::ZERO))
            .map_or(0, |t| t + 1)
    }
}
