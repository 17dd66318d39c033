//! Requantizing a GGUF model file: the pipeline behind `modelspec quantize` and the
//! quantization-at-load cache ([`crate::quant_cache`]).
//!
//! Reads the model with ms-gguf, chooses each tensor's type with llama.cpp's mix
//! ([`ms_quant::recipe`]), converts whole rows at a time with [`ms_quant::quantize`] and streams
//! the result through the GGUF writer (temporary file, renamed when complete). The output is
//! laid out as llama.cpp's quantizer lays it out: the input's metadata with
//! `general.quantization_version` and `general.file_type` moved to the end, tensors in
//! llama.cpp's order (non-block tensors, then by layer and name).

use std::path::{Path, PathBuf};

use ms_gguf::{GgmlType, GgufFile, GgufWriter, Metadata, TensorDesc, TensorInfo, Value};
use ms_quant::half_float::f32_to_f16;
use ms_quant::quantize::{Algorithm, can_quantize, quantize_rows};
use ms_quant::recipe::{self, ModelInfo, Target};

/// What a finished quantization did.
#[derive(Debug, Clone)]
pub struct QuantizeReport {
    pub n_tensors: usize,
    pub n_weights: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Output type of each tensor, in output order.
    pub types: Vec<GgmlType>,
    /// Fallbacks to other block types and precision lost by requantizing, one line per kind.
    pub warnings: Vec<String>,
}

/// Why a quantization failed. Each message names the file (and the tensor) and says what to do;
/// nothing is left at the output path.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error(
        "cannot create the output file {}: the directory {} does not exist",
        output.display(),
        dir.display()
    )]
    MissingDirectory { output: PathBuf, dir: PathBuf },
    #[error(
        "the output {} is a directory; give a file name such as {}",
        output.display(),
        output.join("model.q4_k_m.gguf").display()
    )]
    OutputIsDirectory { output: PathBuf },
    #[error(
        "refusing to overwrite the input {} with its quantized version; give another output path",
        input.display()
    )]
    SameFile { input: PathBuf },
    /// The GGUF error names the file and carries its cause.
    #[error("cannot read the input model: {0}")]
    Read(ms_gguf::GgufError),
    /// A tensor the mix cannot place, or a type that cannot be read or produced.
    #[error("{}: {message}", input.display())]
    Plan { input: PathBuf, message: String },
    #[error("cannot create the output file {}: {source}", output.display())]
    Create {
        output: PathBuf,
        source: ms_gguf::GgufError,
    },
    #[error("{}: tensor '{tensor}': {message}", input.display())]
    Convert {
        input: PathBuf,
        tensor: String,
        message: String,
    },
    #[error("writing the output failed: {0}")]
    Write(ms_gguf::GgufError),
}

/// What a running quantization reports, for progress displays.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Every check passed and the output is being written: `total_bytes` of input tensors.
    Start { input: &'a Path, total_bytes: u64 },
    /// The next tensor being written.
    Tensor(&'a str),
    /// Input bytes done since the last report.
    Advance(u64),
    /// The output is complete and in place.
    Finish,
}

/// Quantizes `input` into `output` with `target`'s tensor mix. Nothing is left under `output`
/// unless it succeeds; the output is the same for any `threads`.
pub fn quantize_file(
    input: &Path,
    output: &Path,
    target: Target,
    algorithm: Algorithm,
    threads: usize,
) -> Result<QuantizeReport, QuantizeError> {
    quantize_file_with_progress(input, output, target, algorithm, threads, &mut |_| {})
}

/// [`quantize_file`], telling `progress` how it goes.
pub fn quantize_file_with_progress(
    input: &Path,
    output: &Path,
    target: Target,
    algorithm: Algorithm,
    threads: usize,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<QuantizeReport, QuantizeError> {
    refuse_same_file(input, output)?;
    let file = GgufFile::open(input).map_err(QuantizeError::Read)?;
    let plan_err = |message: String| QuantizeError::Plan {
        input: input.to_path_buf(),
        message,
    };
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
    let choices = recipe::plan(target, &model, &descs).map_err(|e| plan_err(e.to_string()))?;

    let mut warnings = Vec::new();
    // Check every conversion before writing anything.
    for (t, c) in file.tensors().iter().zip(&choices) {
        if c.ty == t.ty {
            continue;
        }
        if !ms_quant::can_dequantize(t.ty) {
            return Err(plan_err(format!(
                "tensor '{}' is stored as {}, which modelspec quantize cannot read; \
                 inputs must be F32, F16 or BF16 (or Q8_0, Q5_0, Q4_K, Q6_K and the other GGML \
                 block types, which lose precision when requantized)",
                t.name, t.ty
            )));
        }
        if !(can_quantize(c.ty) || c.ty == GgmlType::F16 || c.ty == GgmlType::F32) {
            return Err(plan_err(format!(
                "tensor '{}' would need type {} under llama.cpp's {target} mix, which this \
                 build cannot produce; choose another --to",
                t.name, c.ty
            )));
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
    if let Some(first) = requantized.first() {
        warnings.push(format!(
            "{} tensors are already quantized (e.g. '{first}'); dequantizing and requantizing \
             them loses precision: quantize from an F16 or F32 model when you can",
            requantized.len(),
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

    let mut writer = GgufWriter::create(output, &metadata, &out_descs).map_err(|source| {
        QuantizeError::Create {
            output: output.to_path_buf(),
            source,
        }
    })?;

    let total: u64 = file.tensors().iter().map(|t| t.size).sum();
    progress(Progress::Start {
        input,
        total_bytes: total,
    });
    let mut bytes_out = 0u64;
    for &i in &order {
        let t = &file.tensors()[i];
        progress(Progress::Tensor(&t.name));
        let data = file.tensor_data(t);
        if choices[i].ty == t.ty {
            writer
                .write_tensor(&t.name, data)
                .map_err(QuantizeError::Write)?;
            bytes_out += data.len() as u64;
            progress(Progress::Advance(t.size));
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
            .map_err(|message| QuantizeError::Convert {
                input: input.to_path_buf(),
                tensor: t.name.clone(),
                message,
            })?;
            writer
                .write_tensor_data(&out)
                .map_err(QuantizeError::Write)?;
            bytes_out += out.len() as u64;
            progress(Progress::Advance(chunk.len() as u64));
        }
    }
    writer.finish().map_err(QuantizeError::Write)?;
    progress(Progress::Finish);

    Ok(QuantizeReport {
        n_tensors: order.len(),
        n_weights: file.tensors().iter().map(|t| t.n_elements()).sum(),
        bytes_in: total,
        bytes_out,
        types: order.iter().map(|&i| choices[i].ty).collect(),
        warnings,
    })
}

/// Refuses to write over the input, including through another path to the same file.
fn refuse_same_file(input: &Path, output: &Path) -> Result<(), QuantizeError> {
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(QuantizeError::MissingDirectory {
            output: output.to_path_buf(),
            dir: dir.to_path_buf(),
        });
    }
    if output.is_dir() {
        return Err(QuantizeError::OutputIsDirectory {
            output: output.to_path_buf(),
        });
    }
    let same = match (std::fs::canonicalize(input), canonical_output(output)) {
        (Ok(a), Some(b)) => a == b || same_inode(&a, &b),
        _ => input == output,
    };
    if same {
        return Err(QuantizeError::SameFile {
            input: input.to_path_buf(),
        });
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

/// What llama.cpp's mix needs to know about the model, from its metadata.
pub fn model_info(file: &GgufFile) -> ModelInfo {
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
pub fn output_metadata(input: &Metadata, target: Target) -> Metadata {
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
) -> Result<Vec<u8>, String> {
    let x = ms_quant::dequantize_to_vec(from, src).map_err(|e| e.to_string())?;
    if let Some((bad, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(format!(
            "value {} is {v} (not a finite number)",
            first + bad
        ));
    }
    Ok(match to {
        GgmlType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::F16 => x
            .iter()
            .flat_map(|&v| f32_to_f16(v).to_le_bytes())
            .collect(),
        ty => quantize_rows(ty, algorithm, &x, row_len, threads).map_err(|e| e.to_string())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_metadata_moves_the_quantization_keys_to_the_end_and_drops_split_keys() {
        let mut md = Metadata::default();
        md.insert("general.file_type", Value::U32(1));
        md.insert("general.architecture", Value::String("llama".into()));
        md.insert("split.count", Value::U16(2));
        let out = output_metadata(&md, Target::Q4KM);
        let keys: Vec<&str> = out.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "general.architecture",
                "general.quantization_version",
                "general.file_type"
            ]
        );
        assert_eq!(
            out.get_u32_opt("general.file_type").unwrap(),
            Some(Target::Q4KM.file_type())
        );
    }

    #[test]
    fn non_finite_values_are_refused_with_their_position() {
        let mut src = Vec::new();
        for v in [1.0f32, f32::NAN, 2.0, 3.0] {
            src.extend_from_slice(&v.to_le_bytes());
        }
        let err = convert(
            GgmlType::F32,
            &src,
            GgmlType::F16,
            4,
            32,
            Algorithm::Refined,
            1,
        )
        .unwrap_err();
        assert_eq!(err, "value 33 is NaN (not a finite number)");
        let ok = convert(
            GgmlType::F32,
            &src[..4],
            GgmlType::F16,
            1,
            0,
            Algorithm::Refined,
            1,
        )
        .unwrap();
        assert_eq!(ok, 0x3c00u16.to_le_bytes());
    }
}
