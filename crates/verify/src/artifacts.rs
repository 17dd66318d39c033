//! Artifact checks: every declared artifact is resolved (ms-fetch: local paths relative to the
//! spec, cache, downloads) and its sha256 compared with the declared digest; a GGUF weights
//! file also tells which quantization it holds and carries the tokenizer.

use std::path::{Path, PathBuf};

use ms_fetch::{Artifact, Cache, FetchError, FetchOptions};
use ms_spec::types::v1::{ArtifactFormat, ArtifactRole};

use crate::check::{self, Check, Verdict};
use crate::spec_file::SpecFile;

/// The weights file the spec names, as resolved.
#[derive(Debug, Clone)]
pub struct Weights {
    pub path: PathBuf,
    /// llama.cpp's name of the file's `general.file_type` (`Q4_K_M`, `Q8_0`, `F16`...).
    pub file_type: Option<String>,
}

/// llama.cpp's `llama_ftype` names.
pub fn file_type_name(ftype: i128) -> Option<&'static str> {
    Some(match ftype {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => return None,
    })
}

/// `general.file_type` of a GGUF file, by name.
pub fn gguf_file_type(file: &ms_gguf::GgufFile) -> Option<String> {
    let v = file.metadata().get("general.file_type")?.as_integer()?;
    file_type_name(v).map(str::to_string)
}

/// A precision or quantization word in one spelling: lower case, `_` for `-`, `f16` for
/// `fp16`/`float16`/`half`, `f32` for `fp32`/`float32`, `bf16` for `bfloat16`.
pub fn normalize_quant(word: &str) -> String {
    let w = word.trim().to_ascii_lowercase().replace('-', "_");
    match w.as_str() {
        "fp16" | "float16" | "half" => "f16".into(),
        "fp32" | "float32" | "float" => "f32".into(),
        "bfloat16" => "bf16".into(),
        _ => w,
    }
}

/// Whether a declared precision describes weights of quantization `ran`; `None` when the word
/// is not one we can judge (e.g. `mixed`).
pub fn precision_matches(declared: &str, ran: &str) -> Option<bool> {
    let d = normalize_quant(declared);
    let r = normalize_quant(ran);
    match d.as_str() {
        "int8" => Some(r.starts_with("q8")),
        "int4" => Some(r.starts_with("q4") || r.starts_with("iq4")),
        _ if is_quant_name(&d) => Some(d == r),
        _ => None,
    }
}

fn is_quant_name(w: &str) -> bool {
    matches!(w, "f32" | "f16" | "bf16")
        || (w.starts_with('q') || w.starts_with("iq"))
            && w.chars().any(|c| c.is_ascii_digit())
            && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where an artifact's address points when it is a path relative to the spec.
fn address(spec: &SpecFile, uri: &str) -> String {
    if !uri.contains("://") && Path::new(uri).is_relative() {
        spec.base_dir().join(uri).display().to_string()
    } else {
        uri.to_string()
    }
}

/// Checks every artifact; returns the checks and the resolved GGUF weights, if any.
pub fn check(spec: &SpecFile, log: &mut dyn FnMut(&str)) -> (Vec<Check>, Option<Weights>) {
    let mut checks = Vec::new();
    let mut weights = None;
    let artifacts = spec
        .info
        .document
        .spec
        .identity
        .model
        .artifacts
        .as_deref()
        .unwrap_or(&[]);
    if artifacts.is_empty() {
        return (checks, None);
    }
    let cache = Cache::from_env();
    let opts = FetchOptions {
        progress: false,
        ..FetchOptions::from_env()
    };
    for (i, a) in artifacts.iter().enumerate() {
        let base = format!("/spec/identity/model/artifacts/{i}");
        let label = a.name.clone().unwrap_or_else(|| a.uri.clone());
        let (pointer, declared) = match &a.sha256 {
            Some(s) => (format!("{base}/sha256"), format!("sha256 {s}")),
            None => (format!("{base}/uri"), "no sha256".to_string()),
        };
        let mut c = Check::new(check::ARTIFACT_DIGEST, pointer, declared);
        let addr = address(spec, &a.uri);
        log(&format!("resolving artifact {label}"));
        let resolved = cache.as_ref().map_err(|e| e.to_string()).and_then(|cache| {
            Artifact::from_uri(&addr, a.sha256.as_deref())
                .and_then(|art| ms_fetch::fetch(cache, &art, &opts))
                .map_err(|e| match e {
                    FetchError::Checksum { actual, .. } => format!("checksum:{actual}"),
                    FetchError::MissingFile(_)
                    | FetchError::UnknownName(_)
                    | FetchError::BadUri { .. }
                    | FetchError::NotInPackage { .. } => format!("missing:{e}"),
                    e => e.to_string(),
                })
        });
        c = c.method(format!(
            "resolve {} with ms-fetch and hash the content (sha256)",
            a.uri
        ));
        let path = match resolved {
            Ok(path) => {
                c = match &a.sha256 {
                    Some(s) => c
                        .measured(format!("sha256 {s}"), Verdict::Held)
                        .method(if Path::new(&addr) == path {
                            format!("sha256 of {} (ms-fetch)", path.display())
                        } else {
                            format!(
                                "ms-fetch resolved {} to {} and verified its sha256",
                                a.uri,
                                path.display()
                            )
                        }),
                    None => c.not_checked(format!(
                        "artifact {label} declares no sha256, so its content is not pinned; add `sha256: {}`",
                        ms_fetch::sha256_file(&path).unwrap_or_else(|_| "<hex>".into())
                    )),
                };
                Some(path)
            }
            Err(e) => {
                c = if let Some(actual) = e.strip_prefix("checksum:") {
                    c.measured(format!("sha256 {actual}"), Verdict::Violated)
                        .reason(format!(
                            "{label}: the content's sha256 is {actual}, the spec declares {}",
                            a.sha256.as_deref().unwrap_or("none")
                        ))
                } else if let Some(why) = e.strip_prefix("missing:") {
                    c.measured("not found", Verdict::Violated).reason(why)
                } else {
                    c.not_checked(format!("could not resolve {label}: {e}"))
                };
                None
            }
        };
        checks.push(c);

        let is_weights_gguf = a.role == ArtifactRole::Weights
            && (a.format == Some(ArtifactFormat::Gguf)
                || a.uri.to_ascii_lowercase().ends_with(".gguf"));
        let file_type = path
            .as_ref()
            .filter(|_| is_weights_gguf)
            .and_then(|p| ms_gguf::GgufFile::open(p).ok())
            .and_then(|f| gguf_file_type(&f));
        if let Some(q) = &a.quantization {
            let c = Check::new(
                check::ARTIFACT_QUANTIZATION,
                format!("{base}/quantization"),
                q.clone(),
            )
            .method("general.file_type of the resolved GGUF file");
            checks.push(match (&file_type, &path) {
                (Some(ft), _) => {
                    let held = normalize_quant(ft) == normalize_quant(q);
                    let c = c.measured(
                        ft.clone(),
                        if held {
                            Verdict::Held
                        } else {
                            Verdict::Violated
                        },
                    );
                    if held {
                        c
                    } else {
                        c.reason(format!("{label} holds {ft} weights, not {q}"))
                    }
                }
                (None, None) => c.not_checked("the artifact could not be resolved"),
                (None, Some(_)) => c.not_checked(
                    "the file is not a GGUF weights file with a known general.file_type",
                ),
            });
        }
        if weights.is_none()
            && is_weights_gguf
            && let Some(path) = path
        {
            weights = Some(Weights { path, file_type });
        }
    }
    (checks, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_words() {
        assert_eq!(precision_matches("q4_k_m", "Q4_K_M"), Some(true));
        assert_eq!(precision_matches("Q4-K-M", "Q4_K_M"), Some(true));
        assert_eq!(precision_matches("q8_0", "Q4_K_M"), Some(false));
        assert_eq!(precision_matches("fp16", "F16"), Some(true));
        assert_eq!(precision_matches("bf16", "F16"), Some(false));
        assert_eq!(precision_matches("int8", "Q8_0"), Some(true));
        assert_eq!(precision_matches("int4", "Q4_K_M"), Some(true));
        assert_eq!(precision_matches("int4", "Q6_K"), Some(false));
        assert_eq!(precision_matches("mixed", "Q6_K"), None);
        assert_eq!(file_type_name(15), Some("Q4_K_M"));
        assert_eq!(file_type_name(7), Some("Q8_0"));
        assert_eq!(file_type_name(99), None);
    }
}
