//! Sequence limits: the context the server runs with covers the declared
//! `maxSequenceLengthTokens`, and a request of that length is accepted in full.

use serde_json::Value;

use crate::check::{self, Check, Verdict, at_least, num};
use crate::checks::Ctx;
use crate::client::Outcome;
use crate::load;
use crate::prompt::Counter;

/// The context length the server runs with, the model's trained one, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedContext {
    pub tokens: u64,
    pub trained: Option<u64>,
    pub how: String,
}

/// MV0302: the server's context against the declared sequence length; returns the context.
pub fn context(ctx: &mut Ctx, models: Option<&Value>) -> Option<ServedContext> {
    let context = context_of(ctx.plan.as_ref(), models);
    if let Some(c) = ctx.take(check::CONTEXT_LIMIT) {
        let n = ctx.spec.info.batch.max_sequence_length_tokens.unwrap_or(0) as f64;
        ctx.push(match &context {
            Some(served) => {
                let ctx_len = served.tokens;
                let mut c = c
                    .method(served.how.clone())
                    .measured(format!("{ctx_len} tokens"), at_least(ctx_len as f64, n))
                    .values("tokens", n, Some(ctx_len as f64));
                if c.verdict == Verdict::Violated {
                    c = c.reason(match served.trained {
                        Some(t) if (t as f64) >= n => format!(
                            "the model was trained for {t} tokens but the server runs with {ctx_len}: raise contextLength in the execution plan"
                        ),
                        Some(t) => format!(
                            "the model itself supports only {t} tokens; the declaration cannot hold with this model"
                        ),
                        None => format!("the server runs with a context of {ctx_len} tokens"),
                    });
                }
                c
            }
            None => c.not_checked(
                "the server reports no context length (GET /v1/plan and /v1/models)",
            ),
        });
    }
    context
}

/// MV0301: one request of the declared sequence length, after the load so that it does not
/// disturb its timings.
pub fn max_sequence(
    ctx: &mut Ctx,
    counter: &Result<Counter, String>,
    model: &str,
    ctx_limit: Option<usize>,
    log: &mut dyn FnMut(&str),
) {
    let Some(c) = ctx.take(check::MAX_SEQUENCE_ACCEPTED) else {
        return;
    };
    let n = ctx.spec.info.batch.max_sequence_length_tokens.unwrap_or(1) as usize;
    let c = match counter {
        Ok(counter) => {
            log(&format!("sending a {n}-token sequence"));
            send(ctx, c, counter, n, model, ctx_limit)
        }
        Err(e) => c.not_checked(e.clone()),
    };
    ctx.push(c);
}

fn send(
    ctx: &Ctx,
    c: Check,
    counter: &Counter,
    n: usize,
    model: &str,
    ctx_limit: Option<usize>,
) -> Check {
    let prompt = counter.prompt(n.saturating_sub(1).max(1));
    let body = load::request_body(model, &prompt.text, 1);
    let o: Outcome = ctx.client.stream_completion(&body, None);
    let how = if counter.is_exact() {
        "counted with the model's tokenizer"
    } else {
        "approximate, from the server's counts"
    };
    let c = c.method(format!(
        "one streamed completion: a prompt of {} tokens ({how}) + 1 generated token",
        prompt.tokens
    ));
    let total = o.prompt_tokens.unwrap_or(prompt.tokens as u64) + 1;
    let c = c.values("tokens", n as f64, o.ok().then_some(total as f64));
    if o.ok() {
        if total >= n as u64 {
            c.measured(
                format!(
                    "accepted: {total} tokens in {} ms",
                    num(o.latency.as_secs_f64() * 1e3)
                ),
                Verdict::Held,
            )
        } else {
            c.measured(format!("accepted as {total} tokens"), Verdict::Violated)
                .reason(format!(
                    "the server counted {} prompt tokens where {} were sent: it truncates",
                    o.prompt_tokens.unwrap_or(0),
                    prompt.tokens
                ))
        }
    } else {
        let limit = ctx_limit
            .map(|l| format!(" (the server's context is {l} tokens)"))
            .unwrap_or_default();
        c.measured("rejected", Verdict::Violated).reason(format!(
            "{}{limit}",
            o.error.unwrap_or_else(|| format!("HTTP {}", o.status))
        ))
    }
}

/// The context from the effective plan, else from the model list (other servers).
fn context_of(plan: Option<&Value>, models: Option<&Value>) -> Option<ServedContext> {
    if let Some(p) = plan
        && let Some(tokens) = p.pointer("/spec/contextLength").and_then(Value::as_u64)
    {
        let trained = p
            .pointer("/status/modelContextLength")
            .and_then(Value::as_u64);
        return Some(ServedContext {
            tokens,
            trained,
            how: format!(
                "spec.contextLength of the effective plan (GET /v1/plan){}",
                trained
                    .map(|t| format!("; the model was trained for {t}"))
                    .unwrap_or_default()
            ),
        });
    }
    let m = models?.pointer("/data/0")?;
    ["context_length", "max_model_len", "context_window"]
        .iter()
        .find_map(|k| {
            m.get(*k).and_then(Value::as_u64).map(|v| ServedContext {
                tokens: v,
                trained: None,
                how: format!("{k} of GET /v1/models"),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contexts() {
        let plan =
            json!({"spec": {"contextLength": 4096}, "status": {"modelContextLength": 32768}});
        let c = context_of(Some(&plan), None).expect("context");
        assert_eq!((c.tokens, c.trained), (4096, Some(32768)));
        let models = json!({"data": [{"id": "m", "context_length": 2048}]});
        let c = context_of(None, Some(&models)).expect("context");
        assert_eq!((c.tokens, c.trained), (2048, None));
        assert!(c.how.contains("/v1/models"));
        assert!(context_of(None, Some(&json!({"data": []}))).is_none());
    }
}
