//! Watermark keys: the key file format, making keys, and finding the key a plan names by id.
//!
//! A plan says `watermark: {keyId: news-2026}`; the secret never appears in a plan, a report or
//! a message. A key is one line of text (comment lines starting with `#` and blank lines
//! aside):
//!
//! ```text
//! modelspec-watermark-key/v1 <key id> <64 hexadecimal digits: the 32-byte secret>
//! ```
//!
//! The key a plan names is looked up, first match by id wins, in: `MODELSPEC_WATERMARK_KEY`
//! (the key text itself), the file `MODELSPEC_WATERMARK_KEY_FILE` names, then
//! `<key dir>/<key id>.key`, where the key directory is `MODELSPEC_WATERMARK_KEY_DIR`, else
//! `$XDG_CONFIG_HOME/modelspec/watermark-keys`, else `~/.config/modelspec/watermark-keys`.
//! `modelspec watermark keygen` writes key files (mode 0600, never over an existing file).

use std::path::{Path, PathBuf};

use ms_engine::tokenizer::Tokenizer;
use ms_engine::watermark::{Detection, KEY_BYTES, WatermarkKey, check_key_id, detect};

use crate::load::{LoadError, resolve_model};

/// The first word of a key line.
pub const KEY_MAGIC: &str = "modelspec-watermark-key/v1";
/// The key text itself.
pub const ENV_KEY: &str = "MODELSPEC_WATERMARK_KEY";
/// A key file.
pub const ENV_KEY_FILE: &str = "MODELSPEC_WATERMARK_KEY_FILE";
/// A directory of `<key id>.key` files.
pub const ENV_KEY_DIR: &str = "MODELSPEC_WATERMARK_KEY_DIR";

/// Reads a key's text; `origin` names where it came from in the error (which never quotes the
/// secret).
pub fn parse_key(text: &str, origin: &str) -> Result<WatermarkKey, String> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return Err(format!(
            "{origin}: a watermark key is exactly one line `{KEY_MAGIC} <key id> <64 hex digits>` (comments aside); make one with `modelspec watermark keygen`"
        ));
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [magic, id, hex] = fields[..] else {
        return Err(format!(
            "{origin}: the key line has {} fields; expected 3: `{KEY_MAGIC} <key id> <64 hex digits>`",
            fields.len()
        ));
    };
    if magic != KEY_MAGIC {
        return Err(format!(
            "{origin}: the key line starts with {magic:?}; expected `{KEY_MAGIC}`"
        ));
    }
    check_key_id(id).map_err(|e| format!("{origin}: {e}"))?;
    let secret = decode_hex(hex).ok_or_else(|| {
        format!(
            "{origin}: the secret of key {id:?} is not {} hexadecimal digits",
            KEY_BYTES * 2
        )
    })?;
    WatermarkKey::new(id, secret).map_err(|e| format!("{origin}: {e}"))
}

fn decode_hex(hex: &str) -> Option<[u8; KEY_BYTES]> {
    let bytes = hex.as_bytes();
    if bytes.len() != KEY_BYTES * 2 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; KEY_BYTES];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// The text of a key file for `key`.
pub fn key_text(key: &WatermarkKey) -> String {
    let hex: String = key.secret().iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "# modelspec watermark key {id} ({fp}).\n# Secret: whoever holds it can detect the watermark and write text that carries it.\n{KEY_MAGIC} {id} {hex}\n",
        id = key.id(),
        fp = key.fingerprint()
    )
}

/// A new key with 256 random bits from the operating system.
pub fn generate(id: &str) -> Result<WatermarkKey, String> {
    check_key_id(id)?;
    let mut secret = [0u8; KEY_BYTES];
    getrandom::fill(&mut secret)
        .map_err(|e| format!("the operating system gave no random bytes: {e}"))?;
    WatermarkKey::new(id, secret)
}

/// Writes `key` to `path`, readable by its owner only, all at once (a temporary file in the
/// same directory, then a rename that never replaces an existing file).
pub fn write_key_file(path: &Path, key: &WatermarkKey) -> Result<(), String> {
    use std::io::Write;
    let show = path.display();
    if path.exists() {
        return Err(format!(
            "{show} exists; a key is never overwritten (remove it first, or choose another path)"
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map_or("key".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = options
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(key_text(key).as_bytes())?;
            f.sync_all()
        })
        // A hard link fails if the destination exists: no race replaces another key.
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    result.map_err(|e| format!("{show}: {e}"))
}

/// Reads a key file.
pub fn read_key_file(path: &Path) -> Result<WatermarkKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_key(&text, &path.display().to_string())
}

/// Where keys are looked up.
#[derive(Debug, Clone, Default)]
pub enum KeyLookup {
    /// The environment variables and the key directory (see the module note).
    #[default]
    Environment,
    /// Exactly these keys (tests, callers that loaded a key themselves).
    Keys(Vec<WatermarkKey>),
}

/// A key found for a plan, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundKey {
    pub key: WatermarkKey,
    /// `MODELSPEC_WATERMARK_KEY`, or the file's path.
    pub source: String,
}

/// Why no key could be used.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyProblem {
    /// No source holds a key with the id; the message lists where the lookup went.
    Missing(String),
    /// A source could not be read or is not a key.
    Invalid(String),
}

/// The default key directory: `MODELSPEC_WATERMARK_KEY_DIR`, else under `$XDG_CONFIG_HOME`,
/// else under `~/.config`.
pub fn key_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(d) = set(ENV_KEY_DIR) {
        return Some(PathBuf::from(d));
    }
    let config = set("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(config.join("modelspec").join("watermark-keys"))
}

impl KeyLookup {
    /// The key named `id`, from the process environment when this is `Environment`.
    pub fn find(&self, id: &str) -> Result<FoundKey, KeyProblem> {
        match self {
            KeyLookup::Keys(keys) => keys
                .iter()
                .find(|k| k.id() == id)
                .map(|k| FoundKey {
                    key: k.clone(),
                    source: "given".into(),
                })
                .ok_or_else(|| KeyProblem::Missing(format!("no key {id:?} was given"))),
            KeyLookup::Environment => find_in(id, &|k| std::env::var(k).ok()),
        }
    }
}

/// [`KeyLookup::find`] over an environment given as a function.
pub fn find_in(id: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<FoundKey, KeyProblem> {
    let mut looked = Vec::new();
    let mut other_ids = Vec::new();
    if let Some(text) = env(ENV_KEY).filter(|t| !t.trim().is_empty()) {
        let key = parse_key(&text, ENV_KEY).map_err(KeyProblem::Invalid)?;
        if key.id() == id {
            return Ok(FoundKey {
                key,
                source: ENV_KEY.into(),
            });
        }
        looked.push(ENV_KEY.to_string());
        other_ids.push(format!("{} in {ENV_KEY}", key.id()));
    }
    let mut files = Vec::new();
    if let Some(f) = env(ENV_KEY_FILE).filter(|f| !f.is_empty()) {
        files.push(PathBuf::from(f));
    }
    if let Some(dir) = key_dir(env) {
        files.push(dir.join(format!("{id}.key")));
    }
    for file in files {
        let show = file.display().to_string();
        if !file.exists() {
            looked.push(format!("{show} (absent)"));
            continue;
        }
        let key = read_key_file(&file).map_err(KeyProblem::Invalid)?;
        if key.id() == id {
            return Ok(FoundKey { key, source: show });
        }
        looked.push(show.clone());
        other_ids.push(format!("{} in {show}", key.id()));
    }
    let mut message = format!(
        "no watermark key {id:?}: looked in {}",
        if looked.is_empty() {
            "nothing (no variable set, no home directory)".to_string()
        } else {
            looked.join(", ")
        }
    );
    if !other_ids.is_empty() {
        message.push_str(&format!("; found other keys: {}", other_ids.join(", ")));
    }
    message.push_str(&format!(
        "; set {ENV_KEY_FILE} to the key file, or put it at <key dir>/{id}.key (`modelspec watermark keygen --id {id}`)"
    ));
    Err(KeyProblem::Missing(message))
}

/// A text's watermark score: the text tokenized as a continuation (no BOS, control tokens
/// as plain text), then [`detect`].
pub fn detect_text(tok: &Tokenizer, key: &WatermarkKey, gamma: f64, text: &str) -> Detection {
    detect(key, gamma, &tok.encode(text, false, false))
}

/// Fewest scored tokens whose z-score can reach `threshold` (all of them green).
pub fn tokens_needed(gamma: f64, threshold: f64) -> usize {
    if !(gamma > 0.0 && gamma < 1.0) || threshold <= 0.0 {
        return 1;
    }
    // z(all green) = sqrt(T (1 - gamma) / gamma) >= threshold.
    (threshold * threshold * gamma / (1.0 - gamma))
        .ceil()
        .max(1.0) as usize
}

/// The tokenizer of a model reference (GGUF path, ModelSpec, catalog name, address), without
/// loading the weights.
pub fn tokenizer_of(model: &str) -> Result<Tokenizer, LoadError> {
    let resolved = resolve_model(model)?;
    let file = ms_gguf::GgufFile::open(&resolved.path).map_err(|e| LoadError::Model {
        model: model.to_string(),
        message: e.to_string(),
    })?;
    Tokenizer::from_gguf(&file).map_err(|error| LoadError::Tokenizer {
        path: resolved.path.clone(),
        error: Box::new(error),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn a_key_round_trips_through_its_text_and_file() {
        let key = generate("news-2026").unwrap();
        let text = key_text(&key);
        assert_eq!(parse_key(&text, "t").unwrap(), key);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/news-2026.key");
        write_key_file(&path, &key).unwrap();
        assert_eq!(read_key_file(&path).unwrap(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = write_key_file(&path, &generate("news-2026").unwrap()).unwrap_err();
        assert!(again.contains("never overwritten"), "{again}");
        assert_eq!(read_key_file(&path).unwrap(), key);
        assert_ne!(
            generate("a").unwrap().secret(),
            generate("a").unwrap().secret()
        );
    }

    #[test]
    fn malformed_keys_are_refused_without_quoting_the_secret() {
        let secret = "ab".repeat(31);
        for (text, want) in [
            ("", "exactly one line"),
            ("modelspec-watermark-key/v1 a", "expected 3"),
            ("other/v1 a 00", "expected `modelspec-watermark-key/v1`"),
            (
                &format!("modelspec-watermark-key/v1 a {secret}"),
                "64 hexadecimal",
            ),
            (
                &format!("modelspec-watermark-key/v1 -a {secret}00"),
                "key id",
            ),
        ] {
            let e = parse_key(text, "K").unwrap_err();
            assert!(e.starts_with("K: ") && e.contains(want), "{text:?}: {e}");
            assert!(!e.contains(&secret), "{e}");
        }
    }

    #[test]
    fn the_lookup_takes_the_variable_then_the_file_then_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let a = generate("a").unwrap();
        let b = generate("b").unwrap();
        let c = generate("c").unwrap();
        let file = dir.path().join("b.any");
        write_key_file(&file, &b).unwrap();
        write_key_file(&dir.path().join("c.key"), &c).unwrap();
        let env = env_of(&[
            (ENV_KEY, key_text(&a)),
            (ENV_KEY_FILE, file.display().to_string()),
            (ENV_KEY_DIR, dir.path().display().to_string()),
        ]);
        assert_eq!(find_in("a", &env).unwrap().source, ENV_KEY);
        assert_eq!(find_in("b", &env).unwrap().key, b);
        let found = find_in("c", &env).unwrap();
        assert_eq!(
            (found.key, found.source),
            (c, dir.path().join("c.key").display().to_string())
        );
        let Err(KeyProblem::Missing(m)) = find_in("d", &env) else {
            panic!("d is nowhere");
        };
        assert!(
            m.contains("d.key (absent)") && m.contains("found other keys: a in"),
            "{m}"
        );
        let broken = env_of(&[(ENV_KEY, "garbage".into())]);
        assert!(matches!(find_in("a", &broken), Err(KeyProblem::Invalid(_))));
        let home = env_of(&[("HOME", "/home/u".into())]);
        assert_eq!(
            key_dir(&home).unwrap(),
            Path::new("/home/u/.config/modelspec/watermark-keys")
        );
    }
}
