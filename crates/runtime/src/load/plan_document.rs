//! Reading one ExecutionPlan document (a file or inline text) and checking it exactly as
//! `modelspec plan validate` does.

use ms_spec::check::Checker;
use ms_spec::diag::codes as spec_codes;
use ms_spec::schema::DocType;
use ms_spec::types::plan::ExecutionPlan;
use ms_spec::{Diagnostic, Severity, Source};

use super::error::LoadError;
use super::finding::{PlanFinding, render};
use super::progress::LoadProgress;
use super::request::PlanSource;

/// A plan document read and checked, with its text for locating findings.
pub struct PlanDocument {
    pub plan: ExecutionPlan,
    pub source: Source,
    pub warnings: Vec<PlanFinding>,
}

/// Reads and validates an ExecutionPlan (schema and plan rules at default levels, exactly as
/// `modelspec plan validate`). Warnings go to `progress`.
pub fn read_plan(
    plan: &PlanSource,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<PlanDocument, LoadError> {
    let name = plan.display_name();
    let src = match plan {
        PlanSource::File(p) => ms_spec::source::load(&p.display().to_string()).map_err(|e| {
            let d = e.into_diagnostic();
            LoadError::Plan {
                source_name: name.clone(),
                text: render(&name, None, std::slice::from_ref(&d)),
                findings: vec![PlanFinding::from(&d)],
            }
        })?,
        PlanSource::Inline { yaml, .. } => {
            if let Some(d) = unusable_text(&name, yaml) {
                return Err(LoadError::Plan {
                    source_name: name.clone(),
                    text: render(&name, None, std::slice::from_ref(&d)),
                    findings: vec![PlanFinding::from(&d)],
                });
            }
            // A byte-order mark is legal but would shift every column by one.
            let text = yaml.strip_prefix('\u{feff}').unwrap_or(yaml);
            Source::from_text(name.clone(), text)
        }
    };
    let invalid = |diags: &[Diagnostic], src: &Source| LoadError::Plan {
        source_name: name.clone(),
        text: render(&name, Some(src.clone()), diags),
        findings: diags.iter().map(PlanFinding::from).collect(),
    };
    let mut checker = Checker::default();
    let (mut diags, checked) = checker.check_raw(&src);
    checker.config.apply(&mut diags);
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(invalid(&diags, &src));
    }
    let mut plans = checked
        .into_iter()
        .filter(|c| c.doc_type == Some(DocType::Plan));
    let (Some(doc), None) = (plans.next(), plans.next()) else {
        let d = Diagnostic::file_level(
            spec_codes::KIND,
            &src.name,
            "expected exactly one `kind: ExecutionPlan` document",
        );
        return Err(invalid(std::slice::from_ref(&d), &src));
    };
    let plan: ExecutionPlan = serde_json::from_value(doc.value).map_err(|e| {
        let d = Diagnostic::file_level(spec_codes::SCHEMA_OTHER, &src.name, e.to_string());
        invalid(std::slice::from_ref(&d), &src)
    })?;
    let warnings: Vec<PlanFinding> = diags.iter().map(PlanFinding::from).collect();
    if !diags.is_empty() {
        let text = render(&name, Some(src.clone()), &diags);
        progress(LoadProgress::PlanWarnings {
            source: &name,
            text: &text,
            findings: &warnings,
        });
    }
    Ok(PlanDocument {
        plan,
        source: src,
        warnings,
    })
}

/// The limits a plan file gets when it is read (size, no NUL bytes), for inline text.
fn unusable_text(name: &str, text: &str) -> Option<Diagnostic> {
    let max = ms_spec::source::MAX_FILE_BYTES;
    if text.len() as u64 > max {
        return Some(
            Diagnostic::file_level(
                spec_codes::TOO_LARGE,
                name,
                "document is too large to be a plan",
            )
            .with_expected(format!("at most {} MiB", max / (1024 * 1024)))
            .with_found(format!("{} bytes", text.len())),
        );
    }
    text.bytes().position(|b| b == 0).map(|pos| {
        Diagnostic::file_level(
            spec_codes::NOT_TEXT,
            name,
            "document is binary, not YAML or JSON text",
        )
        .with_found(format!("a NUL byte at offset {pos}"))
    })
}
