//! The `quantization` execution parameter.

use std::fmt;

use ms_quant::recipe::Target;

/// What the engine runs: the artifact as stored, or requantized at load to one of llama.cpp's
/// mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantization {
    Source,
    Q8_0,
    Q6K,
    Q4KM,
}

impl Quantization {
    pub const ALL: [Quantization; 4] = [
        Quantization::Source,
        Quantization::Q8_0,
        Quantization::Q6K,
        Quantization::Q4KM,
    ];

    /// `source`, `Q8_0`, `Q6_K`, `Q4_K_M` (case-insensitive), as plans spell them.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|q| q.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Quantization::Source => "source",
            Quantization::Q8_0 => "Q8_0",
            Quantization::Q6K => "Q6_K",
            Quantization::Q4KM => "Q4_K_M",
        }
    }

    /// The quantizer's target; `None` for `source`.
    pub fn target(self) -> Option<Target> {
        match self {
            Quantization::Source => None,
            Quantization::Q8_0 => Some(Target::Q8_0),
            Quantization::Q6K => Some(Target::Q6K),
            Quantization::Q4KM => Some(Target::Q4KM),
        }
    }

    /// The accepted names, for error messages.
    pub fn names() -> String {
        Self::ALL.map(|q| q.name()).join(", ")
    }
}

impl fmt::Display for Quantization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_map_to_the_quantizer_targets() {
        for q in Quantization::ALL {
            assert_eq!(Quantization::from_name(q.name()), Some(q));
        }
        assert_eq!(Quantization::from_name("q4_k_m"), Some(Quantization::Q4KM));
        assert_eq!(Quantization::from_name("Q5_0"), None);
        assert_eq!(Quantization::Source.target(), None);
        assert_eq!(Quantization::Q6K.target().map(|t| t.name()), Some("Q6_K"));
    }
}
