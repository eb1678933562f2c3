//! `Trainer`: the engine's stateful trainer as a Python class. Parameters and optimiser state
//! stay in Rust between steps; `steps` runs K updates in one call so Python is not in the
//! per-step path.

use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rnnstab_engine as eng;
use rnnstab_engine::{Float, InitialState};

use crate::convert::{
    batch_from, dict_from_params, engine_err, new_array, params_from_dict, readonly, settings_from,
    slice, Dtype, HasDtype,
};

enum Inner {
    F32(eng::Trainer<f32>),
    F64(eng::Trainer<f64>),
    #[cfg(feature = "gpu")]
    Gpu(Box<rnnstab_gpu::GpuTrainer>),
}

/// Runs `$body` with `$t` bound to the typed CPU trainer, whatever its element type, and
/// `$gpu` (with `$g` bound to the GPU trainer) on the GPU backend.
macro_rules! dispatch {
    ($inner:expr, $t:ident => $body:expr, $g:ident => $gpu:expr) => {
        match $inner {
            Inner::F32($t) => $body,
            Inner::F64($t) => $body,
            #[cfg(feature = "gpu")]
            Inner::Gpu($g) => $gpu,
        }
    };
}

#[pyclass(module = "rnnstab_cli._engine")]
pub struct Trainer {
    inner: Inner,
}

pub(crate) type Stats = (f64, f64, f64, bool, bool, usize, f64);

pub(crate) fn stats_tuple(s: eng::StepStats) -> Stats {
    (
        s.loss,
        s.omega,
        s.grad_norm,
        s.clipped,
        s.skipped,
        s.omega_pairs,
        s.clip_threshold,
    )
}

fn step_one<'py, T: Float + HasDtype>(
    py: Python<'py>,
    tr: &mut eng::Trainer<T>,
    inputs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
    x0: Option<&Bound<'py, PyAny>>,
) -> PyResult<Stats> {
    let views = batch_from::<T>(inputs, targets, mask)?;
    let dims = tr.params().dims;
    let batch = views.batch(dims, tr.config().settings.model.loss)?;
    let x0_arr: Option<PyReadonlyArrayDyn<'py, T>> =
        x0.map(|a| readonly::<T>(a, "x0")).transpose()?;
    let x0s = match &x0_arr {
        Some(a) => InitialState::from_array(slice(a, "x0")?, a.shape(), batch.batch, dims.n_hidden)
            .map_err(engine_err)?,
        None => InitialState::Zero,
    };
    py.detach(|| tr.step(&batch, x0s))
        .map(stats_tuple)
        .map_err(engine_err)
}

/// K updates from arrays with a leading K axis.
fn step_many<'py, T: Float + HasDtype>(
    py: Python<'py>,
    tr: &mut eng::Trainer<T>,
    inputs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
) -> PyResult<Vec<Stats>> {
    let views = batch_from::<T>(inputs, targets, mask)?;
    let stacked = views.stacked()?;
    let dims = tr.params().dims;
    let loss = tr.config().settings.model.loss;
    let mut out = Vec::with_capacity(stacked.k);
    for k in 0..stacked.k {
        let batch = stacked.batch(k, dims, loss)?;
        out.push(
            py.detach(|| tr.step(&batch, InitialState::Zero))
                .map(stats_tuple)
                .map_err(engine_err)?,
        );
        // Ctrl-C between updates: the updates done so far stay applied.
        py.check_signals()?;
    }
    Ok(out)
}

fn opt_state<'py, T: Float + HasDtype>(
    py: Python<'py>,
    tr: &eng::Trainer<T>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    tr.optimizer_state()
        .map(|s| dict_from_params(py, s))
        .transpose()
}

#[pymethods]
impl Trainer {
    #[new]
    // Every setting by keyword: two settings of one type swapped by position would pass
    // silently.
    #[pyo3(signature = (params, *, activation="tanh", loss="softmax_ce", optimizer="sgd", lr=0.01, clip_mode="norm",
                        clip=6.0, alpha=0.0, omega_form="norm", time_reduction="sum",
                        momentum=0.9, rho=0.9, eps=1e-8, nonfinite="skip", threads=None, carry_state=false,
                        train_biases=true, device="cpu", clip_window=100, clip_factor=2.0,
                        clip_percentile=10.0, clip_z=2.5, clip_beta=0.97, clip_warmup=25,
                        clip_lambda=0.01))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        params: &Bound<'_, PyDict>,
        activation: &str,
        loss: &str,
        optimizer: &str,
        lr: f64,
        clip_mode: &str,
        clip: f64,
        alpha: f64,
        omega_form: &str,
        time_reduction: &str,
        momentum: f64,
        rho: f64,
        eps: f64,
        nonfinite: &str,
        threads: Option<usize>,
        carry_state: bool,
        train_biases: bool,
        device: &str,
        clip_window: usize,
        clip_factor: f64,
        clip_percentile: f64,
        clip_z: f64,
        clip_beta: f64,
        clip_warmup: usize,
        clip_lambda: f64,
    ) -> PyResult<Self> {
        let clip_params = eng::ClipParams {
            threshold: clip,
            window: clip_window,
            factor: clip_factor,
            percentile: clip_percentile,
            z: clip_z,
            beta: clip_beta,
            warmup: clip_warmup,
            lambda: clip_lambda,
        };
        let config = eng::TrainerConfig {
            settings: settings_from(activation, loss, alpha, omega_form, time_reduction, false)?,
            clip: eng::Clip::parse_with(clip_mode, &clip_params).map_err(engine_err)?,
            optimizer: eng::OptimizerConfig {
                kind: eng::OptimizerKind::parse(optimizer).map_err(engine_err)?,
                lr,
                momentum,
                rho,
                eps,
            },
            nonfinite: eng::NonFinitePolicy::parse(nonfinite).map_err(engine_err)?,
            carry_state,
            freeze_biases: !train_biases,
        };
        let dtype = Dtype::of_params(params)?;
        let inner = match device {
            "cpu" => match dtype {
                Dtype::F32 => Inner::F32(
                    eng::Trainer::new(params_from_dict(params)?, config, threads)
                        .map_err(engine_err)?,
                ),
                Dtype::F64 => Inner::F64(
                    eng::Trainer::new(params_from_dict(params)?, config, threads)
                        .map_err(engine_err)?,
                ),
            },
            "gpu" => Self::gpu_inner(params, config, dtype)?,
            other => {
                return Err(engine_err(eng::EngineError::UnknownName {
                    what: "device",
                    got: other.to_string(),
                    choices: "cpu, gpu",
                }))
            }
        };
        Ok(Trainer { inner })
    }

    /// One update: (loss, omega, grad_norm, clipped, skipped, omega_pairs, clip_threshold).
    #[pyo3(signature = (inputs, targets, mask, x0=None))]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        targets: &Bound<'py, PyAny>,
        mask: &Bound<'py, PyAny>,
        x0: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Stats> {
        dispatch!(&mut self.inner, t => step_one(py, t, inputs, targets, mask, x0),
                  g => crate::gpu::step_gpu(py, g, inputs, targets, mask, x0))
    }

    /// K updates; one stats tuple per update.
    fn steps<'py>(
        &mut self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        targets: &Bound<'py, PyAny>,
        mask: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Stats>> {
        dispatch!(&mut self.inner, t => step_many(py, t, inputs, targets, mask),
                  g => crate::gpu::steps_gpu(py, g, inputs, targets, mask))
    }

    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dispatch!(&self.inner, t => dict_from_params(py, t.params()),
                  g => dict_from_params(py, &g.params().map_err(crate::gpu::gpu_err)?))
    }

    fn set_params(&mut self, params: &Bound<'_, PyDict>) -> PyResult<()> {
        dispatch!(&mut self.inner, t => t.set_params(params_from_dict(params)?).map_err(engine_err),
                  g => g.set_params(params_from_dict(params)?).map_err(crate::gpu::gpu_err))
    }

    /// The gradient of the last step, after clipping.
    #[getter]
    fn grads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dispatch!(&self.inner, t => dict_from_params(py, t.grads()),
                  g => dict_from_params(py, &g.grads().map_err(crate::gpu::gpu_err)?))
    }

    #[getter]
    fn lr(&self) -> f64 {
        dispatch!(&self.inner, t => t.config().optimizer.lr, g => g.config().optimizer.lr)
    }

    #[setter]
    fn set_lr(&mut self, lr: f64) -> PyResult<()> {
        dispatch!(&mut self.inner, t => t.set_lr(lr).map_err(engine_err),
                  g => g.set_lr(lr).map_err(crate::gpu::gpu_err))
    }

    #[getter]
    fn alpha(&self) -> f64 {
        dispatch!(&self.inner, t => t.config().settings.omega.alpha, g => g.config().settings.omega.alpha)
    }

    #[setter]
    fn set_alpha(&mut self, alpha: f64) -> PyResult<()> {
        dispatch!(&mut self.inner, t => t.set_omega_alpha(alpha).map_err(engine_err),
                  g => g.set_omega_alpha(alpha).map_err(crate::gpu::gpu_err))
    }

    /// Velocities or accumulated squares, shaped like the parameters; None for plain SGD.
    fn optimizer_state<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        dispatch!(&self.inner, t => opt_state(py, t),
                  g => g.optimizer_state().map_err(crate::gpu::gpu_err)?.map(|s| dict_from_params(py, &s)).transpose())
    }

    fn set_optimizer_state(&mut self, state: &Bound<'_, PyDict>) -> PyResult<()> {
        dispatch!(&mut self.inner, t => t.set_optimizer_state(params_from_dict(state)?).map_err(engine_err),
                  g => g.set_optimizer_state(params_from_dict(state)?).map_err(crate::gpu::gpu_err))
    }

    /// The clipping rule's state as flat float64 numbers (see `ClipRule::state`).
    fn clip_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = dispatch!(&self.inner, t => t.clip_state(), g => g.clip_state());
        let n = s.len();
        new_array(py, s, &[n])
    }

    fn set_clip_state(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let arr = readonly::<f64>(state, "clip state")?;
        let s = slice(&arr, "clip state")?;
        dispatch!(&mut self.inner, t => t.set_clip_state(s).map_err(engine_err),
                  g => g.set_clip_state(s).map_err(crate::gpu::gpu_err))
    }

    /// x_T `(B, H)` of the last step.
    fn final_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dispatch!(&self.inner, t => {
            let h = t.params().dims.n_hidden;
            let s = t.final_state().to_vec();
            let b = s.len() / h;
            new_array(py, s, &[b, h])
        }, _g => Err(pyo3::exceptions::PyNotImplementedError::new_err(
            "the GPU backend does not carry the state between steps; use device=\"cpu\"",
        )))
    }

    /// Forget the carried state.
    fn reset_state(&mut self) {
        dispatch!(&mut self.inner, t => t.reset_state(), _g => {})
    }

    /// Mean ‖∂E/∂x_t‖ over the batch for t = 0..T of the last step.
    fn error_signal_profile<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let p = dispatch!(&self.inner, t => t.error_signal_profile(),
                          g => g.error_signal_profile().map_err(crate::gpu::gpu_err)?);
        let n = p.len();
        new_array(py, p, &[n])
    }

    #[getter]
    fn threads(&self) -> usize {
        dispatch!(&self.inner, t => t.threads(), _g => 0)
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        match self.inner {
            Inner::F32(_) => "float32",
            Inner::F64(_) => "float64",
            #[cfg(feature = "gpu")]
            Inner::Gpu(_) => "float32",
        }
    }

    /// "cpu", or the GPU adapter's name.
    #[getter]
    fn device(&self) -> String {
        dispatch!(&self.inner, _t => "cpu".to_string(), g => g.adapter_info().name)
    }
}

impl Trainer {
    #[cfg(feature = "gpu")]
    fn gpu_inner(
        params: &Bound<'_, PyDict>,
        config: eng::TrainerConfig,
        dtype: Dtype,
    ) -> PyResult<Inner> {
        if dtype == Dtype::F64 {
            return Err(crate::gpu::f64_unsupported());
        }
        Ok(Inner::Gpu(Box::new(crate::gpu::new_gpu(
            params_from_dict(params)?,
            config,
        )?)))
    }

    #[cfg(not(feature = "gpu"))]
    fn gpu_inner(
        _params: &Bound<'_, PyDict>,
        _config: eng::TrainerConfig,
        _dtype: Dtype,
    ) -> PyResult<Inner> {
        Err(pyo3::exceptions::PyValueError::new_err(
            "this build of rnnstab has no GPU backend (built without the `gpu` feature); use --device cpu",
        ))
    }
}
