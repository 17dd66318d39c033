//! Every finding `modelspec validate` can report: stable code, name, default level and docs.
//! `modelspec explain CODE` prints these; SARIF output lists them as rules.

use crate::diag::Severity;

pub struct RuleInfo {
    pub code: &'static str,
    pub name: &'static str,
    pub default: Severity,
    /// Whether config files and flags may change the level. Input and parse problems cannot
    /// be silenced: nothing after them can be checked.
    pub configurable: bool,
    /// One line.
    pub summary: &'static str,
    /// Why it matters and how to fix it.
    pub doc: &'static str,
}

const E: Severity = Severity::Error;
const W: Severity = Severity::Warning;

macro_rules! rules {
    ($( $code:literal $name:literal $level:ident $conf:literal $summary:literal $doc:literal ;)*) => {
        pub const RULES: &[RuleInfo] = &[ $( RuleInfo { code: $code, name: $name, default: $level, configurable: $conf, summary: $summary, doc: $doc }, )* ];
    };
}

rules! {
"MS0001" "io-error" E false "The file could not be read."
"The path does not exist, is not readable, or a directory/glob named no spec files. Exit code 2.";
"MS0002" "file-too-large" E false "The file is larger than the 16 MiB limit."
"ModelSpec documents are small text files. The limit stops a mistyped path to a model or a log from costing seconds and gigabytes. Point the command at the spec file.";
"MS0003" "not-text" E false "The file is binary or not valid UTF-8."
"Specs are UTF-8 YAML or JSON. A NUL byte or an invalid UTF-8 sequence means the path names something else (weights, an archive) or the file was saved in another encoding.";
"MS0004" "empty-document" E false "The file or a YAML document in it is empty."
"An empty file, a file with only comments, or an empty document between `---` markers has nothing to validate. Remove the empty document or fill it in.";
"MS0005" "syntax-error" E false "The file is not valid YAML or JSON."
"The parser stopped at the reported position. Common causes: tabs used for indentation (YAML forbids them; the finding points at the tab), a missing `:` after a key, an unclosed quote or bracket, a control character (YAML allows only tab, line feed and carriage return; write others escaped in a double-quoted string). A `.json` file is read as JSON, strictly: a trailing comma or a comment is an error at its position. Documents before the error are still checked.";
"MS0006" "duplicate-key" E false "A mapping has the same key twice."
"YAML says keys are unique, but many parsers silently keep the last value, so a duplicate hides a typo or a merge accident. Remove one of them.";
"MS0007" "too-deep" E false "The document nests deeper than 64 levels."
"ModelSpec documents nest about 8 levels. Deeper input is not a spec and is refused before it can exhaust the stack of any tool that reads it.";
"MS0008" "expansion-limit" E false "The document has more than 200,000 nodes or 64 MiB of scalar text after expanding aliases."
"YAML aliases (`*name`) can make a small file expand exponentially (the \"billion laughs\" attack), or repeat one large value many times (a 1 MB string referenced 5,000 times is 5 GB). Expansion is bounded twice: 200,000 nodes and 64 MiB of scalar text (keys and values, four times the 16 MiB input limit) per document. The finding names the line:column of the alias that crossed the limit. A real spec has a few hundred nodes and a few kilobytes.";
"MS0009" "unsupported-yaml" E false "The document uses a YAML feature specs do not allow."
"Custom tags (`!thing`), collections as mapping keys, and non-finite numbers (.inf, .nan) have no JSON equivalent. YAML 1.1 merge keys (`<<: *defaults`) do not exist in YAML 1.2, which reads `<<` as an ordinary key: write the keys out. Write plain data.";
"MS0100" "unknown-api-version" E true "apiVersion is missing or not one this tool knows."
"Accepted: `modelspec/v1` (ours) and `piqc.ai/v1alpha1` (upstream). `modelspec upgrade FILE` turns a v1alpha1 document into v1.";
"MS0101" "unknown-kind" E true "kind is missing or not ModelSpec / ExecutionPlan."
"Every document names its kind: `ModelSpec` (both apiVersions) or `ExecutionPlan` (modelspec/v1).";
"MS0102" "unknown-key" E true "A key is not part of the schema."
"Every object in a ModelSpec is closed, so a misspelled key (`maxReplcias`) is an error instead of a setting that silently does nothing. The hint names the closest allowed key.";
"MS0103" "missing-key" E true "A required key is missing."
"For example metadata.name, spec.identity.model.framework and spec.runtime.accelerator are required. Add the key named in the finding.";
"MS0104" "wrong-type" E true "A value has the wrong type."
"E.g. a string where a number is expected. In YAML, `version: 1.0` is a number: quote it (`\"1.0\"`) when a string is meant; `yes`/`no` are strings in YAML 1.2, use true/false.";
"MS0105" "invalid-value" E true "A value is not one of the allowed values."
"Enumerated fields (serving.protocol, scaling.strategy, dependency role, artifact role and format...) accept a fixed set; the hint names the closest one.";
"MS0106" "out-of-range" E true "A number is outside its allowed range."
"E.g. accelerator.count must be at least 1 and ports must be between 1 and 65535.";
"MS0107" "invalid-format" E true "A string does not have the required form."
"E.g. artifact sha256 must be 64 lower-case hex digits and artifact uri must not be empty.";
"MS0108" "schema-violation" E true "The document violates the schema in another way."
"A schema constraint not covered by a more specific code. The message quotes the schema validator.";
"MS0201" "vllm-needs-max-sequence-length" E true "framework vllm needs runtime.batch.maxSequenceLengthTokens."
"The upstream validator's semantic rule: vLLM sizes its KV cache from the maximum sequence length, so the spec must state it.";
"MS0202" "manual-scaling-min-ne-max" E true "scaling.strategy manual with minReplicas different from maxReplicas."
"A manual strategy means nothing scales automatically, so a replica range is meaningless and usually a forgotten strategy change. Set minReplicas = maxReplicas or choose reactive/predictive.";
"MS0203" "min-replicas-exceeds-max" E true "scaling.minReplicas exceeds scaling.maxReplicas."
"No autoscaler can satisfy min > max (KServe rejects it at admission). Lower minReplicas or raise maxReplicas.";
"MS0204" "warm-pool-exceeds-max-replicas" E true "scaling.warmPool.size exceeds scaling.maxReplicas."
"Warm replicas count against the replica budget; a pool larger than maxReplicas can never be filled.";
"MS0205" "serving-port-equals-metrics-port" E true "serving.port and observability.metrics.port are the same."
"Two listeners cannot bind the same port; either the server or the metrics exporter would fail to start. Use distinct ports (e.g. 8000 and 9090).";
"MS0206" "max-concurrency-below-batch-size" W true "serving.maxConcurrency is below runtime.batch.maxBatchSize."
"Batches are formed from concurrent requests, so batches larger than maxConcurrency can never fill: either the batch size is unreachable or the concurrency limit is too low.";
"MS0207" "probe-timeout-exceeds-request-timeout" W true "A probe timeout exceeds the request timeout."
"A readiness or liveness probe that may wait longer than a full request cannot tell a slow server from a dead one. Keep probe timeouts well below serving.timeoutSeconds.";
"MS0208" "accelerator-without-vendor" E true "A non-CPU accelerator has no vendor (modelspec/v1)."
"In v1 only `type: cpu` may omit the vendor; for GPUs and NPUs the vendor decides the runtime and drivers.";
"MS0209" "metrics-port-while-disabled" W true "observability.metrics.port is set while metrics are disabled."
"A port for a disabled exporter is dead configuration and usually means metrics were meant to be on.";
"MS0210" "max-replicas-zero" W true "scaling.maxReplicas is 0 while serving is configured."
"With at most zero replicas the declared serving endpoint can never answer. Scale-to-zero needs maxReplicas >= 1 and minReplicas: 0.";
"MS0301" "pii-with-debug-logging" E true "PII is allowed while logging at debug or trace."
"Debug and trace logs record request and response bodies, so allowing PII at those levels writes personal data to logs. Log at info or above, or disallow PII.";
"MS0302" "log-retention-below-audit-period" E true "Logs are kept for fewer days than the audit period."
"governance.compliance.retention.logsDays is shorter than governance.compliance.audit.periodDays, so the evidence auditors may ask for will have been deleted.";
"MS0303" "prod-artifact-without-sha256" E true "A spec labelled prod has an artifact without a sha256."
"Production specs must pin what they run: without a digest the artifact behind a URI can change unnoticed. Add `sha256:` (64 hex digits) to each artifact. A spec is prod when metadata.labels environment/env/stage/tier is prod or production. piqc.ai/v1alpha1 cannot hold digests, so there the finding is a warning (the same gap, reported before `modelspec upgrade` so that the upgraded file, where it is an error, has no finding its input did not have): upgrade, then add the digests.";
"MS0304" "pii-allowed-without-policy" W true "PII is allowed but no policy is named."
"governance.compliance.pii.allowed: true should name the policy that governs the data (pii.policy).";
"MS0305" "prod-without-owner" W true "A spec labelled prod names no owner."
"Production models need someone accountable: set governance.owners (v1), governance.compliance.governance.owner, or the `owner` annotation (metadata.annotations.owner, as upstream's examples do).";
"MS0306" "approvals-exceed-owners" E true "More approvals are required than there are owners."
"governance.approvals asks for N approvals in an environment but governance.owners lists fewer people, so promotion can never be approved.";
"MS0401" "precision-contradicts-artifact" E true "The declared precision contradicts the artifact's quantization."
"E.g. precision fp16 with a *.Q4_K_M.gguf weights file. The quantization is read from the artifact's `quantization` field or its file name. Fix whichever is wrong.";
"MS0402" "duplicate-artifact" E true "An artifact uri is listed twice for one role, or with two digests."
"One uri may serve several roles: a Hugging Face repository (`hf://org/repo`) holds both weights and tokenizer, a GGUF file embeds its tokenizer. The finding fires when the same uri is listed again with the same role (a copy-paste slip where the second entry should name another file), or when two entries give one uri different sha256 digests (one uri names one content). modelspec/v1 artifact lists.";
"MS0403" "missing-weights-artifact" E true "The artifacts list has no entry with role weights."
"A model cannot run without weights; add an artifact with `role: weights` (modelspec/v1; an empty list is allowed).";
"MS0501" "duplicate-dependency-id" E true "Two pipeline dependencies have the same id."
"Dependency ids name edges in the serving graph and in metrics; they must be unique.";
"MS0502" "unresolved-spec-ref" W true "A dependency's specRef does not resolve to a file."
"specRef is a path relative to the spec's own file. A warning by default: specs are often checked without their dependencies (upstream's own examples name guardrail and embedder specs they do not ship). With `validate --strict-refs` it is an error for a required dependency (`required: true`, the default when the key is absent); an optional one (`required: false`) stays a warning. `--deny MS0502` makes every unresolved specRef an error. URIs with a scheme (https://, s3://) are not resolved offline and are not checked.";
"MS0503" "spec-ref-cycle" E true "specRefs form a cycle."
"A dependency graph that leads back to the spec itself cannot be deployed in any order. The finding lists the cycle.";
"MS0504" "dependency-latency-exceeds-target" E true "A required dependency alone exceeds the model's latency target."
"interface.maxLatencyMs of a required dependency is larger than scaling.targetLatencyMsP95, so the p95 target is impossible even before the model runs.";
"MS0505" "duplicate-pipeline-step" E true "Two steps of a pre/postprocess stage have the same name."
"Step names identify steps in logs and traces; make them unique.";
"MS0506" "invalid-spec-ref-target" W true "A specRef names a file that is not a ModelSpec."
"The referenced file exists but could not be read as a ModelSpec (syntax error, or another kind).";
"MS0601" "duplicate-behavior-rule-id" E true "Two behavior rules have the same id."
"Tests refer to rules by id; ids must be unique.";
"MS0602" "behavior-test-unknown-rule" E true "A behavior test refers to a rule that does not exist."
"Each test's `rule` must be the id of a rule in spec.behavior.rules; the hint names the closest id.";
"MS0603" "behavior-rule-without-test" W true "A behavior rule has no test."
"A rule nobody tests is a wish. Add at least one test case with assertions.";
"MS0604" "duplicate-behavior-test-id" E true "Two behavior tests have the same id."
"Test ids appear in evaluation reports; they must be unique.";
"MS0701" "unresolved-execution-plan" E true "spec.executionPlan.ref does not name an ExecutionPlan file."
"The reference is a path relative to the spec. The file must exist and contain `kind: ExecutionPlan`.";
"MS0801" "plan-max-batch-exceeds-max-queue" W true "scheduler.maxBatch exceeds limits.maxQueue."
"Batches are formed from queued requests, so a batch larger than the queue can never fill. Lower maxBatch or raise maxQueue.";
"MS0802" "plan-max-tokens-exceed-limit" E true "sampling.maxTokens exceeds limits.maxTokensPerRequest."
"The plan's default would be refused by its own limit on every request that does not set maxTokens (0, unlimited, counts as exceeding). Lower sampling.maxTokens.";
"MS0803" "plan-tokens-exceed-context" E true "A token count exceeds the plan's contextLength."
"limits.maxTokensPerRequest or sampling.maxTokens is larger than spec.contextLength, so such a request cannot fit in the context even with an empty prompt. Lower it or raise contextLength. (The model's own limit is checked when the plan is resolved against a model: `modelspec plan show PLAN --model M`.)";
"MS0804" "plan-backend-not-built" E true "The plan names a backend this build does not have."
"`cuda` is reserved for a future GPU backend; this build runs `cpu-scalar` (reference kernels) and `cpu-simd` (AVX2 kernels, the same results). Whether the CPU runs cpu-simd is checked at run time.";
"MS0805" "plan-greedy-ignores-sampling" W true "temperature 0 with sampling filters that have no effect."
"Temperature 0 means greedy decoding (the most likely token), so topK, topP and minP change nothing. Remove them or sample with a temperature above 0.";
"MS0806" "plan-watermark-undetectable" E true "A watermark whose gamma or delta leaves nothing to detect."
"The watermark adds delta to the logits of a fraction gamma of the vocabulary chosen by the key and the previous token; detection counts the green tokens. gamma 0 makes no token green and 1 every token, so green counts say nothing; delta 0 biases nothing. Use gamma strictly between 0 and 1 (0.25 by default) and delta above 0 (2 by default; higher marks more strongly and costs more quality).";
"MS0807" "plan-watermark-on-greedy" W true "A watermark in a plan that decodes greedily."
"The watermark biases the draw of sampled decoding. Greedy decoding (temperature 0) is kept bit for bit the model's own choice, with or without a watermark, so a greedy plan's text carries no mark and detection will say so. Sample with a temperature above 0, or remove `watermark`.";
}

pub fn lookup(code: &str) -> Option<&'static RuleInfo> {
    RULES
        .iter()
        .find(|r| r.code.eq_ignore_ascii_case(code) || r.name == code)
}

pub fn default_severity(code: &str) -> Severity {
    lookup(code).map_or(Severity::Error, |r| r.default)
}
