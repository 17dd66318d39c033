//! Reading the Prometheus text exposition format (version 0.0.4), as far as checks need it:
//! samples by metric name, summed over their label sets.

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// The label set as written, without braces (`status="200"`), empty when none.
    pub labels: String,
    pub value: f64,
}

/// Every sample of `text`; comments, blank and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find(['{', ' ', '\t']) {
        Some(i) if line[i..].starts_with('{') => {
            // Label values may hold spaces and braces inside quotes: find the closing brace
            // outside quotes.
            let body = &line[i + 1..];
            let mut in_quotes = false;
            let mut escaped = false;
            let mut close = None;
            for (j, ch) in body.char_indices() {
                match ch {
                    _ if escaped => escaped = false,
                    '\\' if in_quotes => escaped = true,
                    '"' => in_quotes = !in_quotes,
                    '}' if !in_quotes => {
                        close = Some(j);
                        break;
                    }
                    _ => {}
                }
            }
            let close = close?;
            (&line[..i], &body[..close], &body[close + 1..])
        }
        Some(i) => (&line[..i], "", &line[i..]),
        None => return None,
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels: labels.to_string(),
        value,
    })
}

/// The sum of every sample named `name` (all label sets), `None` when there is none.
pub fn sum(samples: &[Sample], name: &str) -> Option<f64> {
    let mut found = None;
    for s in samples.iter().filter(|s| s.name == name) {
        *found.get_or_insert(0.0) += s.value;
    }
    found
}

/// The label sets under which `name` appears (e.g. the energy source), for method texts.
pub fn labels<'a>(samples: &'a [Sample], name: &str) -> Vec<&'a str> {
    samples
        .iter()
        .filter(|s| s.name == name && !s.labels.is_empty())
        .map(|s| s.labels.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP modelspec_requests_total Requests by status.\n\
# TYPE modelspec_requests_total counter\n\
modelspec_requests_total{status=\"200\"} 12\n\
modelspec_requests_total{status=\"429\"} 3\n\
modelspec_energy_joules_total{source=\"estimated\",note=\"a } b\"} 41.5\n\
modelspec_process_resident_memory_bytes 3.5e8\n\
modelspec_time_to_first_token_seconds_bucket{le=\"+Inf\"} 15 1700000000\n\
garbage line\n\
\n";

    #[test]
    fn sums_over_label_sets() {
        let s = parse(TEXT);
        assert_eq!(sum(&s, "modelspec_requests_total"), Some(15.0));
        assert_eq!(sum(&s, "modelspec_energy_joules_total"), Some(41.5));
        assert_eq!(
            sum(&s, "modelspec_process_resident_memory_bytes"),
            Some(350_000_000.0)
        );
        assert_eq!(
            sum(&s, "modelspec_time_to_first_token_seconds_bucket"),
            Some(15.0)
        );
        assert_eq!(sum(&s, "modelspec_missing"), None);
        assert_eq!(
            labels(&s, "modelspec_energy_joules_total"),
            vec!["source=\"estimated\",note=\"a } b\""]
        );
        // "garbage line" has no numeric value.
        assert!(s.iter().all(|x| x.name != "garbage"));
    }
}
