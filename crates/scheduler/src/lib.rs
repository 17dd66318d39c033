//! The request scheduler: a queue in front of the engine and a batch loop that runs the admitted
//! requests together, one token at a time (continuous batching).
//!
//! ```text
//! submit() --> queue (max_queue) --policy--> batch (max_batch) --> eval_batch --> Decoding::step
//!    |            full: QueueFull{retry_after}      ^ join / leave at token boundaries  | Token events
//!    Ticket <----------------------------------------------------------------------------+ Finished/Failed
//! ```
//!
//! The batch loop runs on its own OS thread (not on an async runtime). At every token boundary
//! it drops requests that were cancelled (a dropped or cancelled [`Ticket`]) or ran out of time,
//! admits waiting requests as the [`Policy`] says, then evaluates in one
//! [`ms_engine::eval_batch`] call the admitted requests' prompts (or a chunk of them) and the
//! running requests' last sampled tokens. Each request then samples its next token with its own
//! [`ms_engine::generate::Decoding`] (own sampler and seed, own stream decoder and stop
//! strings), so its tokens are bit for bit those it would get alone: the engine's logits do not
//! depend on the batch or on how a prompt is split.
//!
//! # Policies
//!
//! A policy only changes the order and timing of admission and prefill, never a request's
//! tokens.
//!
//! | policy | admits | prefill | trade-off |
//! |---|---|---|---|
//! | `fifo` | in arrival order, at the next token boundary, as many as fit in `max_batch` | each admitted prompt whole, in the same step as the running requests' tokens | simple and fair; a long prompt arriving stalls the running requests for one step |
//! | `latency` | at the next token boundary, as many as fit; shortest prompt first among the waiting | chunked: at most [`LATENCY_PREFILL_CHUNK`] prompt tokens per step (over all prefilling requests) while others are generating, whole prompts when none is | bounded inter-token latency for running requests; long prompts take longer to their first token |
//! | `throughput` | in arrival order; while others are generating, only once the waiting requests fill the free slots or at least half the batch is free (never waits on an empty batch) | the admitted prompts together in one step | fuller batches, fewer passes over the weights; a newcomer may wait for running requests to finish |
//! | `energy` | in arrival order, once the waiting requests fill the free slots or the oldest has waited [`ENERGY_WINDOW`] (50 ms) | the admitted prompts together in one step | fewer, fuller steps and fewer wake-ups (more tokens per joule under bursts), for up to 50 ms more time to first token |
//!
//! With `max_batch` 1 (the plan's default) every policy runs one request at a time in the order
//! above.
//!
//! # Limits
//!
//! `max_queue` bounds the requests waiting for a slot: a request is refused at once with
//! [`SubmitError::QueueFull`] when the waiting requests already fill `max_queue` plus the free
//! slots of the batch. Its `retry_after` estimates when the queue ahead of it will have
//! drained: (waiting requests + 1) × the mean service time (admission to completion, an
//! exponentially weighted mean over completed requests, [`SERVICE_EWMA_WEIGHT`] for the newest)
//! / `max_batch` slots, rounded up to whole seconds and kept within 1 to
//! [`MAX_RETRY_AFTER`]; 1 s per batch of waiting requests before any request has completed.
//! Idle time between requests does not count (it is not service time).
//!
//! A request's `timeout` runs from its submission (queue time included); when it passes, the
//! request ends with [`Event::Failed`] at the next token boundary (or while waiting).
//!
//! # Measurements
//!
//! Every [`Outcome`] carries: `queued_ms` (submission to admission), `ttft_ms` (submission to
//! the first sampled token: queue and prompt evaluation included, as a client sees it),
//! `inter_token_ms` (gaps between consecutive sampled tokens), `total_ms` (submission to the
//! end), `joules` and `batch_sizes` (the rows of each step it took part in). Each step's energy is
//! measured with [`ms_runtime::energy::EnergyMeter`] (RAPL when readable, else the CPU-time
//! estimate) around the batch evaluation and sampling, and shared among the step's rows in
//! proportion to the tokens each evaluated in that step (a prefill chunk of 32 tokens takes 32
//! shares, a generated token one).
//!
//! # Replacing the engine
//!
//! [`Scheduler::replace`] starts a new batch loop on the new engine and config: new and waiting
//! requests go to it, while the requests already admitted finish on the old engine in a draining
//! batch loop that ends when its last request does (the two loops share the cores meanwhile,
//! and the old one's requests do not count against the new `max_batch`). Each `Outcome` names
//! the plan it ran under. The new loop's thread is started before anything changes: if it
//! cannot be, `replace` fails and the old engine keeps serving.
//!
//! # Failures
//!
//! A panic inside a batch step (engine, sampler) fails the requests of that step
//! ([`Snapshot::panics_total`]) and the loop goes on; a panic elsewhere in the loop fails its
//! batch and starts a new loop thread. When no thread can be started, [`Scheduler::health`]
//! says why and submissions get [`SubmitError::Stopped`] until [`Scheduler::restart`] (the
//! server supervises this).

mod policy;
mod worker;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ms_engine::Model;
use ms_engine::generate::{GenerateOptions, StopReason};
use ms_engine::sampler::TokenLogprobs;
use ms_engine::tokenizer::Tokenizer;
use ms_runtime::energy::EnergySource;
use serde::Serialize;
use tokio::sync::mpsc;

pub use policy::{ENERGY_WINDOW, LATENCY_PREFILL_CHUNK, Policy, UnknownPolicy};

/// Weight of the newest completed request in the mean service time of `retry_after`.
pub const SERVICE_EWMA_WEIGHT: f64 = 0.2;
/// Longest `retry_after`.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// A loaded model ready to serve, and the name of the plan it was loaded under.
#[derive(Clone)]
pub struct Engine {
    pub model: Model,
    pub tokenizer: Arc<Tokenizer>,
    pub plan_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub policy: Policy,
    /// Most requests evaluated together (at least 1).
    pub max_batch: usize,
    /// Most requests waiting for a batch slot.
    pub max_queue: usize,
}

impl Default for Config {
    /// The plan defaults (`ms_runtime::plan`): fifo, one request at a time, 64 waiting.
    fn default() -> Self {
        Self {
            policy: Policy::Fifo,
            max_batch: ms_runtime::plan::DEFAULT_MAX_BATCH as usize,
            max_queue: ms_runtime::plan::DEFAULT_MAX_QUEUE as usize,
        }
    }
}

/// One generation request: the whole prompt (tokens) and how to continue it.
#[derive(Debug, Clone)]
pub struct Request {
    pub prompt: Vec<u32>,
    pub options: GenerateOptions,
    /// From submission to the end, queue time included; `None` = no limit.
    pub timeout: Option<Duration>,
}

/// What a [`Ticket`] receives, in order: `Token`s, then one `Finished` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A sampled token and the text that became final with it (possibly empty: part of a UTF-8
    /// character, or held back as the possible start of a stop string). The last token of a
    /// finished request carries all the remaining text; an end-of-generation token is sent too.
    Token {
        token: u32,
        text: String,
        /// The token's log-probability and the likeliest alternatives, when the request's
        /// sampling asks for them (`SamplingParams::logprobs`).
        logprobs: Option<TokenLogprobs>,
    },
    Finished(Outcome),
    /// The request could not complete: timed out, context full, engine error, shutdown.
    Failed(String),
}

/// A request's result and measurements (see the crate docs for the definitions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub id: u64,
    /// OpenAI's `finish_reason`: `stop` (end-of-generation token or stop string), `length`
    /// (max tokens or context full) or `cancelled`.
    pub stop: &'static str,
    /// The precise reason: `eog`, `stop_string`, `max_tokens`, `context_full`, `cancelled`.
    pub stop_detail: &'static str,
    pub prompt_tokens: usize,
    /// Generated tokens the text is made of: an end-of-generation token is not counted (as in
    /// OpenAI's `usage`), though it is in `tokens` and was sent as a `Token` event.
    pub completion_tokens: usize,
    pub queued_ms: f64,
    pub ttft_ms: f64,
    pub inter_token_ms: Vec<f64>,
    pub total_ms: f64,
    pub joules: f64,
    /// How `joules` was obtained: `rapl` (measured) or `estimated` (CPU time, see
    /// `ms_runtime::energy`).
    pub energy_source: EnergySource,
    /// The plan of the engine it ran on.
    pub plan: String,
    /// The policy that admitted it.
    pub policy: Policy,
    /// Rows of each batch step it took part in (prefill chunks included).
    pub batch_sizes: Vec<usize>,
    /// The generated text (without a stop string) and tokens.
    #[serde(skip)]
    pub text: String,
    #[serde(skip)]
    pub tokens: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubmitError {
    #[error("the request queue is full; retry after {} s", retry_after.as_secs())]
    QueueFull { retry_after: Duration },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("the scheduler is shutting down")]
    ShuttingDown,
    /// The batch loop stopped on its own (its thread could not be started); the server's
    /// supervision restarts it ([`Scheduler::restart`]).
    #[error("the batch loop is not running: {0}")]
    Stopped(String),
}

/// The scheduler's state for `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub policy: Policy,
    pub max_batch: usize,
    pub max_queue: usize,
    /// The plan new requests run under.
    pub plan: String,
    pub queue_depth: usize,
    /// Requests in a batch (all engines, draining ones included).
    pub running: usize,
    /// Old engines still finishing their requests after a replace.
    pub draining_engines: usize,
    pub submitted_total: u64,
    pub admitted_total: u64,
    pub completed_total: u64,
    pub cancelled_total: u64,
    pub rejected_total: u64,
    /// Requests that ended with [`Event::Failed`] (timeouts included).
    pub failed_total: u64,
    pub timed_out_total: u64,
    /// Prompt tokens evaluated.
    pub prompt_tokens_total: u64,
    /// Tokens sampled, each request's end-of-generation token included (a request's
    /// [`Outcome::completion_tokens`] leaves it out).
    pub generated_tokens_total: u64,
    /// Batch evaluations run.
    pub steps_total: u64,
    pub joules_total: f64,
    /// Panics caught in the batch loop (each failed the requests of its step).
    pub panics_total: u64,
}

/// Submits requests and hands out their [`Ticket`]s; cheap to clone (all clones drive the same
/// batch loop). The last clone dropped shuts the scheduler down.
#[derive(Clone)]
pub struct Scheduler {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

pub(crate) struct State {
    config: Config,
    /// The engine new requests are admitted on: its generation and what submit checks.
    generation: u64,
    plan: String,
    context_length: usize,
    n_vocab: usize,
    queue: VecDeque<Queued>,
    running: usize,
    draining: usize,
    shutdown: bool,
    /// Why the batch loop stopped without being asked to (no thread); see [`Scheduler::health`].
    stopped: Option<String>,
    faults: Faults,
    next_id: u64,
    /// Mean service time (admission to completion) in seconds, once a request completed.
    service_ewma: Option<f64>,
    totals: Totals,
}

#[derive(Debug, Default, Clone)]
struct Totals {
    submitted: u64,
    admitted: u64,
    completed: u64,
    cancelled: u64,
    rejected: u64,
    failed: u64,
    timed_out: u64,
    prompt_tokens: u64,
    generated_tokens: u64,
    steps: u64,
    joules: f64,
    panics: u64,
}

/// Failures to simulate, for the tests of the recovery paths ([`Scheduler::inject_faults`]).
#[doc(hidden)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Faults {
    /// The next batch thread starts fail.
    pub thread_starts: usize,
    /// The next batch steps panic.
    pub step_panics: usize,
    /// The next token boundaries panic (outside a step: the loop's thread is replaced).
    pub loop_panics: usize,
}

/// A request waiting for a batch slot.
pub(crate) struct Queued {
    id: u64,
    request: Request,
    submitted: Instant,
    events: mpsc::UnboundedSender<Event>,
    cancelled: Arc<AtomicBool>,
}

impl Queued {
    fn deadline(&self) -> Option<Instant> {
        self.request.timeout.map(|t| self.submitted + t)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic on the batch thread while holding the lock leaves counters, not invariants
        // that could corrupt a request: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn shutdown(&self) {
        {
            let mut st = self.lock();
            if st.shutdown {
                return;
            }
            st.shutdown = true;
            for q in st.queue.drain(..) {
                let _ = q
                    .events
                    .send(Event::Failed("the scheduler shut down".to_string()));
            }
        }
        self.wake.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let me = std::thread::current().id();
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }

    /// Starts a batch thread for `generation` (it waits for the state lock, which the caller
    /// may hold: a replace then changes nothing when the thread cannot start).
    fn start_thread(
        self: &Arc<Self>,
        st: &mut State,
        engine: Engine,
        generation: u64,
    ) -> std::io::Result<JoinHandle<()>> {
        if st.faults.thread_starts > 0 {
            st.faults.thread_starts -= 1;
            return Err(std::io::Error::other("injected failure"));
        }
        let shared = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("ms-scheduler-{generation}"))
            .spawn(move || worker::run(&shared, engine, generation))
    }

    fn keep_thread(&self, t: JoinHandle<()>) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.retain(|t| !t.is_finished());
        threads.push(t);
    }

    fn spawn_worker(self: &Arc<Self>, engine: Engine, generation: u64) {
        let thread = self.start_thread(&mut self.lock(), engine, generation);
        match thread {
            Ok(t) => self.keep_thread(t),
            Err(e) => {
                // No thread, no progress: fail what waits rather than hang, and say so to the
                // health check (the server restarts the loop).
                let why = format!("cannot start the batch thread: {e}");
                let mut st = self.lock();
                if st.generation == generation {
                    for q in st.queue.drain(..) {
                        let _ = q.events.send(Event::Failed(why.clone()));
                    }
                    st.stopped = Some(why);
                } else {
                    st.draining = st.draining.saturating_sub(1);
                }
            }
        }
    }
}

impl Scheduler {
    /// Starts the batch loop for `engine` on its own thread.
    pub fn start(engine: Engine, config: Config) -> Scheduler {
        let config = sanitize(config);
        let state = State {
            plan: engine.plan_name.clone(),
            context_length: engine.model.info().context_length,
            n_vocab: engine.model.info().n_vocab,
            config,
            generation: 0,
            queue: VecDeque::new(),
            running: 0,
            draining: 0,
            shutdown: false,
            stopped: None,
            faults: Faults::default(),
            next_id: 1,
            service_ewma: None,
            totals: Totals::default(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        });
        shared.spawn_worker(engine, 0);
        Scheduler {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Queues a request. Refused at once when the queue is full, the request is invalid for
    /// the current engine (empty prompt, unknown token, longer than the context, bad sampling
    /// parameters) or the scheduler is shutting down.
    pub fn submit(&self, request: Request) -> Result<Ticket, SubmitError> {
        request
            .options
            .sampling
            .validate()
            .map_err(SubmitError::Invalid)?;
        if request.prompt.is_empty() {
            return Err(SubmitError::Invalid(
                "the prompt is empty; give some text to continue".to_string(),
            ));
        }
        let shared = self.shared();
        let mut st = shared.lock();
        if st.shutdown {
            return Err(SubmitError::ShuttingDown);
        }
        if let Some(why) = &st.stopped {
            return Err(SubmitError::Stopped(why.clone()));
        }
        if let Some((i, &t)) = request
            .prompt
            .iter()
            .enumerate()
            .find(|&(_, &t)| t as usize >= st.n_vocab)
        {
            return Err(SubmitError::Invalid(format!(
                "prompt token {i} is {t}, outside the vocabulary of {} tokens",
                st.n_vocab
            )));
        }
        if request.prompt.len() >= st.context_length {
            return Err(SubmitError::Invalid(format!(
                "the prompt has {} tokens and the context holds {}: no room to generate; shorten the prompt",
                request.prompt.len(),
                st.context_length
            )));
        }
        let free = st.config.max_batch.saturating_sub(st.running);
        if st.queue.len() >= st.config.max_queue + free {
            st.totals.rejected += 1;
            return Err(SubmitError::QueueFull {
                retry_after: retry_after(st.service_ewma, st.queue.len(), st.config.max_batch),
            });
        }
        let id = st.next_id;
        st.next_id += 1;
        st.totals.submitted += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        st.queue.push_back(Queued {
            id,
            request,
            submitted: Instant::now(),
            events: tx,
            cancelled: Arc::clone(&cancelled),
        });
        drop(st);
        shared.wake.notify_all();
        Ok(Ticket {
            id,
            events: rx,
            cancelled,
            shared: Arc::clone(shared),
        })
    }

    /// New and waiting requests run on `engine` under `config`; requests already admitted
    /// finish on the old engine. When the new batch thread cannot be started nothing changes
    /// (the old engine keeps serving) and the error says why.
    pub fn replace(&self, engine: Engine, config: Config) -> Result<(), String> {
        let shared = self.shared();
        {
            let mut st = shared.lock();
            if st.shutdown {
                return Err("the scheduler is shutting down".to_string());
            }
            let generation = st.generation + 1;
            let (plan, context_length, n_vocab) = (
                engine.plan_name.clone(),
                engine.model.info().context_length,
                engine.model.info().n_vocab,
            );
            // Started under the lock: the old loop cannot see a new generation before the
            // new loop exists.
            let thread = shared
                .start_thread(&mut st, engine, generation)
                .map_err(|e| format!("cannot start the batch thread of the new plan: {e}"))?;
            st.config = sanitize(config);
            st.generation = generation;
            st.plan = plan;
            st.context_length = context_length;
            st.n_vocab = n_vocab;
            // The old loop counts itself out when it has drained (a stopped one is gone).
            if st.stopped.take().is_none() {
                st.draining += 1;
            }
            drop(st);
            shared.keep_thread(thread);
        }
        shared.wake.notify_all();
        Ok(())
    }

    pub fn snapshot(&self) -> Snapshot {
        let st = self.shared().lock();
        let t = &st.totals;
        Snapshot {
            policy: st.config.policy,
            max_batch: st.config.max_batch,
            max_queue: st.config.max_queue,
            plan: st.plan.clone(),
            queue_depth: st.queue.len(),
            running: st.running,
            draining_engines: st.draining,
            submitted_total: t.submitted,
            admitted_total: t.admitted,
            completed_total: t.completed,
            cancelled_total: t.cancelled,
            rejected_total: t.rejected,
            failed_total: t.failed,
            timed_out_total: t.timed_out,
            prompt_tokens_total: t.prompt_tokens,
            generated_tokens_total: t.generated_tokens,
            steps_total: t.steps,
            joules_total: t.joules,
            panics_total: t.panics,
        }
    }

    /// Makes the next thread starts fail or the next steps panic: the recovery paths'
    /// tests use it (they cannot exhaust the machine's threads).
    #[doc(hidden)]
    pub fn inject_faults(&self, faults: Faults) {
        self.shared().lock().faults = faults;
    }

    /// `Ok` while the batch loop runs (or was shut down on purpose); the reason it stopped
    /// otherwise.
    pub fn health(&self) -> Result<(), String> {
        match &self.shared().lock().stopped {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    /// Starts a new batch loop on `engine` after the last one stopped on its own (see
    /// [`Scheduler::health`]); does nothing while one runs or after a shutdown.
    pub fn restart(&self, engine: Engine) {
        let shared = self.shared();
        let generation = {
            let mut st = shared.lock();
            if st.shutdown || st.stopped.take().is_none() {
                return;
            }
            st.generation += 1;
            st.plan = engine.plan_name.clone();
            st.context_length = engine.model.info().context_length;
            st.n_vocab = engine.model.info().n_vocab;
            st.generation
        };
        shared.spawn_worker(engine, generation);
        shared.wake.notify_all();
    }

    /// The config new requests are admitted under.
    pub fn config(&self) -> Config {
        self.shared().lock().config.clone()
    }

    /// Refuses new requests, fails the waiting and running ones, and waits for the batch
    /// threads to end (at most one step: call it off an async runtime's worker if steps are
    /// long).
    pub fn shutdown(&self) {
        self.shared().shutdown();
    }
}

fn sanitize(mut config: Config) -> Config {
    config.max_batch = config.max_batch.max(1);
    config
}

/// See the crate docs: when `waiting` requests and one more will have been served by
/// `slots` at `service` seconds each, whole seconds in 1..=[`MAX_RETRY_AFTER`].
fn retry_after(service: Option<f64>, waiting: usize, slots: usize) -> Duration {
    let service = service.unwrap_or(1.0);
    let batches = (waiting + 1) as f64 / slots.max(1) as f64;
    let secs = (service * batches).ceil();
    let max = MAX_RETRY_AFTER.as_secs();
    Duration::from_secs(if secs.is_finite() {
        (secs as u64).clamp(1, max)
    } else {
        max
    })
}

/// The mean service time with one more completed request.
fn service_mean(mean: Option<f64>, secs: f64) -> f64 {
    match mean {
        None => secs,
        Some(m) => m + SERVICE_EWMA_WEIGHT * (secs - m),
    }
}

/// A submitted request's handle: its events, in order. Dropping it (or [`Ticket::cancel`])
/// cancels the request: a waiting one leaves the queue at once, a running one leaves the batch
/// at the next token boundary (its slot is then free) and ends with a `Finished` event whose
/// stop is `cancelled`.
pub struct Ticket {
    pub id: u64,
    events: mpsc::UnboundedReceiver<Event>,
    cancelled: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl Ticket {
    /// The next event; `None` once the request has ended and every event was read.
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// [`Ticket::next`] for synchronous callers; must not be called on an async runtime's
    /// thread.
    pub fn blocking_next(&mut self) -> Option<Event> {
        self.events.blocking_recv()
    }

    pub fn cancel(&self) {
        if self.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        {
            let mut st = self.shared.lock();
            if let Some(i) = st.queue.iter().position(|q| q.id == self.id) {
                st.queue.remove(i);
                st.totals.cancelled += 1;
            }
        }
        self.shared.wake.notify_all();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The `stop` and `stop_detail` strings of an [`Outcome`].
pub fn stop_strings(stop: &StopReason) -> (&'static str, &'static str) {
    match stop {
        StopReason::EndOfGeneration(_) => ("stop", "eog"),
        StopReason::StopString(_) => ("stop", "stop_string"),
        StopReason::MaxTokens => ("length", "max_tokens"),
        StopReason::ContextFull => ("length", "context_full"),
        StopReason::Cancelled => ("cancelled", "cancelled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_grows_with_the_queue_and_stays_within_bounds() {
        let s = Duration::from_secs;
        // Before any completion: 1 s per batch of waiting requests.
        assert_eq!(retry_after(None, 0, 1), s(1));
        assert_eq!(retry_after(None, 7, 4), s(2));
        // 3 s per request, 2 slots: (waiting + 1) * 3 / 2.
        let grows: Vec<Duration> = [0, 1, 3, 9]
            .iter()
            .map(|&w| retry_after(Some(3.0), w, 2))
            .collect();
        assert_eq!(grows, [s(2), s(3), s(6), s(15)]);
        assert_eq!(retry_after(Some(0.01), 0, 8), s(1));
        assert_eq!(retry_after(Some(50.0), 1000, 1), MAX_RETRY_AFTER);
        assert_eq!(retry_after(Some(f64::INFINITY), 3, 1), MAX_RETRY_AFTER);
    }

    #[test]
    fn the_mean_service_time_follows_completions_not_idle_time() {
        let mut m = None;
        for _ in 0..50 {
            m = Some(service_mean(m, 2.0));
        }
        assert!((m.unwrap() - 2.0).abs() < 1e-9);
        // A slower request moves the mean a fifth of the way.
        assert!((service_mean(m, 7.0) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn stop_strings_follow_openai_finish_reasons() {
        assert_eq!(
            stop_strings(&StopReason::EndOfGeneration(1)),
            ("stop", "eog")
        );
        assert_eq!(
            stop_strings(&StopReason::StopString("x".into())),
            ("stop", "stop_string")
        );
        assert_eq!(stop_strings(&StopReason::MaxTokens).0, "length");
        assert_eq!(stop_strings(&StopReason::ContextFull).0, "length");
    }
}
