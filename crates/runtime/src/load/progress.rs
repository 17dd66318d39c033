//! [`LoadProgress`]: what a load is doing, for progress output.

use super::artifact::PreparedArtifact;
use super::finding::PlanFinding;
use crate::plan::{EffectivePlan, PlanProblem};
use crate::quantization::Quantization;
use crate::requantize;

/// What a load is doing, for progress output. Nothing here is an error.
pub enum LoadProgress<'a> {
    /// A plan document's warnings, rendered as `modelspec plan validate` prints them.
    PlanWarnings {
        source: &'a str,
        text: &'a str,
        findings: &'a [PlanFinding],
    },
    /// A problem that does not stop the load (the effective plan's warnings, the quantizer's).
    Warning(&'a PlanProblem),
    /// The effective plan is decided; nothing is loaded yet.
    Planned(&'a EffectivePlan),
    /// The requantization pipeline (only when the cache has no copy yet).
    Quantize {
        quantization: Quantization,
        progress: &'a requantize::Progress<'a>,
    },
    /// The file to load is ready.
    Prepared(&'a PreparedArtifact),
}
