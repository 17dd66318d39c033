//! 8 processes registering versions of one model at once (each also pushing the same
//! artifact): versions 1..8, no duplicate, no lost update, the audit trail gapless — with
//! SQLite and with PostgreSQL.

mod registry_common;

use std::process::Stdio;

use registry_common::{Reg, noise, spec_with_artifact};

fn eight_writers(reg: &Reg) {
    let work = reg.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let (spec, _, _) = spec_with_artifact(&work, "busy-model", &noise(1 << 20, 3));
    let spec = spec.to_str().unwrap().to_string();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let metric = format!("writer={i}");
            reg.cmd(&["model", "register", &spec, "--metric", &metric, "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut versions = Vec::new();
    for child in children {
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "[{}] {}{}",
            reg.label,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["created"], true, "{v:#}");
        versions.push(v["version"].as_u64().unwrap());
    }
    versions.sort();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>(), "[{}]", reg.label);
    let model = reg.json(&["model", "show", "busy-model"]);
    assert_eq!(model["latestVersion"], 8);
    assert_eq!(model["versions"].as_array().unwrap().len(), 8);
    let events = reg.audit_gapless();
    let registrations = events
        .iter()
        .filter(|e| e["action"] == "model.register")
        .count();
    assert_eq!(registrations, 8);
    reg.check_clean();
}

#[test]
fn eight_processes_register_at_once_sqlite() {
    eight_writers(&Reg::sqlite());
}

#[test]
fn eight_processes_register_at_once_postgres_s3() {
    eight_writers(&Reg::postgres_s3());
}
