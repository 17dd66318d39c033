//! RFC 7512 `pkcs11:` URIs: which token, which key, which module, where the PIN comes from.
//!
//! `pkcs11:token=Signing;object=release-ed25519?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/secrets/pin`
//!
//! Path attributes (`;`-separated) select: `token`, `manufacturer`, `serial`, `model`,
//! `slot-id` (the token), `object` (the key's CKA_LABEL), `id` (its CKA_ID, percent-encoded
//! bytes), `type` (only `private` makes sense for a signer). Query attributes (`&`-separated):
//! `module-path` (the PKCS#11 library; else `MODELSPEC_PKCS11_MODULE`), `pin-source` (a file,
//! or `file:` URI, holding the user PIN), `pin-value` (the PIN itself: allowed by the RFC, best
//! avoided). Without either, the PIN comes from `MODELSPEC_PKCS11_PIN`. An attribute we do not
//! know is refused rather than ignored: ignoring it could select another key than intended.
//! [`Pkcs11Uri::redacted`] is the only rendering errors use: it never shows `pin-value`.

use std::path::PathBuf;

use crate::codes::MT0301;
use crate::error::{Result, TrustError};

/// Where the user PIN comes from.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum PinFrom {
    /// `pin-value=…` in the URI.
    Value(String),
    /// `pin-source=…`: a file whose first line is the PIN.
    File(PathBuf),
    /// Neither: the `MODELSPEC_PKCS11_PIN` environment variable, if set.
    #[default]
    Environment,
}

impl std::fmt::Debug for PinFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinFrom::Value(_) => f.write_str("Value(<redacted>)"),
            PinFrom::File(p) => write!(f, "File({})", p.display()),
            PinFrom::Environment => f.write_str("Environment"),
        }
    }
}

/// A parsed `pkcs11:` URI.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub slot_id: Option<u64>,
    /// CKA_LABEL of the key.
    pub object: Option<String>,
    /// CKA_ID of the key.
    pub id: Option<Vec<u8>>,
    pub module_path: Option<PathBuf>,
    pub pin: PinFrom,
}

impl Pkcs11Uri {
    /// Parses `text`, which must start with `pkcs11:`.
    pub fn parse(text: &str) -> Result<Self> {
        let rest = text.strip_prefix("pkcs11:").ok_or_else(|| {
            TrustError::new(MT0301, "a PKCS#11 URI starts with `pkcs11:` (RFC 7512)")
        })?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri::default();
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = attribute(part, "path")?;
            let text = || utf8(name, &value);
            match name {
                "token" => set(&mut uri.token, name, text()?)?,
                "manufacturer" => set(&mut uri.manufacturer, name, text()?)?,
                "serial" => set(&mut uri.serial, name, text()?)?,
                "model" => set(&mut uri.model, name, text()?)?,
                "slot-id" => {
                    let n = text()?.parse::<u64>().map_err(|_| {
                        TrustError::new(
                            MT0301,
                            "PKCS#11 URI attribute `slot-id` must be a decimal number",
                        )
                    })?;
                    set(&mut uri.slot_id, name, n)?
                }
                "object" => set(&mut uri.object, name, text()?)?,
                "id" => set(&mut uri.id, name, value)?,
                "type" => {
                    let t = text()?;
                    if t != "private" {
                        return Err(TrustError::new(
                            MT0301,
                            format!(
                                "PKCS#11 URI `type={t}`: a signer needs the private key; use \
                                 `type=private` or leave `type` out"
                            ),
                        ));
                    }
                }
                _ => return Err(unknown(name, "path")),
            }
        }
        let mut pin = None;
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = attribute(part, "query")?;
            match name {
                "module-path" => set(
                    &mut uri.module_path,
                    name,
                    PathBuf::from(utf8(name, &value)?),
                )?,
                "pin-value" => set(&mut pin, name, PinFrom::Value(utf8(name, &value)?))?,
                "pin-source" => {
                    let source = utf8(name, &value)?;
                    let path = source.strip_prefix("file:").unwrap_or(&source);
                    // `file:///run/pin` and `file:/run/pin` both name /run/pin.
                    let path = path.strip_prefix("//").unwrap_or(path);
                    set(&mut pin, "pin-source", PinFrom::File(PathBuf::from(path)))?
                }
                _ => return Err(unknown(name, "query")),
            }
        }
        uri.pin = pin.unwrap_or(PinFrom::Environment);
        Ok(uri)
    }

    /// The URI for messages: every attribute but `pin-value`, whose value shows as `…`.
    pub fn redacted(&self) -> String {
        let mut path = Vec::new();
        for (name, v) in [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("serial", &self.serial),
            ("model", &self.model),
        ] {
            if let Some(v) = v {
                path.push(format!("{name}={}", encode(v.as_bytes())));
            }
        }
        if let Some(n) = self.slot_id {
            path.push(format!("slot-id={n}"));
        }
        if let Some(v) = &self.object {
            path.push(format!("object={}", encode(v.as_bytes())));
        }
        if let Some(id) = &self.id {
            path.push(format!(
                "id={}",
                id.iter().map(|b| format!("%{b:02x}")).collect::<String>()
            ));
        }
        let mut query = Vec::new();
        if let Some(m) = &self.module_path {
            query.push(format!("module-path={}", m.display()));
        }
        match &self.pin {
            PinFrom::Value(_) => query.push("pin-value=…".into()),
            PinFrom::File(p) => query.push(format!("pin-source={}", p.display())),
            PinFrom::Environment => {}
        }
        let mut out = format!("pkcs11:{}", path.join(";"));
        if !query.is_empty() {
            out.push('?');
            out.push_str(&query.join("&"));
        }
        out
    }
}

fn attribute<'a>(part: &'a str, section: &str) -> Result<(&'a str, Vec<u8>)> {
    let (name, value) = part.split_once('=').ok_or_else(|| {
        TrustError::new(
            MT0301,
            format!(
                "PKCS#11 URI {section} attribute `{name}` has no `=value`",
                name = safe(part)
            ),
        )
    })?;
    Ok((name, decode(name, value)?))
}

/// An attribute's name for messages: never the value (it may be a PIN).
fn safe(part: &str) -> &str {
    part.split('=').next().unwrap_or("")
}

fn unknown(name: &str, section: &str) -> TrustError {
    let known = if section == "path" {
        "token, manufacturer, serial, model, slot-id, object, id, type"
    } else {
        "module-path, pin-source, pin-value"
    };
    TrustError::new(
        MT0301,
        format!(
            "PKCS#11 URI {section} attribute `{name}` is not supported (supported: {known}); an \
             attribute is refused rather than ignored so that no other key gets selected"
        ),
    )
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<()> {
    if slot.is_some() {
        return Err(TrustError::new(
            MT0301,
            format!("PKCS#11 URI attribute `{name}` is given twice"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn utf8(name: &str, value: &[u8]) -> Result<String> {
    String::from_utf8(value.to_vec()).map_err(|_| {
        TrustError::new(
            MT0301,
            format!("PKCS#11 URI attribute `{name}` is not UTF-8 after percent-decoding"),
        )
    })
}

/// Percent-decoding (RFC 3986); the error names the attribute, never its value.
fn decode(name: &str, value: &str) -> Result<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    TrustError::new(
                        MT0301,
                        format!(
                            "PKCS#11 URI attribute `{name}` has a `%` not followed by two hex \
                             digits"
                        ),
                    )
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Percent-encodes what RFC 7512 does not allow literally in a path attribute value.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=&".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7512_examples_parse() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;\
             model=1.0;object=my-certificate;type=private;id=%69%95%3E%5C%F4%BD%EC%91\
             ?pin-source=file:/etc/token&module-path=/usr/lib/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(u.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(u.object.as_deref(), Some("my-certificate"));
        assert_eq!(
            u.id.as_deref(),
            Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
        );
        assert_eq!(u.pin, PinFrom::File("/etc/token".into()));
        assert_eq!(
            u.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/libsofthsm2.so"))
        );
        assert_eq!(Pkcs11Uri::parse("pkcs11:").unwrap(), Pkcs11Uri::default());
    }

    #[test]
    fn pin_values_never_show() {
        let u = Pkcs11Uri::parse("pkcs11:token=t;object=k?pin-value=s3cr3t-PIN").unwrap();
        assert_eq!(u.pin, PinFrom::Value("s3cr3t-PIN".into()));
        assert!(!u.redacted().contains("s3cr3t"));
        assert!(!format!("{u:?}").contains("s3cr3t"));
        let e = Pkcs11Uri::parse("pkcs11:token=t?pin-value=s3cr3t&pin-value=again").unwrap_err();
        assert!(!e.message.contains("s3cr3t"), "{e}");
        let e = Pkcs11Uri::parse("pkcs11:token=t?pin-value=%zzs3cr3t").unwrap_err();
        assert!(!e.message.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn unknown_or_odd_attributes_are_refused() {
        for bad in [
            "pkcs11:tokn=x",
            "pkcs11:token=a;token=b",
            "pkcs11:type=cert",
            "pkcs11:slot-id=one",
            "pkcs11:object",
            "pkcs11:?module=x",
            "pkcs:token=x",
        ] {
            let e = Pkcs11Uri::parse(bad).unwrap_err();
            assert_eq!(e.code, MT0301, "{bad}");
        }
    }

    #[test]
    fn redaction_round_trips_everything_but_the_pin() {
        let text =
            "pkcs11:token=Signing%20Token;object=release;id=%01%02?module-path=/m.so&pin-source=/p";
        let u = Pkcs11Uri::parse(text).unwrap();
        assert_eq!(Pkcs11Uri::parse(&u.redacted()).unwrap(), u);
    }
}
