//! The scheduler on the tiny llama oracle model: every policy gives each request the tokens of
//! the engine's own generation loop; a full queue refuses at once; cancellation frees slots;
//! timeouts; replacing the engine lets in-flight requests finish on the old one.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ms_scheduler::{Event, Policy, Request, Scheduler, SubmitError};

/// A request that runs until cancelled (the context is long and there is no token limit).
fn endless(engine: &ms_scheduler::Engine) -> Request {
    request(engine, "Once upon a time", greedy(0))
}

#[test]
fn every_policy_gives_each_request_the_tokens_it_gets_alone() {
    let engine = tiny(256, "tiny");
    let requests = mixed_requests(&engine);
    let expected = reference(&engine, &requests);
    for policy in Policy::ALL {
        let scheduler = Scheduler::start(engine.clone(), config(policy, 4, 16));
        let got = run_all(&scheduler, &requests);
        for (i, (c, (tokens, text))) in got.iter().zip(&expected).enumerate() {
            assert_eq!(&c.tokens, tokens, "{policy}: request {i} tokens");
            assert_eq!(&c.text, text, "{policy}: request {i} text");
            let o = c.outcome();
            assert_eq!(o.policy, policy);
            assert_eq!(o.plan, "tiny");
            assert_eq!(o.prompt_tokens, requests[i].prompt.len());
            assert!(o.batch_sizes.iter().all(|&b| (1..=4).contains(&b)));
            assert_eq!(o.inter_token_ms.len(), o.tokens.len() - 1);
            assert!(o.queued_ms <= o.ttft_ms && o.ttft_ms <= o.total_ms, "{o:?}");
        }
        let snap = scheduler.snapshot();
        assert_eq!(
            (snap.completed_total, snap.running, snap.queue_depth),
            (8, 0, 0)
        );
        assert_eq!(
            snap.prompt_tokens_total,
            requests.iter().map(|r| r.prompt.len() as u64).sum::<u64>()
        );
        // Energy is shared out completely among the rows.
        let shared: f64 = got.iter().map(|c| c.outcome().joules).sum();
        assert!((shared - snap.joules_total).abs() <= 1e-9 * snap.joules_total.max(1.0));
    }
}

#[test]
fn latency_chunks_a_long_prompt_beside_a_generating_request() {
    let engine = tiny(2048, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Latency, 2, 4));
    let mut running = scheduler.submit(endless(&engine)).unwrap();
    let read = first_token(&mut running);
    let long = "word ".repeat(80);
    let req = request(&engine, &long, greedy(4));
    let n = req.prompt.len();
    assert!(n > 2 * ms_scheduler::LATENCY_PREFILL_CHUNK, "{n}");
    let expected = reference(&engine, std::slice::from_ref(&req)).remove(0);
    let mut t = scheduler.submit(req).unwrap();
    let c = collect(&mut t);
    assert_eq!((&c.tokens, &c.text), (&expected.0, &expected.1));
    // Prefill steps (ceil(n / chunk)) plus one step per generated token after the first.
    let o = c.outcome();
    let chunks = n.div_ceil(ms_scheduler::LATENCY_PREFILL_CHUNK);
    assert_eq!(o.batch_sizes.len(), chunks + o.tokens.len() - 1, "{o:?}");
    assert!(o.batch_sizes.iter().all(|&b| b == 2), "{o:?}");
    running.cancel();
    match collect_after(&mut running, read).end {
        End::Finished(o) => assert_eq!(o.stop, "cancelled"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_full_queue_refuses_at_once_and_cancelling_frees_the_slot() {
    let engine = tiny(2048, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Fifo, 1, 1));
    let mut a = scheduler.submit(endless(&engine)).unwrap();
    first_token(&mut a);
    let mut b = scheduler
        .submit(request(&engine, "Hello", greedy(5)))
        .unwrap();
    let started = Instant::now();
    let refused = scheduler.submit(request(&engine, "Hi", greedy(5)));
    // The running request never ends by itself: waiting for a slot would hang.
    assert!(started.elapsed() < Duration::from_secs(1));
    match refused {
        Err(SubmitError::QueueFull { retry_after }) => {
            assert!((1..=60).contains(&retry_after.as_secs()), "{retry_after:?}")
        }
        other => panic!("expected QueueFull, got {:?}", other.map(|t| t.id)),
    }
    let snap = scheduler.snapshot();
    assert_eq!(
        (snap.running, snap.queue_depth, snap.rejected_total),
        (1, 1, 1)
    );

    // Dropping the running request's ticket frees its slot: the queued one runs.
    drop(a);
    let c = collect(&mut b);
    assert_eq!(c.outcome().completion_tokens, 5);
    wait_until(&scheduler, "the cancel to be counted", |s| {
        s.cancelled_total == 1 && s.running == 0
    });
    // And the queue has room again.
    let mut c = scheduler.submit(request(&engine, "Hi", greedy(3))).unwrap();
    assert_eq!(collect(&mut c).outcome().completion_tokens, 3);
}

#[test]
fn cancelling_a_waiting_request_removes_it_from_the_queue() {
    let engine = tiny(2048, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Fifo, 1, 2));
    let mut a = scheduler.submit(endless(&engine)).unwrap();
    let read = first_token(&mut a);
    let mut b = scheduler
        .submit(request(&engine, "Hello", greedy(5)))
        .unwrap();
    assert_eq!(scheduler.snapshot().queue_depth, 1);
    b.cancel();
    assert_eq!(scheduler.snapshot().queue_depth, 0);
    assert_eq!(b.blocking_next(), None);
    a.cancel();
    let end = collect_after(&mut a, read);
    match end.end {
        End::Finished(o) => {
            assert_eq!((o.stop, o.stop_detail), ("cancelled", "cancelled"));
            assert!(o.completion_tokens >= 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(scheduler.snapshot().cancelled_total, 2);
}

#[test]
fn timeouts_fail_running_and_waiting_requests() {
    let engine = tiny(2048, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Fifo, 1, 4));
    let mut running = endless(&engine);
    running.timeout = Some(Duration::from_millis(200));
    let mut waiting = request(&engine, "Hello", greedy(5));
    waiting.timeout = Some(Duration::from_millis(50));
    let mut a = scheduler.submit(running).unwrap();
    let mut b = scheduler.submit(waiting).unwrap();
    for (t, what) in [(&mut b, "waiting"), (&mut a, "running")] {
        match collect(t).end {
            End::Failed(m) => assert!(m.contains("timed out"), "{what}: {m}"),
            other => panic!("{what}: expected a timeout, got {other:?}"),
        }
    }
    let snap = scheduler.snapshot();
    assert_eq!((snap.timed_out_total, snap.failed_total), (2, 2));
}

#[test]
fn replace_lets_admitted_requests_finish_on_the_old_engine() {
    let old = tiny(1024, "old");
    let new = tiny(1024, "new");
    let scheduler = Scheduler::start(old.clone(), config(Policy::Fifo, 2, 4));
    let long = request(&old, "Once upon a time", greedy(200));
    let expected = reference(&old, std::slice::from_ref(&long)).remove(0);
    let mut inflight = scheduler.submit(long).unwrap();
    let read = first_token(&mut inflight);
    let mut endless_old = scheduler.submit(endless(&old)).unwrap();
    let endless_read = first_token(&mut endless_old);
    scheduler
        .replace(new.clone(), config(Policy::Latency, 3, 5))
        .unwrap();
    let snap = scheduler.snapshot();
    assert_eq!(
        (snap.plan.as_str(), snap.policy, snap.max_batch),
        ("new", Policy::Latency, 3)
    );
    let mut after = scheduler.submit(request(&new, "Hello", greedy(6))).unwrap();
    let after = collect(&mut after);
    assert_eq!(after.outcome().plan, "new");
    assert_eq!(after.outcome().policy, Policy::Latency);

    let rest = collect_after(&mut inflight, read);
    assert_eq!(rest.outcome().plan, "old");
    assert_eq!((rest.tokens, rest.text), expected);
    // A request cancelled while draining still reports the old plan.
    endless_old.cancel();
    let cancelled = collect_after(&mut endless_old, endless_read);
    assert_eq!(cancelled.outcome().stop, "cancelled");
    assert_eq!(cancelled.outcome().plan, "old");
    wait_until(&scheduler, "the old engine to drain", |s| {
        s.draining_engines == 0
    });
}

#[test]
fn invalid_requests_and_shutdown() {
    let engine = tiny(64, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Fifo, 2, 2));
    let empty = Request {
        prompt: vec![],
        options: greedy(4),
        timeout: None,
    };
    assert!(matches!(
        scheduler.submit(empty),
        Err(SubmitError::Invalid(_))
    ));
    let mut too_long = request(&engine, &"word ".repeat(100), greedy(4));
    assert!(too_long.prompt.len() >= 64);
    assert!(
        matches!(scheduler.submit(too_long.clone()), Err(SubmitError::Invalid(m)) if m.contains("context"))
    );
    too_long.prompt = vec![1, u32::MAX];
    assert!(
        matches!(scheduler.submit(too_long), Err(SubmitError::Invalid(m)) if m.contains("vocabulary"))
    );
    let mut bad = request(&engine, "Hi", greedy(4));
    bad.options.sampling.top_p = 0.0;
    assert!(matches!(scheduler.submit(bad), Err(SubmitError::Invalid(m)) if m.contains("top-p")));

    // A request that fills the context ends with `length`.
    let mut fill = scheduler.submit(request(&engine, "Hi", greedy(0))).unwrap();
    let c = collect(&mut fill);
    assert_eq!(c.outcome().stop_detail, "context_full");
    assert_eq!(
        c.outcome().prompt_tokens + c.outcome().completion_tokens,
        65
    );

    let mut a = scheduler.submit(request(&engine, "Hi", greedy(0))).unwrap();
    scheduler.shutdown();
    assert!(matches!(
        scheduler.submit(request(&engine, "Hi", greedy(1))),
        Err(SubmitError::ShuttingDown)
    ));
    // It either finished before the shutdown or failed because of it.
    let last = std::iter::from_fn(|| a.blocking_next()).last();
    assert!(
        matches!(&last, Some(Event::Failed(m)) if m.contains("shut down"))
            || matches!(&last, Some(Event::Finished(_))),
        "{last:?}"
    );
}

#[test]
fn async_callers_read_events_with_next() {
    let engine = tiny(256, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Fifo, 2, 2));
    let mut t = scheduler
        .submit(request(&engine, "Hello", greedy(5)))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let events = rt.block_on(async {
        let mut events = Vec::new();
        while let Some(e) = t.next().await {
            events.push(e);
        }
        events
    });
    assert_eq!(events.len(), 6);
    assert!(matches!(events.last(), Some(Event::Finished(o)) if o.completion_tokens == 5));
}

#[test]
fn latency_takes_the_shortest_waiting_prompt_first_and_fifo_arrival_order() {
    for (policy, short_first) in [(Policy::Latency, true), (Policy::Fifo, false)] {
        let engine = tiny(2048, "tiny");
        let scheduler = Scheduler::start(engine.clone(), config(policy, 1, 4));
        let mut a = scheduler.submit(endless(&engine)).unwrap();
        let read = first_token(&mut a);
        let mut long = scheduler
            .submit(request(&engine, &"word ".repeat(40), greedy(3)))
            .unwrap();
        let mut short = scheduler.submit(request(&engine, "Hi", greedy(3))).unwrap();
        a.cancel();
        collect_after(&mut a, read);
        let (long, short) = (collect(&mut long), collect(&mut short));
        let (l, s) = (long.outcome(), short.outcome());
        // One at a time: whichever was admitted first had finished before the other started.
        if short_first {
            assert!(s.total_ms < l.queued_ms, "{policy}: {s:?} {l:?}");
        } else {
            assert!(l.total_ms < s.queued_ms, "{policy}: {s:?} {l:?}");
        }
    }
}

#[test]
fn energy_waits_up_to_its_window_for_a_fuller_batch() {
    let engine = tiny(256, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Energy, 4, 4));
    let mut t = scheduler
        .submit(request(&engine, "Hello", greedy(2)))
        .unwrap();
    let o = collect(&mut t).outcome().clone();
    let window = ms_scheduler::ENERGY_WINDOW.as_secs_f64() * 1e3;
    assert!(o.queued_ms >= window, "{o:?}");
    // The request that fills the batch does not wait: all are admitted at its arrival.
    let mut tickets: Vec<_> = (0..4)
        .map(|_| {
            scheduler
                .submit(request(&engine, "Hello", greedy(2)))
                .unwrap()
        })
        .collect();
    let all: Vec<Collected> = tickets.iter_mut().map(collect).collect();
    // Had it waited for the window, the first would have queued at least that long.
    assert!(
        all[0].outcome().queued_ms < window,
        "{:?}",
        all[0].outcome()
    );
    assert!(all.iter().all(|c| c.outcome().completion_tokens == 2));
}

#[test]
fn throughput_gathers_newcomers_until_they_fill_the_free_slots() {
    let engine = tiny(2048, "tiny");
    let scheduler = Scheduler::start(engine.clone(), config(Policy::Throughput, 8, 8));
    let mut running: Vec<_> = (0..5)
        .map(|_| scheduler.submit(endless(&engine)).unwrap())
        .collect();
    for t in &mut running {
        first_token(t);
    }
    // Three slots free, one newcomer: it waits while the five generate.
    let mut late = vec![scheduler.submit(request(&engine, "Hi", greedy(2))).unwrap()];
    std::thread::sleep(Duration::from_millis(100));
    let snap = scheduler.snapshot();
    assert_eq!((snap.running, snap.queue_depth), (5, 1), "{snap:?}");
    // Two more fill the free slots: all three join at the next boundary, prefilled together.
    late.extend((0..2).map(|_| {
        scheduler
            .submit(request(&engine, "Hello", greedy(2)))
            .unwrap()
    }));
    let done: Vec<Collected> = late.iter_mut().map(collect).collect();
    for c in &done {
        assert_eq!(c.outcome().batch_sizes, [8, 8], "{:?}", c.outcome());
    }
    drop(running);
    wait_until(&scheduler, "the cancels", |s| {
        s.running == 0 && s.cancelled_total == 5
    });
}
