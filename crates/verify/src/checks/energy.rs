//! Energy: the server's energy counter over the load, as a cost per 1000 tokens at an
//! electricity price, against `governance.cost.targetCostPer1kTokensUsd`.

use std::time::Duration;

use ms_server::metrics::{ENERGY as METRIC_JOULES, GENERATED, PROMPT};

use crate::check::{self, at_most, num};
use crate::checks::Ctx;
use crate::checks::traffic::Measured;
use crate::report::EnergyRecord;
use crate::{cost, prom};

/// Energy and tokens between two scrapes of /metrics.
pub fn energy_of(
    before: Option<&[prom::Sample]>,
    after: Option<&[prom::Sample]>,
    wall: Duration,
) -> Option<EnergyRecord> {
    let (b, a) = (before?, after?);
    let delta = |name: &str| Some(prom::sum(a, name)? - prom::sum(b, name).unwrap_or(0.0));
    let joules = delta(METRIC_JOULES)?;
    let tokens = delta(PROMPT)? + delta(GENERATED)?;
    let labels = prom::labels(a, METRIC_JOULES).join(", ");
    Some(EnergyRecord {
        joules,
        tokens,
        seconds: wall.as_secs_f64(),
        source: if labels.is_empty() {
            format!("{METRIC_JOULES} increase")
        } else {
            format!("{METRIC_JOULES}{{{labels}}} increase")
        },
    })
}

/// MV0701.
pub fn check(ctx: &mut Ctx, m: &Measured) {
    let Some(c) = ctx.take(check::COST_PER_1K) else {
        return;
    };
    let declared = &ctx.spec.info.cost;
    let target = declared.target_cost_per_1k_tokens_usd.unwrap_or(0.0);
    let (price, price_source) = match ctx.opts.usd_per_kwh {
        Some(p) => (p, "--usd-per-kwh".to_string()),
        None => (
            cost::DEFAULT_USD_PER_KWH,
            "modelspec's default (about the 2024 US commercial average; set --usd-per-kwh)"
                .to_string(),
        ),
    };
    let pricing = [
        declared.cloud_provider.as_deref(),
        declared.instance_type.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let hints = if pricing.is_empty() {
        String::new()
    } else {
        format!("; pricingHints ({pricing}) carry no price, instance rental not included")
    };
    let c = match &m.energy {
        Some(e) if e.tokens > 0.0 => {
            let usd = cost::usd_per_1k_tokens(e.joules, e.tokens, price).unwrap_or(0.0);
            c.method(format!(
                "energy only: {} J ({}) over {} tokens (prompt + generated) of the load, at {} USD/kWh from {price_source}: J / 3.6e6 × USD/kWh / tokens × 1000{hints}{}",
                num(e.joules),
                e.source,
                num(e.tokens),
                num(price),
                if ctx.local {
                    "; the in-process server's energy covers the whole process, the verifier's load clients included"
                } else {
                    ""
                }
            ))
            .measured(format!("{} USD per 1k tokens", num(usd)), at_most(usd, target))
            .values("USD/1k tokens", target, Some(usd))
        }
        Some(_) => c.not_checked("no token was processed during the load"),
        None => c.not_checked(if m.summary.is_none() {
            m.why_no_load()
        } else {
            format!("the server exports no {METRIC_JOULES} with token counters at /metrics")
        }),
    };
    ctx.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_is_the_increase_between_scrapes() {
        let b = prom::parse(
            "modelspec_energy_joules_total{source=\"estimated\"} 100\nmodelspec_prompt_tokens_total 50\nmodelspec_generated_tokens_total 10\n",
        );
        let a = prom::parse(
            "modelspec_energy_joules_total{source=\"estimated\"} 136\nmodelspec_prompt_tokens_total 130\nmodelspec_generated_tokens_total 30\n",
        );
        let e = energy_of(Some(&b), Some(&a), Duration::from_secs(2)).expect("energy");
        assert_eq!((e.joules, e.tokens), (36.0, 100.0));
        assert!(e.source.contains("source=\"estimated\""));
        assert!(energy_of(Some(&b), None, Duration::ZERO).is_none());
        let no_tokens = prom::parse("modelspec_energy_joules_total 1\n");
        assert!(energy_of(Some(&b), Some(&no_tokens), Duration::ZERO).is_none());
    }
}
