//! The batch loop survives its failures: a panic inside a step fails that step's requests and
//! the loop goes on; a replace whose batch thread cannot start changes nothing; a loop that
//! died and could not be restarted is reported by `health` (not as a shutdown), and `restart`
//! brings it back.

mod common;

use common::*;
use ms_scheduler::{Faults, Policy, Scheduler, SubmitError};

#[test]
fn a_panicking_step_fails_its_requests_and_the_loop_goes_on() {
    let engine = tiny(256, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Fifo, 2, 8));
    scheduler.inject_faults(Faults {
        step_panics: 1,
        ..Faults::default()
    });
    let mut t = scheduler
        .submit(request(&engine, "Hello", greedy(4)))
        .unwrap();
    match collect(&mut t).end {
        End::Failed(m) => assert!(m.contains("injected step panic"), "{m}"),
        other => panic!("expected the step's failure, got {other:?}"),
    }
    // The same loop (no restart needed) serves the next request whole.
    assert_eq!(scheduler.health(), Ok(()));
    let req = request(&engine, "Hello", greedy(4));
    let expected = reference(&engine, std::slice::from_ref(&req)).remove(0);
    let c = collect(&mut scheduler.submit(req).unwrap());
    assert_eq!((&c.tokens, &c.text), (&expected.0, &expected.1));
    let snap = scheduler.snapshot();
    assert_eq!((snap.panics_total, snap.failed_total), (1, 1), "{snap:?}");
}

#[test]
fn a_replace_that_cannot_start_its_thread_changes_nothing() {
    let engine = tiny(256, "old");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Fifo, 1, 8));
    scheduler.inject_faults(Faults {
        thread_starts: 1,
        ..Faults::default()
    });
    let new = tiny(256, "new");
    let e = scheduler
        .replace(new, config(Policy::Latency, 2, 8))
        .unwrap_err();
    assert!(e.contains("injected failure"), "{e}");
    assert_eq!(scheduler.health(), Ok(()));
    let snap = scheduler.snapshot();
    assert_eq!((snap.plan.as_str(), snap.max_batch), ("old", 1), "{snap:?}");
    assert_eq!(snap.draining_engines, 0);
    let c = collect(
        &mut scheduler
            .submit(request(&engine, "Hello", greedy(2)))
            .unwrap(),
    );
    assert_eq!(c.outcome().plan, "old");
}

#[test]
fn a_dead_loop_is_unhealthy_until_restarted() {
    let engine = tiny(256, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Fifo, 1, 8));
    // The loop panics outside a step, and its replacement thread cannot start.
    scheduler.inject_faults(Faults {
        loop_panics: 1,
        thread_starts: 1,
        ..Faults::default()
    });
    let mut t = scheduler
        .submit(request(&engine, "Hello", greedy(2)))
        .unwrap();
    match collect(&mut t).end {
        End::Failed(m) => assert!(m.contains("cannot start the batch thread"), "{m}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    let why = scheduler.health().unwrap_err();
    assert!(why.contains("cannot start the batch thread"), "{why}");
    match scheduler.submit(request(&engine, "Hello", greedy(2))) {
        Err(SubmitError::Stopped(m)) => assert_eq!(m, why),
        Err(e) => panic!("expected Stopped, got {e}"),
        Ok(_) => panic!("expected Stopped, got a ticket"),
    }
    scheduler.restart(engine.clone());
    assert_eq!(scheduler.health(), Ok(()));
    let c = collect(
        &mut scheduler
            .submit(request(&engine, "Hello", greedy(2)))
            .unwrap(),
    );
    assert_eq!(c.outcome().completion_tokens, 2);
    assert_eq!(scheduler.snapshot().panics_total, 1);
}
