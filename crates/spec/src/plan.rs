//! ExecutionPlan documents: the semantic rules (MS08xx) that relate plan fields to each other,
//! and loading a plan file as a typed document after the same checks `modelspec validate`
//! runs. What depends on the machine or the model (cores, RAPL, the model's context) is
//! checked when the effective plan is resolved (ms-runtime), not here: validation gives the
//! same findings everywhere.

use std::path::Path;

use crate::check::Checker;
use crate::diag::{self, Diagnostic, Severity};
use crate::rules::Ctx;
use crate::schema::DocType;
use crate::source;
use crate::types::plan::ExecutionPlan;

const SPEC: &str = "/spec";

type Rule = fn(&Ctx, &mut Vec<Diagnostic>);

const RULES: &[Rule] = &[
    batch_exceeds_queue,
    max_tokens_exceed_limit,
    tokens_exceed_context,
    backend_not_built,
    greedy_ignores_sampling,
    watermark_undetectable,
    watermark_on_greedy,
];

/// Findings of the plan rules for one ExecutionPlan document.
pub fn check(ctx: &Ctx) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for rule in RULES {
        rule(ctx, &mut out);
    }
    out
}

fn batch_exceeds_queue(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let batch = ctx.num("/spec/scheduler/maxBatch");
    let queue = ctx.num("/spec/limits/maxQueue");
    if let (Some(b), Some(q)) = (batch, queue)
        && b > q
    {
        out.push(
            ctx.diag(
                "MS0801",
                "/spec/scheduler/maxBatch",
                format!("maxBatch ({b}) exceeds limits.maxQueue ({q})"),
            )
            .with_expected(format!("maxBatch <= maxQueue ({q})"))
            .with_found(format!("{b}"))
            .with_hint("batches are formed from queued requests: lower maxBatch or raise maxQueue"),
        );
    }
}

fn max_tokens_exceed_limit(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let max = ctx.num("/spec/sampling/maxTokens");
    let limit = ctx.num("/spec/limits/maxTokensPerRequest");
    if let (Some(m), Some(l)) = (max, limit)
        && (m > l || m == 0.0)
    {
        out.push(
            ctx.diag(
                "MS0802",
                "/spec/sampling/maxTokens",
                format!(
                    "the default maxTokens ({}) exceeds limits.maxTokensPerRequest ({l})",
                    if m == 0.0 {
                        "0, unlimited".to_string()
                    } else {
                        m.to_string()
                    }
                ),
            )
            .with_expected(format!("1 to {l}"))
            .with_found(format!("{m}"))
            .with_hint(
                "every request using the default would be refused: lower sampling.maxTokens",
            ),
        );
    }
}

fn tokens_exceed_context(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Some(context) = ctx.num("/spec/contextLength") else {
        return;
    };
    for (ptr, what) in [
        (
            "/spec/limits/maxTokensPerRequest",
            "limits.maxTokensPerRequest",
        ),
        ("/spec/sampling/maxTokens", "sampling.maxTokens"),
    ] {
        if let Some(n) = ctx.num(ptr)
            && n > context
        {
            out.push(
                ctx.diag(
                    "MS0803",
                    ptr,
                    format!("{what} ({n}) exceeds contextLength ({context})"),
                )
                .with_expected(format!("at most {context} (the prompt takes room too)"))
                .with_found(format!("{n}"))
                .with_hint("lower it or raise spec.contextLength"),
            );
        }
    }
}

fn backend_not_built(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    if ctx.str("/spec/backend") == Some("cuda") {
        out.push(
            ctx.diag(
                "MS0804",
                "/spec/backend",
                "backend `cuda` is not available in this build",
            )
            .with_expected("`cpu-scalar` or `cpu-simd`")
            .with_found("`cuda`")
            .with_hint("use `cpu-simd` (the fastest CPU kernels) until a cuda backend exists"),
        );
    }
}

fn greedy_ignores_sampling(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    if ctx.num("/spec/sampling/temperature") != Some(0.0) {
        return;
    }
    let ignored: Vec<&str> = [("topK", 0.0), ("topP", 1.0), ("minP", 0.0)]
        .into_iter()
        .filter(|(key, off)| {
            ctx.num(&format!("{SPEC}/sampling/{key}"))
                .is_some_and(|v| v != *off)
        })
        .map(|(key, _)| key)
        .collect();
    if !ignored.is_empty() {
        out.push(
            ctx.diag(
                "MS0805",
                "/spec/sampling/temperature",
                format!(
                    "temperature 0 is greedy decoding: {} has no effect",
                    ignored.join(", ")
                ),
            )
            .with_hint("remove the sampling filters, or set a temperature above 0 to sample"),
        );
    }
}

fn watermark_undetectable(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let gamma = "/spec/watermark/gamma";
    if let Some(g) = ctx.num(gamma)
        && (g <= 0.0 || g >= 1.0)
    {
        out.push(
            ctx.diag(
                "MS0806",
                gamma,
                format!(
                    "watermark gamma {g} makes {} token green: no text could be told apart",
                    if g <= 0.0 { "no" } else { "every" }
                ),
            )
            .with_expected("a number between 0 and 1, both excluded (0.25 is usual)")
            .with_found(format!("{g}"))
            .with_hint("use gamma: 0.25, or leave it out for the default"),
        );
    }
    let delta = "/spec/watermark/delta";
    if ctx.num(delta) == Some(0.0) {
        out.push(
            ctx.diag(
                "MS0806",
                delta,
                "watermark delta 0 adds nothing to the green tokens: the text is not marked",
            )
            .with_expected("a number above 0 and at most 100 (2 is usual)")
            .with_found("0")
            .with_hint("use delta: 2, or remove `watermark` to switch it off"),
        );
    }
}

fn watermark_on_greedy(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    if ctx.num("/spec/sampling/temperature") == Some(0.0)
        && ctx.str("/spec/watermark/keyId").is_some()
    {
        out.push(
            ctx.diag(
                "MS0807",
                "/spec/watermark",
                "temperature 0 is greedy decoding, which is never watermarked: the output stays \
                 the model's own argmax",
            )
            .with_hint("sample (temperature above 0) for watermarked text, or remove `watermark`"),
        );
    }
}

/// A plan file read as a typed document, with the warnings its validation gave.
pub struct LoadedPlan {
    pub plan: ExecutionPlan,
    pub warnings: Vec<Diagnostic>,
}

/// Reads and validates the ExecutionPlan at `path` (schema and plan rules, default levels).
/// Errors are every finding when one of them is an error.
pub fn load(path: &Path) -> Result<LoadedPlan, Vec<Diagnostic>> {
    let src = source::load(&path.display().to_string()).map_err(|e| vec![e.into_diagnostic()])?;
    let mut checker = Checker::default();
    let (mut diags, checked) = checker.check_raw(&src);
    checker.config.apply(&mut diags);
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(diags);
    }
    let mut plans = checked
        .into_iter()
        .filter(|c| c.doc_type == Some(DocType::Plan));
    let (Some(doc), None) = (plans.next(), plans.next()) else {
        return Err(vec![Diagnostic::file_level(
            diag::codes::KIND,
            &src.name,
            "expected exactly one `kind: ExecutionPlan` document in the file",
        )]);
    };
    let plan = serde_json::from_value(doc.value).map_err(|e| {
        vec![Diagnostic::file_level(
            diag::codes::SCHEMA_OTHER,
            &src.name,
            e.to_string(),
        )]
    })?;
    Ok(LoadedPlan {
        plan,
        warnings: diags,
    })
}
