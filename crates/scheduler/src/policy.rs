//! The admission policies: which waiting requests join the batch at a token boundary, and how
//! much of their prompts each step evaluates. A policy only changes order and timing, never a
//! request's tokens (each request has its own session and sampler, and the engine gives the same
//! bits for any batch and any split of a prompt).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long the `energy` policy lets waiting requests gather before it admits them (unless they
/// fill the batch sooner).
pub const ENERGY_WINDOW: Duration = Duration::from_millis(50);

/// Prompt tokens the `latency` policy evaluates per step, over all requests still in their
/// prefill, while other requests are generating: a step then costs at most about this many
/// tokens more than a pure generation step.
pub const LATENCY_PREFILL_CHUNK: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Fifo,
    Latency,
    Throughput,
    Energy,
}

impl Policy {
    pub const ALL: [Policy; 4] = [
        Policy::Fifo,
        Policy::Latency,
        Policy::Throughput,
        Policy::Energy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Fifo => "fifo",
            Policy::Latency => "latency",
            Policy::Throughput => "throughput",
            Policy::Energy => "energy",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheduler policy {0:?}; expected one of fifo, latency, throughput, energy")]
pub struct UnknownPolicy(pub String);

impl FromStr for Policy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPolicy(s.to_string()))
    }
}

/// What a policy sees at a token boundary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Boundary {
    pub max_batch: usize,
    /// Requests in the batch (generating or still in their prefill).
    pub running: usize,
    /// Requests waiting in the queue.
    pub waiting: usize,
    /// How long the oldest waiting request has waited.
    pub oldest_wait: Duration,
}

/// The admission decision at a boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Admit this many waiting requests now.
    Now(usize),
    /// Admit none yet; look again after at most this long (or when something changes).
    Later(Duration),
}

impl Policy {
    pub(crate) fn admit(self, b: Boundary) -> Admit {
        let free = b.max_batch.saturating_sub(b.running);
        let fit = free.min(b.waiting);
        if fit == 0 {
            return Admit::Now(0);
        }
        match self {
            Policy::Fifo | Policy::Latency => Admit::Now(fit),
            Policy::Throughput => {
                // While others generate, wait until the newcomers fill the free slots or at least
                // half the batch is free, so that their prompts share one pass over the weights.
                // Never waits when the batch is empty, and running requests finishing free the
                // slots: nothing waits forever.
                if b.running == 0 || b.waiting >= free || free * 2 >= b.max_batch {
                    Admit::Now(fit)
                } else {
                    Admit::Later(Duration::MAX)
                }
            }
            Policy::Energy => {
                if b.waiting >= free || b.oldest_wait >= ENERGY_WINDOW {
                    Admit::Now(fit)
                } else {
                    Admit::Later(ENERGY_WINDOW - b.oldest_wait)
                }
            }
        }
    }

    /// Whether waiting requests are taken shortest prompt first (else in arrival order).
    pub(crate) fn shortest_first(self) -> bool {
        self == Policy::Latency
    }

    /// The most prompt tokens to evaluate in one step for requests in their prefill, given
    /// whether other requests are generating in the same step; `None` = whole prompts.
    pub(crate) fn prefill_budget(self, others_generating: bool) -> Option<usize> {
        (self == Policy::Latency && others_generating).then_some(LATENCY_PREFILL_CHUNK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(max_batch: usize, running: usize, waiting: usize, ms: u64) -> Boundary {
        Boundary {
            max_batch,
            running,
            waiting,
            oldest_wait: Duration::from_millis(ms),
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for p in Policy::ALL {
            assert_eq!(p.as_str().parse::<Policy>(), Ok(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        let err = "fastest".parse::<Policy>().unwrap_err();
        assert!(err.to_string().contains("fifo, latency"), "{err}");
    }

    #[test]
    fn fifo_and_latency_admit_whatever_fits() {
        for p in [Policy::Fifo, Policy::Latency] {
            assert_eq!(p.admit(at(4, 1, 5, 0)), Admit::Now(3));
            assert_eq!(p.admit(at(4, 3, 1, 0)), Admit::Now(1));
            assert_eq!(p.admit(at(4, 4, 9, 0)), Admit::Now(0));
        }
    }

    #[test]
    fn throughput_gathers_newcomers_while_others_generate() {
        let p = Policy::Throughput;
        assert_eq!(p.admit(at(8, 0, 1, 0)), Admit::Now(1));
        assert_eq!(p.admit(at(8, 5, 1, 0)), Admit::Later(Duration::MAX));
        assert_eq!(p.admit(at(8, 5, 3, 0)), Admit::Now(3));
        assert_eq!(p.admit(at(8, 4, 1, 0)), Admit::Now(1));
    }

    #[test]
    fn energy_waits_for_a_fuller_batch_at_most_the_window() {
        let p = Policy::Energy;
        assert_eq!(
            p.admit(at(8, 0, 2, 10)),
            Admit::Later(ENERGY_WINDOW - Duration::from_millis(10))
        );
        assert_eq!(p.admit(at(8, 0, 2, 50)), Admit::Now(2));
        assert_eq!(p.admit(at(2, 0, 2, 0)), Admit::Now(2));
        assert_eq!(p.admit(at(1, 0, 1, 0)), Admit::Now(1));
    }

    #[test]
    fn only_latency_chunks_prefill_and_only_beside_generation() {
        assert_eq!(
            Policy::Latency.prefill_budget(true),
            Some(LATENCY_PREFILL_CHUNK)
        );
        assert_eq!(Policy::Latency.prefill_budget(false), None);
        assert_eq!(Policy::Fifo.prefill_budget(true), None);
        assert!(Policy::Latency.shortest_first() && !Policy::Fifo.shortest_first());
    }
}
