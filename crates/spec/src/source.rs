//! Reading spec files with the limits that keep bad input from hurting us.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, codes};

/// Files above this size are refused before they are read: real specs are a few kilobytes,
/// and a cap keeps a stray 100 MB log file from costing seconds and memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A spec document's text with the name used in diagnostics.
#[derive(Debug, Clone)]
pub struct Source {
    /// How the user named the file (kept as given, so output matches their command line).
    pub name: String,
    /// Where it lives on disk; `None` for standard input.
    pub path: Option<PathBuf>,
    pub text: String,
}

impl Source {
    pub fn from_text(name: impl Into<String>, text: impl Into<String>) -> Source {
        Source {
            name: name.into(),
            path: None,
            text: text.into(),
        }
    }

    /// The directory that relative references (specRef, executionPlan) resolve against.
    pub fn base_dir(&self) -> PathBuf {
        match &self.path {
            Some(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
            None => std::env::current_dir().unwrap_or_default(),
        }
    }

    /// Whether the file should be read as JSON (by extension).
    pub fn is_json(&self) -> bool {
        self.name.to_ascii_lowercase().ends_with(".json")
    }

    /// The 1-based `line` of the text, without its line break.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        let idx = usize::try_from(line).ok()?.checked_sub(1)?;
        self.text.lines().nth(idx)
    }
}

/// Why a file could not be turned into a [`Source`]. `Io` problems stop the run with exit 2;
/// content problems are ordinary findings.
#[derive(Debug)]
pub enum LoadError {
    Io(Box<Diagnostic>),
    Content(Box<Diagnostic>),
}

impl LoadError {
    fn io(d: Diagnostic) -> Self {
        LoadError::Io(Box::new(d))
    }
    fn content(d: Diagnostic) -> Self {
        LoadError::Content(Box::new(d))
    }
    pub fn diagnostic(&self) -> &Diagnostic {
        match self {
            LoadError::Io(d) | LoadError::Content(d) => d,
        }
    }
    pub fn into_diagnostic(self) -> Diagnostic {
        match self {
            LoadError::Io(d) | LoadError::Content(d) => *d,
        }
    }
}

/// Reads a file (or standard input for `-`) with the size cap and text checks.
pub fn load(name: &str) -> Result<Source, LoadError> {
    if name == "-" {
        let mut bytes = Vec::new();
        let read = std::io::stdin()
            .lock()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes);
        if let Err(e) = read {
            return Err(LoadError::io(io_error("<stdin>", &e)));
        }
        return decode("<stdin>", None, bytes);
    }
    let path = PathBuf::from(name);
    let meta = std::fs::metadata(&path).map_err(|e| LoadError::io(io_error(name, &e)))?;
    if meta.is_dir() {
        return Err(LoadError::io(Diagnostic::file_level(
            codes::IO,
            name,
            "is a directory where a file was expected",
        )));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadError::content(too_large(name, meta.len())));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    let file = std::fs::File::open(&path).map_err(|e| LoadError::io(io_error(name, &e)))?;
    // `take` guards against files that grow between stat and read (logs, pipes).
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::io(io_error(name, &e)))?;
    decode(name, Some(path), bytes)
}

fn decode(name: &str, path: Option<PathBuf>, bytes: Vec<u8>) -> Result<Source, LoadError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::content(too_large(name, bytes.len() as u64)));
    }
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(LoadError::content(
            Diagnostic::file_level(
                codes::NOT_TEXT,
                name,
                "file is binary, not a YAML or JSON text",
            )
            .with_found(format!("a NUL byte at offset {pos}"))
            .with_hint(
                "pass ModelSpec documents (.yaml, .yml, .json), not model weights or archives",
            ),
        ));
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            return Err(LoadError::content(
                Diagnostic::file_level(codes::NOT_TEXT, name, "file is not valid UTF-8")
                    .with_found(format!("an invalid byte sequence at offset {at}"))
                    .with_hint("save the file as UTF-8"),
            ));
        }
    };
    // A byte-order mark is legal but would shift every column by one.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    };
    Ok(Source {
        name: name.to_owned(),
        path,
        text,
    })
}

fn too_large(name: &str, len: u64) -> Diagnostic {
    Diagnostic::file_level(
        codes::TOO_LARGE,
        name,
        "file is too large to be a ModelSpec",
    )
    .with_expected(format!("at most {} MiB", MAX_FILE_BYTES / (1024 * 1024)))
    .with_found(format!("{len} bytes"))
    .with_hint("specs are small text files; check that the path points at the spec and not at data")
}

fn io_error(name: &str, e: &std::io::Error) -> Diagnostic {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    };
    Diagnostic::file_level(codes::IO, name, format!("cannot read: {what}"))
}
