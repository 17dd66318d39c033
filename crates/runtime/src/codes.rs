//! Codes of the findings only the runtime makes (`MR....`), with their documentation.
//!
//! They are not lint rules: they depend on the machine, the model and the current
//! deployment, so `modelspec validate` never gives them. Codes are one scheme across the
//! tool: `MS` for what a spec or plan document says (`ms_spec::catalog`), `MR` for what the
//! runtime finds when it resolves a plan against a model and a machine (here), `MV` for what
//! `modelspec verify` measures against a spec (`ms_verify::check`). `modelspec explain CODE`
//! reads all three tables; a test checks that it knows every code the sources emit.
//!
//! Numbering: `MR01xx` a plan that cannot run, `MR02xx` a candidate refused by
//! `POST /v1/plans/evaluate`, `MR03xx` warnings.

use ms_spec::Severity;
use ms_spec::catalog::RuleInfo;

const E: Severity = Severity::Error;
const W: Severity = Severity::Warning;

macro_rules! codes {
    ($( $(#[$doc:meta])* $id:ident = $code:literal $name:literal $level:ident $summary:literal $text:literal ;)*) => {
        $( $(#[$doc])* pub const $id: &str = $code; )*
        /// Every runtime code with its documentation, in code order.
        pub const RULES: &[RuleInfo] = &[ $( RuleInfo {
            code: $code,
            name: $name,
            default: $level,
            configurable: false,
            summary: $summary,
            doc: $text,
        }, )* ];
    };
}

codes! {
    /// `spec.backend` names a backend this CPU cannot run.
    BACKEND_UNAVAILABLE = "MR0101" "backend-unavailable" E
    "The plan's backend cannot run on this CPU."
    "E.g. `cpu-simd` needs AVX2 (and FMA). The message lists the CPU's features and the backends it runs; choose one of those, or leave `backend` unset so the engine picks the fastest one available.";
    /// The quantization cannot be applied because the quantizer cannot read a tensor type.
    UNCONVERTIBLE_MODEL = "MR0102" "model-not-convertible" E
    "The model cannot be converted to the plan's quantization."
    "Requantizing reads every tensor; the model has a tensor type the quantizer cannot dequantize (the message names it). Use `quantization: source` to run the file as it is.";
    /// A conversion would be cached in a directory that is not writable.
    CACHE_NOT_WRITABLE = "MR0103" "cache-not-writable" E
    "The cache a converted model would go to is not writable."
    "A plan whose quantization differs from the artifact's converts the model once and keeps the copy under the cache directory. Set MODELSPEC_CACHE to a writable directory, or use `quantization: source`.";
    /// `spec.threads` is 0.
    NO_THREADS = "MR0104" "no-threads" E
    "The plan asks for 0 threads."
    "Nothing runs without a thread. Give at least 1, or leave `threads` unset for one per core.";
    /// `spec.contextLength` is 0.
    EMPTY_CONTEXT = "MR0105" "empty-context" E
    "The plan's contextLength is 0."
    "The context holds the prompt and the generated tokens; it must be at least 1. Leave contextLength unset to take the model's (or the ModelSpec's declared) length.";
    /// `spec.contextLength` exceeds what the model was trained with.
    CONTEXT_EXCEEDS_MODEL = "MR0106" "context-exceeds-model" E
    "The plan's contextLength exceeds the model's trained context."
    "Positions past the trained context produce garbage. Give at most the model's context length (`modelspec inspect MODEL` shows it).";
    /// `spec.limits.maxWatts` without a way to measure power.
    POWER_UNMEASURABLE = "MR0107" "power-limit-unmeasurable" E
    "A power limit is set on a machine that cannot measure power."
    "limits.maxWatts needs RAPL counters under /sys/class/powercap (readable); without them energy is only estimated and a limit could not be enforced. Remove the limit or run where RAPL is readable.";
    /// `spec.sampling.maxTokens` above `spec.limits.maxTokensPerRequest` (after merging).
    MAX_TOKENS_EXCEED_LIMIT = "MR0108" "max-tokens-exceed-limit" E
    "The effective sampling.maxTokens exceeds limits.maxTokensPerRequest."
    "The layers of the plan (the ModelSpec's plan, the plan file, the flags) together give a default that the limit refuses. Lower sampling.maxTokens or raise the limit. (MS0802 is the same within one document.)";
    /// The effective sampling settings are invalid for the sampler.
    INVALID_SAMPLING = "MR0109" "invalid-sampling" E
    "The effective sampling settings are out of the sampler's range."
    "E.g. topP must be in (0, 1] and temperature at least 0. The message names the setting.";
    /// `spec.threads` above the machine's cores without `oversubscribe: true`.
    THREADS_EXCEED_CORES = "MR0110" "threads-exceed-cores" E
    "The plan asks for more threads than the machine has cores."
    "More threads than cores only take turns on them (slower, same results), and a typo such as 100000 would exhaust the process. Give at most the machine's cores (the message says how many), or set `oversubscribe: true` in the plan's spec (`--oversubscribe` on the command line) to run up to 4 threads per core on purpose.";
    /// `spec.threads` above 4 per core, even with `oversubscribe: true`.
    THREADS_EXCEED_CEILING = "MR0111" "threads-exceed-ceiling" E
    "The plan asks for more than 4 threads per core."
    "Beyond 4 threads per core oversubscription only costs (thread stacks, switches) and thousands of threads exhaust the process's address space; `oversubscribe: true` does not lift this ceiling. Give at most the machine's cores.";
    /// The plan's watermark names a key that no source holds.
    WATERMARK_KEY_MISSING = "MR0112" "watermark-key-missing" E
    "No watermark key has the id the plan names."
    "The plan's `watermark.keyId` names a key; its secret comes from MODELSPEC_WATERMARK_KEY (the key text), the file MODELSPEC_WATERMARK_KEY_FILE names, or `<key dir>/<keyId>.key` (MODELSPEC_WATERMARK_KEY_DIR, else ~/.config/modelspec/watermark-keys), never from the plan. The message lists where the lookup went and the ids it found. Make a key with `modelspec watermark keygen --id ID --out FILE`.";
    /// A watermark key source is not a key.
    WATERMARK_KEY_INVALID = "MR0113" "watermark-key-invalid" E
    "A watermark key file or MODELSPEC_WATERMARK_KEY is not a valid key."
    "A key is one line `modelspec-watermark-key/v1 <key id> <64 hexadecimal digits>` (comment lines starting with # aside), as `modelspec watermark keygen` writes it. The message names the source and what is wrong, never the secret.";
    /// A candidate exceeds a limit the ModelSpec declares (`batch.maxSequenceLengthTokens`,
    /// `batch.maxBatchSize`, `resources.cpuCores`).
    EXCEEDS_SPEC = "MR0201" "plan-exceeds-spec" E
    "A candidate plan exceeds a limit the ModelSpec declares."
    "POST /v1/plans/evaluate refuses a candidate whose contextLength, scheduler.maxBatch or threads exceed the spec's runtime.batch.maxSequenceLengthTokens, runtime.batch.maxBatchSize or runtime.resources.cpuCores: the deployment would no longer be what the spec declares.";
    /// A value exceeds what this machine has (threads above its cores).
    EXCEEDS_MACHINE = "MR0202" "plan-exceeds-machine" E
    "The plan asks for more than this machine has."
    "More threads than cores only take turns: a measurement would show oversubscription, not the plan. Give at most the machine's cores.";
    /// A limit above the one the current plan sets (`limits.maxTokensPerRequest`,
    /// `limits.maxWatts`): a candidate may lower the current limits, not raise them.
    EXCEEDS_CURRENT = "MR0203" "plan-exceeds-current-limit" E
    "A candidate plan raises a limit of the current plan."
    "An evaluation may lower limits.maxTokensPerRequest or limits.maxWatts, not raise (or remove) them: limits are set by whoever deployed the server. Keep the candidate's limits at or below the current ones.";
    /// The evaluation workload does not fit in the candidate's context.
    WORKLOAD_EXCEEDS_CONTEXT = "MR0204" "workload-exceeds-context" E
    "The evaluation workload does not fit in the candidate's context."
    "The longest workload prompt plus its new tokens must fit in contextLength. Raise contextLength or evaluate with shorter prompts or fewer tokens.";
    /// A command-line flag of the running server overrides a field the candidate sets.
    OVERRIDDEN_BY_FLAG = "MR0205" "plan-field-overridden-by-flag" W
    "A command-line flag of the server overrides a field the candidate sets."
    "Flags are the highest layer of the effective plan, so the candidate's value for this field would not apply. Restart the server without the flag to let plans set it.";
    /// More threads than cores: they share the cores.
    THREADS_OVERSUBSCRIBED = "MR0301" "threads-oversubscribed" W
    "The plan runs more threads than the machine has cores."
    "Given with `oversubscribe: true`: the threads take turns on the cores, slower, with the same results. Give at most the machine's cores to avoid it.";
    /// `scheduler.maxBatch` above `limits.maxQueue` (after merging).
    BATCH_EXCEEDS_QUEUE = "MR0302" "batch-exceeds-queue" W
    "The effective scheduler.maxBatch exceeds limits.maxQueue."
    "Batches are formed from queued requests, so they never fill. Lower maxBatch or raise maxQueue. (MS0801 is the same within one document.)";
    /// A token count above the effective context length.
    TOKENS_EXCEED_CONTEXT = "MR0303" "tokens-exceed-context" W
    "sampling.maxTokens or limits.maxTokensPerRequest exceeds the context length."
    "Generation stops when the context is full, so such a count is never reached. (MS0803 is the same within one document.)";
    /// A warning of the quantizer (the conversion runs, but see the message).
    QUANTIZE_WARNING = "MR0304" "quantization-warning" W
    "The quantizer warns about the conversion."
    "E.g. converting to the quantization the artifact already has gains nothing. The message says what and why.";
}

/// The documentation of a runtime code.
pub fn lookup(code: &str) -> Option<&'static RuleInfo> {
    RULES
        .iter()
        .find(|r| r.code.eq_ignore_ascii_case(code) || r.name == code)
}
