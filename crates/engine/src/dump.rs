//! Our engine's outputs in the layout of the llama.cpp oracle files (see
//! `shared/oracle/make_oracle.py`), so that `check_oracle.py` can compare any two engines:
//! tokenizations, greedy continuations with their top-1/top-2 margins, and per-position top-k
//! logits with the log-sum-exp of the whole row.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::tokenizer::Tokenizer;
use crate::{EngineError, Model, Session};

/// The prompts file: `{"gen_tokens": 48, "top_k": 10, "tokenize": [..], "generate": [..],
/// "logits": [..]}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    pub gen_tokens: usize,
    pub top_k: usize,
    #[serde(default)]
    pub tokenize: Vec<String>,
    #[serde(default)]
    pub generate: Vec<String>,
    #[serde(default)]
    pub logits: Vec<String>,
}

const NOTES: &str = "tokenize: add_bos=false; special=true parses control tokens in text, \
special=false treats them as text. generate: prompt tokenized with add_bos=true, special=true; \
greedy (argmax) decoding, stops early only at eos; greedy_margins[i] is the logit gap between \
the chosen token and the runner-up at step i. logits: prompt tokenized with add_bos=true, \
special=false; for every position, the top-k next-token logits (raw, before softmax) and the \
log-sum-exp of the whole row, so that log-probabilities of the top-k can be recomputed.";

/// Runs every prompt through `model` and returns the oracle-layout document.
pub fn dump(model: &Model, tokenizer: &Tokenizer, prompts: &Prompts) -> Result<Value, EngineError> {
    let n_vocab = model.info().n_vocab;
    let eos = tokenizer.eos();
    let mut session = Session::new(model);

    let tokenize: Vec<Value> = prompts
        .tokenize
        .iter()
        .map(|text| {
            json!({
                "text": text,
                "special_false": tokenizer.encode(text, false, false),
                "special_true": tokenizer.encode(text, false, true),
            })
        })
        .collect();

    let mut generate = Vec::new();
    for prompt in &prompts.generate {
        let tokens = tokenizer.encode(prompt, true, true);
        session.reset();
        let mut logits = session.eval(&tokens)?.to_vec();
        let (mut greedy, mut margins) = (Vec::new(), Vec::new());
        for step in 0..prompts.gen_tokens {
            let top = top_k(&logits, 2);
            let t = top[0];
            greedy.push(t);
            let runner_up = top
                .get(1)
                .map_or(f32::NEG_INFINITY, |&i| logits[i as usize]);
            margins.push((logits[t as usize] - runner_up) as f64);
            if Some(t) == eos || step + 1 == prompts.gen_tokens {
                break;
            }
            logits = session.eval(&[t])?.to_vec();
        }
        generate.push(json!({
            "prompt": prompt,
            "prompt_tokens": tokens,
            "greedy_tokens": greedy,
            "greedy_margins": margins,
            "greedy_text": tokenizer.decode(&greedy).map_err(EngineError::Tokenizer)?,
        }));
    }

    let mut logits_out = Vec::new();
    for prompt in &prompts.logits {
        let tokens = tokenizer.encode(prompt, true, false);
        session.reset();
        let all = session.eval_all(&tokens)?;
        let positions: Vec<Value> = all
            .chunks_exact(n_vocab)
            .enumerate()
            .map(|(pos, row)| {
                let top = top_k(row, prompts.top_k);
                json!({
                    "pos": pos,
                    "top_ids": top,
                    "top_logits": top.iter().map(|&i| row[i as usize] as f64).collect::<Vec<_>>(),
                    "logsumexp": logsumexp(row),
                })
            })
            .collect();
        logits_out.push(json!({"prompt": prompt, "prompt_tokens": tokens, "positions": positions}));
    }

    Ok(json!({
        "producer": format!("modelspec ms-engine {}", env!("CARGO_PKG_VERSION")),
        "model": model.path().display().to_string(),
        "bos_id": tokenizer.bos(),
        "eos_id": eos,
        "n_vocab": n_vocab,
        "notes": NOTES,
        "tokenize": tokenize,
        "generate": generate,
        "logits": logits_out,
    }))
}

/// Ids of the `k` largest values, largest first; equal values keep the lower id first.
pub fn top_k(row: &[f32], k: usize) -> Vec<u32> {
    let by_value_desc =
        |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    let mut ids: Vec<u32> = (0..row.len() as u32).collect();
    let k = k.min(ids.len());
    if k == 0 {
        return Vec::new();
    }
    ids.select_nth_unstable_by(k - 1, by_value_desc);
    ids.truncate(k);
    ids.sort_by(by_value_desc);
    ids
}

/// `log(sum(exp(row)))`, computed in f64 around the maximum.
pub fn logsumexp(row: &[f32]) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    max + row
        .iter()
        .map(|&v| (v as f64 - max).exp())
        .sum::<f64>()
        .ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_value_then_id() {
        let row = [1.0, 3.0, 2.0, 3.0, -1.0];
        assert_eq!(top_k(&row, 3), [1, 3, 2]);
        assert_eq!(top_k(&row, 10), [1, 3, 2, 0, 4]);
        assert!(top_k(&row, 0).is_empty());
    }

    #[test]
    fn logsumexp_is_stable_for_large_values() {
        let v = logsumexp(&[1000.0, 1000.0]);
        assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-9);
    }
}
