//! Nothing lost, nothing half-visible: a writer killed with SIGKILL (kill -9) in the middle of
//! an upload or of a registration leaves a registry that `registry check` finds healthy (no
//! partial blob, no dangling row), and the retried operation succeeds — with SQLite + local
//! files and with PostgreSQL + SeaweedFS. Uploads are slowed by MODELSPEC_TEST_THROTTLE (bytes
//! per second, honoured by the CLI's upload reader) so that the kill lands mid-transfer.

mod registry_common;

use std::process::Stdio;
use std::time::Duration;

use registry_common::{Reg, kill9, noise, sha256_hex, spec_with_artifact, wait_for};

const MIB: usize = 1 << 20;

/// A 64 MiB push through an upload session, killed after the session started and at least a
/// chunk went through; `check` is clean; the re-run resumes from the registry's offset and
/// stores the right bytes.
fn killed_session_upload(reg: &Reg) {
    let file = reg.path("big.bin");
    let bytes = noise(64 * MIB, 7);
    std::fs::write(&file, &bytes).unwrap();
    let id = format!("sha256:{}", sha256_hex(&bytes));
    let state = reg
        .data_dir()
        .join("uploads")
        .join(format!("{}.json", sha256_hex(&bytes)));
    let mut child = reg
        .cmd(&["artifact", "push", file.to_str().unwrap()])
        .env("MODELSPEC_TEST_THROTTLE", (8 * MIB).to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The session id is recorded before the first byte goes; one 8 MiB chunk takes ~1 s, and
    // the throttle makes the whole push take at least 8 s: 5 s leave time for a chunk to land
    // on a loaded machine while the push is surely still running.
    wait_for("the upload session", Duration::from_secs(120), || {
        state.is_file()
    });
    std::thread::sleep(Duration::from_millis(5000));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the push ended too soon"
    );
    kill9(&mut child);

    reg.check_clean();
    reg.fails(&["artifact", "show", &id], 1);

    let o = reg.run(&["artifact", "push", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "[{}] {err}", reg.label);
    assert!(
        err.contains("resuming the upload at byte"),
        "[{}] {err}",
        reg.label
    );
    assert!(!state.exists(), "the state file is removed once done");
    let out = reg.path("back.bin");
    reg.ok(&["artifact", "pull", &id, "-o", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == bytes, "pulled bytes differ");
    reg.check_clean();
}

/// A 12 MiB single-request push (below the session threshold), killed mid-stream: nothing
/// visible, check clean, the re-run stores it.
fn killed_streamed_upload(reg: &Reg) {
    let file = reg.path("mid.bin");
    let bytes = noise(12 * MIB, 8);
    std::fs::write(&file, &bytes).unwrap();
    let id = format!("sha256:{}", sha256_hex(&bytes));
    let mut child = reg
        .cmd(&["artifact", "push", file.to_str().unwrap()])
        .env("MODELSPEC_TEST_THROTTLE", (4 * MIB).to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Hashing 12 MiB and opening the registry take well under this; sending takes ~3 s.
    std::thread::sleep(Duration::from_millis(2000));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the push ended too soon"
    );
    kill9(&mut child);
    reg.check_clean();
    reg.fails(&["artifact", "show", &id], 1);
    reg.ok(&["artifact", "push", file.to_str().unwrap()]);
    let shown = reg.json(&["artifact", "show", &id]);
    assert_eq!(shown["size"], 12 * MIB);
    reg.check_clean();
}

/// Registrations killed at a spread of moments (opening, pushing, inside the transaction,
/// after it): whatever happened is whole — versions 1..n without a gap, audit without a gap,
/// check clean — and the retried registration succeeds.
fn killed_registrations(reg: &Reg) {
    let work = reg.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let (spec, _, _) = spec_with_artifact(&work, "crash-model", &noise(2 * MIB, 9));
    let spec = spec.to_str().unwrap().to_string();
    // The artifact first, so that most kills land in the registration itself.
    reg.ok(&["model", "register", &spec]);
    for (i, delay_ms) in [5u64, 20, 40, 60, 80, 100, 130, 160, 200, 250, 300, 400]
        .into_iter()
        .enumerate()
    {
        let metric = format!("run={i}");
        let mut child = reg
            .cmd(&["model", "register", &spec, "--metric", &metric])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill9(&mut child);
    }
    reg.check_clean();
    reg.audit_gapless();
    let all = reg.json(&["model", "list", "--all"]);
    let mut versions: Vec<u64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    versions.sort();
    let n = versions.len() as u64;
    assert_eq!(versions, (1..=n).collect::<Vec<_>>(), "[{}]", reg.label);
    // Retrying each killed registration succeeds: it is either the version that did commit
    // (same manifest) or a new one.
    for i in 0..12 {
        let metric = format!("run={i}");
        let v = reg.json(&["model", "register", &spec, "--metric", &metric]);
        assert!(v["version"].as_u64().unwrap() >= 2, "{v:#}");
    }
    let all = reg.json(&["model", "list", "--all"]);
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        13,
        "[{}] {all:#}",
        reg.label
    );
    reg.check_clean();
    reg.audit_gapless();
}

#[test]
fn kill_9_during_uploads_and_registrations_sqlite() {
    let reg = Reg::sqlite();
    killed_session_upload(&reg);
    killed_streamed_upload(&reg);
    killed_registrations(&reg);
}

#[test]
fn kill_9_during_uploads_and_registrations_postgres_s3() {
    let reg = Reg::postgres_s3();
    killed_session_upload(&reg);
    killed_streamed_upload(&reg);
    killed_registrations(&reg);
}
