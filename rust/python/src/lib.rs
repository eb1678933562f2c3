//! The Python binding of the rnnstab engine (`rnnstab_cli._engine`). It only converts: numpy
//! arrays to slices and back, names to enums, [`EngineError`] to Python exceptions. Every
//! compute call releases the GIL.

mod convert;
#[cfg(feature = "gpu")]
mod gpu;
mod trainer;

use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rnnstab_engine as eng;
use rnnstab_engine::{Float, InitialState};

use convert::{
    batch_from, dict_from_params, engine_err, new_array, params_from_dict, pool_for, readonly,
    settings_from, Dtype, HasDtype,
};

/// (E, Ω, gradients, Ω pairs, x_T) as handed to Python.
type LossGradsOut<'py> = (f64, f64, Bound<'py, PyDict>, usize, Bound<'py, PyAny>);

/// E, Ω, the gradients, the number of Ω pairs and x_T for one batch.
#[pyfunction]
#[pyo3(signature = (params, inputs, targets, mask, activation, loss, alpha, omega_form, time_reduction, x0=None, threads=None, full_length=false))]
#[allow(clippy::too_many_arguments)]
fn loss_and_grads<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyDict>,
    inputs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
    activation: &str,
    loss: &str,
    alpha: f64,
    omega_form: &str,
    time_reduction: &str,
    x0: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
    full_length: bool,
) -> PyResult<LossGradsOut<'py>> {
    let settings = settings_from(
        activation,
        loss,
        alpha,
        omega_form,
        time_reduction,
        full_length,
    )?;
    match Dtype::of_params(params)? {
        Dtype::F32 => lag::<f32>(py, params, inputs, targets, mask, &settings, x0, threads),
        Dtype::F64 => lag::<f64>(py, params, inputs, targets, mask, &settings, x0, threads),
    }
}

#[allow(clippy::too_many_arguments)]
fn lag<'py, T: Float + HasDtype>(
    py: Python<'py>,
    params: &Bound<'py, PyDict>,
    inputs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
    settings: &eng::Settings,
    x0: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<LossGradsOut<'py>> {
    let p = params_from_dict::<T>(params)?;
    let views = batch_from::<T>(inputs, targets, mask)?;
    let batch = views.batch(p.dims, settings.model.loss)?;
    let x0_arr: Option<PyReadonlyArrayDyn<'py, T>> =
        x0.map(|a| readonly::<T>(a, "x0")).transpose()?;
    let x0s = match &x0_arr {
        Some(a) => InitialState::from_array(
            convert::slice(a, "x0")?,
            a.shape(),
            batch.batch,
            p.dims.n_hidden,
        )
        .map_err(engine_err)?,
        None => InitialState::Zero,
    };
    let pool = pool_for(threads)?;
    let mut grads = p.zeros_like();
    let mut ws = eng::Workspace::new();
    let out = py
        .detach(|| eng::loss_and_grads(&pool, &p, &batch, x0s, settings, &mut ws, &mut grads))
        .map_err(engine_err)?;
    let h = p.dims.n_hidden;
    let fin = new_array(py, ws.final_state().to_vec(), &[batch.batch, h])?;
    Ok((
        out.loss,
        out.omega,
        dict_from_params(py, &grads)?,
        out.omega_pairs,
        fin,
    ))
}

/// Outputs `(T, B, O)` and x_T `(B, H)`.
#[pyfunction]
#[pyo3(signature = (params, inputs, activation, x0=None, threads=None))]
fn forward<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyDict>,
    inputs: &Bound<'py, PyAny>,
    activation: &str,
    x0: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    match Dtype::of_params(params)? {
        Dtype::F32 => fwd::<f32>(py, params, inputs, activation, x0, threads),
        Dtype::F64 => fwd::<f64>(py, params, inputs, activation, x0, threads),
    }
}

fn fwd<'py, T: Float + HasDtype>(
    py: Python<'py>,
    params: &Bound<'py, PyDict>,
    inputs: &Bound<'py, PyAny>,
    activation: &str,
    x0: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let act = eng::Activation::parse(activation).map_err(engine_err)?;
    let p = params_from_dict::<T>(params)?;
    let x = readonly::<T>(inputs, "inputs")?;
    let shape = x.shape().to_vec();
    let (i, h, o) = (p.dims.n_in, p.dims.n_hidden, p.dims.n_out);
    if shape.len() != 3 || shape[2] != i {
        return Err(engine_err(eng::EngineError::Shape {
            name: "inputs".into(),
            got: shape,
            expected: format!("(T, B, {i})"),
        }));
    }
    let (t, b) = (shape[0], shape[1]);
    let xs = convert::slice(&x, "inputs")?;
    if xs.iter().any(|v| !v.is_finite()) {
        return Err(engine_err(eng::EngineError::invalid(
            "inputs contain NaN or infinity",
        )));
    }
    let x0_arr: Option<PyReadonlyArrayDyn<'py, T>> =
        x0.map(|a| readonly::<T>(a, "x0")).transpose()?;
    let x0s = match &x0_arr {
        Some(a) => InitialState::from_array(convert::slice(a, "x0")?, a.shape(), b, h)
            .map_err(engine_err)?,
        None => InitialState::Zero,
    };
    let pool = pool_for(threads)?;
    let mut out = convert::zeros::<T>(&[t, b, o], "the outputs")?;
    let mut fin = convert::zeros::<T>(&[b, h], "the final states")?;
    py.detach(|| eng::forward(&pool, &p, xs, t, b, x0s, act, &mut out, &mut fin))
        .map_err(engine_err)?;
    Ok((
        new_array(py, out, &[t, b, o])?,
        new_array(py, fin, &[b, h])?,
    ))
}

/// Algorithm 1 on a dict of gradients: returns the clipped copy and the norm before clipping.
#[pyfunction]
fn clip_norm<'py>(
    py: Python<'py>,
    grads: &Bound<'py, PyDict>,
    threshold: f64,
) -> PyResult<(Bound<'py, PyDict>, f64)> {
    check_threshold(threshold)?;
    match Dtype::of_params(grads)? {
        Dtype::F32 => {
            let mut g = params_from_dict::<f32>(grads)?;
            let (n, _) = eng::clip_by_norm(&mut g, threshold);
            Ok((dict_from_params(py, &g)?, n))
        }
        Dtype::F64 => {
            let mut g = params_from_dict::<f64>(grads)?;
            let (n, _) = eng::clip_by_norm(&mut g, threshold);
            Ok((dict_from_params(py, &g)?, n))
        }
    }
}

/// Element-wise clipping of a dict of gradients to ±threshold.
#[pyfunction]
fn clip_value<'py>(
    py: Python<'py>,
    grads: &Bound<'py, PyDict>,
    threshold: f64,
) -> PyResult<Bound<'py, PyDict>> {
    check_threshold(threshold)?;
    match Dtype::of_params(grads)? {
        Dtype::F32 => {
            let mut g = params_from_dict::<f32>(grads)?;
            eng::clip_by_value(&mut g, threshold);
            dict_from_params(py, &g)
        }
        Dtype::F64 => {
            let mut g = params_from_dict::<f64>(grads)?;
            eng::clip_by_value(&mut g, threshold);
            dict_from_params(py, &g)
        }
    }
}

fn check_threshold(t: f64) -> PyResult<()> {
    eng::Clip::parse("norm", t).map(|_| ()).map_err(engine_err)
}

/// The instruction set the engine's kernels run (`avx512`, `avx2` or `portable`): the CPU's
/// best, capped by the `RNNSTAB_SIMD` environment variable.
#[pyfunction]
fn simd_level() -> &'static str {
    eng::kernels::simd_level().name()
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(loss_and_grads, m)?)?;
    m.add_function(wrap_pyfunction!(forward, m)?)?;
    m.add_function(wrap_pyfunction!(clip_norm, m)?)?;
    m.add_function(wrap_pyfunction!(clip_value, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_class::<trainer::Trainer>()?;
    #[cfg(feature = "gpu")]
    m.add_function(wrap_pyfunction!(gpu::gpu_adapters, m)?)?;
    m.add("HAS_GPU", cfg!(feature = "gpu"))?;
    m.add("MAX_THREADS", eng::MAX_THREADS)?;
    m.add("SHRINK_FLOOR", eng::SHRINK_FLOOR)?;
    // The names the engine accepts, from the lists its own errors quote, so that the command
    // line offers exactly these; and γ per activation (§2.1), for the diagnostics and figures.
    let gamma = PyDict::new(m.py());
    for name in names(eng::Activation::CHOICES) {
        let act = eng::Activation::parse(name).map_err(engine_err)?;
        gamma.set_item(name, act.gamma())?;
    }
    m.add("ACTIVATION_GAMMA", gamma)?;
    m.add("LOSSES", PyTuple::new(m.py(), names(eng::Loss::CHOICES))?)?;
    m.add(
        "OPTIMIZERS",
        PyTuple::new(m.py(), names(eng::OptimizerKind::CHOICES))?,
    )?;
    m.add("CLIP_MODES", PyTuple::new(m.py(), names(eng::CLIP_NAMES))?)?;
    m.add(
        "NONFINITE_POLICIES",
        PyTuple::new(m.py(), names(eng::NonFinitePolicy::CHOICES))?,
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// The names of an "a, b, c" list.
fn names(list: &'static str) -> Vec<&'static str> {
    list.split(", ").collect()
}
