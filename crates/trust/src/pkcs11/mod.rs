//! A `Signer` whose private key stays inside a PKCS#11 token (an HSM, a cloud KMS's PKCS#11
//! library, SoftHSM2 in tests), through the `cryptoki` binding.
//!
//! [`open`] takes an RFC 7512 URI ([`uri`]): it loads the module (once per process: a PKCS#11
//! library is initialized once and never finalized while signers may use it), finds exactly one
//! token and one private key, logs in, and reads the public key from the token's public key
//! object (CKA_EC_PARAMS, CKA_EC_POINT). Ed25519 keys sign with CKM_EDDSA over the whole message;
//! P-256 keys with CKM_ECDSA over a SHA-256 computed here, the token's `r ‖ s` turned into DER.
//! Every signature is checked against the public key before it is returned, so a public key
//! object that does not belong to the private key is caught at the first signature.
//!
//! `module-path` loads and runs a shared library: a signer reference is configuration (a flag,
//! an environment variable of the operator), never something taken from a request.
//!
//! PKCS#11 keeps the login state per token and application: when another session of this
//! process is already logged in (CKR_USER_ALREADY_LOGGED_IN), the login is taken as done.

pub mod ecdsa_der;
pub mod uri;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest as _, Sha256};

use crate::codes::{MT0302, MT0303, MT0304, MT0305, MT0306};
use crate::error::{Result, TrustError};
use crate::key::{Algorithm, PublicKey};
use crate::signer::{Signer, SignerKind};

pub use uri::{PinFrom, Pkcs11Uri};

/// Where the module comes from when the URI has no `module-path`.
pub const MODULE_ENV: &str = "MODELSPEC_PKCS11_MODULE";
/// Where the user PIN comes from when the URI has neither `pin-source` nor `pin-value`.
pub const PIN_ENV: &str = "MODELSPEC_PKCS11_PIN";

/// A key in a PKCS#11 token.
pub struct Pkcs11Signer {
    ctx: Pkcs11,
    slot: Slot,
    pin: Option<AuthPin>,
    key_template: Vec<Attribute>,
    /// The URI without its PIN, for messages.
    name: String,
    public_key: PublicKey,
    /// Sessions are not `Sync`; one signature at a time per signer (tokens serialize anyway).
    session: Mutex<(Session, ObjectHandle)>,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Signer({}, {:?})", self.name, self.public_key)
    }
}

/// Opens the key a `pkcs11:` URI names.
pub fn open(reference: &str) -> Result<Pkcs11Signer> {
    let uri = Pkcs11Uri::parse(reference)?;
    let name = uri.redacted();
    let module = match &uri.module_path {
        Some(p) => p.clone(),
        None => std::env::var_os(MODULE_ENV).map(PathBuf::from).ok_or_else(|| {
            TrustError::new(
                MT0302,
                format!(
                    "{name}: no PKCS#11 module: add `?module-path=/path/to/module.so` to the URI \
                     or set {MODULE_ENV} (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
                ),
            )
        })?,
    };
    let ctx = module_context(&module)?;
    let slot = find_slot(&ctx, &uri, &name)?;
    let pin = read_pin(&uri.pin, &name)?;
    let login_required = ctx
        .get_token_info(slot)
        .map_err(|e| ck(MT0303, &name, "reading the token's information", &e))?
        .login_required();
    let pin = if login_required || pin.is_some() {
        Some(pin.ok_or_else(|| {
            TrustError::new(
                MT0304,
                format!(
                    "{name}: the token needs the user PIN: give `pin-source=FILE` in the URI or \
                     set {PIN_ENV}"
                ),
            )
        })?)
    } else {
        None
    };
    let session = login(&ctx, slot, pin.as_ref(), &name)?;
    let mut key_template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(label) = &uri.object {
        key_template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        key_template.push(Attribute::Id(id.clone()));
    }
    let private = find_private_key(&session, &key_template, &name)?;
    let public_key = read_public_key(&session, private, &name)?;
    Ok(Pkcs11Signer {
        ctx,
        slot,
        pin,
        key_template,
        name,
        public_key,
        session: Mutex::new((session, private)),
    })
}

impl Pkcs11Signer {
    /// The URI this signer was opened from, without its PIN.
    pub fn uri(&self) -> &str {
        &self.name
    }

    /// Runs C_Sign once; on a lost session or login (token re-inserted, HSM failover, another
    /// part of the process logged out: the private key's handle is then invalid too) opens a
    /// new session, logs in again, finds the key again and retries once.
    fn sign_raw(&self, mechanism: &Mechanism, data: &[u8]) -> Result<Vec<u8>> {
        let mut guard = self.lock();
        match guard.0.sign(mechanism, guard.1, data) {
            Ok(sig) => Ok(sig),
            Err(CkError::Pkcs11(
                RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent,
                _,
            )) => {
                let session = login(&self.ctx, self.slot, self.pin.as_ref(), &self.name)?;
                let private = find_private_key(&session, &self.key_template, &self.name)?;
                *guard = (session, private);
                guard
                    .0
                    .sign(mechanism, guard.1, data)
                    .map_err(|e| ck(MT0306, &self.name, "signing (C_Sign)", &e))
            }
            Err(e) => Err(ck(MT0306, &self.name, "signing (C_Sign)", &e)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (Session, ObjectHandle)> {
        // A panic while holding the lock leaves the session as usable as before.
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn checked(&self, message: &[u8], signature: Vec<u8>) -> Result<Vec<u8>> {
        self.public_key.verify(message, &signature).map_err(|_| {
            TrustError::new(
                MT0306,
                format!(
                    "{}: the token's signature does not verify with the public key object beside \
                     the private key ({}): the two objects do not belong together",
                    self.name,
                    self.public_key.fingerprint()
                ),
            )
        })?;
        Ok(signature)
    }
}

impl Signer for Pkcs11Signer {
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn kind(&self) -> SignerKind {
        SignerKind::Pkcs11
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match self.public_key.algorithm() {
            Algorithm::Ed25519 => {
                let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
                let sig = self.sign_raw(&mech, message)?;
                self.checked(message, sig)
            }
            Algorithm::EcdsaP256Sha256 => {
                let sig = self.sign_sha256_digest(&Sha256::digest(message).into())?;
                self.checked(message, sig)
            }
        }
    }

    fn sign_sha256_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        if self.public_key.algorithm() != Algorithm::EcdsaP256Sha256 {
            return Err(TrustError::new(
                crate::codes::MT0401,
                format!(
                    "{}: an Ed25519 key signs whole messages only, not a SHA-256 digest",
                    self.name
                ),
            ));
        }
        let raw = self.sign_raw(&Mechanism::Ecdsa, digest)?;
        ecdsa_der::p256_raw_to_der(&raw)
    }
}

/// The process's context for a module: loaded and initialized on first use, kept for the
/// life of the process (a second C_Initialize fails, and a C_Finalize would pull the module
/// from under every other signer).
pub fn module_context(path: &Path) -> Result<Pkcs11> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    let shown = path.display();
    if !path.is_file() {
        return Err(TrustError::new(
            MT0302,
            format!(
                "PKCS#11 module {shown} does not exist (SoftHSM2: apt-get install softhsm2, \
                 /usr/lib/softhsm/libsofthsm2.so)"
            ),
        ));
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        TrustError::new(
            MT0302,
            format!("PKCS#11 module {shown} cannot be loaded: {e}"),
        )
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Initialized by other code of this process that shares the library (a test harness).
        Ok(())
        | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, Function::Initialize)) => {}
        Err(e) => {
            return Err(TrustError::new(
                MT0302,
                format!("PKCS#11 module {shown} failed to initialize (C_Initialize): {e}"),
            ));
        }
    }
    modules.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri, name: &str) -> Result<Slot> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| ck(MT0303, name, "listing slots (C_GetSlotList)", &e))?;
    let mut seen = Vec::new();
    let mut matching = Vec::new();
    for slot in slots {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        if !info.token_initialized() {
            continue;
        }
        let (label, serial) = (info.label().trim(), info.serial_number().trim());
        seen.push(format!("{label:?} (serial {serial}, slot {})", slot.id()));
        let matches = uri.token.as_deref().is_none_or(|t| t == label)
            && uri.serial.as_deref().is_none_or(|s| s == serial)
            && uri
                .manufacturer
                .as_deref()
                .is_none_or(|m| m == info.manufacturer_id().trim())
            && uri
                .model
                .as_deref()
                .is_none_or(|m| m == info.model().trim())
            && uri.slot_id.is_none_or(|id| id == slot.id());
        if matches {
            matching.push(slot);
        }
    }
    match matching.as_slice() {
        [one] => Ok(*one),
        [] => Err(TrustError::new(
            MT0303,
            format!(
                "{name}: no initialized token matches; tokens seen: {}",
                if seen.is_empty() {
                    "none".to_string()
                } else {
                    seen.join(", ")
                }
            ),
        )),
        many => Err(TrustError::new(
            MT0303,
            format!(
                "{name}: {} tokens match ({}); add `token=`, `serial=` or `slot-id=` to pick one",
                many.len(),
                seen.join(", ")
            ),
        )),
    }
}

fn read_pin(from: &PinFrom, name: &str) -> Result<Option<AuthPin>> {
    let text = match from {
        PinFrom::Value(v) => v.clone(),
        PinFrom::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                TrustError::new(
                    MT0304,
                    format!("{name}: cannot read the PIN file {}: {e}", path.display()),
                )
            })?;
            // The first line: `echo PIN > file` adds a newline the token must not see.
            text.lines().next().unwrap_or("").to_string()
        }
        PinFrom::Environment => match std::env::var(PIN_ENV) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        },
    };
    Ok(Some(AuthPin::new(text.into())))
}

fn login(ctx: &Pkcs11, slot: Slot, pin: Option<&AuthPin>, name: &str) -> Result<Session> {
    let session = ctx
        .open_ro_session(slot)
        .map_err(|e| ck(MT0303, name, "opening a session (C_OpenSession)", &e))?;
    let Some(pin) = pin else {
        return Ok(session);
    };
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(CkError::Pkcs11(rv, _)) => {
            let why = match rv {
                RvError::PinIncorrect => "the PIN is wrong",
                RvError::PinLocked => "the PIN is locked after too many wrong attempts",
                RvError::PinExpired => "the PIN has expired; change it on the token",
                RvError::PinLenRange | RvError::PinInvalid => {
                    "the PIN has a length or characters the token refuses"
                }
                _ => "the token refused the login",
            };
            Err(TrustError::new(
                MT0304,
                format!(
                    "{name}: login failed: {why} ({rv:?}); the token counts failed attempts, so \
                     check pin-source / {PIN_ENV} before retrying"
                ),
            ))
        }
        Err(e) => Err(ck(MT0304, name, "logging in (C_Login)", &e)),
    }
}

fn find_private_key(session: &Session, template: &[Attribute], name: &str) -> Result<ObjectHandle> {
    let found = session
        .find_objects(template)
        .map_err(|e| ck(MT0305, name, "searching keys (C_FindObjects)", &e))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] | [_, _, ..] => {
            let all = session
                .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
                .unwrap_or_default();
            let labels: Vec<String> = all
                .iter()
                .map(|&h| {
                    let (label, id) = label_and_id(session, h);
                    format!("{label:?} (id {})", hex(&id))
                })
                .collect();
            let what = if found.is_empty() {
                "no private key matches `object`/`id`".to_string()
            } else {
                format!("{} private keys match; add `object=` or `id=`", found.len())
            };
            Err(TrustError::new(
                MT0305,
                format!(
                    "{name}: {what}; private keys on the token: {}",
                    if labels.is_empty() {
                        "none".to_string()
                    } else {
                        labels.join(", ")
                    }
                ),
            ))
        }
    }
}

fn label_and_id(session: &Session, h: ObjectHandle) -> (String, Vec<u8>) {
    let mut label = String::new();
    let mut id = Vec::new();
    for a in session
        .get_attributes(h, &[AttributeType::Label, AttributeType::Id])
        .unwrap_or_default()
    {
        match a {
            Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(i) => id = i,
            _ => {}
        }
    }
    (label, id)
}

/// The public key object paired with `private` (same CKA_ID, else same label) as a `PublicKey`.
fn read_public_key(session: &Session, private: ObjectHandle, name: &str) -> Result<PublicKey> {
    let mut key_type = None;
    for a in session
        .get_attributes(private, &[AttributeType::KeyType])
        .map_err(|e| ck(MT0305, name, "reading the key's type", &e))?
    {
        if let Attribute::KeyType(t) = a {
            key_type = Some(t);
        }
    }
    let (label, id) = label_and_id(session, private);
    let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
    if id.is_empty() {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    } else {
        template.push(Attribute::Id(id.clone()));
    }
    let public = match session
        .find_objects(&template)
        .map_err(|e| ck(MT0305, name, "searching the public key", &e))?
        .as_slice()
    {
        [one] => *one,
        other => {
            return Err(TrustError::new(
                MT0305,
                format!(
                    "{name}: the private key {label:?} (id {}) has {} public key objects with its \
                     id; a signer needs exactly one to know its public key (import it with the \
                     same CKA_ID)",
                    hex(&id),
                    other.len()
                ),
            ));
        }
    };
    let (mut params, mut point) = (Vec::new(), Vec::new());
    for a in session
        .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
        .map_err(|e| ck(MT0305, name, "reading the public key", &e))?
    {
        match a {
            Attribute::EcParams(p) => params = p,
            Attribute::EcPoint(p) => point = p,
            _ => {}
        }
    }
    let unsupported = || {
        TrustError::new(
            MT0305,
            format!(
                "{name}: the key {label:?} is neither Ed25519 (CKK_EC_EDWARDS on edwards25519) \
                 nor ECDSA P-256 (CKK_EC on prime256v1); generate one of those"
            ),
        )
    };
    match key_type {
        Some(t) if t == KeyType::EC_EDWARDS => {
            if params != ED25519_PRINTABLE && params != ED25519_OID {
                return Err(unsupported());
            }
            let raw = unwrap_octet_string(&point, 32).ok_or_else(|| bad_point(name, &label))?;
            Ok(PublicKey::ed25519(raw.try_into().expect("32 bytes")))
        }
        Some(t) if t == KeyType::EC => {
            if params != P256_OID {
                return Err(unsupported());
            }
            let raw = unwrap_octet_string(&point, 65).ok_or_else(|| bad_point(name, &label))?;
            PublicKey::p256_sec1(raw).map_err(|e| TrustError::new(MT0305, format!("{name}: {e}")))
        }
        _ => Err(unsupported()),
    }
}

// CKA_EC_PARAMS values: edwards25519 as a PrintableString (what SoftHSM2 and OpenSC write) or
// as the RFC 8410 OID 1.3.101.112; P-256 as the OID 1.2.840.10045.3.1.7.
const ED25519_PRINTABLE: &[u8] = b"\x13\x0cedwards25519";
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// CKA_EC_POINT is a DER OCTET STRING around the point (PKCS#11 2.40); some modules give the
/// bare point. Both are accepted, told apart by length.
fn unwrap_octet_string(point: &[u8], len: usize) -> Option<&[u8]> {
    if point.len() == len {
        return Some(point);
    }
    if point.len() == len + 2 && point[0] == 0x04 && usize::from(point[1]) == len {
        return Some(&point[2..]);
    }
    None
}

fn bad_point(name: &str, label: &str) -> TrustError {
    TrustError::new(
        MT0305,
        format!(
            "{name}: the public key object of {label:?} has a CKA_EC_POINT of an unexpected shape"
        ),
    )
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "none".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cryptoki error with what we were doing; cryptoki's messages carry return values, never
/// the PIN.
fn ck(code: &'static str, name: &str, doing: &str, e: &CkError) -> TrustError {
    TrustError::new(code, format!("{name}: {doing} failed: {e}"))
}
