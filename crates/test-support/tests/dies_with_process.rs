//! The servers die with the test process that started them: this test re-runs its own binary
//! as a probe that starts SeaweedFS and PostgreSQL, prints their pids (and the postmaster's
//! children) and then aborts, or is killed with SIGKILL; every pid must be gone soon after.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use ms_test_support::tied_child::{children_of, wait_gone};
use ms_test_support::{postgres, seaweed};

const PROBE: &str = "MS_TEST_SUPPORT_PROBE";
/// Marks the pids line (libtest may print `test NAME ... ` before it on the same line).
const MARK: &str = "probe-pids:";

/// In the probe process: start both servers, print the pids, then end as told.
fn probe(how: &str) -> ! {
    let s3 = seaweed::seaweed();
    s3.bucket();
    let pg = postgres::postgres();
    pg.database();
    let mut pids = vec![s3.pid(), pg.pid()];
    pids.extend(children_of(pg.pid()));
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    println!("\n{MARK} {}", pids.join(" "));
    match how {
        "abort" => std::process::abort(),
        _ => loop {
            // Wait for the SIGKILL of the test.
            std::thread::sleep(Duration::from_secs(1));
        },
    }
}

/// Runs `test` of this binary as a probe; returns the child and its pids once printed.
fn run_probe(test: &str, how: &str) -> (std::process::Child, Vec<u32>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(PROBE, how)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let pids = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            let (_, pids) = l.split_once(MARK)?;
            Some(
                pids.split_whitespace()
                    .map(|n| n.parse().unwrap())
                    .collect::<Vec<u32>>(),
            )
        })
        .expect("the probe prints its servers' pids");
    assert!(
        pids.len() >= 3,
        "weed, the postmaster and its children: {pids:?}"
    );
    (child, pids)
}

fn assert_gone(pids: &[u32]) {
    let alive = wait_gone(pids, Duration::from_secs(60));
    assert!(
        alive.is_empty(),
        "left running after the test process ended: {alive:?}"
    );
}

#[test]
fn servers_die_when_the_test_process_aborts() {
    if let Ok(how) = std::env::var(PROBE) {
        probe(&how);
    }
    let (mut child, pids) = run_probe("servers_die_when_the_test_process_aborts", "abort");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the probe aborted: {status}");
    assert_gone(&pids);
}

#[test]
fn servers_die_when_the_test_process_is_killed() {
    if let Ok(how) = std::env::var(PROBE) {
        probe(&how);
    }
    let (mut child, pids) = run_probe("servers_die_when_the_test_process_is_killed", "kill");
    child.kill().unwrap(); // SIGKILL: no destructor, no handler runs in the probe
    child.wait().unwrap();
    assert_gone(&pids);
}
