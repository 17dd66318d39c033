//! Server processes that die with the test process: each is spawned from a dedicated thread
//! that lives as long as the child (the parent-death signal fires when the *thread* that forked
//! exits, and cargo's test threads come and go), with `PR_SET_PDEATHSIG = SIGKILL` set in the
//! child right before exec. Whether the test binary returns, panics, aborts or is killed with
//! SIGKILL, the kernel kills the server. Also their scratch directories, which a later test
//! process removes once their owner is dead (a `static` is never dropped, so the process that
//! made one cannot).

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A running child tied to this process.
pub(crate) struct Tied {
    pub pid: u32,
    exit: Arc<(Mutex<Option<ExitStatus>>, Condvar)>,
}

impl Tied {
    /// The exit status, if the child has ended.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout` for the child to end.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let (lock, cvar) = &*self.exit;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cvar
            .wait_timeout_while(guard, timeout, |s| s.is_none())
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

/// Spawns `cmd` from a new long-lived thread with the death signal set. `pre_exec` closures the
/// caller added run first (a credential change clears the death signal, so it must come last).
pub(crate) fn spawn(name: &str, mut cmd: Command) -> io::Result<Tied> {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only calls the
    // async-signal-safe prctl and getppid.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::other("the test process ended before exec"));
            }
            Ok(())
        });
    }
    let exit = Arc::new((Mutex::new(None), Condvar::new()));
    let (tx, rx) = mpsc::channel();
    let thread_exit = Arc::clone(&exit);
    std::thread::Builder::new()
        .name(format!("tied-{name}"))
        .spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(child.id()));
                // This thread must outlive the child: block until it ends.
                let status = child.wait().ok();
                let (lock, cvar) = &*thread_exit;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = status;
                cvar.notify_all();
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })?;
    let pid = rx
        .recv()
        .map_err(|_| io::Error::other("spawning thread died"))??;
    Ok(Tied { pid, exit })
}

/// Whether `pid` names a live (not zombie) process.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may contain anything.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Waits up to `timeout` for every pid to be gone; returns those still alive.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|&p| is_alive(p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pids of `pid`'s direct children.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// A fresh scratch directory `<kind>-<pid>` for this process, under a per-user base in the
/// system temp dir (every user can traverse /tmp, which the `postgres` user needs). Directories
/// of this kind whose process is dead are removed first, after `on_stale` saw each.
pub(crate) fn scratch_dir(kind: &str, on_stale: fn(&Path)) -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let base = std::env::temp_dir().join(format!("modelspec-test-servers-{uid}"));
    std::fs::create_dir_all(&base).unwrap_or_else(|e| panic!("creating {}: {e}", base.display()));
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(kind)?.strip_prefix('-')?.parse::<u32>().ok())
            else {
                continue;
            };
            if !is_alive(pid) {
                on_stale(&entry.path());
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(format!("{kind}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The last `lines` lines of a log file, for failure messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
