//! `modelspec registry serve` as a user runs it: a child process over a SQLite registry on a
//! free port, found through its start-up lines, answering a remote client with a token made
//! against the same database; and the bind rule refusing 0.0.0.0 without TLS.

use std::process::{Command, Stdio};

use ms_registry::entity::{Principal, Role, TokenRequest};
use ms_registry::remote::Remote;
use ms_registry::{Embedded, Registry};

fn modelspec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
}

#[test]
fn serves_a_sqlite_registry_to_a_remote_client() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("registry.db").display());
    let mut child = modelspec()
        .args(["registry", "serve", "--db", &db, "--port", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let banner = ms_test_support::serve_banner(&mut child);
    let addr = banner.addr.clone().unwrap_or_else(|| {
        let _ = child.kill();
        panic!("no listening line in:\n{}", banner.printed)
    });
    assert!(addr.starts_with("127.0.0.1:"), "{}", banner.printed);
    assert!(
        banner.printed.contains("Authorization: Bearer"),
        "{}",
        banner.printed
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let admin = Principal {
            name: "os:test".into(),
            role: Role::Admin,
        };
        let store = format!("file://{}", dir.path().join("blobs").display());
        let embedded = Embedded::open(&db, &store, admin).await.unwrap();
        let token = embedded
            .create_token(TokenRequest {
                name: "ci".into(),
                role: Role::Writer,
            })
            .await
            .unwrap()
            .token;
        let remote = Remote::new(&format!("http://{addr}"), &token).unwrap();
        let me = remote.whoami().await.unwrap();
        let refused = Remote::new(&format!("http://{addr}"), "")
            .unwrap()
            .whoami()
            .await
            .unwrap_err();
        (me, refused, token)
    });
    // The CLI itself against the control plane: --registry http://… and --token.
    let listed = modelspec()
        .args([
            "model",
            "list",
            "--json",
            "--registry",
            &format!("http://{addr}"),
        ])
        .env("MODELSPEC_REGISTRY_TOKEN", &outcome.2)
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let (me, refused, _) = outcome;
    assert_eq!(me.name, "ci");
    assert_eq!(me.role, Role::Writer);
    assert_eq!(refused.code, "MG0503", "{refused}");
}

#[test]
fn refuses_every_interface_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("registry.db").display());
    let out = modelspec()
        .args([
            "registry", "serve", "--db", &db, "--host", "0.0.0.0", "--port", "0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MG0512") && stderr.contains("--insecure"),
        "{stderr}"
    );
    assert!(!dir.path().join("registry.db").exists());
}
