//! Generating a token allocates nothing once warm: the forward pass's buffers, the pool's
//! dispatch, the matmul and attention scratch and the sampler's candidate list are all reused.
//! The allocator below counts every allocation of the process, so this file holds one test.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ms_engine::sampler::{Sampler, SamplingParams};
use ms_engine::{LoadOptions, Model, Session};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations while generating `n` tokens after a prompt and a few warm-up tokens, sampling
/// with every filter and penalty on.
fn allocations_per_tokens(model: &Model, n: usize) -> usize {
    let mut session = Session::new(model);
    let mut sampler = Sampler::new(SamplingParams {
        temperature: 0.8,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.05,
        repeat_penalty: 1.1,
        frequency_penalty: 0.1,
        presence_penalty: 0.1,
        penalty_last_n: 16,
        seed: 7,
        ..SamplingParams::default()
    });
    let prompt = [1u32, 450, 7483, 310, 3444];
    for &t in &prompt {
        sampler.accept(t);
    }
    let mut next = sampler.sample(session.eval(&prompt).unwrap());
    let step = |session: &mut Session, sampler: &mut Sampler, t: u32| {
        sampler.accept(t);
        sampler.sample(session.eval(&[t]).unwrap())
    };
    for _ in 0..3 {
        next = step(&mut session, &mut sampler, next);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n {
        next = step(&mut session, &mut sampler, next);
    }
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn a_generated_token_allocates_nothing() {
    let models = [
        "llama-spm-tiny.q4_k_m.gguf",
        "qwen2-bpe-tiny.q8_0.gguf",
        "llama-spm-tiny.f16.gguf",
    ]
    .map(|name| ms_test_support::oracle_dir().join("models").join(name))
    .into_iter()
    .chain([ms_fetch::default_model().expect("the default model can be fetched")]);
    for path in models {
        for threads in [1, 2] {
            let opts = LoadOptions {
                threads,
                context_length: Some(64),
                ..LoadOptions::default()
            };
            let model = Model::load(&path, &opts).unwrap();
            let n = allocations_per_tokens(&model, 8);
            assert_eq!(
                n,
                0,
                "{} at {threads} threads: {n} allocations in 8 tokens",
                path.display()
            );
        }
    }
}
