//! A real PKCS#11 token for tests: SoftHSM2 (Debian `softhsm2`, installed by `.ci/run`) with its
//! token directory in a scratch directory of this test process ([`crate::tied_child`]'s, swept
//! once the process is dead). [`SoftHsm::token`] initializes a
//! fresh token per call (its own label, SO PIN and user PIN) holding two key pairs generated
//! inside it: an Ed25519 key (label `ed25519`, CKA_ID 01) and a P-256 key (label `p256`,
//! CKA_ID 02), so that tests sharing the module stay isolated (a login is per token).
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, when the module is initialized; the harness points it at
//! its configuration before the first initialization in this process, and child processes
//! inherit it (or take [`SoftHsm::conf`]). Tokens are created through the module loaded in this
//! process because a SoftHSM instance does not see tokens that another process adds after it
//! started.
//!
//! ```no_run
//! let token = ms_test_support::softhsm::softhsm().token();
//! // pkcs11:token=…;object=ed25519?module-path=…&pin-source=…
//! let uri = token.uri("ed25519");
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

/// Where Debian (and Ubuntu) install the module.
const MODULE_PATHS: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];
/// CKA_EC_PARAMS of the two curves (SoftHSM2 names edwards25519 by a PrintableString).
const EDWARDS25519: &[u8] = b"\x13\x0cedwards25519";
const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The SoftHSM2 module of this test process.
pub struct SoftHsm {
    module: PathBuf,
    conf: PathBuf,
    dir: PathBuf,
    ctx: Pkcs11,
    tokens: AtomicU32,
    /// One token initialization at a time: two would both take the one free slot.
    creating: Mutex<()>,
}

/// One initialized token with its two key pairs.
#[derive(Debug, Clone)]
pub struct Token {
    /// CKA_LABEL of the token (`token=` in a URI).
    pub label: String,
    /// The user PIN.
    pub pin: String,
    /// A file holding the user PIN (`pin-source=`), with a trailing newline as `echo` writes.
    pub pin_file: PathBuf,
    module: PathBuf,
}

/// The module of this test process, set up on first use.
pub fn softhsm() -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(start)
}

impl SoftHsm {
    /// The module's path (`module-path=`).
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The SoftHSM2 configuration file (`SOFTHSM2_CONF` for child processes).
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// A fresh token with an Ed25519 key (`ed25519`, id 01) and a P-256 key (`p256`, id 02).
    pub fn token(&self) -> Token {
        let n = self.tokens.fetch_add(1, Ordering::Relaxed);
        let label = format!("ms-test-{}-{n}", std::process::id());
        let pin = format!("user-pin-{n}-{}", std::process::id());
        let so_pin = AuthPin::new(format!("so-pin-{n}").into());
        let _one_at_a_time = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        let free = self.free_slot();
        self.ctx
            .init_token(free, &so_pin, &label)
            .unwrap_or_else(|e| panic!("SoftHSM2: initializing token {label}: {e}"));
        let slot = self.slot_of(&label);
        {
            let session = self.ctx.open_rw_session(slot).expect("a SoftHSM2 session");
            session
                .login(UserType::So, Some(&so_pin))
                .expect("SoftHSM2 SO login");
            session
                .init_pin(&AuthPin::new(pin.clone().into()))
                .expect("SoftHSM2 C_InitPIN");
        }
        {
            let session = self.ctx.open_rw_session(slot).expect("a SoftHSM2 session");
            session
                .login(UserType::User, Some(&AuthPin::new(pin.clone().into())))
                .expect("SoftHSM2 user login");
            for (object, id, mechanism, key_type, params) in [
                (
                    "ed25519",
                    1u8,
                    Mechanism::EccEdwardsKeyPairGen,
                    KeyType::EC_EDWARDS,
                    EDWARDS25519,
                ),
                ("p256", 2, Mechanism::EccKeyPairGen, KeyType::EC, PRIME256V1),
            ] {
                let common = [
                    Attribute::Token(true),
                    Attribute::Label(object.as_bytes().to_vec()),
                    Attribute::Id(vec![id]),
                    Attribute::KeyType(key_type),
                ];
                let mut public = common.to_vec();
                public.extend([
                    Attribute::Verify(true),
                    Attribute::EcParams(params.to_vec()),
                ]);
                let mut private = common.to_vec();
                private.extend([
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                ]);
                session
                    .generate_key_pair(&mechanism, &public, &private)
                    .unwrap_or_else(|e| panic!("SoftHSM2: generating the {object} key: {e}"));
            }
        }
        let pin_file = self.dir.join(format!("{label}.pin"));
        std::fs::write(&pin_file, format!("{pin}\n")).expect("writing the PIN file");
        Token {
            label,
            pin,
            pin_file,
            module: self.module.clone(),
        }
    }

    /// Logs this process out of `token` (PKCS#11 keeps one login state per token and
    /// application): every open session loses its access to private keys, as when a token is
    /// re-inserted or an HSM fails over. Signers must log in again by themselves.
    pub fn log_out(&self, token: &Token) {
        let session = self
            .ctx
            .open_ro_session(self.slot_of(&token.label))
            .expect("a SoftHSM2 session");
        session.logout().expect("SoftHSM2 C_Logout");
    }

    /// The one slot SoftHSM2 keeps free for the next token.
    fn free_slot(&self) -> Slot {
        self.ctx
            .get_all_slots()
            .expect("SoftHSM2 slots")
            .into_iter()
            .find(|&s| {
                self.ctx
                    .get_token_info(s)
                    .is_ok_and(|t| !t.token_initialized())
            })
            .expect("SoftHSM2 always keeps one uninitialized slot")
    }

    /// SoftHSM2 moves a token to a slot numbered after its serial when it is initialized.
    fn slot_of(&self, label: &str) -> Slot {
        self.ctx
            .get_slots_with_token()
            .expect("SoftHSM2 slots")
            .into_iter()
            .find(|&s| {
                self.ctx
                    .get_token_info(s)
                    .is_ok_and(|t| t.label().trim() == label)
            })
            .unwrap_or_else(|| panic!("SoftHSM2: token {label} not found after C_InitToken"))
    }
}

impl Token {
    /// `pkcs11:token=LABEL;object=OBJECT?module-path=…&pin-source=PIN_FILE`.
    pub fn uri(&self, object: &str) -> String {
        format!(
            "{}&pin-source={}",
            self.uri_without_pin(object),
            self.pin_file.display()
        )
    }

    /// The URI without a PIN (it then comes from `MODELSPEC_PKCS11_PIN`).
    pub fn uri_without_pin(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={object}?module-path={}",
            self.label,
            self.module.display()
        )
    }
}

fn start() -> SoftHsm {
    let module = MODULE_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "SoftHSM2 not found at {}: install it (apt-get install softhsm2; .ci/run does)",
                MODULE_PATHS.join(" or ")
            )
        });
    // Kept for the life of the test process, as the tokens in it are; a later test process
    // removes it once this one is dead.
    let dir = crate::tied_child::scratch_dir("softhsm", |_| {});
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("the token directory");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
             slots.removable = false\n",
            tokens.display()
        ),
    )
    .expect("writing softhsm2.conf");
    // SAFETY: set once, under the OnceLock, before this process initializes SoftHSM2 (the only
    // reader of the variable, at C_Initialize below). Rust's own environment accesses take
    // std's lock; no C code of the test process reads SOFTHSM2_CONF concurrently.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    let ctx = Pkcs11::new(&module).unwrap_or_else(|e| panic!("loading {}: {e}", module.display()));
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, Function::Initialize)) => {}
        Err(e) => panic!("SoftHSM2 C_Initialize: {e}"),
    }
    SoftHsm {
        module,
        conf,
        dir,
        ctx,
        tokens: AtomicU32::new(0),
        creating: Mutex::new(()),
    }
}
