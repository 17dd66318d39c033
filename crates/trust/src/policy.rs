//! Trust policies: which keys (by fingerprint) may sign for which environment, until when; the
//! audit log's origin and key; its witnesses. A YAML file:
//!
//! ```yaml
//! apiVersion: modelspec.dev/v1
//! kind: TrustPolicy
//! keys:
//!   - name: release-2026
//!     publicKey: keys/release.pub.pem   # a file beside the policy, or the PEM text itself
//!     environments: [prod, staging]
//!     notAfter: 2027-01-01T00:00:00Z    # optional: rotated out after this instant
//! log:
//!   origin: modelspec.local/registry
//!   key: modelspec.local/registry+1a2b3c4d+AT…   # a C2SP signed-note verifier key
//! witnesses:
//!   - name: witness-1
//!     key: witness-1+5e6f7a8b+AT…
//! ```
//!
//! Errors name `file:line:column`. Unknown fields are refused (a misspelt `notAfter` must not
//! silently trust a key forever).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::codes::{MT0201, MT0202, MT0203, MT0204};
use crate::error::{Result, TrustError};
use crate::key::PublicKey;
use crate::signer::Signer;
use crate::yaml::{self, Node, Pos, Value};

pub const API_VERSION: &str = "modelspec.dev/v1";
pub const KIND: &str = "TrustPolicy";
/// The environment development-only signers never sign for.
pub const PROD: &str = "prod";

/// One trusted key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyEntry {
    pub name: String,
    pub public_key: PublicKey,
    pub environments: Vec<String>,
    pub not_after: Option<DateTime<Utc>>,
}

/// The audit log this policy trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub origin: String,
    /// A C2SP signed-note verifier key (`<name>+<hex id>+<base64>`).
    pub key: String,
}

/// A witness whose cosignatures count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessEntry {
    pub name: String,
    pub key: String,
}

/// A parsed trust policy.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustPolicy {
    /// Where it was read from (for messages).
    pub source: String,
    pub keys: Vec<KeyEntry>,
    pub log: Option<LogEntry>,
    pub witnesses: Vec<WitnessEntry>,
}

struct Ctx<'a> {
    file: &'a str,
    dir: PathBuf,
}

impl Ctx<'_> {
    fn err(&self, pos: Pos, msg: impl std::fmt::Display) -> TrustError {
        TrustError::new(
            MT0201,
            format!("{}:{}:{}: {msg}", self.file, pos.line, pos.col),
        )
    }

    fn map<'n>(
        &self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Result<&'n [(String, Pos, Node)]> {
        let Value::Map(entries) = &node.value else {
            return Err(self.err(node.pos, format!("{what} must be a mapping")));
        };
        for (k, p, _) in entries {
            if !allowed.contains(&k.as_str()) {
                return Err(self.err(
                    *p,
                    format!(
                        "unknown field `{k}` in {what}; expected one of: {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(entries)
    }

    fn get<'n>(&self, entries: &'n [(String, Pos, Node)], key: &str) -> Option<&'n Node> {
        entries.iter().find(|(k, _, _)| k == key).map(|(_, _, n)| n)
    }

    fn required<'n>(
        &self,
        entries: &'n [(String, Pos, Node)],
        at: Pos,
        key: &str,
        what: &str,
    ) -> Result<&'n Node> {
        self.get(entries, key)
            .ok_or_else(|| self.err(at, format!("{what} has no `{key}`")))
    }

    fn string(&self, node: &Node, what: &str) -> Result<String> {
        match &node.value {
            Value::Scalar(s) if !s.trim().is_empty() => Ok(s.clone()),
            _ => Err(self.err(node.pos, format!("{what} must be a non-empty string"))),
        }
    }

    fn seq<'n>(&self, node: &'n Node, what: &str) -> Result<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Ok(items),
            _ => Err(self.err(node.pos, format!("{what} must be a list"))),
        }
    }
}

impl TrustPolicy {
    /// Reads a policy file (public keys given as paths are read relative to its directory).
    pub fn load(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| {
            TrustError::new(
                MT0201,
                format!("cannot read the trust policy {}: {e}", path.display()),
            )
        })?;
        if meta.len() > yaml::MAX_BYTES as u64 {
            return Err(TrustError::new(
                MT0201,
                format!(
                    "{} is larger than {} bytes: not a trust policy",
                    path.display(),
                    yaml::MAX_BYTES
                ),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            TrustError::new(
                MT0201,
                format!("cannot read the trust policy {}: {e}", path.display()),
            )
        })?;
        Self::parse(&text, path)
    }

    /// Parses policy text; `path` names it in errors and anchors relative key paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let cx = Ctx {
            file: &file,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let root = yaml::parse(text).map_err(|(pos, msg)| cx.err(pos, msg))?;
        let top = cx.map(
            &root,
            "the policy",
            &["apiVersion", "kind", "keys", "log", "witnesses"],
        )?;
        let api = cx.string(
            cx.required(top, root.pos, "apiVersion", "the policy")?,
            "apiVersion",
        )?;
        if api != API_VERSION {
            let n = cx.get(top, "apiVersion").expect("required above");
            return Err(cx.err(
                n.pos,
                format!("apiVersion is {api:?}; expected {API_VERSION:?}"),
            ));
        }
        let kind_node = cx.required(top, root.pos, "kind", "the policy")?;
        let kind = cx.string(kind_node, "kind")?;
        if kind != KIND {
            return Err(cx.err(
                kind_node.pos,
                format!("kind is {kind:?}; expected {KIND:?}"),
            ));
        }
        let mut keys = Vec::new();
        if let Some(list) = cx.get(top, "keys") {
            for item in cx.seq(list, "keys")? {
                keys.push(key_entry(&cx, item)?);
            }
        }
        for (i, k) in keys.iter().enumerate() {
            if let Some(j) = keys[..i]
                .iter()
                .position(|o| o.public_key == k.public_key || o.name == k.name)
            {
                let pos = cx.seq(cx.get(top, "keys").expect("keys read"), "keys")?[i].pos;
                return Err(cx.err(pos, format!(
                    "keys[{i}] ({}) repeats the name or the key of keys[{j}] ({}); list each key once",
                    k.name, keys[j].name
                )));
            }
        }
        let log = match cx.get(top, "log") {
            None => None,
            Some(n) => {
                let m = cx.map(n, "log", &["origin", "key"])?;
                Some(LogEntry {
                    origin: cx.string(cx.required(m, n.pos, "origin", "log")?, "log.origin")?,
                    key: vkey(&cx, cx.required(m, n.pos, "key", "log")?, "log.key")?,
                })
            }
        };
        let mut witnesses = Vec::new();
        if let Some(list) = cx.get(top, "witnesses") {
            for (i, item) in cx.seq(list, "witnesses")?.iter().enumerate() {
                let what = format!("witnesses[{i}]");
                let m = cx.map(item, &what, &["name", "key"])?;
                witnesses.push(WitnessEntry {
                    name: cx.string(cx.required(m, item.pos, "name", &what)?, "name")?,
                    key: vkey(&cx, cx.required(m, item.pos, "key", &what)?, "key")?,
                });
            }
        }
        Ok(Self {
            source: file,
            keys,
            log,
            witnesses,
        })
    }

    /// The entry of `key` if the policy trusts it for `env` now.
    pub fn allows(&self, key: &PublicKey, env: &str) -> Result<&KeyEntry> {
        self.allows_at(key, env, Utc::now())
    }

    /// The entry of `key` if the policy trusts it for `env` at instant `at`.
    pub fn allows_at(&self, key: &PublicKey, env: &str, at: DateTime<Utc>) -> Result<&KeyEntry> {
        let fp = key.fingerprint();
        let entry = self
            .keys
            .iter()
            .find(|k| &k.public_key == key)
            .ok_or_else(|| {
                TrustError::new(
                    MT0202,
                    format!("the key {fp} is not in the trust policy {}", self.source),
                )
            })?;
        if !entry.environments.iter().any(|e| e == env) {
            return Err(TrustError::new(
                MT0202,
                format!(
                    "the key {} ({fp}) is trusted for [{}] in {}, not for `{env}`",
                    entry.name,
                    entry.environments.join(", "),
                    self.source
                ),
            ));
        }
        if let Some(t) = entry.not_after
            && at > t
        {
            return Err(TrustError::new(
                MT0203,
                format!(
                    "the key {} ({fp}) is trusted until {} in {}; it is now {}",
                    entry.name,
                    t.to_rfc3339(),
                    self.source,
                    at.to_rfc3339()
                ),
            ));
        }
        Ok(entry)
    }

    /// The policy's key that signed `bundle`, trusted for `env` now: found by the bundle's key
    /// hint (any key when the bundle has none), then checked like [`Self::allows`]. The caller
    /// still verifies the signature with the returned key.
    pub fn key_for_bundle(&self, bundle: &crate::bundle::Bundle, env: &str) -> Result<&KeyEntry> {
        let candidates: Vec<&KeyEntry> = self
            .keys
            .iter()
            .filter(|k| {
                bundle
                    .key_hint()
                    .is_none_or(|h| h == crate::bundle::key_hint(&k.public_key))
            })
            .collect();
        match candidates.as_slice() {
            [] => Err(TrustError::new(
                MT0202,
                format!(
                    "the bundle was signed by a key (hint {}) that is not in the trust policy {}",
                    bundle.key_hint().unwrap_or("none"),
                    self.source
                ),
            )),
            [one] => self.allows(&one.public_key, env),
            many => {
                // No hint: the key whose signature verifies decides.
                let message =
                    crate::dsse::pae(&bundle.envelope.payload_type, &bundle.envelope.payload);
                let signed = many.iter().find(|k| {
                    bundle
                        .envelope
                        .signatures
                        .iter()
                        .any(|s| k.public_key.verify(&message, &s.sig).is_ok())
                });
                match signed {
                    Some(k) => self.allows(&k.public_key, env),
                    None => Err(TrustError::new(
                        MT0202,
                        format!(
                            "no key of the trust policy {} signed the bundle",
                            self.source
                        ),
                    )),
                }
            }
        }
    }

    /// Whether `signer` may sign for `env`: never a development-only signer for `prod`, and
    /// only a key the policy trusts for `env`.
    pub fn allows_signer(&self, signer: &dyn Signer, env: &str) -> Result<&KeyEntry> {
        if env == PROD && signer.kind().development_only() {
            return Err(TrustError::new(
                MT0204,
                format!(
                    "the signer of {} holds a development-only key ({:?}); `prod` needs a \
                     PKCS#11 token or a signing proxy backed by one",
                    signer.public_key().fingerprint(),
                    signer.kind()
                ),
            ));
        }
        self.allows(signer.public_key(), env)
    }
}

fn key_entry(cx: &Ctx<'_>, item: &Node) -> Result<KeyEntry> {
    let m = cx.map(
        item,
        "a key entry",
        &[
            "name",
            "publicKey",
            "environments",
            "notAfter",
            "fingerprint",
        ],
    )?;
    let name = cx.string(cx.required(m, item.pos, "name", "a key entry")?, "name")?;
    let pk_node = cx.required(m, item.pos, "publicKey", "a key entry")?;
    let pk_text = cx.string(pk_node, "publicKey")?;
    let public_key = if pk_text.contains("-----BEGIN") {
        PublicKey::from_pem(&pk_text)
    } else {
        let path = cx.dir.join(pk_text.trim());
        std::fs::read_to_string(&path)
            .map_err(|e| {
                TrustError::new(
                    MT0201,
                    format!(
                        "neither PEM text nor a readable file ({}: {e})",
                        path.display()
                    ),
                )
            })
            .and_then(|t| PublicKey::from_pem(&t))
    }
    .map_err(|e| cx.err(pk_node.pos, format!("publicKey of `{name}`: {}", e.message)))?;
    if let Some(fp) = cx.get(m, "fingerprint") {
        let want = cx.string(fp, "fingerprint")?;
        if want != public_key.fingerprint() {
            return Err(cx.err(
                fp.pos,
                format!(
                    "fingerprint of `{name}` is {want} but its publicKey is {}",
                    public_key.fingerprint()
                ),
            ));
        }
    }
    let env_node = cx.required(m, item.pos, "environments", "a key entry")?;
    let environments = cx
        .seq(env_node, "environments")?
        .iter()
        .map(|n| cx.string(n, "an environment"))
        .collect::<Result<Vec<_>>>()?;
    if environments.is_empty() {
        return Err(cx.err(
            env_node.pos,
            format!("environments of `{name}` is empty: list where it may sign"),
        ));
    }
    let not_after = match cx.get(m, "notAfter") {
        None => None,
        Some(n) => {
            let s = cx.string(n, "notAfter")?;
            Some(
                DateTime::parse_from_rfc3339(s.trim())
                    .map_err(|e| cx.err(n.pos, format!("notAfter {s:?} is not an RFC 3339 instant (e.g. 2027-01-01T00:00:00Z): {e}")))?
                    .with_timezone(&Utc),
            )
        }
    };
    Ok(KeyEntry {
        name,
        public_key,
        environments,
        not_after,
    })
}

/// A signed-note verifier key: `<name>+<8 hex>+<base64>`, checked for shape only (the log's
/// verifier reads it).
fn vkey(cx: &Ctx<'_>, node: &Node, what: &str) -> Result<String> {
    let s = cx.string(node, what)?;
    let parts: Vec<&str> = s.split('+').collect();
    let ok = parts.len() == 3
        && !parts[0].is_empty()
        && parts[1].len() == 8
        && parts[1].bytes().all(|b| b.is_ascii_hexdigit())
        && !parts[2].is_empty();
    if ok {
        Ok(s)
    } else {
        Err(cx.err(
            node.pos,
            format!("{what} is not a verifier key `<name>+<8 hex digits>+<base64 key>`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;
    use crate::keyfile::KeyFileSigner;

    fn policy_with(pem: &str, extra: &str) -> String {
        let indented: String = pem.lines().map(|l| format!("      {l}\n")).collect();
        format!(
            "apiVersion: modelspec.dev/v1\nkind: TrustPolicy\nkeys:\n  - name: release\n    publicKey: |\n{indented}    environments: [prod, staging]\n{extra}"
        )
    }

    #[test]
    fn keys_are_trusted_per_environment_and_until_not_after() {
        let s = KeyFileSigner::generate(Algorithm::Ed25519).unwrap();
        let p = TrustPolicy::parse(
            &policy_with(
                &s.public_key().to_pem(),
                "    notAfter: 2030-01-01T00:00:00Z\n",
            ),
            Path::new("p.yaml"),
        )
        .unwrap();
        assert_eq!(p.allows(s.public_key(), "staging").unwrap().name, "release");
        assert_eq!(p.allows(s.public_key(), "dev").unwrap_err().code, MT0202);
        let late = DateTime::parse_from_rfc3339("2031-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            p.allows_at(s.public_key(), "prod", late).unwrap_err().code,
            MT0203
        );
        let other = KeyFileSigner::generate(Algorithm::Ed25519).unwrap();
        assert_eq!(
            p.allows(other.public_key(), "prod").unwrap_err().code,
            MT0202
        );
        // A key file is development-only: never for prod, even when the policy lists its key.
        assert_eq!(p.allows_signer(&s, "prod").unwrap_err().code, MT0204);
        p.allows_signer(&s, "staging").unwrap();
    }

    #[test]
    fn the_signing_key_of_a_bundle_is_found_by_its_hint() {
        let s = KeyFileSigner::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let p = TrustPolicy::parse(
            &policy_with(&s.public_key().to_pem(), ""),
            Path::new("p.yaml"),
        )
        .unwrap();
        let mut bundle = crate::dsse::sign_statement(&serde_json::json!({"a": 1}), &s).unwrap();
        assert_eq!(p.key_for_bundle(&bundle, "prod").unwrap().name, "release");
        assert_eq!(p.key_for_bundle(&bundle, "dev").unwrap_err().code, MT0202);
        bundle.key_hint = None;
        assert_eq!(p.key_for_bundle(&bundle, "prod").unwrap().name, "release");
        let other = KeyFileSigner::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let bundle = crate::dsse::sign_statement(&serde_json::json!({"a": 1}), &other).unwrap();
        assert!(
            p.key_for_bundle(&bundle, "prod")
                .unwrap_err()
                .message
                .contains("not in the trust policy")
        );
    }

    #[test]
    fn public_keys_are_read_from_files_beside_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let s = KeyFileSigner::generate(Algorithm::EcdsaP256Sha256).unwrap();
        std::fs::write(dir.path().join("k.pub.pem"), s.public_key().to_pem()).unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(
            &path,
            format!(
                "apiVersion: modelspec.dev/v1\nkind: TrustPolicy\nkeys:\n  - name: k\n    publicKey: k.pub.pem\n    fingerprint: {}\n    environments: [staging]\nlog:\n  origin: modelspec.local/r\n  key: modelspec.local/r+01020304+AQID\nwitnesses:\n  - name: w\n    key: w+0a0b0c0d+AQID\n",
                s.public_key().fingerprint()
            ),
        )
        .unwrap();
        let p = TrustPolicy::load(&path).unwrap();
        assert_eq!(p.keys[0].public_key, *s.public_key());
        assert_eq!(p.log.as_ref().unwrap().origin, "modelspec.local/r");
        assert_eq!(p.witnesses[0].name, "w");
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let s = KeyFileSigner::generate(Algorithm::Ed25519).unwrap();
        let pem = s.public_key().to_pem();
        let cases = [
            (policy_with(&pem, "    notafter: 2030-01-01T00:00:00Z\n"), "p.yaml:10:5: unknown field `notafter`"),
            (policy_with(&pem, "    notAfter: tomorrow\n"), "p.yaml:10:15: notAfter \"tomorrow\""),
            ("apiVersion: modelspec.dev/v2\nkind: TrustPolicy\n".to_string(), "p.yaml:1:13: apiVersion"),
            ("apiVersion: modelspec.dev/v1\nkind: Policy\n".to_string(), "p.yaml:2:7: kind"),
            (policy_with("not a key", ""), "p.yaml:6:7: publicKey of `release`: neither PEM"),
            ("apiVersion: modelspec.dev/v1\nkind: TrustPolicy\nlog:\n  origin: o\n  key: nonsense\n".to_string(), "p.yaml:5:8: log.key"),
            ("apiVersion: [\n".to_string(), "p.yaml:"),
        ];
        for (text, want) in cases {
            let e = TrustPolicy::parse(&text, Path::new("p.yaml")).unwrap_err();
            assert_eq!(e.code, MT0201);
            assert!(e.message.starts_with(want), "{want}\n got: {}", e.message);
        }
    }
}
