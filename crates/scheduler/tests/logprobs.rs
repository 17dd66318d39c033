//! Through the scheduler on the tiny llama: log-probabilities, logit biases and the
//! watermark give the same bits batched or alone, and a request that ends with its
//! end-of-generation token does not count that token in `completion_tokens`.

mod common;

use common::*;
use ms_engine::sampler::TokenLogprobs;
use ms_scheduler::{Event, Policy, Request, Scheduler, Ticket};

/// Each token event's log-probabilities, and the outcome's completion count.
fn logprobs_of(ticket: &mut Ticket) -> (Vec<TokenLogprobs>, usize, &'static str) {
    let mut out = Vec::new();
    loop {
        match ticket.blocking_next() {
            Some(Event::Token { logprobs, .. }) => {
                out.push(logprobs.expect("the request asked for logprobs"));
            }
            Some(Event::Finished(o)) => return (out, o.completion_tokens, o.stop_detail),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A token, its log-probability's bits and its alternatives' (id, bits).
type Bits = (u32, u32, Vec<(u32, u32)>);

fn bits(lps: &[TokenLogprobs]) -> Vec<Bits> {
    lps.iter()
        .map(|l| {
            let top = l.top.iter().map(|&(id, p)| (id, p.to_bits())).collect();
            (l.token, l.logprob.to_bits(), top)
        })
        .collect()
}

#[test]
fn logprobs_and_biases_are_the_same_bits_batched_or_alone() {
    let engine = tiny(256, "tiny");
    let mut requests: Vec<Request> = mixed_requests(&engine);
    for (i, r) in requests.iter_mut().enumerate() {
        r.options.sampling.logprobs = Some(i % 4 * 5);
        if i % 2 == 1 {
            r.options.sampling.logit_bias = vec![(13, -100.0), (29, 3.5)];
        }
    }
    let alone = Scheduler::start(engine.clone(), config(Policy::Fifo, 1, 16));
    let one_by_one: Vec<_> = requests
        .iter()
        .map(|r| logprobs_of(&mut alone.submit(r.clone()).unwrap()))
        .collect();
    alone.shutdown();

    let batched = Scheduler::start(engine, config(Policy::Latency, 8, 16));
    let mut tickets: Vec<Ticket> = requests
        .iter()
        .map(|r| batched.submit(r.clone()).unwrap())
        .collect();
    let together: Vec<_> = tickets.iter_mut().map(logprobs_of).collect();
    for (i, (a, b)) in one_by_one.iter().zip(&together).enumerate() {
        assert!(!a.0.is_empty(), "request {i}");
        assert_eq!(
            bits(&a.0),
            bits(&b.0),
            "request {i}: logprobs differ batched"
        );
        assert_eq!(a.1, b.1, "request {i}");
        assert!(a.0.iter().all(|l| l.top.len() == i % 4 * 5), "request {i}");
        if i % 2 == 1 {
            assert!(
                a.0.iter().all(|l| l.token != 13),
                "request {i}: banned token"
            );
        }
    }
}

#[test]
fn an_end_of_generation_token_is_not_a_completion_token() {
    let engine = tiny(256, "tiny");
    let eos = engine.tokenizer.eos().expect("the tiny llama has an EOS");
    // The EOS forced from the first token: the request ends at once, with nothing visible.
    let mut ends = request(&engine, "Once upon a time", greedy(8));
    ends.options.sampling.logit_bias = vec![(eos, 100.0)];
    ends.options.sampling.logprobs = Some(0);
    let scheduler = Scheduler::start(engine, config(Policy::Fifo, 1, 4));
    let (lps, completion, stop) = logprobs_of(&mut scheduler.submit(ends).unwrap());
    assert_eq!(stop, "eog");
    assert_eq!(lps.len(), 1, "one token sampled: the EOS");
    assert_eq!(lps[0].token, eos);
    assert_eq!(completion, 0, "the EOS is not part of the answer");
}

#[test]
fn watermarked_requests_get_the_same_tokens_batched_or_alone() {
    use ms_engine::watermark::{Watermark, WatermarkKey};
    let engine = tiny(256, "tiny");
    let key = std::sync::Arc::new(WatermarkKey::new("news", [7; 32]).unwrap());
    let mut requests: Vec<Request> = mixed_requests(&engine);
    // Half of them watermarked (greedy and sampled ones), beside plain requests.
    for (i, r) in requests.iter_mut().enumerate() {
        if i % 2 == 0 {
            r.options.sampling.watermark = Some(Watermark {
                key: key.clone(),
                gamma: 0.25,
                delta: 3.0,
            });
        }
    }
    let alone = Scheduler::start(engine.clone(), config(Policy::Fifo, 1, 16));
    let one_by_one = run_all(&alone, &requests);
    alone.shutdown();
    let batched = Scheduler::start(engine, config(Policy::Throughput, 8, 16));
    let together = run_all(&batched, &requests);
    for (i, (a, b)) in one_by_one.iter().zip(&together).enumerate() {
        assert!(!a.tokens.is_empty(), "request {i}");
        assert_eq!(
            a.tokens, b.tokens,
            "request {i}: tokens differ when batched"
        );
        assert_eq!(a.text, b.text, "request {i}");
    }
}
