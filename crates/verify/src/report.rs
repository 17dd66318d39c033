//! The verification report: every check, the load that was run, the effective plan and the
//! machine, as text for a person, JSON for tools, and SARIF 2.1.0 for code-scanning UIs (each
//! result located at the declaration in the spec file).

use std::fmt::Write;

use ms_runtime::Machine;
use serde::Serialize;
use serde_json::{Value, json};

use crate::check::num;
use crate::check::{self, Check, Tally, Verdict};
use crate::load::{Profile, Summary};
use crate::spec_file::SpecFile;

/// The report format; bumped when a field changes meaning.
pub const REPORT_FORMAT: &str = "modelspec.verify-report/v1";

/// Which server was checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// `local` (started in-process by verify) or `url` (given with --url).
    pub mode: &'static str,
    pub url: Option<String>,
}

impl Target {
    pub fn local() -> Self {
        Target {
            mode: "local",
            url: None,
        }
    }
    pub fn local_at(url: &str) -> Self {
        Target {
            mode: "local",
            url: Some(url.to_string()),
        }
    }
    pub fn remote(url: &str) -> Self {
        Target {
            mode: "url",
            url: Some(url.to_string()),
        }
    }
}

/// Energy and tokens over the load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergyRecord {
    pub joules: f64,
    /// Prompt + generated tokens.
    pub tokens: f64,
    pub seconds: f64,
    /// Which metric (and labels) the joules came from.
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub modelspec: &'static str,
    /// The spec file, as named on the command line.
    pub spec: String,
    pub target: Target,
    pub checks: Vec<Check>,
    pub summary: Tally,
    /// The load derived from the spec.
    pub profile: Option<Profile>,
    /// What the load measured.
    pub load: Option<Summary>,
    pub energy: Option<EnergyRecord>,
    /// The effective plan the server ran (GET /v1/plan), every decision with its origin.
    pub plan: Option<Value>,
    /// GET /v1/models.
    pub served_model: Option<Value>,
    /// The machine verify ran on (the server's too in local mode).
    pub machine: Machine,
}

impl Report {
    pub fn new(spec: &SpecFile, target: Target) -> Self {
        Report {
            format: REPORT_FORMAT,
            modelspec: env!("CARGO_PKG_VERSION"),
            spec: spec.name.clone(),
            target,
            checks: Vec::new(),
            summary: Tally::default(),
            profile: None,
            load: None,
            energy: None,
            plan: None,
            served_model: None,
            machine: Machine::detect(),
        }
    }

    /// Locates every check in the spec, orders them by code and counts verdicts.
    pub fn finish(mut self, mut checks: Vec<Check>, spec: &SpecFile) -> Self {
        for c in &mut checks {
            (c.line, c.column) = spec.position(&c.pointer);
        }
        // Stable: artifacts keep their order among themselves.
        checks.sort_by_key(|c| check::RULES.iter().position(|r| r.code == c.code));
        self.summary = Tally::of(&checks);
        self.checks = checks;
        self
    }

    pub fn passed(&self, strict: bool) -> bool {
        self.summary.passed(strict)
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Text for a person: one line per check, then the load, the plan and the machine.
    pub fn to_text(&self, strict: bool) -> String {
        let mut out = String::new();
        let target = match (&self.target.mode, &self.target.url) {
            (&"url", Some(u)) => format!("the server at {u}"),
            (_, Some(u)) => format!("a local server started for this check ({u})"),
            _ => "a local server".to_string(),
        };
        let _ = writeln!(out, "modelspec verify {} against {target}", self.spec);
        let _ = writeln!(
            out,
            "✓ held   ✗ violated   ? not checked   (declared → measured, how)\n"
        );
        for c in &self.checks {
            let at = if c.line > 0 {
                format!("{}:{}", self.spec, c.line)
            } else {
                self.spec.clone()
            };
            let measured = c.measured.as_deref().unwrap_or("—");
            let _ = writeln!(
                out,
                "{} {} {}: declared {}, measured {}  [{at}]",
                c.verdict.mark(),
                c.code,
                c.title,
                c.declared,
                measured
            );
            if !c.method.is_empty() {
                let _ = writeln!(out, "      how: {}", c.method);
            }
            if let Some(r) = &c.reason {
                let label = if c.verdict == Verdict::NotChecked {
                    "why not checked"
                } else {
                    "why"
                };
                let _ = writeln!(out, "      {label}: {r}");
            }
        }
        if self.checks.is_empty() {
            let _ = writeln!(
                out,
                "(the spec declares nothing verify can check: add artifacts with sha256, batch, scaling, resources or observability)"
            );
        }
        let _ = writeln!(out);
        if let (Some(p), Some(s)) = (&self.profile, &self.load) {
            let statuses: Vec<String> = s
                .statuses
                .iter()
                .map(|(k, v)| {
                    if *k == 0 {
                        format!("{v} without response")
                    } else {
                        format!("{v}× HTTP {k}")
                    }
                })
                .collect();
            let _ = writeln!(
                out,
                "load: {} clients × {:.0} s, {} tokens generated per request; {} requests: {} succeeded, {} failed ({} unfinished; statuses {}); {} req/s; latency p50 {} ms, p95 {} ms; TTFT p50 {} ms, p95 {} ms",
                p.concurrency,
                p.duration.as_secs_f64(),
                p.max_tokens,
                s.requests,
                s.succeeded,
                s.failed,
                s.unfinished,
                statuses.join(", "),
                num(s.requests_per_second),
                opt(s.latency.p50_ms),
                opt(s.latency.p95_ms),
                opt(s.ttft.p50_ms),
                opt(s.ttft.p95_ms),
            );
            for e in &s.errors {
                let _ = writeln!(out, "      error: {e}");
            }
        }
        if let Some(e) = &self.energy {
            let _ = writeln!(
                out,
                "energy: {} J for {} tokens over {:.1} s ({})",
                num(e.joules),
                num(e.tokens),
                e.seconds,
                e.source
            );
        }
        if let Some(plan) = &self.plan {
            let get = |p: &str| {
                plan.pointer(p)
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        v => v.to_string(),
                    })
                    .unwrap_or_else(|| "?".into())
            };
            let _ = writeln!(
                out,
                "plan: {} (backend {}, quantization {}, {} threads, context {}, scheduler {} batch {}); full plan in --format json",
                get("/metadata/name"),
                get("/spec/backend"),
                get("/spec/quantization"),
                get("/spec/threads"),
                get("/spec/contextLength"),
                get("/spec/scheduler/policy"),
                get("/spec/scheduler/maxBatch"),
            );
        }
        let m = &self.machine;
        let _ = writeln!(
            out,
            "machine: {} ({} {}), {} logical cores, {}{}",
            m.cpu_model,
            m.os,
            m.arch,
            m.logical_cores,
            m.memory_bytes
                .map(|b| format!("{} GiB memory", num(b as f64 / crate::checks::BYTES_PER_GB)))
                .unwrap_or_else(|| "memory unknown".into()),
            if self.target.mode == "url" {
                " (the verifier's; the server's machine is not known)"
            } else {
                ""
            }
        );
        let t = self.summary;
        let verdict = if self.passed(strict) {
            "PASSED"
        } else {
            "FAILED"
        };
        let _ = writeln!(
            out,
            "\n{verdict}: {} held, {} violated, {} not checked{}",
            t.held,
            t.violated,
            t.not_checked,
            if strict {
                " (--strict: not checked counts as failed)"
            } else {
                ""
            }
        );
        out
    }

    /// SARIF 2.1.0: one result per check at the declaration's position; `kind` is `pass`,
    /// `fail` or `open` (not checked).
    pub fn to_sarif(&self, strict: bool) -> String {
        let rules: Vec<Value> = check::RULES
            .iter()
            .map(|r| {
                json!({
                    "id": r.code,
                    "name": r.name,
                    "shortDescription": {"text": r.title},
                    "fullDescription": {"text": r.summary},
                    "defaultConfiguration": {"level": "error"},
                })
            })
            .collect();
        let results: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                let (kind, level) = match c.verdict {
                    Verdict::Held => ("pass", "none"),
                    Verdict::Violated => ("fail", "error"),
                    Verdict::NotChecked if strict => ("fail", "error"),
                    Verdict::NotChecked => ("open", "none"),
                };
                let mut text = format!(
                    "{} {}: declared {}, measured {}",
                    c.verdict.as_str(),
                    c.title,
                    c.declared,
                    c.measured.as_deref().unwrap_or("nothing")
                );
                if !c.method.is_empty() {
                    let _ = write!(text, "; how: {}", c.method);
                }
                if let Some(r) = &c.reason {
                    let _ = write!(text, "; {r}");
                }
                let mut phys = json!({"artifactLocation": {"uri": self.spec.replace('\\', "/")}});
                if c.line > 0 {
                    phys["region"] = json!({"startLine": c.line, "startColumn": c.column.max(1)});
                }
                json!({
                    "ruleId": c.code,
                    "ruleIndex": check::RULES.iter().position(|r| r.code == c.code).unwrap_or(0),
                    "kind": kind,
                    "level": level,
                    "message": {"text": text},
                    "locations": [{"physicalLocation": phys}],
                    "properties": {
                        "verdict": c.verdict.as_str(),
                        "pointer": c.pointer,
                        "declared": c.declared,
                        "measured": c.measured,
                        "method": c.method,
                    },
                })
            })
            .collect();
        let v = json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "modelspec verify",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }},
                "results": results,
                "properties": {
                    "target": self.target,
                    "plan": self.plan,
                    "machine": self.machine,
                    "load": self.load,
                },
            }],
        });
        let mut out = serde_json::to_string_pretty(&v).unwrap_or_default();
        out.push('\n');
        out
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), num)
}
