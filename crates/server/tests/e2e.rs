//! End to end with the official `openai` Python package against the real server on loopback,
//! serving the default model (Gemma 3 270M): models, chat and completions, streaming and not,
//! stop strings, errors, API keys, logprobs and refused tool calls. The interpreter comes from
//! MODELSPEC_E2E_PYTHON (CI sets it); without it the test makes a venv at target/e2e-venv with
//! `openai` pinned ([`ms_test_support::python`]).

mod common;

use std::process::Command;

use common::start_with;
use ms_test_support::python::python;

#[test]
fn the_official_openai_client_works_against_the_server() {
    let python = python();
    let model = ms_fetch::default_model().expect("the default model");
    let key = "sk-e2e-key";
    let server = start_with(&model.display().to_string(), |c| {
        c.model_id = "gemma3-270m".into();
        c.api_keys = ms_server::guard::ApiKeys::new([key]).unwrap();
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/openai_client.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(format!("http://{}", server.addr))
        .arg("gemma3-270m")
        .arg(key)
        .output()
        .expect("the e2e script runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openai client checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.starts_with("ok: "), "{stdout}");
    eprintln!("{stdout}");
}
