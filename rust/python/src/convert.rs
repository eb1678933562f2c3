//! Conversions between Python objects and the engine's types, and the one mapping from
//! [`EngineError`] to Python exceptions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{
    Element, IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyFloatingPointError, PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::ThreadPool;
use rnnstab_engine as eng;
use rnnstab_engine::{EngineError, Float};

/// The one place engine errors become Python exceptions: user mistakes are `ValueError`, a
/// non-finite gradient under the `error` policy is `FloatingPointError`.
pub fn engine_err(e: EngineError) -> PyErr {
    match e {
        EngineError::NonFiniteGradient { .. } | EngineError::NonFiniteUpdate { .. } => {
            PyFloatingPointError::new_err(e.to_string())
        }
        EngineError::OutOfMemory { .. } => PyMemoryError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// numpy element types the binding reads, with numpy's name for messages.
pub trait HasDtype: Element {
    const DTYPE: &'static str;
}
impl HasDtype for f32 {
    const DTYPE: &'static str = "float32";
}
impl HasDtype for f64 {
    const DTYPE: &'static str = "float64";
}
impl HasDtype for i64 {
    const DTYPE: &'static str = "int64";
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    /// The engine's element type is that of `W_rec`.
    pub fn of_params(params: &Bound<'_, PyDict>) -> PyResult<Dtype> {
        let w = params
            .get_item("W_rec")?
            .ok_or_else(|| PyValueError::new_err("params has no 'W_rec'"))?;
        if w.cast::<PyArrayDyn<f64>>().is_ok() {
            Ok(Dtype::F64)
        } else if w.cast::<PyArrayDyn<f32>>().is_ok() {
            Ok(Dtype::F32)
        } else {
            Err(PyTypeError::new_err(format!(
                "W_rec must be a float32 or float64 numpy array, got {}",
                describe(&w)
            )))
        }
    }
}

fn describe(obj: &Bound<'_, PyAny>) -> String {
    match obj.cast::<PyUntypedArray>() {
        Ok(a) => format!("an array of dtype {}", a.dtype()),
        Err(_) => obj
            .get_type()
            .name()
            .map_or_else(|_| "an object".into(), |n| n.to_string()),
    }
}

/// A read-only view of a numpy array of element type `T`, or a `TypeError` naming `name`.
pub fn readonly<'py, T: HasDtype>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    let arr = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be a numpy array of {}, got {}",
            T::DTYPE,
            describe(obj)
        ))
    })?;
    arr.try_readonly().map_err(|_| {
        PyValueError::new_err(format!("{name} is being written elsewhere; pass a copy"))
    })
}

/// The contiguous data of a view, or a `ValueError` naming the argument.
///
/// C order is checked explicitly: numpy's "contiguous" also admits Fortran order, whose data
/// would be read transposed.
pub fn slice<'a, T: HasDtype>(a: &'a PyReadonlyArrayDyn<'_, T>, name: &str) -> PyResult<&'a [T]> {
    let err = || {
        PyValueError::new_err(format!(
            "{name} is not C-contiguous; pass numpy.ascontiguousarray({name})"
        ))
    };
    if !a.is_c_contiguous() {
        return Err(err());
    }
    a.as_slice().map_err(|_| err())
}

/// A zeroed buffer of the given shape, or a `MemoryError` (sizes come from the caller's
/// arrays, so a failed allocation is their mistake, not an abort).
pub fn zeros<T: Float>(shape: &[usize], what: &str) -> PyResult<Vec<T>> {
    let err = |bytes: u128| {
        PyMemoryError::new_err(format!(
            "cannot allocate {what} {shape:?}: {bytes} bytes needed; use fewer or shorter sequences"
        ))
    };
    let n = shape
        .iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .ok_or_else(|| err(shape.iter().map(|d| *d as u128).product()))?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| err(n as u128 * std::mem::size_of::<T>() as u128))?;
    v.resize(n, T::ZERO);
    Ok(v)
}

pub fn new_array<'py, T: Element>(
    py: Python<'py>,
    data: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let arr = ArrayD::from_shape_vec(IxDyn(shape), data)
        .map_err(|e| PyValueError::new_err(format!("internal shape error: {e}")))?;
    Ok(arr.into_pyarray(py).into_any())
}

pub fn params_from_dict<T: Float + HasDtype>(d: &Bound<'_, PyDict>) -> PyResult<eng::Params<T>> {
    let mut parts = Vec::with_capacity(d.len());
    for (k, v) in d.iter() {
        let name: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("parameter names must be strings"))?;
        let arr = readonly::<T>(&v, &name)?;
        let data = slice(&arr, &name)?.to_vec();
        parts.push((name, data, arr.shape().to_vec()));
    }
    eng::Params::from_parts(parts).map_err(engine_err)
}

pub fn dict_from_params<'py, T: Float + HasDtype>(
    py: Python<'py>,
    p: &eng::Params<T>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for ((name, t), shape) in eng::PARAM_NAMES.iter().zip(p.tensors()).zip(p.shapes()) {
        if *name == "x0" && !p.has_x0() {
            continue;
        }
        d.set_item(*name, new_array(py, t.to_vec(), &shape)?)?;
    }
    Ok(d)
}

/// The arrays of one batch, held as read-only views while the engine reads them.
pub struct BatchViews<'py, T: HasDtype> {
    inputs: PyReadonlyArrayDyn<'py, T>,
    targets: TargetViews<'py, T>,
    mask: PyReadonlyArrayDyn<'py, T>,
}

enum TargetViews<'py, T: HasDtype> {
    Classes(PyReadonlyArrayDyn<'py, i64>),
    Values(PyReadonlyArrayDyn<'py, T>),
}

pub fn batch_from<'py, T: Float + HasDtype>(
    inputs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
) -> PyResult<BatchViews<'py, T>> {
    let targets = if targets.cast::<PyArrayDyn<i64>>().is_ok() {
        TargetViews::Classes(readonly::<i64>(targets, "targets")?)
    } else if targets.cast::<PyArrayDyn<T>>().is_ok() {
        TargetViews::Values(readonly::<T>(targets, "targets")?)
    } else {
        return Err(PyTypeError::new_err(format!(
            "targets must be an int64 array of class indices or a {} array of values, got {}",
            T::DTYPE,
            describe(targets)
        )));
    };
    Ok(BatchViews {
        inputs: readonly::<T>(inputs, "inputs")?,
        targets,
        mask: readonly::<T>(mask, "mask")?,
    })
}

impl<'py, T: Float + HasDtype> BatchViews<'py, T> {
    pub fn batch(&self, dims: eng::Dims, loss: eng::Loss) -> PyResult<eng::Batch<'_, T>> {
        let (targets, tshape) = match &self.targets {
            TargetViews::Classes(c) => (eng::Targets::Classes(slice(c, "targets")?), c.shape()),
            TargetViews::Values(v) => (eng::Targets::Values(slice(v, "targets")?), v.shape()),
        };
        eng::Batch::new(
            dims,
            loss,
            (slice(&self.inputs, "inputs")?, self.inputs.shape()),
            (targets, tshape),
            (slice(&self.mask, "mask")?, self.mask.shape()),
        )
        .map_err(engine_err)
    }
}

pub fn settings_from(
    activation: &str,
    loss: &str,
    alpha: f64,
    omega_form: &str,
    time_reduction: &str,
    full_length: bool,
) -> PyResult<eng::Settings> {
    eng::check_alpha(alpha).map_err(engine_err)?;
    Ok(eng::Settings {
        model: eng::ModelConfig {
            activation: eng::Activation::parse(activation).map_err(engine_err)?,
            loss: eng::Loss::parse(loss).map_err(engine_err)?,
            time_reduction: eng::TimeReduction::parse(time_reduction).map_err(engine_err)?,
        },
        omega: eng::OmegaConfig {
            alpha,
            form: eng::OmegaForm::parse(omega_form).map_err(engine_err)?,
        },
        full_length,
    })
}

/// Thread pools for the free functions, one per thread count, built once: starting threads on
/// every call would cost more than a small BPTT pass.
pub fn pool_for(threads: Option<usize>) -> PyResult<Arc<ThreadPool>> {
    static POOLS: Mutex<Option<HashMap<usize, Arc<ThreadPool>>>> = Mutex::new(None);
    let key = threads.unwrap_or(0);
    let mut guard = POOLS
        .lock()
        .map_err(|_| PyValueError::new_err("thread pool registry poisoned"))?;
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(p) = map.get(&key) {
        return Ok(p.clone());
    }
    let pool = Arc::new(eng::make_pool(threads).map_err(engine_err)?);
    map.insert(key, pool.clone());
    Ok(pool)
}

/// K batches stacked on a leading axis, sliced one at a time.
pub struct Stacked<'a, T> {
    pub k: usize,
    inputs: (&'a [T], Vec<usize>),
    targets: (eng::Targets<'a, T>, Vec<usize>),
    mask: (&'a [T], Vec<usize>),
}

fn split_leading(name: &str, shape: &[usize], min_rank: usize) -> PyResult<(usize, Vec<usize>)> {
    if shape.len() < min_rank {
        return Err(PyValueError::new_err(format!(
            "{name} has shape {shape:?}; steps() takes arrays with a leading K axis"
        )));
    }
    Ok((shape[0], shape[1..].to_vec()))
}

impl<'py, T: Float + HasDtype> BatchViews<'py, T> {
    pub fn stacked(&self) -> PyResult<Stacked<'_, T>> {
        let (k, xs) = split_leading("inputs", self.inputs.shape(), 4)?;
        let (km, ms) = split_leading("mask", self.mask.shape(), 3)?;
        let (targets, (kt, ts)) = match &self.targets {
            TargetViews::Classes(c) => (
                eng::Targets::Classes(slice(c, "targets")?),
                split_leading("targets", c.shape(), 3)?,
            ),
            TargetViews::Values(v) => (
                eng::Targets::Values(slice(v, "targets")?),
                split_leading("targets", v.shape(), 4)?,
            ),
        };
        if km != k || kt != k {
            return Err(PyValueError::new_err(format!(
                "inputs, targets and mask have different leading K axes ({k}, {kt}, {km})"
            )));
        }
        Ok(Stacked {
            k,
            inputs: (slice(&self.inputs, "inputs")?, xs),
            targets: (targets, ts),
            mask: (slice(&self.mask, "mask")?, ms),
        })
    }
}

impl<'a, T: Float> Stacked<'a, T> {
    pub fn batch(&self, k: usize, dims: eng::Dims, loss: eng::Loss) -> PyResult<eng::Batch<'a, T>> {
        fn part<'s, U>(data: &'s [U], shape: &[usize], k: usize) -> &'s [U] {
            let n: usize = shape.iter().product();
            &data[k * n..(k + 1) * n]
        }
        let targets = match self.targets.0 {
            eng::Targets::Classes(c) => eng::Targets::Classes(part(c, &self.targets.1, k)),
            eng::Targets::Values(v) => eng::Targets::Values(part(v, &self.targets.1, k)),
        };
        eng::Batch::new(
            dims,
            loss,
            (part(self.inputs.0, &self.inputs.1, k), &self.inputs.1),
            (targets, &self.targets.1),
            (part(self.mask.0, &self.mask.1, k), &self.mask.1),
        )
        .map_err(engine_err)
    }
}
