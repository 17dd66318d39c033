//! Precision: the weights that ran (the plan's quantization, or the stored file's type when
//! the plan runs the artifact as stored) against `identity.model.precision`.

use serde_json::Value;

use crate::artifacts;
use crate::check::{self, Verdict};
use crate::checks::Ctx;

/// MV0801.
pub fn check(ctx: &mut Ctx) {
    let Some(c) = ctx.take(check::PRECISION) else {
        return;
    };
    let declared = ctx.spec.info.precision.clone().unwrap_or_default();
    let planned = ctx
        .plan
        .as_ref()
        .and_then(|p| p.pointer("/spec/quantization"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let stored = ctx.weights.and_then(|w| w.file_type.clone());
    let ran = match (planned.as_deref(), stored) {
        (Some("source"), Some(ft)) => Some((
            ft,
            "the effective plan (GET /v1/plan) runs the artifact as stored (quantization: source); general.file_type of the declared weights file".to_string(),
        )),
        (Some("source"), None) => None,
        (Some(q), _) => Some((
            q.to_string(),
            "quantization of the effective plan (GET /v1/plan): the weights are requantized to it at load".to_string(),
        )),
        (None, _) => None,
    };
    let c = match ran {
        Some((ran, method)) => {
            let c = c.method(method);
            match artifacts::precision_matches(&declared, &ran) {
                Some(true) => c.measured(ran, Verdict::Held),
                Some(false) => c.measured(ran.clone(), Verdict::Violated).reason(format!(
                    "the spec declares {declared} but {ran} weights ran"
                )),
                None => c.measured(ran, Verdict::NotChecked).reason(format!(
                    "{declared:?} is not a precision modelspec can compare (use a quantization name such as q4_k_m, q8_0, f16)"
                )),
            }
        }
        None => c.not_checked(if planned.is_none() {
            "the server does not report its plan (GET /v1/plan)".to_string()
        } else {
            "the plan runs the artifact as stored and its file type is unknown".to_string()
        }),
    };
    ctx.push(c);
}
