//! The GPU backend's side of the binding: its errors as Python exceptions, the adapters wgpu
//! sees, and the step loop over a `GpuTrainer`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rnnstab_engine as eng;
use rnnstab_gpu::{GpuError, GpuTrainer};

use crate::convert::{batch_from, engine_err};
use crate::trainer::{stats_tuple, Stats};

/// Engine errors map as on the CPU; everything else — no adapter, a missing feature, an
/// unsupported option, a lost device — is a `ValueError` whose one-line message names the fix
/// (`--device cpu`).
pub fn gpu_err(e: GpuError) -> PyErr {
    match e {
        GpuError::Engine(e) => engine_err(e),
        other => PyValueError::new_err(other.to_string()),
    }
}

/// (name, backend, device type, driver) of every adapter wgpu can see.
#[pyfunction]
pub fn gpu_adapters() -> Vec<(String, String, String, String)> {
    rnnstab_gpu::list_adapters()
        .into_iter()
        .map(|a| (a.name, a.backend, a.device_type, a.driver))
        .collect()
}

pub fn step_gpu<'py>(
    py: Python<'py>,
    tr: &mut GpuTrainer,
    inputs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
    x0: Option<&Bound<'py, PyAny>>,
) -> PyResult<Stats> {
    if x0.is_some() {
        return Err(gpu_err(GpuError::Unsupported(
            "a given initial state x0".into(),
        )));
    }
    let views = batch_from::<f32>(inputs, targets, mask)?;
    let batch = views.batch(tr.dims(), tr.config().settings.model.loss)?;
    py.detach(|| tr.step(&batch))
        .map(stats_tuple)
        .map_err(gpu_err)
}

pub fn steps_gpu<'py>(
    py: Python<'py>,
    tr: &mut GpuTrainer,
    inputs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
) -> PyResult<Vec<Stats>> {
    let views = batch_from::<f32>(inputs, targets, mask)?;
    let stacked = views.stacked()?;
    let (dims, loss) = (tr.dims(), tr.config().settings.model.loss);
    let mut out = Vec::with_capacity(stacked.k);
    for k in 0..stacked.k {
        let batch = stacked.batch(k, dims, loss)?;
        out.push(
            py.detach(|| tr.step(&batch))
                .map(stats_tuple)
                .map_err(gpu_err)?,
        );
        py.check_signals()?;
    }
    Ok(out)
}

pub fn new_gpu(params: eng::Params<f32>, config: eng::TrainerConfig) -> PyResult<GpuTrainer> {
    GpuTrainer::new(params, config).map_err(gpu_err)
}

pub fn f64_unsupported() -> PyErr {
    match rnnstab_gpu::ensure_f64_supported() {
        Err(e) => gpu_err(e),
        Ok(()) => gpu_err(GpuError::Unsupported("float64 parameters".into())),
    }
}
