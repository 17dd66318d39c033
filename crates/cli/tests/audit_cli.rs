//! `modelspec audit checkpoint|verify|witness` as a user runs them: a local SQLite registry's
//! log verified offline, then over HTTP through `registry serve` with the printed log key; a
//! byte of an event changed in the SQLite file and named by both; a witness cosigning the
//! checkpoint, then refusing the rewritten history.

mod registry_common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use registry_common::{Reg, bin};

/// Runs one SQL statement on the SQLite file, as someone with write access to it would
/// (Python's sqlite3: no modelspec code involved).
fn sqlite(db: &std::path::Path, sql: &str) {
    let status = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.commit()",
        ])
        .arg(db)
        .arg(sql)
        .status()
        .unwrap();
    assert!(status.success());
}

fn stderr_of(reg: &Reg, args: &[&str]) -> (String, String) {
    let out = reg.run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A `modelspec audit witness` child and the lines it starts with.
struct WitnessChild {
    child: Child,
    url: String,
    key: String,
}

impl Drop for WitnessChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn witness(reg: &Reg, log_key: &str) -> WitnessChild {
    let key = reg.path("witness.pem");
    ms_trust::keyfile::KeyFileSigner::generate(ms_trust::Algorithm::Ed25519)
        .unwrap()
        .save_pkcs8_pem(&key)
        .unwrap();
    let mut child = Command::new(bin())
        .args([
            "audit", "witness", "--port", "0", "--name", "w1", "--log", log_key,
        ])
        .arg("--key")
        .arg(&key)
        .arg("--state")
        .arg(reg.path("witness-state.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut url, mut wkey) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = rest.split_whitespace().next().unwrap().to_string();
        }
        if let Some(k) = line.strip_prefix("witness key: ") {
            wkey = k.to_string();
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(!url.is_empty() && !wkey.is_empty());
    WitnessChild {
        child,
        url,
        key: wkey,
    }
}

#[test]
fn verify_locally_and_over_http_find_a_changed_byte_and_a_witness_cosigns() {
    let local = Reg::sqlite();
    for i in 0..5 {
        local.ok(&[
            "registry",
            "token",
            "create",
            "--name",
            &format!("t{i}"),
            "--role",
            "reader",
        ]);
    }
    let (note, err) = stderr_of(&local, &["audit", "checkpoint"]);
    let log_key = err
        .lines()
        .find_map(|l| l.strip_prefix("log key: "))
        .unwrap_or_else(|| panic!("{err}"))
        .to_string();
    assert!(note.lines().nth(1) == Some("5"), "{note}");

    let (out, err) = stderr_of(&local, &["audit", "verify"]);
    assert!(out.contains("ok: 5 entries verified"), "{out}");
    assert!(err.contains("development key file"), "{err}");

    // A witness cosigns the checkpoint; the registry keeps it, verify counts it.
    let w = witness(&local, &log_key);
    let mut with_witness = local.cmd(&["audit", "checkpoint", "--witness-url", &w.url]);
    with_witness.env("MODELSPEC_LOG_WITNESSES", &w.key);
    let out = with_witness.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let note = String::from_utf8(out.stdout).unwrap();
    assert!(note.contains("— w1 "), "{note}");
    let out = local.ok(&["audit", "verify", "--witness", &w.key, "--quorum", "1"]);
    assert!(out.contains("cosigned by: w1"), "{out}");

    // Over HTTP, with the log key the operator printed.
    let remote = Reg::remote(local);
    let out = remote.ok(&["audit", "verify", "--log-key", &log_key]);
    assert!(out.contains("ok: 6 entries verified"), "{out}");
    let (_, err) = remote.fails(&["audit", "verify"], 1);
    assert!(err.contains("MG1013"), "{err}");

    // One byte of event 2 in the SQLite file: both clients name it.
    let backing = remote.backing.as_ref().unwrap();
    let db = backing.data_dir().join("registry.db");
    sqlite(
        &db,
        "UPDATE audit_events SET actor = 'os:mallorY' WHERE seq = 2",
    );
    let (out, err) = backing.fails(&["audit", "verify"], 1);
    assert!(out.contains("entry 2 changed"), "{out}");
    assert!(err.contains("MG1010"), "{err}");
    let (out, _) = backing.fails(&["audit", "verify", "--json"], 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], false, "{report:#}");
    assert_eq!(report["findings"][0]["kind"], "changed", "{report:#}");
    assert_eq!(report["findings"][0]["code"], "MT0612", "{report:#}");
    let (out, _) = remote.fails(&["audit", "verify", "--log-key", &log_key], 1);
    assert!(out.contains("entry 2 changed"), "{out}");

    // History rewritten and re-signed (checkpoints dropped): the witness refuses to cosign a
    // tree that does not extend the one it cosigned (422: the proof from its size fails).
    sqlite(
        &db,
        "DELETE FROM audit_cosignatures; DELETE FROM audit_checkpoints; DELETE FROM audit_hashes;",
    );
    let mut again = backing.cmd(&["audit", "checkpoint", "--witness-url", &w.url]);
    again.env("MODELSPEC_LOG_WITNESSES", &w.key);
    let out = again.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MG1012") && err.contains("422"), "{err}");
    // And the client that kept the old checkpoint sees the fork.
    let (out, _) = backing.fails(&["audit", "verify"], 1);
    assert!(out.contains("forked"), "{out}");
}
