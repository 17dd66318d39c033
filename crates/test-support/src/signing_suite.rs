//! The signing part of the registry conformance suite: keys added, rotated and revoked (each
//! an audit event), signatures checked before they are attached, and a consumer's
//! verification under a trust policy, with hostile cases (a bundle for other bytes, a forged
//! signature, an unregistered, a retired and a revoked key, a non-writer token). Runs against
//! every [`Registry`] implementation, like the rest of [`crate::registry_suite`].

use ms_registry::entity::*;
use ms_registry::signing::bundle;
use ms_registry::trust::{self, version_files};
use ms_registry::{Digest, ErrorKind, Registry, RegistryError};
use ms_trust::keyfile::KeyFileSigner;
use ms_trust::{Algorithm, Signer};

use crate::registry_suite::{Ctx, model_fixture};

#[track_caller]
fn refused<T: std::fmt::Debug>(
    r: Result<T, RegistryError>,
    kind: ErrorKind,
    code: &str,
) -> RegistryError {
    match r {
        Ok(v) => panic!("expected {kind:?} {code}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!((e.kind, e.code.as_str()), (kind, code), "{e}");
            e
        }
    }
}

fn key_req(name: &str, signer: &dyn Signer, envs: &[&str]) -> KeyRequest {
    KeyRequest {
        name: name.into(),
        public_key: signer.public_key().to_pem(),
        environments: envs.iter().map(|e| e.to_string()).collect(),
    }
}

/// A bundle of `files` of `model` signed by `signer`, as JSON.
pub fn bundle_json(model: &str, files: &[VersionFile], signer: &dyn Signer) -> serde_json::Value {
    let b = bundle::sign(model, files, signer).expect("signing works");
    serde_json::from_str(&b.to_json()).expect("a bundle is JSON")
}

fn request(bundle: serde_json::Value) -> SignatureRequest {
    SignatureRequest {
        bundle,
        key_id: None,
    }
}

/// A trust policy allowing `key` (PEM) for `envs`, until `not_after` if given.
fn policy_until(
    key: &dyn Signer,
    envs: &[&str],
    not_after: Option<&str>,
) -> ms_trust::policy::TrustPolicy {
    let pem = key.public_key().to_pem().replace('\n', "\n      ");
    let until = not_after
        .map(|t| format!("    notAfter: {t}\n"))
        .unwrap_or_default();
    let text = format!(
        "apiVersion: modelspec.dev/v1\nkind: TrustPolicy\nkeys:\n  - name: release\n    publicKey: |\n      {pem}\n    environments: [{}]\n{until}",
        envs.join(", ")
    );
    ms_trust::policy::TrustPolicy::parse(&text, std::path::Path::new("policy.yaml"))
        .expect("the test policy parses")
}

fn policy(key: &dyn Signer, envs: &[&str]) -> ms_trust::policy::TrustPolicy {
    policy_until(key, envs, None)
}

/// Flips one character of the first DSSE signature (still base64, another signature).
fn forge(mut bundle: serde_json::Value) -> serde_json::Value {
    let sig = bundle
        .pointer_mut("/dsseEnvelope/signatures/0/sig")
        .expect("a DSSE signature");
    let mut s: Vec<char> = sig.as_str().unwrap().chars().collect();
    s[5] = if s[5] == 'A' { 'B' } else { 'A' };
    *sig = serde_json::Value::String(s.into_iter().collect());
    bundle
}

/// Keys, signatures and verification, end to end; hostile cases refused and nothing stored.
pub async fn signing(ctx: &Ctx) {
    let admin = ctx.admin.as_ref();
    let writer = ctx.as_role("suite-signer", Role::Writer).await;
    let reader = ctx.as_role("suite-sig-reader", Role::Reader).await;
    let a = KeyFileSigner::generate(Algorithm::Ed25519).expect("a key");
    let b = KeyFileSigner::generate(Algorithm::EcdsaP256Sha256).expect("a key");
    let c = KeyFileSigner::generate(Algorithm::EcdsaP256Sha256).expect("a key");
    let stranger = KeyFileSigner::generate(Algorithm::Ed25519).expect("a key");

    // Keys: admin only, idempotent, one fingerprint one record.
    refused(
        writer.add_key(key_req("release-a", &a, &["prod"])).await,
        ErrorKind::Forbidden,
        "MG0403",
    );
    let added = admin
        .add_key(key_req("release-a", &a, &["prod", "staging"]))
        .await
        .unwrap();
    assert!(added.created);
    let ka = added.record;
    assert_eq!(ka.key_id, a.public_key().fingerprint());
    assert_eq!(ka.status, KeyStatus::Active);
    assert_eq!(ka.environments, vec!["prod", "staging"]);
    let again = admin
        .add_key(key_req("release-a", &a, &["staging", "prod"]))
        .await
        .unwrap();
    assert!(!again.created);
    refused(
        admin.add_key(key_req("other-name", &a, &["prod"])).await,
        ErrorKind::Conflict,
        "MG0807",
    );
    let mut bad = key_req("x", &a, &["prod"]);
    bad.public_key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into();
    let e = refused(admin.add_key(bad).await, ErrorKind::Invalid, "MG0806");
    assert_eq!(e.pointer.as_deref(), Some("/publicKey"));
    refused(
        admin.add_key(key_req("x", &b, &["Prod!"])).await,
        ErrorKind::Invalid,
        "MG0806",
    );
    assert_eq!(
        reader.keys().await.unwrap().len(),
        admin.keys().await.unwrap().len()
    );

    // A version to sign.
    let reg = model_fixture(admin, "suite-signed", "suite").await;
    let v1 = admin.register_model(reg).await.unwrap().record;
    assert_eq!(v1.signer_id, None);
    let files = version_files(admin, &v1).await.unwrap();
    assert_eq!(files.len(), 1);
    let good = bundle_json("suite-signed", &files, &a);

    // A non-writer token, a bundle for other bytes, a forged signature, an unknown key.
    refused(
        reader
            .sign_version("suite-signed", "1", request(good.clone()))
            .await,
        ErrorKind::Forbidden,
        "MG0403",
    );
    let other = vec![VersionFile {
        name: files[0].name.clone(),
        sha256: Digest::of(b"other bytes"),
    }];
    let e = refused(
        writer
            .sign_version(
                "suite-signed",
                "1",
                request(bundle_json("suite-signed", &other, &a)),
            )
            .await,
        ErrorKind::Integrity,
        "MG0805",
    );
    assert!(e.message.contains(&files[0].name), "{e}");
    refused(
        writer
            .sign_version("suite-signed", "1", request(forge(good.clone())))
            .await,
        ErrorKind::Integrity,
        "MG0804",
    );
    refused(
        writer
            .sign_version(
                "suite-signed",
                "1",
                request(bundle_json("suite-signed", &files, &stranger)),
            )
            .await,
        ErrorKind::NotFound,
        "MG0802",
    );
    refused(
        writer
            .sign_version(
                "suite-signed",
                "1",
                request(serde_json::json!({"not": "a bundle"})),
            )
            .await,
        ErrorKind::Invalid,
        "MG0801",
    );
    let mut huge = good.clone();
    huge["padding"] = serde_json::Value::String("x".repeat(bundle::MAX_BUNDLE_BYTES));
    refused(
        writer
            .sign_version("suite-signed", "1", request(huge))
            .await,
        ErrorKind::TooLarge,
        "MG0801",
    );
    // A keyId that is not the signer's: the signature does not verify with it.
    admin
        .add_key(key_req("suite-other", &b, &["staging"]))
        .await
        .unwrap();
    refused(
        writer
            .sign_version(
                "suite-signed",
                "1",
                SignatureRequest {
                    bundle: good.clone(),
                    key_id: Some(b.public_key().fingerprint()),
                },
            )
            .await,
        ErrorKind::Integrity,
        "MG0804",
    );
    refused(
        writer
            .sign_version("suite-signed", "9", request(good.clone()))
            .await,
        ErrorKind::NotFound,
        "MG0205",
    );
    assert!(
        admin
            .signatures("suite-signed", "1")
            .await
            .unwrap()
            .is_empty()
    );

    // The real one: attached once, shown on the version, audited.
    let attached = writer
        .sign_version("suite-signed", "1", request(good.clone()))
        .await
        .unwrap();
    assert!(attached.created);
    let sig = attached.record;
    assert_eq!(
        (sig.key_id.as_str(), sig.signer_id.as_str()),
        (ka.key_id.as_str(), "release-a")
    );
    assert_eq!(sig.algorithm, "ed25519");
    let again = writer
        .sign_version("suite-signed", "latest", request(good.clone()))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.record.envelope_digest, sig.envelope_digest);
    let v = admin.model_version("suite-signed", "1").await.unwrap();
    assert_eq!(v.signer_id.as_deref(), Some("release-a"));
    assert_eq!(v.signature.as_deref(), Some(sig.envelope_digest.as_str()));
    let listed = reader.signatures("suite-signed", "1").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].bundle, sig.bundle);

    // The consumer's check: with no policy, and under a policy for an environment.
    let ok = trust::verify_version_with(admin, "suite-signed", "1", None)
        .await
        .unwrap();
    assert_eq!(ok.key_id, ka.key_id);
    assert_eq!(ok.manifest_digest, trust::manifest_digest(&files));
    assert_eq!(ok.files, files);
    let prod = policy(&a, &["prod"]);
    trust::verify_version(reader.as_ref(), "suite-signed", "1", &prod, "prod")
        .await
        .unwrap();
    refused(
        trust::verify_version(reader.as_ref(), "suite-signed", "1", &prod, "staging").await,
        ErrorKind::Forbidden,
        "MG0809",
    );
    refused(
        trust::verify_version(
            reader.as_ref(),
            "suite-signed",
            "1",
            &policy(&b, &["prod"]),
            "prod",
        )
        .await,
        ErrorKind::Forbidden,
        "MG0809",
    );

    // The policy is asked about the signing time: a key whose notAfter has passed since keeps
    // what it signed before, not what it signed after.
    let until_signing = policy_until(&a, &["prod"], Some(&sig.signed_at));
    trust::verify_version(admin, "suite-signed", "1", &until_signing, "prod")
        .await
        .unwrap();
    let e = refused(
        trust::verify_version(
            admin,
            "suite-signed",
            "1",
            &policy_until(&a, &["prod"], Some("2001-01-01T00:00:00Z")),
            "prod",
        )
        .await,
        ErrorKind::Forbidden,
        "MG0809",
    );
    assert!(e.message.contains("2001"), "{e}");

    // Rotation: a retired key signs nothing new; what it signed before stays valid.
    let rot = admin
        .rotate_key(
            &ka.key_id,
            RotateKeyRequest {
                public_key: c.public_key().to_pem(),
                name: None,
                environments: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(rot.retired.status, KeyStatus::Retired);
    assert_eq!(
        rot.retired.replaced_by.as_deref(),
        Some(rot.added.key_id.as_str())
    );
    assert_eq!(
        (rot.added.name.as_str(), rot.added.environments.len()),
        ("release-a", 2)
    );
    let mut spec2 = model_fixture(admin, "suite-signed", "suite").await;
    spec2.code_ref = Some("git+https://example.com/r@2".into());
    let v2 = admin.register_model(spec2).await.unwrap().record;
    let files2 = version_files(admin, &v2).await.unwrap();
    refused(
        writer
            .sign_version(
                "suite-signed",
                "2",
                request(bundle_json("suite-signed", &files2, &a)),
            )
            .await,
        ErrorKind::Forbidden,
        "MG0803",
    );
    writer
        .sign_version(
            "suite-signed",
            "2",
            request(bundle_json("suite-signed", &files2, &c)),
        )
        .await
        .unwrap();
    trust::verify_version_with(admin, "suite-signed", "1", None)
        .await
        .unwrap();
    refused(
        admin
            .rotate_key(
                &ka.key_id,
                RotateKeyRequest {
                    public_key: b.public_key().to_pem(),
                    name: None,
                    environments: None,
                },
            )
            .await,
        ErrorKind::Conflict,
        "MG0803",
    );

    // Revocation: every signature by the key fails, old or new.
    refused(
        admin
            .revoke_key(
                &ka.key_id,
                RevokeKeyRequest {
                    reason: "rotated to x".into(),
                },
            )
            .await,
        ErrorKind::Invalid,
        "MG0806",
    );
    refused(
        writer
            .revoke_key(
                &ka.key_id,
                RevokeKeyRequest {
                    reason: "leaked".into(),
                },
            )
            .await,
        ErrorKind::Forbidden,
        "MG0403",
    );
    let revoked = admin
        .revoke_key(
            &ka.key_id,
            RevokeKeyRequest {
                reason: "leaked".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(revoked.status, KeyStatus::Revoked);
    assert_eq!(revoked.revoke_reason.as_deref(), Some("leaked"));
    let e = refused(
        trust::verify_version_with(admin, "suite-signed", "1", None).await,
        ErrorKind::Forbidden,
        "MG0808",
    );
    assert!(e.message.contains("revoked"), "{e}");
    refused(
        admin.add_key(key_req("release-a", &a, &["prod"])).await,
        ErrorKind::Conflict,
        "MG0807",
    );
    refused(
        admin
            .revoke_key("sha256:00", RevokeKeyRequest { reason: "x".into() })
            .await,
        ErrorKind::NotFound,
        "MG0802",
    );

    // Every change is in the audit log, in order.
    let mut actions = Vec::new();
    let mut after = 0;
    loop {
        let page = admin.audit_events(after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        actions.extend(
            page.into_iter()
                .filter(|e| e.action.starts_with("key.") || e.action == "model.sign")
                .filter(|e| {
                    e.subject.contains(&ka.key_id) || e.subject.starts_with("model:suite-signed")
                })
                .map(|e| e.action),
        );
    }
    assert_eq!(
        actions,
        [
            "key.add",
            "model.sign",
            "key.rotate",
            "model.sign",
            "key.revoke"
        ]
    );
    let _: &dyn Registry = admin;
}

/// Rows edited behind the registry's back (a forged bundle, another public key under a key
/// id): `registry check` names them and a consumer's verification refuses the version. Wants
/// a registry of its own with `damage`.
pub async fn signature_damage_found(ctx: &Ctx) {
    let admin = ctx.admin.as_ref();
    let damage = ctx.damage.as_ref().expect("an embedded registry");
    let a = KeyFileSigner::generate(Algorithm::Ed25519).expect("a key");
    let other = KeyFileSigner::generate(Algorithm::Ed25519).expect("a key");
    let k = admin
        .add_key(key_req("damage-key", &a, &["prod"]))
        .await
        .unwrap()
        .record;
    let v = admin
        .register_model(model_fixture(admin, "suite-damaged", "suite").await)
        .await
        .unwrap()
        .record;
    let files = version_files(admin, &v).await.unwrap();
    let good = bundle_json("suite-damaged", &files, &a);
    let sig = admin
        .sign_version("suite-damaged", "1", request(good.clone()))
        .await
        .unwrap()
        .record;
    assert!(admin.check().await.unwrap().problems.is_empty());

    let forged = forge(good).to_string().replace('\'', "''");
    damage
        .sql(&format!(
            "UPDATE manifest_signatures SET bundle = '{forged}' WHERE envelope_digest = '{}'",
            sig.envelope_digest
        ))
        .await;
    let report = admin.check().await.unwrap();
    let found: Vec<&CheckProblem> = report
        .problems
        .iter()
        .filter(|p| p.code == "MG0810")
        .collect();
    assert_eq!(found.len(), 1, "{:?}", report.problems);
    assert!(
        found[0].subject.contains("suite-damaged@1"),
        "{:?}",
        found[0]
    );
    let e = refused(
        trust::verify_version_with(admin, "suite-damaged", "1", None).await,
        ErrorKind::Forbidden,
        "MG0808",
    );
    assert!(e.message.contains("does not verify"), "{e}");

    let pem = other.public_key().to_pem();
    damage
        .sql(&format!(
            "UPDATE signing_keys SET public_key = '{pem}' WHERE key_id = '{}'",
            k.key_id
        ))
        .await;
    let report = admin.check().await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.code == "MG0811" && p.subject == format!("key:{}", k.key_id)),
        "{:?}",
        report.problems
    );
}
