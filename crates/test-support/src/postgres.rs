//! A throwaway PostgreSQL for tests: `initdb` into a scratch directory and `postgres` on a free
//! loopback port, once per test process, killed by the kernel when the test process ends
//! ([`crate::tied_child`]); [`Postgres::database`] creates a fresh database per call so that
//! tests sharing the server stay isolated. As root, both run as the `postgres` user (initdb
//! refuses root); otherwise as the current user. The binaries come from
//! `MODELSPEC_PG_BINDIR`, `/usr/lib/postgresql/15/bin`, `pg_config --bindir` or PATH.
//!
//! ```no_run
//! // postgres://postgres@127.0.0.1:PORT/test_db_0000
//! let url = ms_test_support::postgres::database();
//! ```

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::ports::free_ports;
use crate::tied_child::{self, Tied};

/// How long initdb and the server's start may take (generous: a loaded 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Starts tried with a fresh port before giving up (another process may take it first).
const START_ATTEMPTS: usize = 3;
/// The superuser initdb creates; tests connect as it, trusted on the loopback interface.
const SUPERUSER: &str = "postgres";

/// The running server of this test process.
pub struct Postgres {
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    bindir: PathBuf,
    log: PathBuf,
    child: Tied,
    databases: AtomicU32,
}

/// The server of this test process, started on first use.
pub fn postgres() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// A fresh, empty database on [`postgres`]'s server: its `postgres://` URL.
pub fn database() -> String {
    postgres().database()
}

impl Postgres {
    /// Creates a new, empty database and returns its URL,
    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_db_{n:04}");
        if let Err(e) = self.psql(&format!("CREATE DATABASE {name}")) {
            panic!("creating database {name}: {e}\n{}", self.log_tail());
        }
        self.url(&name)
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The postmaster's process id (tests check that it dies with the test process).
    pub fn pid(&self) -> u32 {
        self.child.pid
    }

    /// Runs one SQL command through `psql` in the `postgres` database.
    fn psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bindir.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
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

/// Where initdb, postgres and psql are.
fn bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MODELSPEC_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let debian = PathBuf::from("/usr/lib/postgresql/15/bin");
    if debian.join("initdb").exists() {
        return debian;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|d| d.join("initdb").exists()))
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries (initdb, postgres) not found: install them \
                 (apt-get install postgresql-15) or set MODELSPEC_PG_BINDIR"
            )
        })
}

/// The user the server runs as: `Some((uid, gid))` of `postgres` when we are root.
fn server_user() -> Option<(libc::uid_t, libc::gid_t)> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = CString::new(SUPERUSER).expect("no NUL");
    // SAFETY: getpwnam with a valid C string; the result points into static storage that we
    // read at once, before any other getpw* call (tests start this under a OnceLock).
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "running as root, the PostgreSQL server needs a `postgres` user to run as \
         (initdb refuses root): create it (useradd --system postgres)"
    );
    // SAFETY: pw is non-null and points to a valid passwd record (see above).
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// A command run as `user` when given: groups, gid, then uid are dropped in the child before
/// exec ([`tied_child::spawn`] sets the death signal after this, as a credential change
/// clears it).
fn command(program: &Path, user: Option<(libc::uid_t, libc::gid_t)>, log: &Path) -> Command {
    let mut cmd = Command::new(program);
    let log_file = std::fs::File::create(log).expect("creating a PostgreSQL log");
    cmd.stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("dup log"))
        .stderr(log_file)
        .env("LC_ALL", "C");
    if let Some((uid, gid)) = user {
        // SAFETY: the closure runs in the forked child before exec and only calls the
        // async-signal-safe setgroups, setgid and setuid.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd
}

/// Gives `path` to the server's user, if it is not us.
fn chown(path: &Path, user: Option<(libc::uid_t, libc::gid_t)>) {
    let Some((uid, gid)) = user else { return };
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in the path");
    // SAFETY: chown on a valid C path string.
    let rc = unsafe { libc::chown(c_path.as_ptr(), uid, gid) };
    assert_eq!(
        rc,
        0,
        "chown {}: {}",
        path.display(),
        io::Error::last_os_error()
    );
}

fn start() -> Postgres {
    let bindir = bindir();
    let user = server_user();
    let dir = tied_child::scratch_dir("postgres", |_| {});
    let data = dir.join("data");
    let sockets = dir.join("sockets");
    std::fs::create_dir(&sockets).expect("creating the sockets directory");
    for path in [&dir, &sockets] {
        chown(path, user);
    }
    let initdb_log = dir.join("initdb.log");
    let mut initdb = command(&bindir.join("initdb"), user, &initdb_log);
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "--username",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ])
        .current_dir(&dir);
    let initdb = tied_child::spawn("initdb", initdb)
        .unwrap_or_else(|e| panic!("starting {}: {e}", bindir.join("initdb").display()));
    match initdb.wait_timeout(START_TIMEOUT) {
        Some(status) if status.success() => {}
        status => panic!(
            "initdb failed ({status:?}); last lines of {}:\n{}",
            initdb_log.display(),
            tied_child::log_tail(&initdb_log, 40)
        ),
    }
    let mut last_failure = String::new();
    for attempt in 1..=START_ATTEMPTS {
        let port = free_ports(1)[0];
        let log = dir.join(format!("postgres-{attempt}.log"));
        let mut cmd = command(&bindir.join("postgres"), user, &log);
        cmd.arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&sockets)
            .args(["-c", "listen_addresses=127.0.0.1"])
            // Throwaway data: no fsync, no synchronous commit, no full-page writes (a crash of
            // the machine loses the test database, which nobody needs afterwards).
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            // Many test binaries' connection pools at once.
            .args(["-c", "max_connections=300", "-c", "shared_buffers=64MB"])
            .current_dir(&dir);
        let child = tied_child::spawn("postgres", cmd)
            .unwrap_or_else(|e| panic!("starting {}: {e}", bindir.join("postgres").display()));
        let server = Postgres {
            port,
            bindir: bindir.clone(),
            log,
            child,
            databases: AtomicU32::new(0),
        };
        match wait_ready(&server) {
            Ok(()) => return server,
            Err(failure) => last_failure = failure,
        }
        // SAFETY: kill on the pid of our own child (not reaped while the tied thread waits).
        unsafe { libc::kill(server.child.pid as libc::pid_t, libc::SIGKILL) };
        server.child.wait_timeout(Duration::from_secs(10));
    }
    panic!("PostgreSQL did not start after {START_ATTEMPTS} attempts: {last_failure}");
}

/// Polls `SELECT 1` until the server answers on its TCP port.
fn wait_ready(server: &Postgres) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        if let Some(status) = server.child.exit_status() {
            return Err(format!("postgres exited ({status})\n{}", server.log_tail()));
        }
        match server.psql("SELECT 1") {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "no answer within {START_TIMEOUT:?} (last: {last})\n{}",
        server.log_tail()
    ))
}
