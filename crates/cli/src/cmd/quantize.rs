//! `modelspec quantize IN OUT --to Q8_0|Q6_K|Q5_0|Q4_K_M [--threads N]`: converts a GGUF
//! model tensor by tensor with llama.cpp's tensor mix, streaming through the GGUF writer
//! (temporary file, renamed when complete).
//!
//! The output is laid out as llama.cpp's quantizer lays it out: the input's metadata with
//! `general.quantization_version` and `general.file_type` moved to the end, tensors in
//! llama.cpp's order (non-block tensors, then by layer and name).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args as ClapArgs;
use half::f16;
use indicatif::{ProgressBar, ProgressStyle};
use ms_gguf::{GgmlType, GgufFile, GgufWriter, Metadata, TensorDesc, TensorInfo, Value};
use ms_quant::quantize::{Algorithm, can_quantize, quantize_rows};
use ms_quant::recipe::{self, ModelInfo, Target};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Input GGUF model: F32, F16 or BF16 tensors (quantized tensors are dequantized first,
    /// which loses precision).
    pub input: PathBuf,
    /// Output GGUF file (written to a temporary file and renamed when complete).
    pub output: PathBuf,
    /// Target: Q8_0, Q6_K, Q5_0 or Q4_K_M (llama.cpp's mixes and row-length fallbacks).
    #[arg(long = "to", value_parser = parse_target)]
    pub to: Target,
    /// Worker threads (default: all cores). The output is the same for any value.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Use llama.cpp's K-quant algorithm exactly (byte-identical Q4_K/Q6_K blocks) instead of
    /// the default refinement, which lowers the error of every block further.
    #[arg(long)]
    pub reference: bool,
}

fn parse_target(s: &str) -> Result<Target, String> {
    Target::from_name(s).ok_or_else(|| {
        let names: Vec<_> = Target::ALL.iter().map(|t| t.name()).collect();
        format!("unknown target '{s}'; expected one of {}", names.join(", "))
    })
}

pub fn run(args: Args) -> Result<ExitCode> {
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let algorithm = if args.reference {
        Algorithm::Reference
    } else {
        Algorithm::Refined
    };
    let report = quantize_file(&args.input, &args.output, args.to, algorithm, threads)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "wrote {} ({}): {} tensors, {:.2} MiB -> {:.2} MiB ({:.2} bits per weight)",
        args.output.display(),
        args.to,
        report.n_tensors,
        mib(report.bytes_in),
        mib(report.bytes_out),
        report.bytes_out as f64 * 8.0 / report.n_weights.max(1) as f64
    );
    let mut counts: Vec<(GgmlType, usize)> = Vec::new();
    for &ty in &report.types {
        match counts.iter_mut().find(|(t, _)| *t == ty) {
            Some((_, n)) => *n += 1,
            None => counts.push((ty, 1)),
        }
    }
    counts.sort();
    let summary: Vec<String> = counts.iter().map(|(t, n)| format!("{t}: {n}")).collect();
    println!("tensor types: {}", summary.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// What a finished quantization did.
#[derive(Debug)]
pub struct Report {
    pub n_tensors: usize,
    pub n_weights: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Output type of each tensor, in output order.
    pub types: Vec<GgmlType>,
    pub warnings: Vec<String>,
}

/// Quantizes `input` into `output`. Nothing is left under `output` unless it succeeds.
pub fn quantize_file(
    input: &Path,
    output: &Path,
    target: Target,
    algorithm: Algorithm,
    threads: usize,
) -> Result<Report> {
    refuse_same_file(input, output)?;
    // GGUF errors already name the file and carry their cause in their message.
    let file = GgufFile::open(input).map_err(|e| anyhow!("cannot read the input model: {e}"))?;
    let model = model_info(&file);
    let descs: Vec<recipe::TensorDesc> = file
        .tensors()
        .iter()
        .map(|t| recipe::TensorDesc {
            name: &t.name,
            dims: &t.dims,
            ty: t.ty,
        })
        .collect();
    let choices =
        recipe::plan(target, &model, &descs).map_err(|e| anyhow!("{}: {e}", input.display()))?;

    let mut warnings = Vec::new();
    // Check every conversion before writing anything.
    for (t, c) in file.tensors().iter().zip(&choices) {
        if c.ty == t.ty {
            continue;
        }
        if !can_convert_from(t.ty) {
            bail!(
                "{}: tensor '{}' is stored as {}, which modelspec quantize cannot read; \
                 inputs must be F32, F16 or BF16 (or Q8_0, Q5_0, Q4_K, Q6_K and the other GGML \
                 block types, which lose precision when requantized)",
                input.display(),
                t.name,
                t.ty
            );
        }
        if !(can_quantize(c.ty) || c.ty == GgmlType::F16 || c.ty == GgmlType::F32) {
            bail!(
                "{}: tensor '{}' would need type {} under llama.cpp's {target} mix, which this \
                 build cannot produce; choose another --to",
                input.display(),
                t.name,
                c.ty
            );
        }
    }
    // One line per kind of fallback (a Gemma model has dozens of 640-wide tensors).
    let mut fallbacks: Vec<(GgmlType, GgmlType, usize, &TensorInfo)> = Vec::new();
    for (t, c) in file.tensors().iter().zip(&choices) {
        if let Some(from) = c.fell_back_from {
            match fallbacks.iter_mut().find(|f| f.0 == from && f.1 == c.ty) {
                Some(f) => f.2 += 1,
                None => fallbacks.push((from, c.ty, 1, t)),
            }
        }
    }
    for (from, to, n, t) in fallbacks {
        warnings.push(format!(
            "{n} tensors (e.g. '{}', rows of {} values) do not fit {from}'s {}-value blocks; \
             using {to} for them, as llama.cpp does",
            t.name,
            t.row_len(),
            from.block_len()
        ));
    }
    let requantized: Vec<&str> = file
        .tensors()
        .iter()
        .zip(&choices)
        .filter(|(t, c)| c.ty != t.ty && is_block_quantized(t.ty))
        .map(|(t, _)| t.name.as_str())
        .collect();
    if !requantized.is_empty() {
        warnings.push(format!(
            "{} tensors are already quantized (e.g. '{}'); dequantizing and requantizing them \
             loses precision: quantize from an F16 or F32 model when you can",
            requantized.len(),
            requantized[0]
        ));
    }

    let names: Vec<&str> = file.tensors().iter().map(|t| t.name.as_str()).collect();
    let order = recipe::llama_cpp_order(&names);
    let out_descs: Vec<TensorDesc> = order
        .iter()
        .map(|&i| {
            let t = &file.tensors()[i];
            TensorDesc::new(t.name.clone(), t.dims.clone(), choices[i].ty)
        })
        .collect();
    let metadata = output_metadata(file.metadata(), target);

    let mut writer = GgufWriter::create(output, &metadata, &out_descs)
        .map_err(|e| anyhow!("cannot create the output file {}: {e}", output.display()))?;

    let total: u64 = file.tensors().iter().map(|t| t.size).sum();
    let bar = progress_bar(total);
    let mut bytes_out = 0u64;
    for &i in &order {
        let t = &file.tensors()[i];
        bar.set_message(t.name.clone());
        let data = file.tensor_data(t);
        let write_err = |e| anyhow!("writing the output failed: {e}");
        if choices[i].ty == t.ty {
            writer.write_tensor(&t.name, data).map_err(write_err)?;
            bytes_out += data.len() as u64;
            bar.inc(t.size);
            continue;
        }
        // Whole rows at a time, so that memory stays bounded whatever the tensor's size.
        let row_len = t.row_len() as usize;
        let in_row = data.len() / (t.n_rows() as usize).max(1);
        let rows_per_chunk = (CHUNK_VALUES / row_len.max(1)).max(1);
        for (k, chunk) in data.chunks(rows_per_chunk * in_row.max(1)).enumerate() {
            let first = k * rows_per_chunk * row_len;
            let out = convert(
                t.ty,
                chunk,
                choices[i].ty,
                row_len,
                first,
                algorithm,
                threads,
            )
            .with_context(|| format!("{}: tensor '{}'", input.display(), t.name))?;
            writer.write_tensor_data(&out).map_err(write_err)?;
            bytes_out += out.len() as u64;
            bar.inc(chunk.len() as u64);
        }
    }
    writer
        .finish()
        .map_err(|e| anyhow!("writing the output failed: {e}"))?;
    bar.finish_and_clear();

    Ok(Report {
        n_tensors: order.len(),
        n_weights: file.tensors().iter().map(|t| t.n_elements()).sum(),
        bytes_in: total,
        bytes_out,
        types: order.iter().map(|&i| choices[i].ty).collect(),
        warnings,
    })
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Refuses to write over the input, including through another path to the same file.
fn refuse_same_file(input: &Path, output: &Path) -> Result<()> {
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!(
            "cannot create the output file {}: the directory {} does not exist",
            output.display(),
            dir.display()
        );
    }
    if output.is_dir() {
        bail!(
            "the output {} is a directory; give a file name such as {}",
            output.display(),
            output.join("model.q4_k_m.gguf").display()
        );
    }
    let same = match (std::fs::canonicalize(input), canonical_output(output)) {
        (Ok(a), Some(b)) => a == b || same_inode(&a, &b),
        _ => input == output,
    };
    if same {
        bail!(
            "refusing to overwrite the input {} with its quantized version; give another output path",
            input.display()
        );
    }
    Ok(())
}

/// Hard links: two names, one file.
#[cfg(unix)]
fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_inode(_: &Path, _: &Path) -> bool {
    false
}

/// The canonical path `output` would have: its directory canonicalized plus its file name.
fn canonical_output(output: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(output) {
        return Some(p);
    }
    let name = output.file_name()?;
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(dir).ok()?.join(name))
}

fn model_info(file: &GgufFile) -> ModelInfo {
    let md = file.metadata();
    let arch = file.architecture().unwrap_or_default().to_string();
    let u32_key = |k: &str| md.get_u32_opt(&format!("{arch}.{k}")).ok().flatten();
    // Files without a block count still have blk.N tensors; llama.cpp would have the count.
    let n_layer = u32_key("block_count").unwrap_or_else(|| {
        file.tensors()
            .iter()
            .filter_map(|t| {
                t.name
                    .strip_prefix("blk.")?
                    .split('.')
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .max()
            .map_or(0, |m| m + 1)
    });
    ModelInfo {
        n_layer,
        n_expert: u32_key("expert_count").unwrap_or(0),
        n_head: u32_key("attention.head_count").unwrap_or(0),
        n_head_kv: u32_key("attention.head_count_kv").unwrap_or(0),
        arch,
    }
}

/// The input's metadata as llama.cpp's quantizer rewrites it.
fn output_metadata(input: &Metadata, target: Target) -> Metadata {
    let mut md = input.clone();
    for key in [
        "general.quantization_version",
        "general.file_type",
        "split.no",
        "split.count",
        "split.tensors.count",
    ] {
        md.remove(key);
    }
    // GGML_QNT_VERSION: the block layouts written here are those of version 2.
    md.insert("general.quantization_version", Value::U32(2));
    md.insert("general.file_type", Value::U32(target.file_type()));
    md
}

fn is_block_quantized(ty: GgmlType) -> bool {
    ty.block_len() > 1
}

fn can_convert_from(ty: GgmlType) -> bool {
    ms_quant::can_dequantize(ty)
}

/// Values converted per step (16 MiB of f32); the tiny test model's embedding takes two steps.
const CHUNK_VALUES: usize = 4 << 20;

/// Converts whole rows of `src` (of type `from`) to `to`; `first` is the index of the first
/// value within its tensor, for error messages.
fn convert(
    from: GgmlType,
    src: &[u8],
    to: GgmlType,
    row_len: usize,
    first: usize,
    algorithm: Algorithm,
    threads: usize,
) -> Result<Vec<u8>> {
    let x = ms_quant::dequantize_to_vec(from, src)?;
    if let Some(bad) = x.iter().position(|v| !v.is_finite()) {
        bail!("value {} is {} (not a finite number)", first + bad, x[bad]);
    }
    Ok(match to {
        GgmlType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::F16 => x
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect(),
        ty => quantize_rows(ty, algorithm, &x, row_len, threads)?,
    })
}
