//! Builds tiny real wheels for the tests, so that the whole `pip download` path runs offline.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Writes `{name}-{version}-py3-none-any.whl` into `dir`, holding `files` (path, bytes) and the
/// metadata pip checks.
pub fn write_wheel(dir: &Path, name: &str, version: &str, files: &[(&str, &[u8])]) {
    let module = name.replace('-', "_");
    let wheel = dir.join(format!("{module}-{version}-py3-none-any.whl"));
    let info = format!("{module}-{version}.dist-info");
    let mut entries: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, b)| (p.to_string(), b.to_vec()))
        .collect();
    entries.push((
        format!("{info}/METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").into_bytes(),
    ));
    entries.push((
        format!("{info}/WHEEL"),
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_vec(),
    ));
    entries.push((format!("{info}/RECORD"), Vec::new()));
    // The zip is written by Python's own zipfile module (deflated, as real wheels are).
    let dir_in = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    for (i, (path, bytes)) in entries.iter().enumerate() {
        let f = dir_in.path().join(format!("{i}"));
        std::fs::write(&f, bytes).unwrap();
        args.push(path.clone());
        args.push(f.to_string_lossy().into_owned());
    }
    let script = "import sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\n\
        a = sys.argv[2:]\n\
        [z.write(a[i + 1], a[i]) for i in range(0, len(a), 2)]\n\
        z.close()\n";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&wheel)
        .args(&args)
        .status()
        .unwrap();
    assert!(status.success(), "building the test wheel failed");
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}
