//! A loaded model: hyper-parameters read from GGUF metadata and weight views into the
//! memory-mapped file.
//!
//! Weights are never copied: a [`Matrix`] is a byte range of the mapping plus its type and
//! shape, resolved on every use. Only the small 1-D tensors (norm weights, biases) are copied to
//! `Vec<f32>` at load time.

use std::path::Path;
use std::sync::Arc;

use ms_gguf::{GgmlType, GgufFile, MetaError, Metadata};

use crate::EngineError;
use crate::backend::{Backend, BackendKind};
use crate::matmul;

/// The architectures this engine can run (`general.architecture`).
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "gemma3"];

/// A model architecture the engine implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen2,
    Gemma3,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Gemma3 => "gemma3",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(Architecture::Llama),
            "qwen2" => Some(Architecture::Qwen2),
            "gemma3" => Some(Architecture::Gemma3),
            _ => None,
        }
    }
}

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Worker threads for matrix products (at least 1). Results do not depend on it.
    pub threads: usize,
    /// Context length of sessions created from this model; `None` means the model's training
    /// context, capped at [`DEFAULT_MAX_CONTEXT`] to keep the KV cache small.
    pub context_length: Option<usize>,
    /// Where matrix products run (default: the fastest backend this machine runs).
    pub backend: BackendKind,
}

/// Largest accepted hyper-parameter (widths, head counts, layers, context): far above any real
/// model, low enough that products of them cannot overflow.
const MAX_DIMENSION: usize = 1 << 24;

/// Default cap on the context length when none is asked for.
pub const DEFAULT_MAX_CONTEXT: usize = 4096;

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            context_length: None,
            backend: BackendKind::default(),
        }
    }
}

/// What a caller may want to know about a loaded model.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub architecture: Architecture,
    /// `general.name`, if the file has one.
    pub name: Option<String>,
    /// Context length the model was trained with (`<arch>.context_length`).
    pub n_ctx_train: usize,
    /// Context length of sessions created from this model.
    pub context_length: usize,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub threads: usize,
    /// The backend running the matrix products.
    pub backend: BackendKind,
    /// Its kernel family as detected on this CPU (`scalar`, `avx2`).
    pub kernels: &'static str,
    pub file_size: u64,
}

/// How RoPE rotates pairs of a head's values (llama.cpp's `rope_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RopeStyle {
    /// Adjacent pairs (x[2i], x[2i+1]): llama.
    Normal,
    /// Pairs split by half the rotated dimensions (x[i], x[i + n/2]): qwen2, gemma3.
    Neox,
}

/// RoPE parameters of one layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rope {
    pub style: RopeStyle,
    pub n_dims: usize,
    pub freq_base: f32,
    pub freq_scale: f32,
}

/// Hyper-parameters shared by the architectures.
#[derive(Clone, Debug)]
pub(crate) struct HParams {
    pub arch: Architecture,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub rms_eps: f32,
    /// RoPE of global (non sliding-window) layers.
    pub rope: Rope,
    /// RoPE of sliding-window layers (gemma3).
    pub rope_local: Rope,
    /// Sliding window width, for layers where `is_swa[il]`.
    pub sliding_window: Option<usize>,
    pub is_swa: Vec<bool>,
    /// Final logit soft-capping (gemma), only when the key exists.
    pub final_softcap: Option<f32>,
}

impl HParams {
    /// The attention window of layer `il`: `Some(w)` when the layer only sees the last `w`
    /// positions (its own included).
    pub fn window(&self, il: usize) -> Option<usize> {
        if self.is_swa.get(il).copied().unwrap_or(false) {
            self.sliding_window
        } else {
            None
        }
    }

    pub fn rope(&self, il: usize) -> Rope {
        if self.window(il).is_some() {
            self.rope_local
        } else {
            self.rope
        }
    }
}

/// A weight matrix in the mapping: `rows` rows of `cols` values of type `ty`.
#[derive(Clone, Debug)]
pub(crate) struct Matrix {
    pub ty: GgmlType,
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_bytes: usize,
}

/// One transformer block's weights. Optional parts belong to some architectures only.
#[derive(Debug)]
pub(crate) struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    pub wo: Matrix,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub post_attn_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
    pub post_ffw_norm: Option<Vec<f32>>,
}

pub(crate) struct Weights {
    pub token_embd: Matrix,
    pub output_norm: Vec<f32>,
    /// `output.weight`, or `token_embd` when the embeddings are tied.
    pub output: Matrix,
    /// Per-dimension RoPE frequency divisors (`rope_freqs.weight`, llama 3.1 style).
    pub rope_freqs: Option<Vec<f32>>,
    pub layers: Vec<Layer>,
}

pub(crate) struct ModelInner {
    pub file: GgufFile,
    pub hp: HParams,
    pub w: Weights,
    pub info: ModelInfo,
    pub backend: Arc<dyn Backend>,
}

/// A loaded model. Cloning is cheap (shared handle); sessions hold a clone.
#[derive(Clone)]
pub struct Model {
    pub(crate) inner: Arc<ModelInner>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.inner.file.path())
            .field("info", &self.inner.info)
            .finish()
    }
}

impl Model {
    /// Memory-maps and loads the GGUF model at `path`.
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Model, EngineError> {
        let file = GgufFile::open(path.as_ref())?;
        Model::from_gguf(file, options)
    }

    /// Loads a model from an already opened GGUF file (taking ownership of the mapping).
    pub fn from_gguf(file: GgufFile, options: &LoadOptions) -> Result<Model, EngineError> {
        let path = file.path().to_path_buf();
        if options.threads == 0 {
            return Err(EngineError::InvalidOption(
                "threads must be at least 1".to_string(),
            ));
        }
        let backend = options.backend.create()?;
        let hp = read_hparams(&file)?;
        let w = read_weights(&file, &hp)?;
        let context_length = match options.context_length {
            Some(0) => {
                return Err(EngineError::InvalidOption(
                    "context length must be at least 1".to_string(),
                ));
            }
            Some(n) if n > hp.n_ctx_train => {
                return Err(EngineError::InvalidOption(format!(
                    "context length {n} exceeds the {} positions {} was trained with",
                    hp.n_ctx_train,
                    path.display()
                )));
            }
            Some(n) => n,
            None => hp.n_ctx_train.min(DEFAULT_MAX_CONTEXT),
        };
        let info = ModelInfo {
            architecture: hp.arch,
            name: file
                .metadata()
                .get_str_opt("general.name")
                .ok()
                .flatten()
                .map(str::to_string),
            n_ctx_train: hp.n_ctx_train,
            context_length,
            n_vocab: hp.n_vocab,
            n_embd: hp.n_embd,
            n_layer: hp.n_layer,
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            threads: options.threads,
            backend: backend.kind(),
            kernels: backend.kernels(),
            file_size: file.file_size(),
        };
        Ok(Model {
            inner: Arc::new(ModelInner {
                file,
                hp,
                w,
                info,
                backend,
            }),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// The underlying GGUF file (metadata for the tokenizer and chat template).
    pub fn gguf(&self) -> &GgufFile {
        &self.inner.file
    }

    pub fn path(&self) -> &Path {
        self.inner.file.path()
    }

    /// Bytes of KV cache one session allocates at the model's context length.
    pub fn kv_cache_bytes(&self) -> usize {
        let hp = &self.inner.hp;
        // K and V, f16 each.
        hp.n_layer * self.inner.info.context_length * hp.n_head_kv * hp.head_dim * 2 * 2
    }
}

fn meta_err(path: &Path) -> impl Fn(MetaError) -> EngineError + '_ {
    move |source| EngineError::Metadata {
        path: path.to_path_buf(),
        source,
    }
}

fn bad(path: &Path, what: impl Into<String>) -> EngineError {
    EngineError::BadModel {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn read_hparams(file: &GgufFile) -> Result<HParams, EngineError> {
    let path = file.path();
    let m = file.metadata();
    let me = meta_err(path);
    let arch_name = m.get_str("general.architecture").map_err(&me)?;
    let arch =
        Architecture::from_name(arch_name).ok_or_else(|| EngineError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            found: arch_name.to_string(),
            supported: SUPPORTED_ARCHITECTURES.join(", "),
        })?;
    let a = arch.name();
    let key = |k: &str| format!("{a}.{k}");
    let positive = |k: &str| -> Result<usize, EngineError> {
        let v = m.get_usize(&key(k)).map_err(&me)?;
        if v == 0 || v > MAX_DIMENSION {
            return Err(bad(
                path,
                format!(
                    "metadata key '{}' is {v}, expected 1 to {MAX_DIMENSION}",
                    key(k)
                ),
            ));
        }
        Ok(v)
    };
    let n_embd = positive("embedding_length")?;
    let n_layer = positive("block_count")?;
    let n_head = positive("attention.head_count")?;
    let n_head_kv = match m
        .get_usize_opt(&key("attention.head_count_kv"))
        .map_err(&me)?
    {
        Some(0) | None => n_head,
        Some(v) => v,
    };
    if n_head % n_head_kv != 0 {
        return Err(bad(
            path,
            format!("{n_head} attention heads is not a multiple of {n_head_kv} key/value heads"),
        ));
    }
    let head_dim = match m.get_usize_opt(&key("attention.key_length")).map_err(&me)? {
        Some(v) if v > MAX_DIMENSION => {
            return Err(bad(path, format!("key length {v} is implausibly large")));
        }
        Some(v) if v > 0 => v,
        _ => {
            if n_embd % n_head != 0 {
                return Err(bad(
                    path,
                    format!("embedding length {n_embd} is not divisible by {n_head} heads"),
                ));
            }
            n_embd / n_head
        }
    };
    if let Some(v) = m
        .get_usize_opt(&key("attention.value_length"))
        .map_err(&me)?
        && v != head_dim
    {
        return Err(bad(
            path,
            format!("value length {v} differs from key length {head_dim}, which is not supported"),
        ));
    }
    let n_ff = positive("feed_forward_length")?;
    let n_ctx_train = positive("context_length")?;
    let rms_eps = m
        .get_f32(&key("attention.layer_norm_rms_epsilon"))
        .map_err(&me)?;
    let n_dims = m
        .get_usize_opt(&key("rope.dimension_count"))
        .map_err(&me)?
        .unwrap_or(head_dim);
    if n_dims > head_dim || n_dims % 2 != 0 {
        return Err(bad(
            path,
            format!(
                "rope dimension count {n_dims} must be even and at most the head size {head_dim}"
            ),
        ));
    }
    let freq_base = m
        .get_f32_opt(&key("rope.freq_base"))
        .map_err(&me)?
        .unwrap_or(10000.0);
    if let Some(t) = m.get_str_opt(&key("rope.scaling.type")).map_err(&me)?
        && t != "none"
        && t != "linear"
    {
        return Err(bad(
            path,
            format!("rope scaling type '{t}' is not supported (none and linear are)"),
        ));
    }
    let factor = match m.get_f32_opt(&key("rope.scaling.factor")).map_err(&me)? {
        Some(f) => f,
        None => m
            .get_f32_opt(&key("rope.scale_linear"))
            .map_err(&me)?
            .unwrap_or(0.0),
    };
    let freq_scale = if factor == 0.0 { 1.0 } else { 1.0 / factor };
    let style = match arch {
        Architecture::Llama => RopeStyle::Normal,
        Architecture::Qwen2 | Architecture::Gemma3 => RopeStyle::Neox,
    };
    let rope = Rope {
        style,
        n_dims,
        freq_base,
        freq_scale,
    };
    let mut rope_local = rope;
    let mut sliding_window = None;
    let mut is_swa = vec![false; n_layer];
    let mut final_softcap = None;
    if arch == Architecture::Gemma3 {
        if let Some(w) = m
            .get_usize_opt(&key("attention.sliding_window"))
            .map_err(&me)?
            && w > 0
        {
            sliding_window = Some(w);
            is_swa = swa_pattern(m, &key("attention.sliding_window_pattern"), n_layer, path)?;
            // Local layers keep their own base (llama.cpp's default 10000) and no scaling.
            rope_local.freq_base = m
                .get_f32_opt(&key("rope.freq_base_swa"))
                .map_err(&me)?
                .unwrap_or(10000.0);
            rope_local.freq_scale = 1.0;
        }
        final_softcap = m
            .get_f32_opt(&key("final_logit_softcapping"))
            .map_err(&me)?
            .filter(|&c| c != 0.0);
    }
    let token_embd = file
        .tensor("token_embd.weight")
        .ok_or_else(|| bad(path, "tensor 'token_embd.weight' is missing"))?;
    let n_vocab = token_embd.n_rows() as usize;
    Ok(HParams {
        arch,
        n_embd,
        n_layer,
        n_head,
        n_head_kv,
        head_dim,
        n_ff,
        n_vocab,
        n_ctx_train,
        rms_eps,
        rope,
        rope_local,
        sliding_window,
        is_swa,
        final_softcap,
    })
}

/// Which layers use the sliding window: the pattern key holds either a period `n` (layer `il`
/// is local when `il % n < n - 1`) or one bool per layer; the default period is 6.
fn swa_pattern(
    m: &Metadata,
    key: &str,
    n_layer: usize,
    path: &Path,
) -> Result<Vec<bool>, EngineError> {
    let period = match m.get(key) {
        None => 6,
        Some(ms_gguf::Value::Array(ms_gguf::Array::Bool(v))) => {
            if v.len() < n_layer {
                return Err(bad(
                    path,
                    format!("'{key}' has {} entries for {n_layer} layers", v.len()),
                ));
            }
            return Ok(v[..n_layer].to_vec());
        }
        Some(_) => m.get_usize(key).map_err(meta_err(path))?,
    };
    Ok((0..n_layer)
        .map(|il| period == 0 || il % period < period - 1)
        .collect())
}

fn read_weights(file: &GgufFile, hp: &HParams) -> Result<Weights, EngineError> {
    let path = file.path();
    let matrix = |name: &str, cols: usize, rows: usize| load_matrix(file, name, cols, rows);
    let vector = |name: &str, len: usize| load_vector(file, name, len);
    let optional_vector = |name: &str, len: usize| -> Result<Option<Vec<f32>>, EngineError> {
        if file.tensor(name).is_some() {
            load_vector(file, name, len).map(Some)
        } else {
            Ok(None)
        }
    };
    let d = hp.n_embd;
    let q_dim = hp.n_head * hp.head_dim;
    let kv_dim = hp.n_head_kv * hp.head_dim;
    let token_embd = matrix("token_embd.weight", d, hp.n_vocab)?;
    let output = if file.tensor("output.weight").is_some() {
        matrix("output.weight", d, hp.n_vocab)?
    } else {
        token_embd.clone()
    };
    let mut layers = Vec::with_capacity(hp.n_layer);
    for il in 0..hp.n_layer {
        let n = |s: &str| format!("blk.{il}.{s}");
        let gemma = hp.arch == Architecture::Gemma3;
        let qwen = hp.arch == Architecture::Qwen2;
        let required_if =
            |cond: bool, s: &str, len: usize| -> Result<Option<Vec<f32>>, EngineError> {
                if cond {
                    vector(&n(s), len).map(Some)
                } else {
                    Ok(None)
                }
            };
        layers.push(Layer {
            attn_norm: vector(&n("attn_norm.weight"), d)?,
            wq: matrix(&n("attn_q.weight"), d, q_dim)?,
            wk: matrix(&n("attn_k.weight"), d, kv_dim)?,
            wv: matrix(&n("attn_v.weight"), d, kv_dim)?,
            wo: matrix(&n("attn_output.weight"), q_dim, d)?,
            bq: required_if(qwen, "attn_q.bias", q_dim)?,
            bk: required_if(qwen, "attn_k.bias", kv_dim)?,
            bv: required_if(qwen, "attn_v.bias", kv_dim)?,
            q_norm: required_if(gemma, "attn_q_norm.weight", hp.head_dim)?,
            k_norm: required_if(gemma, "attn_k_norm.weight", hp.head_dim)?,
            post_attn_norm: required_if(gemma, "post_attention_norm.weight", d)?,
            ffn_norm: vector(&n("ffn_norm.weight"), d)?,
            gate: matrix(&n("ffn_gate.weight"), d, hp.n_ff)?,
            up: matrix(&n("ffn_up.weight"), d, hp.n_ff)?,
            down: matrix(&n("ffn_down.weight"), hp.n_ff, d)?,
            post_ffw_norm: required_if(gemma, "post_ffw_norm.weight", d)?,
        });
    }
    let rope_freqs = optional_vector("rope_freqs.weight", hp.rope.n_dims / 2)?;
    if rope_freqs.is_some() && hp.arch != Architecture::Llama {
        return Err(bad(path, "rope_freqs.weight is only supported for llama"));
    }
    Ok(Weights {
        token_embd,
        output_norm: vector("output_norm.weight", d)?,
        output,
        rope_freqs,
        layers,
    })
}

fn tensor_err(path: &Path, tensor: &str, what: impl Into<String>) -> EngineError {
    EngineError::BadTensor {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        what: what.into(),
    }
}

fn load_matrix(
    file: &GgufFile,
    name: &str,
    cols: usize,
    rows: usize,
) -> Result<Matrix, EngineError> {
    let path = file.path();
    let t = file
        .tensor(name)
        .ok_or_else(|| bad(path, format!("tensor '{name}' is missing")))?;
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    if dims != [cols, rows] {
        return Err(tensor_err(
            path,
            name,
            format!("shape {dims:?}, expected [{cols}, {rows}]"),
        ));
    }
    if !matmul::supported(t.ty) {
        return Err(tensor_err(
            path,
            name,
            format!(
                "type {} is not supported (supported: {})",
                t.ty,
                matmul::supported_types()
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let row_bytes = t.ty.row_bytes(cols as u64).ok_or_else(|| {
        tensor_err(
            path,
            name,
            format!("rows of {cols} are not whole blocks of {}", t.ty),
        )
    })? as usize;
    if t.size as usize != row_bytes * rows {
        return Err(tensor_err(path, name, "data size does not match its shape"));
    }
    Ok(Matrix {
        ty: t.ty,
        offset: t.offset as usize,
        rows,
        cols,
        row_bytes,
    })
}

fn load_vector(file: &GgufFile, name: &str, len: usize) -> Result<Vec<f32>, EngineError> {
    let path = file.path();
    let t = file
        .tensor(name)
        .ok_or_else(|| bad(path, format!("tensor '{name}' is missing")))?;
    if t.n_elements() != len as u64 {
        return Err(tensor_err(
            path,
            name,
            format!("has {} values, expected {len}", t.n_elements()),
        ));
    }
    let data = file.tensor_data(t);
    let mut out = vec![0.0f32; len];
    match t.ty {
        GgmlType::F32 | GgmlType::F16 => matmul::dequantize_row(t.ty, data, &mut out),
        other => {
            return Err(tensor_err(
                path,
                name,
                format!("type {other} is not supported for a 1-D tensor (F32 or F16 expected)"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemma3_layers_alternate_five_local_and_one_global() {
        let path = ms_fetch::default_model().expect("the default model can be fetched");
        let model = Model::load(path, &LoadOptions::default()).unwrap();
        let hp = &model.inner.hp;
        assert_eq!(hp.arch, Architecture::Gemma3);
        assert_eq!(
            (hp.n_layer, hp.head_dim, hp.n_head, hp.n_head_kv),
            (18, 256, 4, 1)
        );
        assert_eq!(hp.sliding_window, Some(512));
        for il in 0..hp.n_layer {
            let global = il % 6 == 5;
            assert_eq!(
                hp.window(il),
                if global { None } else { Some(512) },
                "layer {il}"
            );
            let rope = hp.rope(il);
            assert_eq!(rope.style, RopeStyle::Neox);
            assert_eq!(rope.freq_base, if global { 1e6 } else { 1e4 }, "layer {il}");
            assert_eq!(rope.freq_scale, 1.0);
        }
        assert_eq!(hp.final_softcap, None);
        assert_eq!(model.info().context_length, DEFAULT_MAX_CONTEXT);
        assert_eq!(model.info().n_vocab, 262144);
    }

    #[test]
    fn models_are_shared_across_threads_and_sessions_move_between_them() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Model>();
        send::<crate::Session>();
    }

    #[test]
    fn the_sliding_window_pattern_key_is_a_period_or_one_bool_per_layer() {
        let path = Path::new("t.gguf");
        let mut m = Metadata::default();
        assert_eq!(
            swa_pattern(&m, "p", 7, path).unwrap(),
            [true, true, true, true, true, false, true]
        );
        m.insert("p", ms_gguf::Value::U32(2));
        assert_eq!(
            swa_pattern(&m, "p", 4, path).unwrap(),
            [true, false, true, false]
        );
        m.insert(
            "p",
            ms_gguf::Value::Array(ms_gguf::Array::Bool(vec![false, true, true])),
        );
        assert_eq!(swa_pattern(&m, "p", 3, path).unwrap(), [false, true, true]);
        assert!(
            swa_pattern(&m, "p", 4, path)
                .unwrap_err()
                .to_string()
                .contains("3 entries for 4 layers")
        );
    }

    #[test]
    fn llama_uses_normal_rope_and_qwen2_neox() {
        let opts = LoadOptions {
            threads: 1,
            context_length: None,
            ..LoadOptions::default()
        };
        let llama =
            Model::load(ms_test_support::oracle_model("llama-spm-tiny.q8_0"), &opts).unwrap();
        assert_eq!(llama.inner.hp.rope.style, RopeStyle::Normal);
        assert_eq!(llama.info().context_length, 2048);
        assert!(llama.inner.w.layers[0].bq.is_none());
        let qwen =
            Model::load(ms_test_support::oracle_model("qwen2-bpe-tiny.q8_0"), &opts).unwrap();
        assert_eq!(qwen.inner.hp.rope.style, RopeStyle::Neox);
        assert!(qwen.inner.w.layers[0].bq.is_some());
        // Tied output: the head reads the embedding matrix.
        assert_eq!(qwen.inner.w.output.offset, qwen.inner.w.token_embd.offset);
    }
}
