//! The HTTP server of `modelspec serve` (issue 7): OpenAI-compatible inference, execution plans,
//! runs, health, Prometheus metrics and the OpenAPI document. It holds no business logic:
//! generation goes through ms-scheduler, loading and plan evaluation through ms-runtime.
