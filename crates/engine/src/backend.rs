//! Where the matrix products run.
//!
//! Model code (the forward passes in `arch/`) never picks kernels: every product of a weight
//! matrix with activations goes through the [`Backend`] the model was loaded with
//! ([`LoadOptions::backend`](crate::LoadOptions)). Matrix products are nearly all of the work;
//! norms, RoPE and attention are the engine's own code (`ops`, `attention`).
//!
//! Two backends exist: `cpu-scalar` (ms-quant's reference kernels) and `cpu-simd` (its SIMD
//! kernels, AVX2 + F16C or AVX-512 VNNI as the CPU has them, which give the same bits). A new backend (e.g. `cuda`) adds a
//! [`BackendKind`] variant and a type implementing [`Backend`]; nothing in `arch/` changes.

use std::fmt;
use std::sync::Arc;

use ms_gguf::GgmlType;
use ms_quant::dot::{self, SimdLevel};

use crate::error::EngineError;
use crate::matmul;

/// A weight matrix as stored in the model file: `rows` rows of `cols` values of type `ty`,
/// `data` holding the rows back to back.
#[derive(Clone, Copy, Debug)]
pub struct WeightMatrix<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
}

/// What model code needs from a compute backend.
///
/// Weight types are checked when a model loads against the CPU kernels (every CPU backend has
/// one for each type); a backend with fewer types would add its own check there.
///
/// Contract: `matmul` computes, for the `n = x.len() / w.cols` token rows of `x`,
/// `out[t * w.rows + r] = dot(w[r], x[t])` with the arithmetic fixed in `ms_quant::dot` (the
/// activations quantized to the weight type's `vec_dot_type`, then one fixed order of float
/// operations per output). Each output must not depend on `threads`, on `n`, or on the other
/// rows: this is what makes runs reproducible bit for bit. A backend that cannot honour the
/// exact order must say so in its documentation and in [`Backend::kernels`].
pub trait Backend: Send + Sync + fmt::Debug {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// The kernel family actually running (e.g. `scalar`, `avx2`), for the effective plan.
    fn kernels(&self) -> &'static str;
    /// `out = w × x` for every token row of `x` (see the trait's contract), using up to
    /// `threads` CPU threads where the backend uses them.
    fn matmul(&self, w: &WeightMatrix<'_>, x: &[f32], out: &mut [f32], threads: usize);
}

/// The backends a plan can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// ms-quant's scalar reference kernels: every CPU.
    CpuScalar,
    /// ms-quant's SIMD kernels (AVX2 + F16C, or AVX-512 VNNI), bit-identical to the reference.
    CpuSimd,
}

impl BackendKind {
    pub const ALL: [BackendKind; 2] = [BackendKind::CpuScalar, BackendKind::CpuSimd];

    /// `cpu-scalar`, `cpu-simd`: the names plans use.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::CpuScalar => "cpu-scalar",
            BackendKind::CpuSimd => "cpu-simd",
        }
    }

    /// Whether this machine can run it.
    pub fn is_available(self) -> bool {
        match self {
            BackendKind::CpuScalar => true,
            BackendKind::CpuSimd => dot::simd_level() >= SimdLevel::Avx2,
        }
    }

    /// The backends this machine runs.
    pub fn available() -> Vec<BackendKind> {
        Self::ALL.into_iter().filter(|b| b.is_available()).collect()
    }

    /// The fastest backend this machine runs (the default).
    pub fn best() -> BackendKind {
        if BackendKind::CpuSimd.is_available() {
            BackendKind::CpuSimd
        } else {
            BackendKind::CpuScalar
        }
    }

    /// The backend called `name`, if this build knows it and this machine runs it; the error
    /// names the available backends and the CPU features detected.
    pub fn select(name: &str) -> Result<BackendKind, EngineError> {
        let known = Self::ALL.into_iter().find(|b| b.name() == name);
        match known {
            Some(b) if b.is_available() => Ok(b),
            _ => Err(EngineError::InvalidOption(format!(
                "backend `{name}` is {} on this machine; available: {} (CPU features detected: {})",
                if known.is_some() || name == "cuda" {
                    "not available"
                } else {
                    "unknown"
                },
                Self::available()
                    .iter()
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                cpu_features_text(),
            ))),
        }
    }

    /// A backend of this kind.
    pub fn create(self) -> Result<Arc<dyn Backend>, EngineError> {
        if !self.is_available() {
            return Err(Self::select(self.name()).err().unwrap_or_else(|| {
                EngineError::InvalidOption(format!("backend {} is not available", self.name()))
            }));
        }
        Ok(Arc::new(CpuBackend {
            kind: self,
            kernels: match self {
                BackendKind::CpuScalar => dot::Backend::Scalar,
                BackendKind::CpuSimd => dot::Backend::Simd,
            },
        }))
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Default for BackendKind {
    fn default() -> Self {
        BackendKind::best()
    }
}

/// `avx, avx2, fma, f16c` or `none`.
pub fn cpu_features_text() -> String {
    let names = dot::cpu_features().names();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The CPU backends: the same threaded row-chunk driver over ms-quant's kernels of one family.
#[derive(Debug)]
struct CpuBackend {
    kind: BackendKind,
    kernels: dot::Backend,
}

impl Backend for CpuBackend {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn kernels(&self) -> &'static str {
        match self.kernels {
            dot::Backend::Scalar => SimdLevel::None.name(),
            dot::Backend::Simd => dot::simd_level().name(),
        }
    }

    fn matmul(&self, w: &WeightMatrix<'_>, x: &[f32], out: &mut [f32], threads: usize) {
        matmul::matmul(w, x, out, threads, self.kernels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_is_always_available_and_unknown_names_list_the_choices() {
        assert_eq!(
            BackendKind::select("cpu-scalar").unwrap(),
            BackendKind::CpuScalar
        );
        assert!(BackendKind::available().contains(&BackendKind::CpuScalar));
        let err = BackendKind::select("cuda").unwrap_err().to_string();
        assert!(err.contains("`cuda` is not available"), "{err}");
        assert!(err.contains("available: cpu-scalar"), "{err}");
        assert!(err.contains("CPU features detected: "), "{err}");
        let err = BackendKind::select("gpu").unwrap_err().to_string();
        assert!(err.contains("`gpu` is unknown"), "{err}");
        assert_eq!(
            BackendKind::CpuSimd.is_available(),
            dot::simd_level() >= SimdLevel::Avx2
        );
    }

    #[test]
    fn backends_report_their_kernels() {
        let b = BackendKind::CpuScalar.create().unwrap();
        assert_eq!(b.kind(), BackendKind::CpuScalar);
        assert_eq!(b.kernels(), "scalar");
        if BackendKind::CpuSimd.is_available() {
            let k = BackendKind::CpuSimd.create().unwrap().kernels();
            assert_eq!(k, dot::simd_level().name());
            assert!(["avx2", "avx512vnni"].contains(&k), "{k}");
        }
    }
}
