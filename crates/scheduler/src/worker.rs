//! The batch loop of one engine: at each token boundary it takes the finished, cancelled and
//! timed-out requests out and admits waiting ones (under the shared lock), then evaluates one
//! step for the whole batch and samples each request's next token (without the lock).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ms_engine::generate::{Decoding, StopReason};
use ms_engine::tokenizer::Tokenizer;
use ms_engine::{BatchItem, Session, eval_batch};
use ms_runtime::energy::{EnergyMeter, EnergySource, POWERCAP_ROOT, tdp_watts_from_env};
use tokio::sync::mpsc::UnboundedSender;

use crate::policy::{Admit, Boundary};
use crate::{Engine, Event, Outcome, Policy, Queued, Shared, State, service_mean, stop_strings};

/// A request in the batch.
struct Active<'t> {
    id: u64,
    prompt: Vec<u32>,
    submitted: Instant,
    admitted: Instant,
    timeout: Option<Duration>,
    events: UnboundedSender<Event>,
    cancelled: Arc<AtomicBool>,
    policy: Policy,
    session: Session,
    decoding: Decoding<'t>,
    /// Prompt tokens evaluated so far; the request generates once all are.
    prefilled: usize,
    /// The last sampled token, evaluated in the next step.
    next: u32,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    inter_token_ms: Vec<f64>,
    joules: f64,
    energy_source: EnergySource,
    batch_sizes: Vec<usize>,
}

impl Active<'_> {
    fn generating(&self) -> bool {
        self.prefilled == self.prompt.len()
    }

    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| self.submitted + t)
    }

    fn outcome(&self, stop: &StopReason, plan: &str, now: Instant) -> Outcome {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        // The end-of-generation token is sampled but is no part of the answer.
        let eog = usize::from(matches!(stop, StopReason::EndOfGeneration(_)));
        let (stop, stop_detail) = stop_strings(stop);
        Outcome {
            id: self.id,
            stop,
            stop_detail,
            prompt_tokens: self.prompt.len(),
            completion_tokens: self.decoding.tokens().len().saturating_sub(eog),
            queued_ms: ms(self.admitted - self.submitted),
            ttft_ms: self.first_token.map_or(0.0, |t| ms(t - self.submitted)),
            inter_token_ms: self.inter_token_ms.clone(),
            total_ms: ms(now - self.submitted),
            joules: self.joules,
            energy_source: self.energy_source,
            plan: plan.to_string(),
            policy: self.policy,
            batch_sizes: self.batch_sizes.clone(),
            text: self.decoding.text().to_string(),
            tokens: self.decoding.tokens().to_vec(),
        }
    }
}

/// What the loop did since it last held the lock; added to the totals at the next boundary.
#[derive(Default)]
struct Tally {
    left: usize,
    completed: u64,
    cancelled: u64,
    failed: u64,
    timed_out: u64,
    prompt_tokens: u64,
    generated_tokens: u64,
    steps: u64,
    joules: f64,
    panics: u64,
    /// Service times (admission to completion) of the requests completed.
    completions: Vec<Duration>,
}

impl Tally {
    fn apply(&mut self, st: &mut State) {
        let t = std::mem::take(self);
        st.running = st.running.saturating_sub(t.left);
        let totals = &mut st.totals;
        totals.completed += t.completed;
        totals.cancelled += t.cancelled;
        totals.failed += t.failed;
        totals.timed_out += t.timed_out;
        totals.prompt_tokens += t.prompt_tokens;
        totals.generated_tokens += t.generated_tokens;
        totals.steps += t.steps;
        totals.joules += t.joules;
        totals.panics += t.panics;
        for c in t.completions {
            st.service_ewma = Some(service_mean(st.service_ewma, c.as_secs_f64()));
        }
    }

    fn fail(&mut self, events: &UnboundedSender<Event>, message: String) {
        let _ = events.send(Event::Failed(message));
        self.failed += 1;
        self.left += 1;
    }

    fn time_out(&mut self, events: &UnboundedSender<Event>, timeout: Option<Duration>) {
        let secs = timeout.unwrap_or_default().as_secs_f64();
        self.fail(
            events,
            format!("the request timed out after {secs:.3} s (its limit, queue time included)"),
        );
        self.timed_out += 1;
    }
}

pub(crate) fn run(shared: &Arc<Shared>, engine: Engine, generation: u64) {
    let tok = Arc::clone(&engine.tokenizer);
    let mut active: Vec<Active<'_>> = Vec::new();
    let mut tally = Tally::default();
    let served = catch_unwind(AssertUnwindSafe(|| {
        serve(shared, &engine, &tok, generation, &mut active, &mut tally)
    }));
    if let Err(panic) = served {
        // A bug, not a request's fault: fail the batch, keep serving the queue on a new loop.
        let what = panic_message(&*panic);
        tally.panics += 1;
        for a in active.drain(..) {
            tally.fail(&a.events, format!("the batch loop failed: {what}"));
        }
        let mut st = shared.lock();
        tally.apply(&mut st);
        let current = st.generation == generation;
        if !current {
            st.draining = st.draining.saturating_sub(1);
        }
        let respawn = current && !st.shutdown;
        drop(st);
        if respawn {
            shared.spawn_worker(engine.clone(), generation);
        }
    }
}

fn serve<'t>(
    shared: &Shared,
    engine: &Engine,
    tok: &'t Tokenizer,
    generation: u64,
    active: &mut Vec<Active<'t>>,
    tally: &mut Tally,
) {
    let mut policy = Policy::Fifo;
    // The energy estimate's parameters, read once (the meter itself starts at every step).
    let meter = (
        tdp_watts_from_env(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    while let Some(admitted) = boundary(
        shared,
        generation,
        &engine.plan_name,
        active,
        tally,
        &mut policy,
    ) {
        let now = Instant::now();
        for q in admitted {
            if let Some(a) = admit(q, engine, tok, policy, now, tally) {
                active.push(a);
            }
        }
        if active.is_empty() {
            continue;
        }
        // A panic inside a step (the engine, a sampler) fails the requests of that step only:
        // their sessions are in an unknown state; the loop itself goes on with the queue.
        let stepped = catch_unwind(AssertUnwindSafe(|| {
            injected_panic(shared);
            step(shared, meter, active, policy, &engine.plan_name, tally)
        }));
        if let Err(panic) = stepped {
            let what = panic_message(&*panic);
            for a in active.drain(..) {
                tally.fail(&a.events, format!("the batch step failed: {what}"));
            }
            tally.panics += 1;
            tally.apply(&mut shared.lock());
        }
    }
}

/// Panics when a test asked for it ([`crate::Scheduler::inject_faults`]).
fn injected_panic(shared: &Shared) {
    let mut st = shared.lock();
    if st.faults.step_panics > 0 {
        st.faults.step_panics -= 1;
        drop(st);
        panic!("injected step panic");
    }
}

/// The text of a panic's payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// Under the lock: takes out cancelled and timed-out requests, admits waiting ones (or waits
/// for some). `None` ends the loop (shutdown, or replaced and drained).
fn boundary<'t>(
    shared: &Shared,
    generation: u64,
    plan: &str,
    active: &mut Vec<Active<'t>>,
    tally: &mut Tally,
    policy: &mut Policy,
) -> Option<Vec<Queued>> {
    let mut st = shared.lock();
    loop {
        let now = Instant::now();
        if st.faults.loop_panics > 0 && !st.queue.is_empty() {
            st.faults.loop_panics -= 1;
            drop(st);
            panic!("injected loop panic");
        }
        if st.shutdown {
            for a in active.drain(..) {
                tally.fail(&a.events, "the scheduler shut down".to_string());
            }
            tally.apply(&mut st);
            return None;
        }
        let mut i = 0;
        while i < active.len() {
            let a = &active[i];
            if a.cancelled.load(Ordering::SeqCst) || a.events.is_closed() {
                let mut a = active.remove(i);
                a.decoding.cancel();
                let outcome = a.outcome(&StopReason::Cancelled, plan, now);
                let _ = a.events.send(Event::Finished(outcome));
                tally.cancelled += 1;
                tally.left += 1;
            } else if a.deadline().is_some_and(|d| now >= d) {
                let a = active.remove(i);
                tally.time_out(&a.events, a.timeout);
            } else {
                i += 1;
            }
        }
        tally.apply(&mut st);

        let current = st.generation == generation;
        let mut wait_for = None;
        if current {
            *policy = st.config.policy;
            expire_queued(&mut st, now, tally);
            tally.apply(&mut st);
            let oldest_wait = st
                .queue
                .front()
                .map_or(Duration::ZERO, |q| now - q.submitted);
            let decision = policy.admit(Boundary {
                max_batch: st.config.max_batch,
                running: active.len(),
                waiting: st.queue.len(),
                oldest_wait,
            });
            match decision {
                Admit::Now(n) if n > 0 => {
                    let taken = take(&mut st.queue, n, policy.shortest_first());
                    st.running += taken.len();
                    st.totals.admitted += taken.len() as u64;
                    return Some(taken);
                }
                Admit::Now(_) => {}
                Admit::Later(d) => wait_for = Some(d),
            }
        }
        if !active.is_empty() {
            return Some(Vec::new());
        }
        if !current {
            st.draining = st.draining.saturating_sub(1);
            return None;
        }
        // Idle: sleep until a submission, a cancellation, the policy's moment or the nearest
        // queued deadline.
        let deadline = st.queue.iter().filter_map(Queued::deadline).min();
        let until_deadline = deadline.map(|d| d.saturating_duration_since(now));
        let timeout = match (wait_for, until_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        st = match timeout {
            Some(t) => {
                shared
                    .wake
                    .wait_timeout(st, t)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => shared.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// Fails the waiting requests whose time is up.
fn expire_queued(st: &mut State, now: Instant, tally: &mut Tally) {
    let mut i = 0;
    while i < st.queue.len() {
        if st.queue[i].deadline().is_some_and(|d| now >= d) {
            if let Some(q) = st.queue.remove(i) {
                tally.time_out(&q.events, q.request.timeout);
                // It never ran: not one of the running requests that leave.
                tally.left -= 1;
            }
        } else {
            i += 1;
        }
    }
}

/// The next `n` waiting requests: in arrival order, or shortest prompt first (ties in arrival
/// order).
fn take(queue: &mut std::collections::VecDeque<Queued>, n: usize, shortest: bool) -> Vec<Queued> {
    if !shortest {
        return queue.drain(..n.min(queue.len())).collect();
    }
    let mut order: Vec<usize> = (0..queue.len()).collect();
    order.sort_by_key(|&i| (queue[i].request.prompt.len(), i));
    let mut chosen: Vec<usize> = order.into_iter().take(n).collect();
    chosen.sort_unstable();
    let mut taken: Vec<Queued> = chosen
        .into_iter()
        .rev()
        .filter_map(|i| queue.remove(i))
        .collect();
    taken.sort_by_key(|q| (q.request.prompt.len(), q.id));
    taken
}

fn admit<'t>(
    q: Queued,
    engine: &Engine,
    tok: &'t Tokenizer,
    policy: Policy,
    now: Instant,
    tally: &mut Tally,
) -> Option<Active<'t>> {
    let Queued {
        id,
        request,
        submitted,
        events,
        cancelled,
    } = q;
    let session = Session::new(&engine.model);
    if request.prompt.len() >= session.context_length() {
        tally.fail(
            &events,
            format!(
                "context full at admission: the prompt has {} tokens and the context of plan {:?} holds {}",
                request.prompt.len(),
                engine.plan_name,
                session.context_length()
            ),
        );
        return None;
    }
    let decoding = match Decoding::new(tok, &request.prompt, &request.options) {
        Ok(d) => d,
        Err(e) => {
            tally.fail(&events, e.to_string());
            return None;
        }
    };
    Some(Active {
        id,
        prompt: request.prompt,
        submitted,
        admitted: now,
        timeout: request.timeout,
        events,
        cancelled,
        policy,
        session,
        decoding,
        prefilled: 0,
        next: 0,
        first_token: None,
        last_token: None,
        inter_token_ms: Vec::new(),
        joules: 0.0,
        energy_source: EnergySource::Estimated,
        batch_sizes: Vec::new(),
    })
}

/// One batch evaluation and one sampled token for every request that has its whole prompt in.
fn step(
    shared: &Shared,
    meter: (f64, usize),
    active: &mut Vec<Active<'_>>,
    policy: Policy,
    plan: &str,
    tally: &mut Tally,
) {
    let generating = active.iter().any(Active::generating);
    let mut budget = policy.prefill_budget(generating);
    let counts: Vec<usize> = active
        .iter()
        .map(|a| {
            if a.generating() {
                return 1;
            }
            let left = a.prompt.len() - a.prefilled;
            match &mut budget {
                None => left,
                Some(b) => {
                    let n = left.min(*b);
                    *b -= n;
                    n
                }
            }
        })
        .collect();
    let rows = counts.iter().filter(|&&n| n > 0).count();
    let step_tokens: usize = counts.iter().sum();

    let meter = EnergyMeter::start_with(Path::new(POWERCAP_ROOT), meter.0, meter.1);
    let result = {
        let mut items: Vec<BatchItem<'_>> = active
            .iter_mut()
            .zip(&counts)
            .filter(|(_, n)| **n > 0)
            .map(|(a, &n)| {
                let Active {
                    session,
                    prompt,
                    prefilled,
                    next,
                    ..
                } = a;
                let tokens = if *prefilled < prompt.len() {
                    &prompt[*prefilled..*prefilled + n]
                } else {
                    std::slice::from_ref(next)
                };
                BatchItem { session, tokens }
            })
            .collect();
        eval_batch(&mut items)
    };
    if let Err(e) = result {
        // Nothing was evaluated: drop the request the engine refused, the others go again.
        if let Some(i) = counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .nth(e.index)
            .map(|(i, _)| i)
        {
            let a = active.remove(i);
            tally.fail(
                &a.events,
                format!("the engine refused the request: {}", e.source),
            );
        } else {
            // An error not tied to one request would repeat at every step: end them all.
            for a in active.drain(..) {
                tally.fail(&a.events, format!("the engine failed: {e}"));
            }
        }
        return;
    }

    // Sample every request whose prompt is complete; send the events after the energy is known.
    let mut steps = Vec::with_capacity(rows);
    for (i, (a, &n)) in active.iter_mut().zip(&counts).enumerate() {
        if n == 0 {
            continue;
        }
        a.batch_sizes.push(rows);
        if !a.generating() {
            a.prefilled += n;
            tally.prompt_tokens += n as u64;
            if !a.generating() {
                continue;
            }
        }
        let result = a.decoding.step(a.session.logits(), a.session.remaining());
        let now = Instant::now();
        if result.is_ok() {
            if let Some(last) = a.last_token {
                a.inter_token_ms.push((now - last).as_secs_f64() * 1e3);
            }
            a.first_token.get_or_insert(now);
            a.last_token = Some(now);
            tally.generated_tokens += 1;
        }
        steps.push((i, result));
    }
    let energy = meter.finish();
    let joules = energy.joules;
    tally.steps += 1;
    tally.joules += joules;
    if step_tokens > 0 {
        for (a, &n) in active.iter_mut().zip(&counts) {
            a.joules += joules * n as f64 / step_tokens as f64;
            a.energy_source = energy.source;
        }
    }

    let mut finished = Vec::new();
    let mut events = Vec::with_capacity(steps.len() + 1);
    for (i, result) in steps {
        let Some(a) = active.get_mut(i) else { continue };
        match result {
            Ok(step) => {
                events.push((
                    i,
                    Event::Token {
                        token: step.token,
                        text: step.text,
                        logprobs: step.logprobs,
                    },
                ));
                a.next = step.token;
                if let Some(stop) = step.stop {
                    let end = a.last_token.unwrap_or_else(Instant::now);
                    events.push((i, Event::Finished(a.outcome(&stop, plan, end))));
                    tally.completed += 1;
                    tally.left += 1;
                    tally
                        .completions
                        .push(end.saturating_duration_since(a.admitted));
                    finished.push(i);
                }
            }
            Err(e) => {
                events.push((i, Event::Failed(e.to_string())));
                tally.failed += 1;
                tally.left += 1;
                finished.push(i);
            }
        }
    }
    // The totals first, so that a caller who has seen its request end finds it counted.
    tally.apply(&mut shared.lock());
    for (i, event) in events {
        if let Some(a) = active.get(i) {
            let _ = a.events.send(event);
        }
    }
    // Back to front, so that the indices stay valid and the others keep their order.
    for i in finished.into_iter().rev() {
        active.remove(i);
    }
}
