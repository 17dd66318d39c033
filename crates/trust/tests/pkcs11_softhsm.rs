//! The PKCS#11 signer against a real SoftHSM2 token: Ed25519 (CKM_EDDSA) and P-256 (CKM_ECDSA,
//! DER) signatures checked by OpenSSL's command line as an independent verifier, selection by
//! label and CKA_ID, concurrent signing, and the hostile cases (wrong or missing PIN, unknown
//! token, key or module) with their codes, never showing the PIN.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ms_test_support::softhsm::softhsm;
use ms_trust::codes::{MT0301, MT0302, MT0303, MT0304, MT0305, MT0401};
use ms_trust::pkcs11;
use ms_trust::{Algorithm, Signer, SignerKind};
use sha2::{Digest as _, Sha256};

/// OpenSSL verifies `signature` over `message` with the signer's public key (PEM).
fn openssl_verifies(dir: &Path, signer: &dyn Signer, message: &[u8], signature: &[u8]) -> bool {
    let (pubf, msgf, sigf) = (dir.join("pub.pem"), dir.join("msg"), dir.join("sig"));
    std::fs::write(&pubf, signer.public_key().to_pem()).unwrap();
    std::fs::write(&msgf, message).unwrap();
    std::fs::write(&sigf, signature).unwrap();
    let mut cmd = Command::new("openssl");
    match signer.public_key().algorithm() {
        Algorithm::Ed25519 => cmd.args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"]),
        Algorithm::EcdsaP256Sha256 => cmd.args(["dgst", "-sha256", "-verify"]),
    };
    cmd.arg(&pubf);
    match signer.public_key().algorithm() {
        Algorithm::Ed25519 => cmd.arg("-in").arg(&msgf).arg("-sigfile").arg(&sigf),
        Algorithm::EcdsaP256Sha256 => cmd.arg("-signature").arg(&sigf).arg(&msgf),
    };
    let out = cmd.output().expect("running openssl");
    out.status.success()
}

#[test]
fn ed25519_and_p256_keys_sign_inside_the_token() {
    let token = softhsm().token();
    let dir = tempfile::tempdir().unwrap();
    let message = b"DSSEv1 28 application/vnd.in-toto+json 2 {}";
    for (object, alg) in [
        ("ed25519", Algorithm::Ed25519),
        ("p256", Algorithm::EcdsaP256Sha256),
    ] {
        let signer = pkcs11::open(&token.uri(object)).unwrap();
        assert_eq!(signer.kind(), SignerKind::Pkcs11);
        assert!(!signer.kind().development_only());
        assert_eq!(signer.public_key().algorithm(), alg);
        let sig = signer.sign(message).unwrap();
        if alg == Algorithm::Ed25519 {
            assert_eq!(sig.len(), 64);
            // PureEdDSA is deterministic: the same message, the same signature.
            assert_eq!(signer.sign(message).unwrap(), sig);
        } else {
            assert_eq!(sig[0], 0x30, "ECDSA signatures come out as DER");
        }
        signer.public_key().verify(message, &sig).unwrap();
        assert!(
            openssl_verifies(dir.path(), &signer, message, &sig),
            "openssl rejects the {object} signature"
        );
        assert!(!openssl_verifies(
            dir.path(),
            &signer,
            b"another message",
            &sig
        ));
    }
}

#[test]
fn p256_signs_a_digest_and_ed25519_refuses_to() {
    let token = softhsm().token();
    let message = b"a message that stays with the client";
    let digest: [u8; 32] = Sha256::digest(message).into();
    let p256 = pkcs11::open(&token.uri("p256")).unwrap();
    let sig = p256.sign_sha256_digest(&digest).unwrap();
    p256.public_key().verify(message, &sig).unwrap();
    let ed = pkcs11::open(&token.uri("ed25519")).unwrap();
    assert_eq!(ed.sign_sha256_digest(&digest).unwrap_err().code, MT0401);
}

#[test]
fn keys_are_selected_by_id_and_the_pin_can_be_a_value() {
    let token = softhsm().token();
    let by_id = format!(
        "pkcs11:token={};id=%02?module-path={}&pin-value={}",
        token.label,
        softhsm().module().display(),
        token.pin
    );
    let signer = pkcs11::open(&by_id).unwrap();
    assert_eq!(signer.public_key().algorithm(), Algorithm::EcdsaP256Sha256);
    assert!(!signer.uri().contains(&token.pin), "{}", signer.uri());
    // The same key opened twice in one process (the second login finds the token logged in).
    let again = pkcs11::open(&token.uri("p256")).unwrap();
    assert_eq!(again.public_key(), signer.public_key());
}

#[test]
fn many_threads_sign_with_one_signer() {
    let token = softhsm().token();
    let signer = Arc::new(pkcs11::open(&token.uri("ed25519")).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let signer = Arc::clone(&signer);
            std::thread::spawn(move || {
                for i in 0..20 {
                    let msg = format!("thread {t} message {i}");
                    let sig = signer.sign(msg.as_bytes()).unwrap();
                    signer.public_key().verify(msg.as_bytes(), &sig).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_wrong_pin_is_refused_without_showing_it() {
    let token = softhsm().token();
    let wrong = "not-the-PIN-4711";
    let uri = format!("{}&pin-value={wrong}", token.uri_without_pin("ed25519"));
    let e = pkcs11::open(&uri).unwrap_err();
    assert_eq!(e.code, MT0304, "{e}");
    assert!(e.message.contains("PIN is wrong"), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(wrong) && !shown.contains(&token.pin),
        "{shown}"
    );
    // A PIN file with a wrong PIN, and one that does not exist.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pin");
    std::fs::write(&file, format!("{wrong}\n")).unwrap();
    let uri = format!(
        "{}&pin-source={}",
        token.uri_without_pin("ed25519"),
        file.display()
    );
    let e = pkcs11::open(&uri).unwrap_err();
    assert_eq!(e.code, MT0304);
    assert!(!format!("{e}").contains(wrong));
    let uri = format!(
        "{}&pin-source={}",
        token.uri_without_pin("ed25519"),
        dir.path().join("missing").display()
    );
    assert_eq!(pkcs11::open(&uri).unwrap_err().code, MT0304);
    // The right PIN still works: the failed attempts did not lock the token.
    pkcs11::open(&token.uri("ed25519")).unwrap();
}

#[test]
fn a_missing_pin_says_where_to_put_it() {
    // The test process does not set MODELSPEC_PKCS11_PIN.
    assert!(std::env::var_os(pkcs11::PIN_ENV).is_none());
    let token = softhsm().token();
    let e = pkcs11::open(&token.uri_without_pin("ed25519")).unwrap_err();
    assert_eq!(e.code, MT0304);
    assert!(e.message.contains(pkcs11::PIN_ENV), "{e}");
}

#[test]
fn unknown_tokens_keys_and_modules_are_named() {
    let token = softhsm().token();
    let module = softhsm().module().display().to_string();
    let e = pkcs11::open(&format!(
        "pkcs11:token=no-such-token;object=ed25519?module-path={module}&pin-value=x"
    ))
    .unwrap_err();
    assert_eq!(e.code, MT0303, "{e}");
    assert!(
        e.message.contains(&token.label),
        "lists the tokens seen: {e}"
    );
    assert!(!e.message.contains("pin-value=x"), "{e}");

    let e = pkcs11::open(&token.uri("no-such-key")).unwrap_err();
    assert_eq!(e.code, MT0305, "{e}");
    assert!(
        e.message.contains("\"ed25519\"") && e.message.contains("\"p256\""),
        "{e}"
    );

    // Two keys and no `object`: which one is meant is not guessed.
    let e = pkcs11::open(&format!(
        "pkcs11:token={}?module-path={module}&pin-source={}",
        token.label,
        token.pin_file.display()
    ))
    .unwrap_err();
    assert_eq!(e.code, MT0305, "{e}");
    assert!(e.message.contains("2 private keys match"), "{e}");

    let e =
        pkcs11::open("pkcs11:token=t;object=k?module-path=/nonexistent/libpkcs11.so").unwrap_err();
    assert_eq!(e.code, MT0302, "{e}");
    let not_a_module = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_a_module.path(), b"not a shared object").unwrap();
    let e = pkcs11::open(&format!(
        "pkcs11:token=t;object=k?module-path={}",
        not_a_module.path().display()
    ))
    .unwrap_err();
    assert_eq!(e.code, MT0302, "{e}");

    assert_eq!(pkcs11::open("pkcs11:tokn=x").unwrap_err().code, MT0301);
}

#[test]
fn open_signer_reaches_the_token() {
    let token = softhsm().token();
    let signer = ms_trust::signer::open_signer(&token.uri("p256")).unwrap();
    assert_eq!(signer.kind(), SignerKind::Pkcs11);
    let sig = signer.sign(b"m").unwrap();
    signer.public_key().verify(b"m", &sig).unwrap();
}

#[test]
fn a_signer_logs_in_again_after_the_token_logged_it_out() {
    let token = softhsm().token();
    let signer = pkcs11::open(&token.uri("ed25519")).unwrap();
    signer.sign(b"before").unwrap();
    softhsm().log_out(&token);
    let sig = signer.sign(b"after").unwrap();
    signer.public_key().verify(b"after", &sig).unwrap();
}
