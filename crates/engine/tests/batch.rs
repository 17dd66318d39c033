//! Sessions evaluated together with `eval_batch` get the logits each would get alone, bit for
//! bit, while sequences join and leave the batch; a bad item changes no session.

mod common;

use std::path::Path;

use ms_engine::{BatchItem, EngineError, LoadOptions, Model, Session, eval_batch};

fn load(path: &Path, threads: usize, context_length: usize) -> Model {
    Model::load(
        path,
        &LoadOptions {
            threads,
            context_length: Some(context_length),
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

fn tiny(name: &str) -> std::path::PathBuf {
    ms_test_support::oracle_dir().join("models").join(name)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn argmax(logits: &[f32]) -> u32 {
    logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i as u32)
        .unwrap()
}

/// A prompt of `len` token ids below `n_vocab`, different for each `seed`.
fn prompt(seed: u32, len: usize, n_vocab: usize) -> Vec<u32> {
    (0..len as u32)
        .map(|i| (seed * 7919 + i * 104_729 + 13) % (n_vocab as u32 - 1) + 1)
        .collect()
}

/// One sequence of the scenario: its prompt, the step at which it joins, and how many tokens
/// it then generates (greedily) before leaving.
struct Plan {
    prompt: Vec<u32>,
    join: usize,
    generate: usize,
}

/// Eight sequences of different prompt lengths joining at different steps; the first step's
/// prompts together exceed one forward pass (`MAX_BATCH` = 128 rows), so the pass splits the
/// long prompt, and later steps mix prompts with generated tokens.
fn plans(n_vocab: usize) -> Vec<Plan> {
    make_plans(
        n_vocab,
        &[
            (5, 0, 6),
            (17, 0, 9),
            (1, 0, 3),
            (110, 0, 4),
            (9, 2, 7),
            (3, 3, 2),
            (40, 3, 5),
            (2, 6, 4),
        ],
    )
}

/// `(prompt length, step joined, tokens generated)` for each sequence.
fn make_plans(n_vocab: usize, spec: &[(usize, usize, usize)]) -> Vec<Plan> {
    spec.iter()
        .enumerate()
        .map(|(i, &(len, join, generate))| Plan {
            prompt: prompt(i as u32, len, n_vocab),
            join,
            generate,
        })
        .collect()
}

/// Every evaluation's logits of each sequence evaluated alone: the prompt's, then one per
/// generated token.
fn alone(model: &Model, plans: &[Plan]) -> Vec<Vec<Vec<u32>>> {
    plans
        .iter()
        .map(|p| {
            let mut s = Session::new(model);
            let mut out = vec![bits(s.eval(&p.prompt).unwrap())];
            for _ in 0..p.generate {
                let next = argmax(s.logits());
                out.push(bits(s.eval(&[next]).unwrap()));
            }
            out
        })
        .collect()
}

/// The same sequences through `eval_batch`: at each step every active sequence contributes its
/// prompt (on the step it joins) or its next token, in one batch.
fn batched(model: &Model, plans: &[Plan]) -> Vec<Vec<Vec<u32>>> {
    let mut sessions: Vec<Session> = plans.iter().map(|_| Session::new(model)).collect();
    let mut out: Vec<Vec<Vec<u32>>> = vec![Vec::new(); plans.len()];
    let last_step = plans.iter().map(|p| p.join + p.generate).max().unwrap();
    for step in 0..=last_step {
        let mut inputs: Vec<(usize, Vec<u32>)> = Vec::new();
        for (i, p) in plans.iter().enumerate() {
            if step == p.join {
                inputs.push((i, p.prompt.clone()));
            } else if step > p.join && step <= p.join + p.generate {
                inputs.push((i, vec![argmax(sessions[i].logits())]));
            }
        }
        if inputs.is_empty() {
            continue;
        }
        let mut items: Vec<BatchItem> = Vec::new();
        let mut rest: &mut [Session] = &mut sessions;
        let mut taken = 0;
        for (i, tokens) in &inputs {
            let (_, tail) = rest.split_at_mut(i - taken);
            let (session, tail) = tail.split_first_mut().unwrap();
            items.push(BatchItem { session, tokens });
            rest = tail;
            taken = i + 1;
        }
        eval_batch(&mut items).unwrap();
        for (i, _) in &inputs {
            out[*i].push(bits(sessions[*i].logits()));
        }
    }
    for (p, s) in plans.iter().zip(&sessions) {
        assert_eq!(s.position(), p.prompt.len() + p.generate);
    }
    out
}

fn assert_batch_invariant(model: &Model, plans: &[Plan], what: &str) {
    let want = alone(model, plans);
    let got = batched(model, plans);
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w.len(), g.len(), "{what}: sequence {i}: evaluations");
        for (step, (w, g)) in w.iter().zip(g).enumerate() {
            assert!(
                w == g,
                "{what}: sequence {i}, evaluation {step}: batched logits differ from alone"
            );
        }
    }
}

#[test]
fn tiny_models_batched_equal_alone_bit_for_bit() {
    for (name, threads) in [
        ("llama-spm-tiny.q4_k_m.gguf", 1),
        ("llama-spm-tiny.q4_k_m.gguf", 3),
        ("llama-spm-tiny.q8_0.gguf", 2),
        ("llama-spm-tiny.f16.gguf", 1),
        ("qwen2-bpe-tiny.q8_0.gguf", 1),
        ("qwen2-bpe-tiny.q8_0.gguf", 3),
    ] {
        let model = load(&tiny(name), threads, 256);
        let plans = plans(model.info().n_vocab);
        assert_batch_invariant(&model, &plans, &format!("{name}, {threads} threads"));
    }
}

#[test]
fn gemma3_batched_equals_alone_bit_for_bit() {
    // Fewer and shorter sequences than for the tiny models: this model is 100 times larger.
    let path = ms_fetch::default_model().expect("the default model can be fetched");
    let model = load(&path, 2, 64);
    let plans = make_plans(
        model.info().n_vocab,
        &[(6, 0, 3), (13, 0, 4), (1, 0, 2), (4, 1, 3), (9, 2, 2)],
    );
    assert_batch_invariant(&model, &plans, "gemma3 270M, 2 threads");
}

#[test]
fn batched_logits_do_not_depend_on_thread_count() {
    let path = tiny("qwen2-bpe-tiny.q8_0.gguf");
    let plans = plans(load(&path, 1, 256).info().n_vocab);
    let one = batched(&load(&path, 1, 256), &plans);
    assert!(one == batched(&load(&path, 2, 256), &plans));
}

/// Positions and logits of each session, to check that nothing changed.
fn state(sessions: &[Session]) -> Vec<(usize, Vec<u32>)> {
    sessions
        .iter()
        .map(|s| (s.position(), bits(s.logits())))
        .collect()
}

/// Tokens of a bad item, the error expected, and words its message holds.
type BadCase<'a> = (&'a [u32], fn(&EngineError) -> bool, &'a str);

#[test]
fn a_bad_item_is_refused_before_any_session_changes() {
    let model = load(&tiny("llama-spm-tiny.q8_0.gguf"), 2, 16);
    let n_vocab = model.info().n_vocab as u32;
    let mut sessions: Vec<Session> = (0..4).map(|_| Session::new(&model)).collect();
    for (i, s) in sessions.iter_mut().enumerate() {
        s.eval(&prompt(i as u32, 3 + i, n_vocab as usize)).unwrap();
    }
    let before = state(&sessions);
    let cases: [BadCase; 3] = [
        (
            &[5, n_vocab],
            |e| matches!(e, EngineError::BadToken { index: 1, .. }),
            "outside the vocabulary",
        ),
        (&[], |e| matches!(e, EngineError::EmptyInput), "no tokens"),
        (
            &[7; 12],
            |e| matches!(e, EngineError::ContextFull { tokens: 12, .. }),
            "fit in the context",
        ),
    ];
    for (bad, is_expected, message) in cases {
        let [a, b, c, d] = &mut sessions[..] else {
            unreachable!()
        };
        let mut items = vec![
            BatchItem {
                session: a,
                tokens: &[11, 12],
            },
            BatchItem {
                session: b,
                tokens: &[13],
            },
            BatchItem {
                session: c,
                tokens: bad,
            },
            BatchItem {
                session: d,
                tokens: &[14],
            },
        ];
        let err = eval_batch(&mut items).unwrap_err();
        assert_eq!(err.index, 2, "{err}");
        assert!(is_expected(&err.source), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("batch item 2: ") && msg.contains(message),
            "{msg}"
        );
        assert!(
            state(&sessions) == before,
            "a refused batch changed a session"
        );
    }
    // The sessions go on exactly as if the refused batches had never been tried.
    let mut fresh = Session::new(&model);
    fresh.eval(&prompt(2, 5, n_vocab as usize)).unwrap();
    let want = bits(fresh.eval(&[21, 22]).unwrap());
    let [_, _, c, _] = &mut sessions[..] else {
        unreachable!()
    };
    eval_batch(&mut [BatchItem {
        session: c,
        tokens: &[21, 22],
    }])
    .unwrap();
    assert!(bits(sessions[2].logits()) == want);
}

#[test]
fn sessions_of_different_models_are_refused() {
    let path = tiny("llama-spm-tiny.q8_0.gguf");
    let (m1, m2) = (load(&path, 1, 16), load(&path, 1, 16));
    let (mut a, mut b, mut c) = (Session::new(&m1), Session::new(&m1), Session::new(&m2));
    let err = eval_batch(&mut [
        BatchItem {
            session: &mut a,
            tokens: &[1, 2],
        },
        BatchItem {
            session: &mut b,
            tokens: &[3],
        },
        BatchItem {
            session: &mut c,
            tokens: &[4],
        },
    ])
    .unwrap_err();
    assert_eq!(err.index, 2);
    assert!(err.to_string().contains("same loaded model"), "{err}");
    // Its own kind, not an invalid option.
    assert!(
        matches!(err.source, EngineError::MixedModels { index: 2 }),
        "{err:?}"
    );
    assert_eq!((a.position(), b.position(), c.position()), (0, 0, 0));
}

#[test]
fn an_empty_batch_does_nothing() {
    eval_batch(&mut []).unwrap();
}

#[test]
fn sessions_and_models_can_move_to_a_scheduler_thread() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Session>();
    send::<Model>();
    sync::<Model>();
    let model = load(&tiny("llama-spm-tiny.q8_0.gguf"), 1, 16);
    let mut s = Session::new(&model);
    let handle = std::thread::spawn(move || {
        eval_batch(&mut [BatchItem {
            session: &mut s,
            tokens: &[1, 2, 3],
        }])
        .unwrap();
        s
    });
    let mut alone = Session::new(&model);
    let want = bits(alone.eval(&[1, 2, 3]).unwrap());
    assert!(bits(handle.join().unwrap().logits()) == want);
}
