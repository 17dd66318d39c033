//! Which type each tensor gets for a quantization target: llama.cpp's mix
//! (`llama_tensor_get_type` for the file types Q8_0, Q5_0, Q6_K and Q4_K_M, without imatrix or
//! user overrides), as a pure function of tensor names, shapes and a few model facts.
//!
//! Q4_K_M: Q4_K by default; `output.weight` (or `token_embd.weight` when the model has no
//! `output.weight`, i.e. tied embeddings) Q6_K; `attn_v` and `ffn_down` Q6_K on layers where
//! `i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2`; tensors with fewer than two dimensions, norms
//! and a few small special tensors keep their type. Rows that are not whole blocks fall back:
//! Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and to F16 when even that does not fit.

use std::cmp::Ordering;
use std::fmt;

use crate::GgmlType;

/// A `modelspec quantize --to` target (a llama.cpp file type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Q8_0,
    Q5_0,
    Q6K,
    Q4KM,
}

impl Target {
    pub const ALL: [Target; 4] = [Target::Q8_0, Target::Q6K, Target::Q5_0, Target::Q4KM];

    /// Parses `Q8_0`, `Q5_0`, `Q6_K`, `Q4_K_M` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Q8_0 => "Q8_0",
            Target::Q5_0 => "Q5_0",
            Target::Q6K => "Q6_K",
            Target::Q4KM => "Q4_K_M",
        }
    }

    /// The value of `general.file_type` (llama.cpp's `llama_ftype`).
    pub fn file_type(self) -> u32 {
        match self {
            Target::Q8_0 => 7,
            Target::Q5_0 => 8,
            Target::Q4KM => 15,
            Target::Q6K => 18,
        }
    }

    /// The type most tensors get.
    pub fn default_type(self) -> GgmlType {
        match self {
            Target::Q8_0 => GgmlType::Q8_0,
            Target::Q5_0 => GgmlType::Q5_0,
            Target::Q6K => GgmlType::Q6K,
            Target::Q4KM => GgmlType::Q4K,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The model facts the mix depends on (from the GGUF metadata).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelInfo {
    /// `general.architecture`.
    pub arch: String,
    /// `{arch}.block_count`.
    pub n_layer: u32,
    /// `{arch}.expert_count` (0 when absent).
    pub n_expert: u32,
    /// `{arch}.attention.head_count` and `head_count_kv` (0 when absent).
    pub n_head: u32,
    pub n_head_kv: u32,
}

/// One input tensor.
#[derive(Clone, Copy, Debug)]
pub struct TensorDesc<'a> {
    pub name: &'a str,
    /// Dimensions innermost first (`dims[0]` is the row length).
    pub dims: &'a [u64],
    pub ty: GgmlType,
}

/// The decision for one tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub ty: GgmlType,
    /// The type the mix wanted when the row length forced a fallback to `ty`.
    pub fell_back_from: Option<GgmlType>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecipeError {
    /// A mixture-of-experts tensor whose layer cannot be read from its name.
    BadLayer { tensor: String, n_layer: u32 },
    /// The row length fits neither the wanted type nor its fallback chain.
    NoFallback {
        tensor: String,
        row_len: u64,
        ty: GgmlType,
    },
}

impl fmt::Display for RecipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipeError::BadLayer { tensor, n_layer } => write!(
                f,
                "tensor '{tensor}': expected a name 'blk.N.…' with N below the block count {n_layer}"
            ),
            RecipeError::NoFallback {
                tensor,
                row_len,
                ty,
            } => write!(
                f,
                "tensor '{tensor}': rows of {row_len} values are not a multiple of the {ty} block \
                 size {} and {ty} has no fallback type; choose another --to",
                ty.block_len()
            ),
        }
    }
}

impl std::error::Error for RecipeError {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

fn category(name: &str) -> Category {
    use Category::*;
    if name == "output.weight" {
        return Output;
    }
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return TokenEmbd;
    }
    const BY_SUBSTRING: [(&str, Category); 9] = [
        ("attn_qkv.weight", AttnQkv),
        ("attn_kv_b.weight", AttnKvB),
        ("attn_v.weight", AttnV),
        ("attn_k.weight", AttnK),
        ("attn_q.weight", AttnQ),
        ("attn_output.weight", AttnOutput),
        ("ffn_up", FfnUp),
        ("ffn_gate", FfnGate),
        ("ffn_down", FfnDown),
    ];
    BY_SUBSTRING
        .iter()
        .find(|(s, _)| name.contains(s))
        .map_or(Other, |&(_, c)| c)
}

fn is_attn_v_like(c: Category) -> bool {
    matches!(c, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
}

/// GGML's dimension count: trailing dimensions of size 1 do not count.
fn n_dims(dims: &[u64]) -> usize {
    (1..dims.len())
        .rev()
        .find(|&i| dims[i] > 1)
        .map_or(1, |i| i + 1)
}

/// Whether llama.cpp quantizes this tensor at all (otherwise it is copied unchanged).
pub fn allows_quantization(name: &str, dims: &[u64]) -> bool {
    if n_dims(dims) < 2 || !name.ends_with("weight") {
        return false;
    }
    const KEEP_CONTAINING: [&str; 33] = [
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "indexer.k_proj.weight",
        "indexer.q_proj.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
        ".position_embd",
        "sam.pos_embd",
        "sam.neck.",
        "sam.net_",
        ".rel_pos",
        ".patch_embd",
        ".patch_merger",
    ];
    const KEEP_EXACT: [&str; 2] = ["position_embd.weight", "token_types.weight"];
    !KEEP_CONTAINING.iter().any(|s| name.contains(s))
        && !KEEP_EXACT.contains(&name)
        && !name.contains("a.rvq.codebook")
        && !name.contains("mm.a.code_embd")
}

fn layer_of(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("blk.")?;
    let digits = rest.split('.').next()?;
    digits.parse().ok()
}

/// llama.cpp's processing order (its `weight_name_comparer`): tensors outside blocks first,
/// then by layer number, then by name. The counters of the mix advance in this order, and
/// llama.cpp writes its output tensors in it.
pub fn llama_cpp_order(names: &[&str]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..names.len()).collect();
    idx.sort_by(|&a, &b| {
        let (la, lb) = (
            layer_of(names[a]).unwrap_or(-1),
            layer_of(names[b]).unwrap_or(-1),
        );
        match la.cmp(&lb) {
            Ordering::Equal => names[a].cmp(names[b]),
            o => o,
        }
    });
    idx
}

fn use_more_bits(i: i64, n: i64) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

struct State<'m> {
    target: Target,
    model: &'m ModelInfo,
    tied_embeddings: bool,
    n_attention_wv: i64,
    i_attention_wv: i64,
    i_ffn_down: i64,
    i_ffn_gate: i64,
    i_ffn_up: i64,
}

impl State<'_> {
    fn is_70b(&self) -> bool {
        self.model.arch == "llama"
            && self.model.n_layer == 80
            && self.model.n_head != self.model.n_head_kv
    }

    fn layer(&self, counter: i64, name: &str) -> Result<(i64, i64), RecipeError> {
        let n_layer = i64::from(self.model.n_layer);
        if self.model.n_expert > 1 {
            // Experts of one layer are not consecutive in some models: read the layer from
            // the name, as llama.cpp does.
            return match layer_of(name) {
                Some(i) if (0..n_layer).contains(&i) => Ok((i, n_layer)),
                _ => Err(RecipeError::BadLayer {
                    tensor: name.to_string(),
                    n_layer: self.model.n_layer,
                }),
            };
        }
        Ok((counter, n_layer))
    }

    /// llama.cpp's `llama_tensor_get_type_impl`, restricted to our targets.
    fn mix(&mut self, t: &TensorDesc, cat: Category) -> Result<GgmlType, RecipeError> {
        use GgmlType::*;
        let q4km = self.target == Target::Q4KM;
        let falcon = self.model.arch == "falcon";
        let n_expert = self.model.n_expert;
        let mut ty = self.target.default_type();
        if cat == Category::Output || (self.tied_embeddings && cat == Category::TokenEmbd) {
            let nx = t.dims.first().copied().unwrap_or(0);
            if falcon || nx % ty.block_len() as u64 != 0 {
                ty = Q8_0;
            } else if ty != Q8_0 {
                ty = Q6K;
            }
        } else if cat == Category::TokenEmbd {
            // No change for these targets.
        } else if is_attn_v_like(cat) {
            if q4km && use_more_bits(self.i_attention_wv, self.n_attention_wv) {
                ty = Q6K;
            }
            if self.is_70b() && ty == Q4K {
                // 8 heads share attn_v in the 70B model: more bits are cheap there.
                ty = Q5K;
            }
            if n_expert == 8 {
                ty = Q8_0;
            }
            self.i_attention_wv += 1;
        } else if cat == Category::AttnK {
            if n_expert == 8 {
                ty = Q8_0;
            }
        } else if cat == Category::FfnDown {
            let (i, n) = self.layer(self.i_ffn_down, t.name)?;
            if q4km {
                if falcon {
                    ty = if i < n / 16 {
                        Q6K
                    } else if use_more_bits(i, n) {
                        Q5K
                    } else {
                        Q4K
                    };
                } else if use_more_bits(i, n) {
                    ty = Q6K;
                }
            }
            self.i_ffn_down += 1;
        } else if cat == Category::AttnOutput {
            if !falcon && n_expert == 8 && q4km {
                ty = Q5K;
            }
        } else if cat == Category::FfnGate {
            self.layer(self.i_ffn_gate, t.name)?;
            self.i_ffn_gate += 1;
        } else if cat == Category::FfnUp {
            self.layer(self.i_ffn_up, t.name)?;
            self.i_ffn_up += 1;
        }
        Ok(ty)
    }
}

/// Replaces `ty` when the row length is not a whole number of its blocks.
fn fallback(t: &TensorDesc, ty: GgmlType) -> Result<Choice, RecipeError> {
    use GgmlType::*;
    let ncols = t.dims.first().copied().unwrap_or(0);
    if ncols % ty.block_len() as u64 == 0 {
        return Ok(Choice {
            ty,
            fell_back_from: None,
        });
    }
    let mut new = match ty {
        Q2K | Q3K | Tq1_0 | Tq2_0 => Q4_0,
        Q4K => Q5_0,
        Q5K => Q5_1,
        Q6K => Q8_0,
        Iq1S | Iq1M | Iq2Xxs | Iq2Xs | Iq2S | Iq3Xxs | Iq3S | Iq4Xs => Iq4Nl,
        _ => {
            return Err(RecipeError::NoFallback {
                tensor: t.name.to_string(),
                row_len: ncols,
                ty,
            });
        }
    };
    if ncols % new.block_len() as u64 != 0 {
        new = F16;
    }
    Ok(Choice {
        ty: new,
        fell_back_from: Some(ty),
    })
}

/// The type of every tensor (in input order) for `target`.
pub fn plan(
    target: Target,
    model: &ModelInfo,
    tensors: &[TensorDesc],
) -> Result<Vec<Choice>, RecipeError> {
    let cats: Vec<Category> = tensors.iter().map(|t| category(t.name)).collect();
    let mut state = State {
        target,
        model,
        tied_embeddings: !cats.contains(&Category::Output),
        n_attention_wv: cats.iter().filter(|&&c| is_attn_v_like(c)).count() as i64,
        i_attention_wv: 0,
        i_ffn_down: 0,
        i_ffn_gate: 0,
        i_ffn_up: 0,
    };
    let names: Vec<&str> = tensors.iter().map(|t| t.name).collect();
    let mut out = vec![
        Choice {
            ty: GgmlType::F32,
            fell_back_from: None,
        };
        tensors.len()
    ];
    for i in llama_cpp_order(&names) {
        let t = &tensors[i];
        out[i] = if allows_quantization(t.name, t.dims) {
            let wanted = state.mix(t, cats[i])?;
            fallback(t, wanted)?
        } else {
            Choice {
                ty: t.ty,
                fell_back_from: None,
            }
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_bits_layers_follow_the_formula() {
        // n = 4 (n/8 = 0, 7n/8 = 3): layers 2 and 3; n = 26: 0..3, 5, 8, ..., 20, 22..
        let pick = |n: i64| (0..n).filter(|&i| use_more_bits(i, n)).collect::<Vec<_>>();
        assert_eq!(pick(4), vec![2, 3]);
        assert_eq!(pick(8), vec![0, 3, 6, 7]);
        assert_eq!(
            pick(26),
            vec![0, 1, 2, 5, 8, 11, 14, 17, 20, 22, 23, 24, 25]
        );
    }

    #[test]
    fn dimension_count_ignores_trailing_ones() {
        assert_eq!(n_dims(&[256]), 1);
        assert_eq!(n_dims(&[256, 1]), 1);
        assert_eq!(n_dims(&[256, 2]), 2);
        assert_eq!(n_dims(&[256, 2, 1, 1]), 2);
        assert!(!allows_quantization("blk.0.attn_norm.weight", &[256, 256]));
        assert!(!allows_quantization("blk.0.attn_q.bias", &[256, 256]));
        assert!(allows_quantization("blk.0.attn_q.weight", &[256, 256]));
    }
}
