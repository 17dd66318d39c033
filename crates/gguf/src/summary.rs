//! A model's shape and size as far as the GGUF conventions tell it, without knowing any
//! architecture: hyperparameters are read from the `{general.architecture}.` key prefix
//! (`{arch}.block_count`, `{arch}.attention.head_count`, ...), sizes from the tensor index.

use ms_quant::GgmlType;

use crate::{GgufFile, Metadata};

/// Hyperparameters under the `{arch}.` prefix, each `None` when the file does not say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArchSummary {
    pub architecture: Option<String>,
    /// `general.name`.
    pub name: Option<String>,
    pub block_count: Option<u64>,
    pub embedding_length: Option<u64>,
    pub feed_forward_length: Option<u64>,
    /// Query heads per layer (files may give one value for all layers or one per layer).
    pub head_count: Option<PerLayer>,
    pub head_count_kv: Option<PerLayer>,
    /// Dimension of one key head: `attention.key_length`, else embedding / heads.
    pub key_length: Option<u64>,
    pub value_length: Option<u64>,
    pub context_length: Option<u64>,
    /// Entries of `tokenizer.ggml.tokens`, else `{arch}.vocab_size`.
    pub vocab_size: Option<u64>,
    /// `tokenizer.ggml.model` (`llama` = SentencePiece, `gpt2` = byte-level BPE, ...).
    pub tokenizer_model: Option<String>,
    /// `tokenizer.ggml.pre`, the pre-tokenizer of BPE vocabularies.
    pub tokenizer_pre: Option<String>,
    pub rope_freq_base: Option<f64>,
    pub sliding_window: Option<u64>,
}

/// A hyperparameter given once for all layers or per layer.
#[derive(Clone, Debug, PartialEq)]
pub enum PerLayer {
    All(u64),
    Each(Vec<u64>),
}

impl PerLayer {
    /// The value for layer `i` (the last one given when a per-layer list is short).
    pub fn layer(&self, i: usize) -> u64 {
        match self {
            PerLayer::All(v) => *v,
            PerLayer::Each(v) => v.get(i).or(v.last()).copied().unwrap_or(0),
        }
    }

    /// The sum over `layers` layers (the last value repeats past a short list); `None` on
    /// overflow. Never iterates more than the list's length, whatever `layers` a file claims.
    pub fn sum_over(&self, layers: u64) -> Option<u64> {
        match self {
            PerLayer::All(v) => v.checked_mul(layers),
            PerLayer::Each(v) => {
                let listed = usize::try_from(layers).map_or(v.len(), |l| l.min(v.len()));
                let mut sum = v[..listed]
                    .iter()
                    .try_fold(0u64, |acc, &x| acc.checked_add(x))?;
                let rest = layers - listed as u64;
                if rest > 0 {
                    sum = sum.checked_add(v.last().copied().unwrap_or(0).checked_mul(rest)?)?;
                }
                Some(sum)
            }
        }
    }

    pub fn max(&self) -> u64 {
        match self {
            PerLayer::All(v) => *v,
            PerLayer::Each(v) => v.iter().copied().max().unwrap_or(0),
        }
    }
}

impl std::fmt::Display for PerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PerLayer::All(v) => write!(f, "{v}"),
            PerLayer::Each(v) => {
                let min = v.iter().min().copied().unwrap_or(0);
                let max = self.max();
                if min == max {
                    write!(f, "{max}")
                } else {
                    write!(f, "{min}..{max} (per layer)")
                }
            }
        }
    }
}

/// Tensors, elements and bytes of one tensor type.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeTotal {
    pub ty: GgmlType,
    pub tensors: usize,
    pub elements: u64,
    pub bytes: u64,
}

impl TypeTotal {
    pub fn bits_per_weight(&self) -> f64 {
        bits_per_weight(self.bytes, self.elements)
    }
}

/// Sizes over the whole tensor index.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeSummary {
    /// By type, in type id order.
    pub by_type: Vec<TypeTotal>,
    /// Total elements of all tensors (the parameter count).
    pub parameters: u64,
    /// Total bytes of tensor data (padding excluded).
    pub bytes: u64,
}

impl SizeSummary {
    pub fn of(file: &GgufFile) -> Self {
        let mut by_type: Vec<TypeTotal> = Vec::new();
        for t in file.tensors() {
            let n = t.n_elements();
            match by_type.iter_mut().find(|x| x.ty == t.ty) {
                Some(x) => {
                    // Saturating: overlapping tensors in a hostile file can claim any total.
                    x.tensors += 1;
                    x.elements = x.elements.saturating_add(n);
                    x.bytes = x.bytes.saturating_add(t.size);
                }
                None => by_type.push(TypeTotal {
                    ty: t.ty,
                    tensors: 1,
                    elements: n,
                    bytes: t.size,
                }),
            }
        }
        by_type.sort_by_key(|x| x.ty.id());
        SizeSummary {
            parameters: by_type
                .iter()
                .fold(0u64, |a, x| a.saturating_add(x.elements)),
            bytes: by_type.iter().fold(0u64, |a, x| a.saturating_add(x.bytes)),
            by_type,
        }
    }

    pub fn bits_per_weight(&self) -> f64 {
        bits_per_weight(self.bytes, self.parameters)
    }
}

fn bits_per_weight(bytes: u64, elements: u64) -> f64 {
    if elements == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / elements as f64
    }
}

impl ArchSummary {
    pub fn of(meta: &Metadata) -> Self {
        let architecture = meta.get_str_opt("general.architecture").ok().flatten();
        let prefix = architecture.unwrap_or("");
        let key = |k: &str| format!("{prefix}.{k}");
        let uint = |k: &str| meta.get_u64_opt(&key(k)).ok().flatten();
        let per_layer = |k: &str| match meta.get(&key(k)) {
            Some(crate::Value::Array(a)) => a
                .to_i64_vec()
                .and_then(|v| v.into_iter().map(|x| u64::try_from(x).ok()).collect())
                .map(PerLayer::Each),
            Some(_) => uint(k).map(PerLayer::All),
            None => None,
        };
        let embedding_length = uint("embedding_length");
        let head_count = per_layer("attention.head_count");
        let default_head_dim = match (embedding_length, &head_count) {
            (Some(e), Some(h)) if h.max() > 0 => Some(e / h.max()),
            _ => None,
        };
        let key_length = uint("attention.key_length").or(default_head_dim);
        let vocab_size = match meta.get_array_opt("tokenizer.ggml.tokens") {
            Ok(Some(a)) => Some(a.len() as u64),
            _ => uint("vocab_size"),
        };
        let string = |k: &str| meta.get_str_opt(k).ok().flatten().map(str::to_string);
        ArchSummary {
            architecture: architecture.map(str::to_string),
            name: string("general.name"),
            block_count: uint("block_count"),
            embedding_length,
            feed_forward_length: uint("feed_forward_length"),
            head_count_kv: per_layer("attention.head_count_kv").or_else(|| head_count.clone()),
            head_count,
            key_length,
            value_length: uint("attention.value_length").or(key_length),
            context_length: uint("context_length"),
            vocab_size,
            tokenizer_model: string("tokenizer.ggml.model"),
            tokenizer_pre: string("tokenizer.ggml.pre"),
            rope_freq_base: meta
                .get_f32_opt(&key("rope.freq_base"))
                .ok()
                .flatten()
                .map(f64::from),
            sliding_window: uint("attention.sliding_window"),
        }
    }

    /// Bytes of a KV cache holding `ctx` positions on every layer with `elem_bytes` per
    /// value (2 for f16, 4 for f32): keys and values of every KV head. `None` when the
    /// file lacks the layer count or head sizes.
    pub fn kv_cache_bytes(&self, ctx: u64, elem_bytes: u64) -> Option<u64> {
        let layers = self.block_count?;
        let kv = self.head_count_kv.as_ref()?;
        let per_pos = self.key_length?.checked_add(self.value_length?)?;
        kv.sum_over(layers)?
            .checked_mul(per_pos)?
            .checked_mul(ctx)?
            .checked_mul(elem_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Array, Value};

    #[test]
    fn reads_the_arch_prefix_and_computes_the_kv_cache() {
        let mut m = Metadata::default();
        m.insert("general.architecture", Value::String("toy".into()));
        m.insert("toy.block_count", Value::U32(3));
        m.insert("toy.embedding_length", Value::U32(64));
        m.insert("toy.attention.head_count", Value::U32(4));
        m.insert(
            "toy.attention.head_count_kv",
            Value::Array(Array::I32(vec![2, 1, 2])),
        );
        m.insert(
            "tokenizer.ggml.tokens",
            Value::Array(Array::String(vec!["a".into(), "b".into()])),
        );
        // Keys of another architecture are not read.
        m.insert("other.context_length", Value::U32(9));
        let s = ArchSummary::of(&m);
        assert_eq!(s.block_count, Some(3));
        assert_eq!(s.key_length, Some(16), "embedding / heads");
        assert_eq!(s.value_length, Some(16));
        assert_eq!(s.vocab_size, Some(2));
        assert_eq!(s.context_length, None);
        assert_eq!(
            s.head_count_kv.as_ref().unwrap().to_string(),
            "1..2 (per layer)"
        );
        // (2 + 1 + 2) heads * (16 + 16) values * 10 positions * 2 bytes
        assert_eq!(s.kv_cache_bytes(10, 2), Some(5 * 32 * 10 * 2));
        // A hostile layer count overflows to "unknown" at once instead of looping.
        let mut huge = s.clone();
        huge.block_count = Some(u64::MAX);
        assert_eq!(huge.kv_cache_bytes(10, 2), None);
        assert_eq!(PerLayer::Each(vec![1, 2]).sum_over(4), Some(1 + 2 + 2 + 2));
        assert_eq!(PerLayer::Each(vec![1, 2, 3]).sum_over(2), Some(3));
    }
}
