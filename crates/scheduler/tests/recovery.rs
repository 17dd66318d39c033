//! The batch loop survives its failures: a panic inside a step fails that step's requests and
//! the loop goes on; a batch thread that cannot be started is reported by `health` (not as a
//! shutdown), and `restart` brings the loop back.

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
fn a_batch_thread_that_cannot_start_is_unhealthy_until_restarted() {
    let engine = tiny(256, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Fifo, 1, 8));
    scheduler.inject_faults(Faults {
        thread_starts: 1,
        ..Faults::default()
    });
    // A plan change whose new loop cannot start.
    scheduler.replace(engine.clone(), config(Policy::Fifo, 1, 8));
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
}
