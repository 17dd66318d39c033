//! `modelspec signer serve` as a user runs it: a child process serving a SoftHSM2 key (PIN from
//! the environment) and a development key file, found through its start-up lines, used by the
//! proxy client `Signer`; forged tokens refused; neither the token nor the PIN ever on its
//! stderr; and the start-up refusals (wrong PIN, weak token, open bind, a proxy as backend).

use std::process::{Child, Command, Stdio};

use ms_test_support::softhsm::softhsm;
use ms_trust::codes::MT0404;
use ms_trust::keyfile::KeyFileSigner;
use ms_trust::proxy::ProxySigner;
use ms_trust::{Algorithm, Signer, SignerKind};

const TOKEN: &str = "cli-test-token-0123456789abcdef0123456789";

fn modelspec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
}

/// Kills the server when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serves_softhsm_and_development_keys_to_proxy_clients() {
    let token = softhsm().token();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let dev = KeyFileSigner::generate(Algorithm::Ed25519).unwrap();
    let dev_path = dir.path().join("dev.pem");
    dev.save_pkcs8_pem(&dev_path).unwrap();
    let child = modelspec()
        .args(["signer", "serve", "--bind", "127.0.0.1:0", "--token-file"])
        .arg(&token_file)
        .args(["--backend", &token.uri_without_pin("ed25519")])
        .args(["--backend", &format!("file:{}", dev_path.display())])
        .env("MODELSPEC_PKCS11_PIN", &token.pin)
        .env("SOFTHSM2_CONF", softhsm().conf())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let banner = ms_test_support::serve_banner(&mut child.0);
    let addr = banner
        .addr
        .clone()
        .unwrap_or_else(|| panic!("no listening line in:\n{}", banner.printed));
    assert!(addr.starts_with("127.0.0.1:"), "{}", banner.printed);
    assert!(
        banner.printed.contains("DEVELOPMENT ONLY"),
        "{}",
        banner.printed
    );

    let hsm_key = ms_trust::pkcs11::open(&token.uri("ed25519")).unwrap();
    let base = format!("http://{addr}");
    let client = ProxySigner::connect(
        &format!("{base}?keyId={}", hsm_key.public_key().fingerprint()),
        TOKEN,
    )
    .unwrap();
    assert_eq!(client.public_key(), hsm_key.public_key());
    assert_eq!(
        client.kind(),
        SignerKind::Proxy {
            development_only: false
        }
    );
    let sig = client.sign(b"release manifest").unwrap();
    hsm_key
        .public_key()
        .verify(b"release manifest", &sig)
        .unwrap();

    let dev_client = ProxySigner::connect(
        &format!("{base}?keyId={}", dev.public_key().fingerprint()),
        TOKEN,
    )
    .unwrap();
    assert!(dev_client.kind().development_only());
    dev_client.sign(b"scratch").unwrap();

    // A key id that tries to start a log line of its own.
    let body = r#"{"keyId": "x\nFORGED: POST /v1/sign 200", "message": "AA=="}"#;
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(
        &mut s,
        format!(
            "POST /v1/sign HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer \
             {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    let forged = "forged-token-ffffffffffffffffffffffffffff";
    let e = ProxySigner::connect(&base, forged).unwrap_err();
    assert_eq!(e.code, MT0404);

    let rest = banner.rest;
    drop(child);
    let log: Vec<String> = rest.map_while(Result::ok).collect();
    let log = log.join("\n");
    assert!(
        log.contains("POST /v1/sign"),
        "one line per request:\n{log}"
    );
    assert!(log.contains("401"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a client's key id made a log line:\n{log}"
    );
    for secret in [TOKEN, forged, token.pin.as_str()] {
        assert!(!log.contains(secret), "a secret on stderr:\n{log}");
    }
}

#[test]
fn refuses_to_start_on_a_wrong_pin_a_weak_token_or_an_open_bind() {
    let token = softhsm().token();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("token");
    std::fs::write(&good, TOKEN).unwrap();
    let weak = dir.path().join("weak");
    std::fs::write(&weak, "w3ak").unwrap();
    let wrong_pin = "wrong-PIN-31337";
    let hsm = token.uri_without_pin("p256");
    // (arguments, environment, the code expected on stderr)
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                "--backend".into(),
                hsm.clone(),
                "--token-file".into(),
                good.display().to_string(),
                "--bind".into(),
                "127.0.0.1:0".into(),
            ],
            vec![("MODELSPEC_PKCS11_PIN", wrong_pin)],
            "MT0304",
        ),
        (
            vec![
                "--backend".into(),
                hsm.clone(),
                "--token-file".into(),
                weak.display().to_string(),
                "--bind".into(),
                "127.0.0.1:0".into(),
            ],
            vec![("MODELSPEC_PKCS11_PIN", token.pin.as_str())],
            "MT0402",
        ),
        (
            vec![
                "--backend".into(),
                hsm.clone(),
                "--token-file".into(),
                good.display().to_string(),
                "--bind".into(),
                "0.0.0.0:0".into(),
            ],
            vec![("MODELSPEC_PKCS11_PIN", token.pin.as_str())],
            "MT0402",
        ),
        (
            vec![
                "--backend".into(),
                "http://127.0.0.1:9/".into(),
                "--token-file".into(),
                good.display().to_string(),
            ],
            vec![],
            "MT0402",
        ),
        (
            vec![
                "--backend".into(),
                hsm,
                "--token-file".into(),
                dir.path().join("missing").display().to_string(),
            ],
            vec![],
            "MT0402",
        ),
    ];
    for (args, env, code) in cases {
        let out = modelspec()
            .args(["signer", "serve"])
            .args(&args)
            .envs(env)
            .env("SOFTHSM2_CONF", softhsm().conf())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(code), "{args:?}: {stderr}");
        for secret in [wrong_pin, "w3ak", TOKEN, token.pin.as_str()] {
            assert!(
                !stderr.contains(secret),
                "{args:?}: a secret on stderr: {stderr}"
            );
        }
        assert!(stderr.lines().count() < 10, "{stderr}");
    }
}

/// `modelspec signer sign DIR --signer REF` then `modelspec verify-signature DIR --key PUB`.
fn sign_and_verify(dir: &std::path::Path, signer: &str, env: &[(&str, &str)], public_pem: &str) {
    let out = modelspec()
        .args(["signer", "sign"])
        .arg(dir)
        .args(["--signer", signer])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "signer sign with {signer}: {stderr}");
    let public = dir.with_extension("pub.pem");
    std::fs::write(&public, public_pem).unwrap();
    let out = modelspec()
        .arg("verify-signature")
        .arg(dir)
        .arg("--key")
        .arg(&public)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify-signature: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn signs_a_model_directory_through_a_token_and_through_signer_serve() {
    let token = softhsm().token();
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir_all(model.join("weights")).unwrap();
    std::fs::write(model.join("config.json"), "{}").unwrap();
    std::fs::write(model.join("weights/w.bin"), [3u8; 4096]).unwrap();
    let hsm_key = ms_trust::pkcs11::open(&token.uri("p256")).unwrap();
    let public = hsm_key.public_key().to_pem();

    // Directly: a pkcs11: URI, the PIN from the environment.
    sign_and_verify(
        &model,
        &token.uri_without_pin("p256"),
        &[("MODELSPEC_PKCS11_PIN", &token.pin)],
        &public,
    );

    // Through `signer serve`: the signing process holds neither key nor PIN, only the token.
    let token_file = tmp.path().join("proxy.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let child = modelspec()
        .args([
            "signer",
            "serve",
            "--quiet",
            "--bind",
            "127.0.0.1:0",
            "--token-file",
        ])
        .arg(&token_file)
        .args(["--backend", &token.uri("p256")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let banner = ms_test_support::serve_banner(&mut child.0);
    let addr = banner
        .addr
        .clone()
        .unwrap_or_else(|| panic!("no listening line in:\n{}", banner.printed));
    std::fs::remove_file(model.join("model.sig")).unwrap();
    sign_and_verify(
        &model,
        &format!("http://{addr}"),
        &[("MODELSPEC_SIGNER_TOKEN_FILE", token_file.to_str().unwrap())],
        &public,
    );
    // Without the token the signing command fails and says where the token goes.
    let out = modelspec()
        .args(["signer", "sign"])
        .arg(&model)
        .args(["--signer", &format!("http://{addr}")])
        .env_remove("MODELSPEC_SIGNER_TOKEN")
        .env_remove("MODELSPEC_SIGNER_TOKEN_FILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("MT0402") && stderr.contains("MODELSPEC_SIGNER_TOKEN"),
        "{stderr}"
    );
}
