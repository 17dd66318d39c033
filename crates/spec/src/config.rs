//! Rule levels from `.modelspec.yaml` and from `--deny/--warn/--allow` flags.
//!
//! ```yaml
//! # .modelspec.yaml
//! rules:
//!   MS0203: error                   # error | warning | off (or deny | warn | allow)
//!   behavior-rule-without-test: off # rule names work too
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::catalog;
use crate::diag::{Diagnostic, Severity};
use crate::source::{self, Source};
use crate::suggest::closest;
use crate::yaml::{self, NodeValue};

pub const CONFIG_FILE: &str = ".modelspec.yaml";

#[derive(Debug, Clone, Default)]
pub struct LintConfig {
    levels: HashMap<&'static str, Severity>,
    /// `--strict-refs`: a specRef of a required dependency that does not resolve is an error
    /// (MS0502 is otherwise a warning: upstream's examples name specs they do not ship).
    pub strict_refs: bool,
}

impl LintConfig {
    /// Sets a rule's level; `rule` is a code (MS0203) or a name (min-replicas-exceeds-max).
    pub fn set(&mut self, rule: &str, level: Severity) -> Result<(), String> {
        let Some(info) = catalog::lookup(rule.trim()) else {
            let codes = catalog::RULES
                .iter()
                .map(|r| r.code)
                .chain(catalog::RULES.iter().map(|r| r.name));
            let hint = closest(rule, codes)
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default();
            return Err(format!(
                "unknown rule `{rule}`{hint}; `modelspec explain --list` lists them"
            ));
        };
        if !info.configurable {
            return Err(format!(
                "{} ({}) reports unreadable input and cannot be re-levelled",
                info.code, info.name
            ));
        }
        self.levels.insert(info.code, level);
        Ok(())
    }

    /// The level a finding of `code` gets by default.
    pub fn level(&self, code: &str) -> Severity {
        self.levels
            .get(code)
            .copied()
            .unwrap_or_else(|| catalog::default_severity(code))
    }

    /// Applies configured levels and drops findings switched off. A finding keeps the level
    /// its rule gave it (usually the catalog default; e.g. MS0502 is an error for a required
    /// dependency under `--strict-refs`) unless the configuration names its rule.
    pub fn apply(&self, diags: &mut Vec<Diagnostic>) {
        for d in diags.iter_mut() {
            if let Some(level) = self.levels.get(d.code) {
                d.severity = *level;
            }
        }
        diags.retain(|d| d.severity != Severity::Off);
    }

    /// Reads a config file. Errors name the file, position and problem.
    pub fn from_file(path: &Path) -> Result<LintConfig, String> {
        let name = path.display().to_string();
        let src = source::load(&name).map_err(|e| render(&e.into_diagnostic()))?;
        Self::from_source(&src)
    }

    pub fn from_source(src: &Source) -> Result<LintConfig, String> {
        let parsed = yaml::parse(src);
        if let Some(d) = parsed.diagnostics.first() {
            return Err(render(d));
        }
        let mut cfg = LintConfig::default();
        let Some(doc) = parsed.documents.first() else {
            return Ok(cfg);
        };
        let entries = match &doc.root.value {
            NodeValue::Map(e) => e,
            NodeValue::Null => return Ok(cfg),
            _ => {
                return Err(format!(
                    "{}:{}:{}: expected a mapping with a `rules` key",
                    src.name, doc.root.start.line, doc.root.start.col
                ));
            }
        };
        for e in entries {
            if e.key != "rules" {
                let hint = closest(&e.key, ["rules"])
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                return Err(format!(
                    "{}:{}:{}: unknown key `{}` (expected `rules`){hint}",
                    src.name, e.key_pos.line, e.key_pos.col, e.key
                ));
            }
            let rules = match &e.value.value {
                NodeValue::Map(r) => r,
                NodeValue::Null => continue,
                _ => {
                    return Err(format!(
                        "{}:{}:{}: `rules` must map rule codes to levels",
                        src.name, e.value.start.line, e.value.start.col
                    ));
                }
            };
            for r in rules {
                let NodeValue::Str(level) = &r.value.value else {
                    return Err(format!(
                        "{}:{}:{}: level of {} must be error, warning or off",
                        src.name, r.value.start.line, r.value.start.col, r.key
                    ));
                };
                let Some(sev) = Severity::parse(level) else {
                    return Err(format!(
                        "{}:{}:{}: unknown level `{level}` for {} (expected error, warning or off)",
                        src.name, r.value.start.line, r.value.start.col, r.key
                    ));
                };
                cfg.set(&r.key, sev).map_err(|m| {
                    format!("{}:{}:{}: {m}", src.name, r.key_pos.line, r.key_pos.col)
                })?;
            }
        }
        Ok(cfg)
    }
}

/// The nearest `.modelspec.yaml` in `start` or its ancestors.
pub fn discover(start: &Path) -> Option<PathBuf> {
    let start = start.canonicalize().ok()?;
    start
        .ancestors()
        .map(|d| d.join(CONFIG_FILE))
        .find(|p| p.is_file())
}

fn render(d: &Diagnostic) -> String {
    format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_levels_and_rejects_typos() {
        let cfg = LintConfig::from_source(&Source::from_text(
            "c.yaml",
            "rules:\n  MS0203: warn\n  behavior-rule-without-test: off\n",
        ))
        .unwrap();
        assert_eq!(cfg.level("MS0203"), Severity::Warning);
        assert_eq!(cfg.level("MS0603"), Severity::Off);
        assert_eq!(cfg.level("MS0204"), Severity::Error);
        let err = LintConfig::from_source(&Source::from_text("c.yaml", "rules:\n  MS0230: off\n"))
            .unwrap_err();
        assert!(
            err.contains("c.yaml:2:3") && err.contains("did you mean"),
            "{err}"
        );
        let err = LintConfig::from_source(&Source::from_text("c.yaml", "rulez: {}\n")).unwrap_err();
        assert!(err.contains("did you mean `rules`"), "{err}");
        assert!(LintConfig::default().set("MS0005", Severity::Off).is_err());
    }
}
