//! On the default model (Gemma 3 270M): eight concurrent requests with
//! different prompts, lengths, stop strings and sampling (greedy and seeded temperature/top-p)
//! give exactly the tokens and text they give one by one (max batch 1).

mod common;

use common::*;
use ms_scheduler::{Policy, Scheduler};

#[test]
fn eight_concurrent_requests_match_one_by_one_on_the_default_model() {
    let path = ms_fetch::default_model().unwrap();
    // One thread: the engine's results do not depend on the thread count (its own tests cover
    // batches on 1-3 threads), and a pool's hand-offs are slow when the cores are shared.
    let engine = load(&path, 512, 1, "default");
    let requests = mixed_requests(&engine);

    let alone = Scheduler::start(engine.clone(), config(Policy::Fifo, 1, 16));
    let one_by_one: Vec<Collected> = requests
        .iter()
        .map(|r| collect(&mut alone.submit(r.clone()).unwrap()))
        .collect();
    alone.shutdown();
    for c in &one_by_one {
        assert!(c.outcome().batch_sizes.iter().all(|&b| b == 1));
    }

    let batched = Scheduler::start(engine, config(Policy::Fifo, 8, 16));
    let together = run_all(&batched, &requests);
    let widest = together
        .iter()
        .flat_map(|c| c.outcome().batch_sizes.iter().copied())
        .max();
    assert!(
        widest >= Some(4),
        "the requests never shared a batch: {widest:?}"
    );

    for (i, (a, b)) in one_by_one.iter().zip(&together).enumerate() {
        assert!(!a.tokens.is_empty(), "request {i} generated nothing");
        assert_eq!(
            a.tokens, b.tokens,
            "request {i}: tokens differ when batched"
        );
        assert_eq!(a.text, b.text, "request {i}: text differs when batched");
        assert_eq!(
            a.outcome().stop_detail,
            b.outcome().stop_detail,
            "request {i}"
        );
    }
    // The stop string request ended on it, and the sampled ones differ from greedy ones.
    assert_eq!(together[5].outcome().stop_detail, "stop_string");
    let snap = batched.snapshot();
    assert_eq!(snap.completed_total, 8);
    assert_eq!(
        snap.generated_tokens_total,
        together.iter().map(|c| c.tokens.len() as u64).sum::<u64>()
    );
    assert!(snap.joules_total > 0.0);
}
