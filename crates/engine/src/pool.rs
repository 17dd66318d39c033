//! A resident pool of worker threads for the many small parallel loops of a forward pass.
//!
//! Per-token matrix × vector products take tens of microseconds: spawning threads for each
//! (or rayon's fork-join) costs as much as the work. The workers here are created once and
//! stay: after a job they spin for a short while (the next product of the same token follows
//! within microseconds), then park until woken. A job is `n_tasks` numbered tasks that the
//! caller and the workers claim one at a time from a shared atomic counter, so a core slowed by
//! other processes simply takes fewer tasks.
//!
//! Determinism: which thread runs which task changes from run to run; callers make every task
//! compute its own outputs entirely (one task per output chunk), so results do not depend on it.
//!
//! Each calling thread has its own pool (a thread-local), sized on first use to the thread count
//! asked for and rebuilt if a later call asks for another count: sessions on different threads
//! never wait for each other, and a dispatch allocates nothing.

use std::cell::{RefCell, UnsafeCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long an idle worker spins before parking. A token's products follow each other within
/// microseconds; between tokens (sampling, the caller's own work) the workers go to sleep.
const SPIN: Duration = Duration::from_micros(500);

/// A task: called once with each index in `0..n_tasks`.
pub(crate) type Task<'a> = dyn Fn(usize) + Sync + 'a;

/// Keeps each hot atomic on its own cache line (two lines: adjacent-line prefetch).
#[repr(align(128))]
struct Padded<T>(T);

/// The job being run: valid from the store of `state` that publishes it until the dispatching
/// call closes it (when no worker that joined it is still inside), before returning.
#[derive(Clone, Copy)]
struct Job {
    task: *const Task<'static>,
    n_tasks: usize,
}

struct Shared {
    /// `generation << 33 | closed << 32 | active`: the generation is bumped once per job (and at
    /// shutdown) and workers wait for it to change; a worker joins the job by incrementing
    /// `active` while it is open and leaves by decrementing it; the dispatcher closes it once
    /// `active` is zero. So the dispatcher never waits for a worker that is not running (on a
    /// busy machine a descheduled worker would otherwise hold up every job for a time slice),
    /// and a worker that arrives late never touches a closed job.
    state: Padded<AtomicU64>,
    /// The next task index to claim.
    next: Padded<AtomicUsize>,
    /// Per worker: parked (or about to park), so the dispatcher must unpark it.
    sleeping: Vec<Padded<AtomicBool>>,
    job: UnsafeCell<Job>,
    shutdown: AtomicBool,
    panicked: AtomicBool,
}

// SAFETY: `job` is written only by the dispatching thread while no worker reads it (before the
// store of `state` that publishes it, after the job was closed with no worker inside), and read
// only by workers that joined the open job; the task it points to is `Sync`.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

pub(crate) struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

thread_local! {
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
    static IS_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `task(i)` for every `i` in `0..n_tasks` on up to `threads` threads (the calling thread
/// included) and returns when all are done. Few tasks, one thread, or a call from inside a
/// task run inline on the calling thread.
pub(crate) fn run(n_tasks: usize, threads: usize, task: &Task<'_>) {
    let inline = |task: &Task<'_>| (0..n_tasks).for_each(task);
    if threads <= 1 || n_tasks <= 1 || IS_WORKER.with(|w| w.get()) {
        return inline(task);
    }
    POOL.with(|slot| {
        let Ok(mut slot) = slot.try_borrow_mut() else {
            return inline(task); // a task of this thread's own job
        };
        if slot.as_ref().is_none_or(|p| p.workers.len() != threads - 1) {
            *slot = None; // joins the old workers first
            // A failed start has joined the workers it started: nothing leaks, and the next
            // call tries again. The caller (the scheduler) turns the panic into a failed step.
            let pool = Pool::new(threads - 1)
                .unwrap_or_else(|e| panic!("cannot start {} worker threads: {e}", threads - 1));
            *slot = Some(pool);
        }
        if let Some(pool) = slot.as_ref() {
            pool.run(n_tasks, task);
        }
    })
}

impl Pool {
    /// Starts `n_workers` workers; when one cannot be started, stops and joins those that
    /// were before returning the error.
    fn new(n_workers: usize) -> std::io::Result<Pool> {
        Pool::start(n_workers, |id, f| {
            thread::Builder::new()
                .name(format!("ms-engine-{id}"))
                .spawn(f)
        })
    }

    /// [`Pool::new`] with the thread creation given (tests make it fail).
    fn start(
        n_workers: usize,
        mut spawn: impl FnMut(usize, Box<dyn FnOnce() + Send>) -> std::io::Result<JoinHandle<()>>,
    ) -> std::io::Result<Pool> {
        let shared = Arc::new(Shared {
            state: Padded(AtomicU64::new(CLOSED)),
            next: Padded(AtomicUsize::new(0)),
            sleeping: (0..n_workers)
                .map(|_| Padded(AtomicBool::new(false)))
                .collect(),
            job: UnsafeCell::new(Job {
                task: std::ptr::null::<fn(usize)>() as *const Task<'static>,
                n_tasks: 0,
            }),
            shutdown: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
        });
        let mut pool = Pool {
            shared,
            workers: Vec::with_capacity(n_workers),
        };
        for id in 0..n_workers {
            let shared = Arc::clone(&pool.shared);
            let spawned = spawn(id, Box::new(move || worker(&shared, id)));
            match spawned {
                Ok(w) => pool.workers.push(w),
                // Dropping the pool shuts down and joins the workers started so far.
                Err(e) => return Err(e),
            }
        }
        Ok(pool)
    }

    fn run(&self, n_tasks: usize, task: &Task<'_>) {
        let s = &*self.shared;
        // SAFETY: only the lifetime is erased; the pointer is used only until every worker has
        // reported done, below, before `task` goes out of scope.
        let task_ptr: *const Task<'static> = unsafe { std::mem::transmute(task as *const Task) };
        // SAFETY: no worker reads `job` now (all finished the previous job; see `Shared`).
        unsafe {
            *s.job.get() = Job {
                task: task_ptr,
                n_tasks,
            }
        };
        s.next.0.store(0, Ordering::Relaxed);
        let generation = (s.state.0.load(Ordering::Relaxed) >> GEN_SHIFT) + 1;
        s.state.0.store(generation << GEN_SHIFT, Ordering::SeqCst);
        for (flag, w) in s.sleeping.iter().zip(&self.workers) {
            if flag.0.load(Ordering::SeqCst) {
                w.thread().unpark();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| claim(s, task, n_tasks)));
        // Close the job once no worker is inside (only workers that joined are waited for).
        let mut spins = 0u32;
        loop {
            let st = s.state.0.load(Ordering::Acquire);
            if st & ACTIVE == 0
                && s.state
                    .0
                    .compare_exchange(st, st | CLOSED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                break;
            }
            if spins < 1 << 14 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        if let Err(payload) = mine {
            resume_unwind(payload);
        }
        if s.panicked.swap(false, Ordering::AcqRel) {
            panic!("a task panicked on a worker thread");
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared
            .state
            .0
            .fetch_add(1 << GEN_SHIFT, Ordering::SeqCst);
        for w in self.workers.drain(..) {
            w.thread().unpark();
            let _ = w.join();
        }
    }
}

/// Bits of [`Shared::state`].
const GEN_SHIFT: u32 = 33;
const CLOSED: u64 = 1 << 32;
const ACTIVE: u64 = CLOSED - 1;

/// Enters job `generation` if it is still open.
fn join(s: &Shared, generation: u64) -> bool {
    let mut st = s.state.0.load(Ordering::Acquire);
    loop {
        if st >> GEN_SHIFT != generation || st & CLOSED != 0 {
            return false;
        }
        match s
            .state
            .0
            .compare_exchange_weak(st, st + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return true,
            Err(now) => st = now,
        }
    }
}

/// Claims and runs tasks until none is left.
fn claim(s: &Shared, task: &Task<'_>, n_tasks: usize) {
    loop {
        let i = s.next.0.fetch_add(1, Ordering::Relaxed);
        if i >= n_tasks {
            return;
        }
        task(i);
    }
}

/// Idle workers spinning now, over every pool of the process.
static SPINNING: AtomicUsize = AtomicUsize::new(0);

/// A right to spin, within the process-wide budget of `cores - 1` idle spinners (the threads
/// that dispatch work are running too): never more spinning threads than cores, even with
/// several sessions on several threads.
struct SpinSlot;

impl SpinSlot {
    fn acquire() -> Option<SpinSlot> {
        let cores = cores();
        if SPINNING.fetch_add(1, Ordering::AcqRel) < cores.saturating_sub(1) {
            Some(SpinSlot)
        } else {
            SPINNING.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }
}

/// The cores this process may use, looked up once: `available_parallelism` reads cgroup files
/// on every call, far too slow between two jobs of one token.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| thread::available_parallelism().map_or(1, |n| n.get()))
}

impl Drop for SpinSlot {
    fn drop(&mut self) {
        SPINNING.fetch_sub(1, Ordering::AcqRel);
    }
}

fn worker(s: &Shared, id: usize) {
    IS_WORKER.with(|w| w.set(true));
    let mut seen = 0u64;
    loop {
        let mut slot = SpinSlot::acquire();
        let spin_start = Instant::now();
        let mut n = 0u32;
        loop {
            let g = s.state.0.load(Ordering::Acquire) >> GEN_SHIFT;
            if g != seen {
                seen = g;
                break;
            }
            if slot.is_some() {
                n = n.wrapping_add(1);
                // Reading the clock costs more than a spin: look at it now and then.
                if !n.is_multiple_of(64) || spin_start.elapsed() < SPIN {
                    std::hint::spin_loop();
                    continue;
                }
                slot = None;
            }
            let flag = &s.sleeping[id].0;
            flag.store(true, Ordering::SeqCst);
            // Checked after raising the flag: either the dispatcher sees the flag and unparks
            // us, or we see its new generation here.
            if s.state.0.load(Ordering::SeqCst) >> GEN_SHIFT == seen {
                thread::park();
            }
            flag.store(false, Ordering::SeqCst);
        }
        drop(slot);
        if s.shutdown.load(Ordering::Acquire) {
            return;
        }
        if !join(s, seen) {
            continue; // closed already: the dispatcher and others did the work
        }
        // SAFETY: published before the open state we joined; valid until we leave.
        let job = unsafe { *s.job.get() };
        // SAFETY: as above; the dispatcher keeps the task alive until it closes the job, which
        // it cannot while we are inside.
        let task = unsafe { &*job.task };
        if catch_unwind(AssertUnwindSafe(|| claim(s, task, job.n_tasks))).is_err() {
            s.panicked.store(true, Ordering::Release);
        }
        s.state.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_for_any_thread_count_and_pools_are_reused() {
        for threads in [1, 2, 3, 2, 4] {
            for n_tasks in [0, 1, 2, 7, 100] {
                let hits: Vec<AtomicUsize> = (0..n_tasks).map(|_| AtomicUsize::new(0)).collect();
                run(n_tasks, threads, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(
                    hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                    "{threads} threads, {n_tasks} tasks"
                );
            }
        }
    }

    #[test]
    fn nested_calls_run_inline_and_workers_do_share_the_work() {
        let outer = AtomicUsize::new(0);
        let threads_seen = std::sync::Mutex::new(std::collections::HashSet::new());
        run(64, 2, &|_| {
            run(3, 2, &|_| {
                outer.fetch_add(1, Ordering::Relaxed);
            });
            threads_seen.lock().unwrap().insert(thread::current().id());
            // Long enough that the woken worker claims some tasks too.
            std::thread::sleep(Duration::from_millis(1));
        });
        assert_eq!(outer.load(Ordering::Relaxed), 64 * 3);
        assert_eq!(threads_seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_failed_start_joins_the_workers_it_started() {
        let running = Arc::new(AtomicUsize::new(0));
        let mut started = 0;
        let result = Pool::start(8, |id, f| {
            if id == 5 {
                return Err(std::io::Error::other("no more threads"));
            }
            started += 1;
            let running = Arc::clone(&running);
            running.fetch_add(1, Ordering::SeqCst);
            thread::Builder::new().spawn(move || {
                f();
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        let Err(e) = result else {
            panic!("the start should fail")
        };
        assert_eq!(e.to_string(), "no more threads");
        assert_eq!(started, 5);
        // Joined before the error returned: no worker thread is left running (or parked).
        assert_eq!(running.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_and_the_pool_still_works() {
        let r = catch_unwind(|| run(8, 2, &|i| assert!(i != 5, "task 5")));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        run(8, 2, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 8);
    }
}
