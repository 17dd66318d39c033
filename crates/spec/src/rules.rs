//! Semantic rules: relations between fields that a JSON Schema cannot express. Each rule reads
//! the document as JSON, tolerates missing or mistyped fields (the schema reports those), and
//! reports at the most specific node.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::diag::{Diagnostic, Severity};
use crate::refs::{RefGraph, Target, resolve};
use crate::schema::DocType;
use crate::source::Source;
use crate::suggest::closest;
use crate::yaml::Node;

pub struct Ctx<'a> {
    pub src: &'a Source,
    pub root: &'a Node,
    pub value: &'a Value,
    pub doc_type: DocType,
    /// `--strict-refs`: unresolved specRefs of required dependencies are errors.
    pub strict_refs: bool,
}

impl Ctx<'_> {
    pub(crate) fn at(&self, ptr: &str) -> Option<&Value> {
        self.value.pointer(ptr)
    }
    pub(crate) fn num(&self, ptr: &str) -> Option<f64> {
        self.at(ptr).and_then(Value::as_f64)
    }
    pub(crate) fn str(&self, ptr: &str) -> Option<&str> {
        self.at(ptr).and_then(Value::as_str)
    }
    fn bool(&self, ptr: &str) -> Option<bool> {
        self.at(ptr).and_then(Value::as_bool)
    }
    fn list(&self, ptr: &str) -> &[Value] {
        self.at(ptr)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }
    pub(crate) fn diag(&self, code: &'static str, ptr: &str, msg: impl Into<String>) -> Diagnostic {
        let (pos, end) = match self.root.lookup(ptr) {
            Some((n, _)) => (n.start, n.token_end(&self.src.text)),
            None => {
                let start = self.root.nearest(ptr).start;
                (start, start)
            }
        };
        Diagnostic::new(code, &self.src.name, pos, msg)
            .with_end(end)
            .with_pointer(ptr)
    }
    fn is_prod(&self) -> bool {
        let Some(labels) = self.at("/metadata/labels").and_then(Value::as_object) else {
            return false;
        };
        ["environment", "env", "stage", "tier"].iter().any(|k| {
            labels.get(*k).and_then(Value::as_str).is_some_and(|v| {
                v.eq_ignore_ascii_case("prod") || v.eq_ignore_ascii_case("production")
            })
        })
    }
}

const SCALING: &str = "/spec/operations/scaling";
const SERVING: &str = "/spec/operations/serving";
const METRICS: &str = "/spec/operations/observability/metrics";
const DEPS: &str = "/spec/pipeline/dependencies";
const ARTIFACTS: &str = "/spec/identity/model/artifacts";

type Rule = fn(&Ctx, &mut Vec<Diagnostic>);

/// The per-document rules (the reference rules that need the file system are separate).
const RULES: &[Rule] = &[
    vllm_needs_max_sequence_length,
    scaling_rules,
    ports,
    concurrency_below_batch,
    probe_timeouts,
    accelerator_vendor,
    metrics_port_while_disabled,
    pii_rules,
    retention_below_audit,
    prod_rules,
    approvals_exceed_owners,
    artifact_rules,
    dependency_ids,
    dependency_latency,
    duplicate_steps,
    behavior_rules,
];

pub fn check(ctx: &Ctx, refs: &mut RefGraph) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for rule in RULES {
        rule(ctx, &mut out);
    }
    spec_refs(ctx, refs, &mut out);
    execution_plan(ctx, refs, &mut out);
    out
}

fn vllm_needs_max_sequence_length(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    if ctx
        .str("/spec/identity/model/framework")
        .is_some_and(|f| f.eq_ignore_ascii_case("vllm"))
        && ctx
            .at("/spec/runtime/batch/maxSequenceLengthTokens")
            .is_none()
    {
        out.push(
            ctx.diag(
                "MS0201",
                "/spec/identity/model/framework",
                "framework vllm needs runtime.batch.maxSequenceLengthTokens",
            )
            .with_expected("spec.runtime.batch.maxSequenceLengthTokens")
            .with_found("no maximum sequence length")
            .with_hint("add `batch: {maxSequenceLengthTokens: 4096}` under spec.runtime"),
        );
    }
}

fn scaling_rules(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let min = ctx.num(&format!("{SCALING}/minReplicas"));
    let max = ctx.num(&format!("{SCALING}/maxReplicas"));
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            out.push(
                ctx.diag(
                    "MS0203",
                    &format!("{SCALING}/minReplicas"),
                    format!("minReplicas ({min}) exceeds maxReplicas ({max})"),
                )
                .with_expected(format!("minReplicas <= maxReplicas ({max})"))
                .with_found(format!("{min}"))
                .with_hint("lower minReplicas or raise maxReplicas"),
            );
        } else if min != max && ctx.str(&format!("{SCALING}/strategy")) == Some("manual") {
            out.push(
                ctx.diag(
                    "MS0202",
                    &format!("{SCALING}/strategy"),
                    "manual scaling with a replica range",
                )
                .with_expected("minReplicas = maxReplicas with strategy manual")
                .with_found(format!("minReplicas {min}, maxReplicas {max}"))
                .with_hint("set both to the fixed replica count, or use strategy reactive"),
            );
        }
    }
    if let (Some(size), Some(max)) = (ctx.num(&format!("{SCALING}/warmPool/size")), max)
        && size > max
    {
        out.push(
            ctx.diag(
                "MS0204",
                &format!("{SCALING}/warmPool/size"),
                format!("warmPool.size ({size}) exceeds maxReplicas ({max})"),
            )
            .with_expected(format!("at most {max}"))
            .with_found(format!("{size}")),
        );
    }
    if max == Some(0.0) && ctx.at(SERVING).is_some() {
        out.push(
            ctx.diag(
                "MS0210",
                &format!("{SCALING}/maxReplicas"),
                "maxReplicas is 0, so the serving endpoint can never answer",
            )
            .with_expected("maxReplicas >= 1")
            .with_found("0")
            .with_hint("for scale-to-zero use minReplicas: 0 and maxReplicas >= 1"),
        );
    }
}

fn ports(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let serving = ctx.num(&format!("{SERVING}/port"));
    let metrics = ctx.num(&format!("{METRICS}/port"));
    if let (Some(s), Some(m)) = (serving, metrics)
        && s == m
        && ctx.bool(&format!("{METRICS}/enabled")) != Some(false)
    {
        out.push(
            ctx.diag(
                "MS0205",
                &format!("{METRICS}/port"),
                format!("metrics port {m} is also the serving port"),
            )
            .with_expected(format!("a port other than {s}"))
            .with_found(format!("{m}"))
            .with_hint("serve metrics on their own port, e.g. 9090"),
        );
    }
}

fn concurrency_below_batch(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    if let (Some(c), Some(b)) = (
        ctx.num(&format!("{SERVING}/maxConcurrency")),
        ctx.num("/spec/runtime/batch/maxBatchSize"),
    ) && c < b
    {
        out.push(
            ctx.diag(
                "MS0206",
                &format!("{SERVING}/maxConcurrency"),
                format!("maxConcurrency ({c}) is below maxBatchSize ({b}): batches can never fill"),
            )
            .with_expected(format!("maxConcurrency >= {b}"))
            .with_found(format!("{c}")),
        );
    }
}

fn probe_timeouts(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Some(request) = ctx.num(&format!("{SERVING}/timeoutSeconds")) else {
        return;
    };
    for probe in ["readinessProbe", "livenessProbe"] {
        let ptr = format!("{SERVING}/{probe}/timeoutSeconds");
        if let Some(t) = ctx.num(&ptr)
            && t > request
        {
            out.push(
                ctx.diag(
                    "MS0207",
                    &ptr,
                    format!("{probe} timeout ({t}s) exceeds the request timeout ({request}s)"),
                )
                .with_expected(format!("less than {request}"))
                .with_found(format!("{t}")),
            );
        }
    }
}

fn accelerator_vendor(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    if ctx.doc_type != DocType::V1 {
        return;
    }
    if let Some(kind) = ctx.str("/spec/runtime/accelerator/type")
        && !kind.eq_ignore_ascii_case("cpu")
        && ctx.at("/spec/runtime/accelerator/vendor").is_none()
    {
        out.push(
            ctx.diag(
                "MS0208",
                "/spec/runtime/accelerator/type",
                format!("accelerator `{kind}` has no vendor"),
            )
            .with_expected("accelerator.vendor (e.g. nvidia, amd, intel)")
            .with_hint("only `type: cpu` may omit the vendor"),
        );
    }
}

fn metrics_port_while_disabled(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    if ctx.bool(&format!("{METRICS}/enabled")) == Some(false)
        && ctx.at(&format!("{METRICS}/port")).is_some()
    {
        out.push(
            ctx.diag(
                "MS0209",
                &format!("{METRICS}/port"),
                "metrics port is set but metrics are disabled",
            )
            .with_hint("set metrics.enabled: true or remove the port"),
        );
    }
}

const PII: &str = "/spec/governance/compliance/pii";

fn pii_rules(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    if ctx.bool(&format!("{PII}/allowed")) != Some(true) {
        return;
    }
    let level_ptr = "/spec/operations/observability/logging/level";
    if let Some(level) = ctx.str(level_ptr)
        && matches!(level.to_ascii_lowercase().as_str(), "debug" | "trace")
    {
        out.push(
            ctx.diag(
                "MS0301",
                level_ptr,
                format!("PII is allowed while logging at {level}"),
            )
            .with_expected("logging level info, warn or error when PII is allowed")
            .with_found(level.to_owned())
            .with_hint(
                "debug/trace logs record request bodies; raise the level or set pii.allowed: false",
            ),
        );
    }
    if ctx.str(&format!("{PII}/policy")).is_none_or(str::is_empty) {
        out.push(
            ctx.diag(
                "MS0304",
                &format!("{PII}/allowed"),
                "PII is allowed but no policy is named",
            )
            .with_expected("pii.policy naming the governing policy"),
        );
    }
}

fn retention_below_audit(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let logs_ptr = "/spec/governance/compliance/retention/logsDays";
    if let (Some(logs), Some(audit)) = (
        ctx.num(logs_ptr),
        ctx.num("/spec/governance/compliance/audit/periodDays"),
    ) && logs < audit
    {
        out.push(
            ctx.diag(
                "MS0302",
                logs_ptr,
                format!("logs are kept {logs} days but the audit period is {audit} days"),
            )
            .with_expected(format!("logsDays >= {audit}"))
            .with_found(format!("{logs}")),
        );
    }
}

/// People declared accountable: `spec.governance.owners` (v1), else one owner named by
/// `spec.governance.compliance.governance.owner` or, as upstream's own examples do, by the
/// `metadata.annotations.owner` annotation.
fn owner_count(ctx: &Ctx) -> usize {
    let owners = ctx.list("/spec/governance/owners").len();
    let single = [
        "/spec/governance/compliance/governance/owner",
        "/metadata/annotations/owner",
    ]
    .iter()
    .any(|p| ctx.str(p).is_some_and(|s| !s.trim().is_empty()));
    owners.max(usize::from(single))
}

fn prod_rules(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    if !ctx.is_prod() {
        return;
    }
    if owner_count(ctx) == 0 {
        out.push(
            ctx.diag(
                "MS0305",
                "/metadata/labels",
                "spec is labelled prod but names no owner",
            )
            .with_expected(if ctx.doc_type == DocType::V1 {
                "spec.governance.owners (or a metadata.annotations.owner annotation)"
            } else {
                "spec.governance.compliance.governance.owner (or a metadata.annotations.owner annotation)"
            }),
        );
    }
    if ctx.doc_type == DocType::V1alpha1 {
        // v1alpha1 cannot hold digests, so the same gap is reported as a warning here: the
        // upgraded v1 document reports it as an error, and `upgrade` then adds no new reason.
        for key in ["modelUri", "tokenizerUri"] {
            let ptr = format!("{ARTIFACTS}/{key}");
            if let Some(uri) = ctx.str(&ptr) {
                let mut d = ctx
                    .diag(
                        "MS0303",
                        &ptr,
                        format!("artifact `{uri}` has no sha256 in a prod spec"),
                    )
                    .with_expected("a pinned digest (modelspec/v1 artifacts have `sha256:`)")
                    .with_hint(
                        "piqc.ai/v1alpha1 cannot pin digests: `modelspec upgrade` the file, then add `sha256:` to each artifact",
                    );
                d.severity = Severity::Warning;
                out.push(d);
            }
        }
        return;
    }
    if ctx.doc_type != DocType::V1 {
        return;
    }
    for (i, a) in ctx.list(ARTIFACTS).iter().enumerate() {
        if a.get("sha256").is_none() {
            let uri = a.get("uri").and_then(Value::as_str).unwrap_or("?");
            out.push(
                ctx.diag(
                    "MS0303",
                    &format!("{ARTIFACTS}/{i}"),
                    format!("artifact `{uri}` has no sha256 in a prod spec"),
                )
                .with_expected("sha256: <64 hex digits>")
                .with_hint("pin the content: `sha256sum FILE` gives the digest"),
            );
        }
    }
}

fn approvals_exceed_owners(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Some(approvals) = ctx
        .at("/spec/governance/approvals")
        .and_then(Value::as_object)
    else {
        return;
    };
    let owners = owner_count(ctx);
    for (env, n) in approvals {
        if let Some(n) = n.as_u64()
            && n > owners as u64
        {
            out.push(
                ctx.diag(
                    "MS0306",
                    &format!(
                        "/spec/governance/approvals/{}",
                        crate::yaml::escape_pointer(env)
                    ),
                    format!("{n} approvals required for {env} but only {owners} owner(s) declared"),
                )
                .with_expected(format!("at most {owners}"))
                .with_found(n.to_string())
                .with_hint("add owners to spec.governance.owners or lower the approval count"),
            );
        }
    }
}

/// The quantization a precision or file name denotes, normalised (`q4_k_m`, `f16`, ...).
fn quant_of(text: &str) -> Option<String> {
    const KNOWN: &[&str] = &[
        "iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "iq2_m", "iq3_xxs", "iq3_xs", "iq3_s",
        "iq3_m", "iq4_nl", "iq4_xs", "q2_k_s", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s",
        "q4_k_m", "q4_0", "q4_1", "q5_k_s", "q5_k_m", "q5_0", "q5_1", "q6_k", "q8_0", "bf16",
        "fp16", "f16", "fp32", "f32",
    ];
    let lower = text.to_ascii_lowercase();
    let file = lower.rsplit('/').next().unwrap_or(&lower);
    let bytes = file.as_bytes();
    for k in KNOWN {
        let mut from = 0;
        while let Some(i) = file[from..].find(k) {
            let s = from + i;
            let e = s + k.len();
            let left = s == 0 || !bytes[s - 1].is_ascii_alphanumeric();
            let right = e == bytes.len() || !(bytes[e].is_ascii_alphanumeric() || bytes[e] == b'_');
            if left && right {
                return Some(match *k {
                    "fp16" => "f16".into(),
                    "fp32" => "f32".into(),
                    other => other.into(),
                });
            }
            from = s + 1;
        }
    }
    None
}

/// Whether a declared precision is compatible with a stored quantization.
fn compatible(precision: &str, stored: &str) -> bool {
    let p = precision.to_ascii_lowercase().replace('-', "_");
    let p = match p.as_str() {
        "fp16" | "float16" | "half" => "f16".to_owned(),
        "fp32" | "float32" | "float" => "f32".to_owned(),
        "bfloat16" => "bf16".to_owned(),
        other => other.to_owned(),
    };
    match p.as_str() {
        "int8" => stored.starts_with("q8"),
        "int4" => stored.starts_with("q4") || stored.starts_with("iq4"),
        "f16" | "f32" | "bf16" => stored == p,
        other if quant_of(other).is_some() => quant_of(other).as_deref() == Some(stored),
        // Unknown precision words (mixed, auto...) are not judged.
        _ => true,
    }
}

fn artifact_rules(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let precision = ctx.str("/spec/identity/model/precision");
    if ctx.doc_type == DocType::V1alpha1 {
        if let (Some(p), Some(uri)) = (precision, ctx.str(&format!("{ARTIFACTS}/modelUri")))
            && let Some(q) = quant_of(uri)
            && !compatible(p, &q)
        {
            out.push(precision_finding(
                ctx,
                &format!("{ARTIFACTS}/modelUri"),
                p,
                &q,
                uri,
            ));
        }
        return;
    }
    let Some(artifacts) = ctx.at(ARTIFACTS).and_then(Value::as_array) else {
        return;
    };
    let mut weights = false;
    for (i, a) in artifacts.iter().enumerate() {
        let uri = a.get("uri").and_then(Value::as_str);
        let role = a.get("role").and_then(Value::as_str);
        weights |= role == Some("weights");
        if let Some(uri) = uri {
            duplicate_artifact(ctx, &artifacts[..i], i, uri, a, out);
        }
        if role != Some("weights") {
            continue;
        }
        let Some(p) = precision else { continue };
        let declared = a.get("quantization").and_then(Value::as_str);
        let stored = declared
            .and_then(quant_of)
            .or_else(|| uri.and_then(quant_of));
        if let Some(q) = stored
            && !compatible(p, &q)
        {
            let field = if declared.is_some() {
                "quantization"
            } else {
                "uri"
            };
            out.push(precision_finding(
                ctx,
                &format!("{ARTIFACTS}/{i}/{field}"),
                p,
                &q,
                declared.or(uri).unwrap_or_default(),
            ));
        }
        if a.get("format").and_then(Value::as_str) == Some("safetensors")
            && quant_of(p).is_some_and(|q| q.starts_with('q') || q.starts_with("iq"))
        {
            out.push(
                ctx.diag(
                    "MS0401",
                    &format!("{ARTIFACTS}/{i}/format"),
                    format!("precision {p} is a GGUF quantization but the weights are safetensors"),
                )
                .with_expected("format gguf for GGUF quantizations")
                .with_found("safetensors"),
            );
        }
    }
    if !weights && !artifacts.is_empty() {
        out.push(
            ctx.diag("MS0403", ARTIFACTS, "no artifact has role weights")
                .with_expected("an artifact with `role: weights`"),
        );
    }
}

/// MS0402. One uri may serve several roles (a Hugging Face repository holds weights and
/// tokenizer; a GGUF file embeds its tokenizer), so a uri is a duplicate only when it is
/// listed again for the same role, or when two entries give it different digests (one uri
/// names one content).
fn duplicate_artifact(
    ctx: &Ctx,
    before: &[Value],
    i: usize,
    uri: &str,
    a: &Value,
    out: &mut Vec<Diagnostic>,
) {
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let (role, sha) = (field(a, "role"), field(a, "sha256"));
    for (j, b) in before.iter().enumerate() {
        if field(b, "uri").as_deref() != Some(uri) {
            continue;
        }
        let other_sha = field(b, "sha256");
        let d = if field(b, "role") == role {
            ctx.diag(
                "MS0402",
                &format!("{ARTIFACTS}/{i}/uri"),
                format!(
                    "artifact uri `{uri}` is listed twice for role {}",
                    role.as_deref().unwrap_or("(none)")
                ),
            )
            .with_found(format!("also at {ARTIFACTS}/{j}"))
            .with_hint("remove the copy, or point it at the file it was meant to name")
        } else if let (Some(x), Some(y)) = (&sha, &other_sha)
            && x != y
        {
            ctx.diag(
                "MS0402",
                &format!("{ARTIFACTS}/{i}/sha256"),
                format!("artifact uri `{uri}` is given two different sha256 digests"),
            )
            .with_expected(format!("the digest at {ARTIFACTS}/{j}/sha256"))
            .with_found(x.clone())
            .with_hint("one uri names one content: fix the digest or the uri")
        } else {
            continue;
        };
        out.push(d);
        return;
    }
}

fn precision_finding(
    ctx: &Ctx,
    ptr: &str,
    precision: &str,
    stored: &str,
    what: &str,
) -> Diagnostic {
    ctx.diag(
        "MS0401",
        ptr,
        format!(
            "precision {precision} contradicts the weights' quantization {}",
            stored.to_ascii_uppercase()
        ),
    )
    .with_expected(format!("weights stored as {precision}"))
    .with_found(format!("`{what}` ({})", stored.to_ascii_uppercase()))
    .with_hint(format!(
        "set precision: {stored} or point at the {precision} weights"
    ))
}

fn dependency_ids(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, d) in ctx.list(DEPS).iter().enumerate() {
        if let Some(id) = d.get("id").and_then(Value::as_str)
            && let Some(first) = seen.insert(id, i)
        {
            out.push(
                ctx.diag(
                    "MS0501",
                    &format!("{DEPS}/{i}/id"),
                    format!("dependency id `{id}` is used twice"),
                )
                .with_found(format!("also at {DEPS}/{first}")),
            );
        }
    }
}

fn dependency_latency(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let Some(target) = ctx.num(&format!("{SCALING}/targetLatencyMsP95")) else {
        return;
    };
    for (i, d) in ctx.list(DEPS).iter().enumerate() {
        let required = d.get("required").and_then(Value::as_bool).unwrap_or(true);
        if let Some(lat) = d.pointer("/interface/maxLatencyMs").and_then(Value::as_f64)
            && required
            && lat > target
        {
            let id = d.get("id").and_then(Value::as_str).unwrap_or("?");
            out.push(
                ctx.diag("MS0504", &format!("{DEPS}/{i}/interface/maxLatencyMs"), format!("required dependency `{id}` may take {lat} ms, above the p95 target of {target} ms"))
                    .with_expected(format!("at most {target} ms"))
                    .with_found(format!("{lat} ms"))
                    .with_hint("raise targetLatencyMsP95, speed up the dependency or make it optional"),
            );
        }
    }
}

fn duplicate_steps(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    for stage in ["preprocess", "postprocess"] {
        let base = format!("/spec/pipeline/{stage}/steps");
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, s) in ctx.list(&base).iter().enumerate() {
            if let Some(name) = s.get("name").and_then(Value::as_str)
                && seen.insert(name, i).is_some()
            {
                out.push(ctx.diag(
                    "MS0505",
                    &format!("{base}/{i}/name"),
                    format!("{stage} step `{name}` is defined twice"),
                ));
            }
        }
    }
}

fn behavior_rules(ctx: &Ctx, out: &mut Vec<Diagnostic>) {
    let rules = ctx.list("/spec/behavior/rules");
    let tests = ctx.list("/spec/behavior/tests");
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        if let Some(id) = r.get("id").and_then(Value::as_str)
            && ids.insert(id, i).is_some()
        {
            out.push(ctx.diag(
                "MS0601",
                &format!("/spec/behavior/rules/{i}/id"),
                format!("behavior rule id `{id}` is used twice"),
            ));
        }
    }
    let mut test_ids: HashMap<&str, usize> = HashMap::new();
    let mut tested: Vec<&str> = Vec::new();
    for (i, t) in tests.iter().enumerate() {
        if let Some(id) = t.get("id").and_then(Value::as_str)
            && test_ids.insert(id, i).is_some()
        {
            out.push(ctx.diag(
                "MS0604",
                &format!("/spec/behavior/tests/{i}/id"),
                format!("behavior test id `{id}` is used twice"),
            ));
        }
        if let Some(rule) = t.get("rule").and_then(Value::as_str) {
            tested.push(rule);
            if !ids.contains_key(rule) {
                let mut d = ctx
                    .diag(
                        "MS0602",
                        &format!("/spec/behavior/tests/{i}/rule"),
                        format!("test refers to unknown rule `{rule}`"),
                    )
                    .with_expected("the id of a rule in spec.behavior.rules");
                if let Some(c) = closest(rule, ids.keys().copied()) {
                    d = d.with_hint(format!("did you mean `{c}`?"));
                }
                out.push(d);
            }
        }
    }
    for (i, r) in rules.iter().enumerate() {
        if let Some(id) = r.get("id").and_then(Value::as_str)
            && !tested.contains(&id)
            && ids.get(id) == Some(&i)
        {
            out.push(
                ctx.diag(
                    "MS0603",
                    &format!("/spec/behavior/rules/{i}"),
                    format!("behavior rule `{id}` has no test"),
                )
                .with_hint("add a test under spec.behavior.tests with `rule: ID`"),
            );
        }
    }
}

fn display(p: &Path) -> String {
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|c| c.canonicalize().ok());
    match cwd.and_then(|c| p.strip_prefix(&c).ok().map(Path::to_path_buf)) {
        Some(rel) => rel.display().to_string(),
        None => p.display().to_string(),
    }
}

fn spec_refs(ctx: &Ctx, graph: &mut RefGraph, out: &mut Vec<Diagnostic>) {
    let deps = ctx.list(DEPS);
    if deps.is_empty() {
        return;
    }
    let base = ctx.src.base_dir();
    let me = ctx.src.path.as_ref().and_then(|p| p.canonicalize().ok());
    for (i, d) in deps.iter().enumerate() {
        let Some(r) = d.get("specRef").and_then(Value::as_str) else {
            continue;
        };
        let ptr = format!("{DEPS}/{i}/specRef");
        match resolve(&base, r) {
            Target::Remote => {}
            Target::Missing(p) => {
                // A dependency is required unless it says `required: false` (the schema's
                // default); only those fail the run, and only under --strict-refs.
                let required = d.get("required").and_then(Value::as_bool).unwrap_or(true);
                let strict = ctx.strict_refs && required;
                let mut diag = ctx
                    .diag("MS0502", &ptr, format!("specRef `{r}` does not resolve"))
                    .with_expected("an existing spec file, relative to this file")
                    .with_found(format!("no file at {}", display(&p)))
                    .with_hint(if strict {
                        "the dependency is required and --strict-refs is given: add the file or fix the path"
                    } else if required {
                        "add the file or fix the path; with --strict-refs this is an error for required dependencies"
                    } else {
                        "add the file or fix the path (the dependency is optional: `required: false`)"
                    });
                diag.severity = if strict {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                out.push(diag);
            }
            Target::Found(target) => {
                match graph.node(&target).kind.clone() {
                    Ok(kind) if kind == "ModelSpec" => {}
                    Ok(kind) => out.push(
                        ctx.diag(
                            "MS0506",
                            &ptr,
                            format!("specRef `{r}` is of kind {kind}, not ModelSpec"),
                        )
                        .with_expected("kind: ModelSpec"),
                    ),
                    Err(why) => out.push(
                        ctx.diag(
                            "MS0506",
                            &ptr,
                            format!("specRef `{r}` is not a readable ModelSpec"),
                        )
                        .with_found(why),
                    ),
                }
                if let Some(me) = &me
                    && let Some(chain) = graph.path_between(&target, me)
                {
                    let mut names = vec![display(me)];
                    names.extend(chain.iter().map(|p| display(p)));
                    out.push(
                        ctx.diag("MS0503", &ptr, "specRef leads back to this spec")
                            .with_found(names.join(" -> "))
                            .with_hint(
                                "dependencies must form a tree; remove one reference of the cycle",
                            ),
                    );
                }
            }
        }
    }
}

fn execution_plan(ctx: &Ctx, graph: &mut RefGraph, out: &mut Vec<Diagnostic>) {
    let ptr = "/spec/executionPlan/ref";
    let Some(r) = ctx.str(ptr) else { return };
    match resolve(&ctx.src.base_dir(), r) {
        Target::Remote => {}
        Target::Missing(p) => out.push(
            ctx.diag(
                "MS0701",
                ptr,
                format!("execution plan `{r}` does not resolve"),
            )
            .with_expected("an ExecutionPlan file, relative to this file")
            .with_found(format!("no file at {}", display(&p))),
        ),
        Target::Found(target) => match graph.node(&target).kind.clone() {
            Ok(kind) if kind == "ExecutionPlan" => {}
            Ok(kind) => out.push(
                ctx.diag(
                    "MS0701",
                    ptr,
                    format!("`{r}` is of kind {kind}, not ExecutionPlan"),
                )
                .with_expected("kind: ExecutionPlan"),
            ),
            Err(why) => out.push(
                ctx.diag(
                    "MS0701",
                    ptr,
                    format!("`{r}` is not a readable ExecutionPlan"),
                )
                .with_found(why),
            ),
        },
    }
}
