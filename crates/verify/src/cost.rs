//! Cost per 1000 tokens from measured energy and an electricity price.
//!
//! `usd_per_1k = joules / 3.6e6 (J per kWh) * usd_per_kwh / tokens * 1000`, where joules is
//! the server's `modelspec_energy_joules_total` increase over the load window and tokens the
//! increase of prompt + generated tokens over the same window. This is the energy cost only:
//! instance rental is not included (a spec's pricingHints name an instance type, not a price).

/// The electricity price used when none is given: 0.15 USD/kWh, about the 2024 average US
/// commercial rate (EIA: 0.128-0.13) rounded up. Override with `--usd-per-kwh`.
pub const DEFAULT_USD_PER_KWH: f64 = 0.15;

pub const JOULES_PER_KWH: f64 = 3.6e6;

/// USD per 1000 tokens, `None` when no token was processed.
pub fn usd_per_1k_tokens(joules: f64, tokens: f64, usd_per_kwh: f64) -> Option<f64> {
    (tokens > 0.0).then(|| joules / JOULES_PER_KWH * usd_per_kwh / tokens * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_costs() {
        // 36 J = 1e-5 kWh; at 0.15 USD/kWh that is 1.5e-6 USD for 100 tokens, 1.5e-5 per 1k.
        let c = usd_per_1k_tokens(36.0, 100.0, 0.15).unwrap_or(f64::NAN);
        assert!((c - 1.5e-5).abs() < 1e-15, "{c}");
        // 3.6 MJ (1 kWh) over 1000 tokens at 0.20 USD/kWh: 0.20 USD per 1k tokens.
        let c = usd_per_1k_tokens(3.6e6, 1000.0, 0.20).unwrap_or(f64::NAN);
        assert!((c - 0.20).abs() < 1e-12, "{c}");
        assert_eq!(usd_per_1k_tokens(5.0, 0.0, 0.15), None);
    }
}
