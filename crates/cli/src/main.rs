//! The `modelspec` command. Each subcommand lives in `cmd/<name>.rs` and only parses
//! arguments, calls a library crate and prints; business logic stays in the libraries.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(
    name = "modelspec",
    version,
    about = "Declare, validate, run and measure AI models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    // Each helper adds its subcommand here: `Name(cmd::name::Args)`.
    /// Describe a GGUF file: architecture, metadata, tensors, sizes, memory needs.
    Inspect(cmd::inspect::Args),
    /// Quantize a GGUF model (Q8_0, Q6_K, Q5_0 or llama.cpp's Q4_K_M mix).
    Quantize(cmd::quantize::Args),
    /// Check ModelSpec files: schema, semantic rules, references (exit 0 ok, 1 findings, 2 I/O).
    Validate(cmd::validate::Args),
    /// Print the JSON Schema of a document type.
    Schema(cmd::schema::Args),
    /// Explain a finding code: MS (validate), MR (runtime), MV (verify), MG (registry); or list
    /// them all.
    Explain(cmd::explain::Args),
    /// Upgrade a piqc.ai/v1alpha1 ModelSpec to modelspec/v1, keeping comments.
    Upgrade(cmd::upgrade::Args),
    /// Generate text with a model, streamed as it is produced (--chat for a conversation).
    Run(cmd::run::Args),
    /// Fetch a model or a ModelSpec's artifacts into the local cache (sha256 verified).
    Pull(cmd::pull::Args),
    /// Write our tokenizations, greedy continuations and top-k logits in the layout of the
    /// llama.cpp oracle files (compare with shared/oracle/check_oracle.py).
    Dump(cmd::dump::Args),
    /// Execution plans: validate plan files, show the effective plan a run would use.
    Plan(cmd::plan::Args),
    /// Speed of prompt processing and generation (tokens/s), like llama-bench.
    Bench(cmd::bench::Args),
    /// Check what a ModelSpec declares against what the running model does (exit 0 held, 1
    /// violated, 2 input error).
    Verify(cmd::verify::Args),
    /// Serve a model over HTTP: OpenAI-compatible API, plans, runs, health, Prometheus metrics.
    Serve(cmd::serve::Args),
    /// Model versions in the registry: register a ModelSpec, show, list, history, promote.
    Model(cmd::model::Args),
    /// Datasets in the registry: register a file or directory (a digested manifest), show.
    Dataset(cmd::dataset::Args),
    /// The registry's content-addressed artifact store: push, pull, show.
    Artifact(cmd::artifact::Args),
    /// The lineage graph of a model version or a dataset (up: what it was built from; down:
    /// what was built on it).
    Lineage(cmd::lineage::Args),
    /// Provenance (SLSA v1 statements): the chain of a model version down to its datasets,
    /// each link verified; show one record; sign one.
    Provenance(cmd::provenance::Args),
    /// The registry itself: check (fsck), tokens, the audit trail.
    Registry(cmd::registry::Args),
    /// Signers: make a development key file; sign a model directory (OMS, Sigstore bundle).
    Signer(cmd::signer::Args),
    /// Verify an OMS signature of a model directory or a bundle, with a public key or a trust
    /// policy (exit 0 verified, 1 not, naming the file or key; 2 usage or I/O).
    VerifySignature(cmd::verify_signature::Args),
    /// Sign a model version's OMS manifest through a signer (PKCS#11, signing proxy, key file)
    /// and attach the signature to the version.
    Sign(cmd::sign::SignArgs),
    /// Signing keys of the registry: add, rotate, revoke, list (each an audit event).
    Key(cmd::key::Args),
    /// Output watermarking: make a key, score a text for a key's watermark.
    Watermark(cmd::watermark::Args),
    /// The verifiable audit log: verify it offline from its tiles, sign and cosign its
    /// checkpoints, run a witness.
    Audit(cmd::audit::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        // `Command::Name(args) => cmd::name::run(args),`
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Validate(a) => cmd::validate::run(a),
        Command::Schema(a) => cmd::schema::run(a),
        Command::Explain(a) => cmd::explain::run(a),
        Command::Upgrade(a) => cmd::upgrade::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Pull(a) => cmd::pull::run(a),
        Command::Dump(a) => cmd::dump::run(a),
        Command::Plan(a) => cmd::plan::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Model(a) => cmd::model::run(a),
        Command::Dataset(a) => cmd::dataset::run(a),
        Command::Artifact(a) => cmd::artifact::run(a),
        Command::Lineage(a) => cmd::lineage::run(a),
        Command::Provenance(a) => cmd::provenance::run(a),
        Command::Registry(a) => cmd::registry::run(a),
        Command::Signer(a) => cmd::signer::run(a),
        Command::VerifySignature(a) => cmd::verify_signature::run(a),
        Command::Sign(a) => cmd::sign::sign(a),
        Command::Key(a) => cmd::key::run(a),
        Command::Watermark(a) => cmd::watermark::run(a),
        Command::Audit(a) => cmd::audit::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 2 = usage or I/O error, as for `validate`.
            ExitCode::from(2)
        }
    }
}
