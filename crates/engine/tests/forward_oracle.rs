//! The forward pass against llama.cpp on the oracle's own token ids (no tokenizer involved):
//! per-position log-probabilities of the oracle's top-10 and greedy continuations, with the
//! bounds of `check_oracle.py`.

mod common;

use ms_engine::{LoadOptions, Model, Session};

const MARGIN: f64 = 0.25;

fn log_softmax_at(row: &[f32], ids: &[u32]) -> Vec<f64> {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let lse = max
        + row
            .iter()
            .map(|&v| (v as f64 - max).exp())
            .sum::<f64>()
            .ln();
    ids.iter().map(|&i| row[i as usize] as f64 - lse).collect()
}

fn check_model(name: &str, path: &std::path::Path) -> Vec<String> {
    let oracle = common::oracle(name);
    let model = Model::load(
        path,
        &LoadOptions {
            threads: 2,
            context_length: Some(512),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let n_vocab = model.info().n_vocab;
    let mut fails = Vec::new();
    let (mut sum, mut count, mut worst) = (0.0f64, 0usize, 0.0f64);
    for case in oracle["logits"].as_array().unwrap() {
        let tokens = common::ids(&case["prompt_tokens"]);
        let mut s = Session::new(&model);
        let logits = s.eval_all(&tokens).unwrap().to_vec();
        for (i, pos) in case["positions"].as_array().unwrap().iter().enumerate() {
            let row = &logits[i * n_vocab..(i + 1) * n_vocab];
            let top = common::ids(&pos["top_ids"]);
            let lse = pos["logsumexp"].as_f64().unwrap();
            let ours = log_softmax_at(row, &top);
            let top_logits: Vec<f64> = pos["top_logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let mut pmax = 0.0f64;
            for (k, &o) in ours.iter().enumerate() {
                let d = (o - (top_logits[k] - lse)).abs();
                pmax = pmax.max(d);
                sum += d;
                count += 1;
                worst = worst.max(d);
            }
            if std::env::var_os("FWD_DEBUG").is_some() {
                eprintln!(
                    "  pos {i}: max {pmax:.4} oracle lp0 {:.4} ours {:.4}",
                    top_logits[0] - lse,
                    ours[0]
                );
            }
            let our_top = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0 as u32;
            if top_logits[0] - top_logits[1] >= MARGIN && our_top != top[0] {
                fails.push(format!(
                    "{name} {:?} pos {i}: top-1 {} vs ours {our_top}",
                    case["prompt"], top[0]
                ));
            }
        }
    }
    let mean = sum / count as f64;
    eprintln!("{name}: mean |d log-prob| {mean:.4}, max {worst:.4} over oracle top-10");
    if mean > 0.10 || worst > 0.50 {
        fails.push(format!("{name}: mean {mean:.4} max {worst:.4}"));
    }
    for case in oracle["generate"].as_array().unwrap() {
        let tokens = common::ids(&case["prompt_tokens"]);
        let want = common::ids(&case["greedy_tokens"]);
        let margins: Vec<f64> = case["greedy_margins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let mut s = Session::new(&model);
        let mut logits = s.eval(&tokens).unwrap().to_vec();
        for (step, (&w, &m)) in want.iter().zip(&margins).enumerate() {
            if m < MARGIN {
                break;
            }
            let t = logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0 as u32;
            if t != w {
                fails.push(format!(
                    "{name} {:?}: step {step} oracle {w} ours {t} (margin {m:.2})",
                    case["prompt"]
                ));
                break;
            }
            logits = s.eval(&[t]).unwrap().to_vec();
        }
    }
    fails
}

#[test]
fn forward_pass_matches_llama_cpp_on_oracle_tokens() {
    let mut fails = Vec::new();
    for (name, path) in common::oracle_models() {
        fails.extend(check_model(name, &path));
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}
