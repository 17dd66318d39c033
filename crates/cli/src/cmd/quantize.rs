//! `modelspec quantize MODEL OUT --to Q8_0|Q6_K|Q5_0|Q4_K_M [--threads N]`: converts a GGUF
//! model tensor by tensor with llama.cpp's tensor mix. The pipeline is ms-runtime's
//! [`ms_runtime::requantize`]; this command parses its arguments, shows a progress bar and
//! prints the summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args as ClapArgs;
use indicatif::{ProgressBar, ProgressStyle};
use ms_gguf::GgmlType;
use ms_quant::quantize::Algorithm;
use ms_quant::recipe::Target;
use ms_runtime::requantize::{Progress, quantize_file_with_progress};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Input model: a GGUF file, a ModelSpec file, a catalog name or an address, like every
    /// MODEL argument. F32, F16 or BF16 tensors (quantized tensors are dequantized first,
    /// which loses precision).
    pub input: String,
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
    let bar = progress_bar();
    let input = ms_runtime::load::resolve_model(&args.input)?.path;
    let report = quantize_file_with_progress(
        &input,
        &args.output,
        args.to,
        algorithm,
        threads,
        &mut |p| match p {
            Progress::Start { total_bytes, .. } => bar.set_length(total_bytes),
            Progress::Tensor(name) => bar.set_message(name.to_string()),
            Progress::Advance(bytes) => bar.inc(bytes),
            Progress::Finish => bar.finish_and_clear(),
        },
    )?;
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

/// Hidden unless stderr is a terminal; its length is set when the conversion starts.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar
}
