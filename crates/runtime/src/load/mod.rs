//! Loading a model under an execution plan: the one path `run`, `plan show`, `bench`, `serve`
//! and `verify` share.
//!
//! A [`LoadRequest`] names the model (a GGUF path, a ModelSpec file, a catalog name such as
//! `gemma3-270m`, or an address), an optional plan (a file, or an inline YAML/JSON document
//! received e.g. over HTTP) and the command-line flags. [`resolve_plan`] reads and validates
//! every plan document (schema + MS08xx rules, exactly as `modelspec plan validate`), resolves
//! the model to a file and decides the effective plan, checked against the machine and the
//! model, before any work. [`prepare_artifact`] then picks the file to load (the artifact, or
//! its requantized copy from the [`QuantCache`](crate::QuantCache), built on first use), and [`load`] maps it and
//! builds the tokenizer. Every error names the file or model and says how to fix it; invalid
//! plan documents come with their findings (JSON pointer, line:column in the document).
//!
//! Layers of the effective plan, lowest priority first: the engine's defaults, the model, the
//! ModelSpec's default plan (`spec.executionPlan.ref`), the request's plan, the flags.
//!
//! The pieces, one file each:
//! - [`request`]: [`LoadRequest`], [`PlanSource`], [`LoadSettings`].
//! - [`model_ref`]: model reference resolution ([`resolve_model`]), the one resolver of every
//!   command that takes a MODEL.
//! - [`plan_document`]: reading and checking one plan document ([`read_plan`]).
//! - [`plan_resolution`]: the effective plan of a request ([`resolve_plan`]), its problems
//!   located in the documents.
//! - [`artifact`]: artifact preparation ([`prepare_artifact`]).
//! - [`spec_info`]: the typed ModelSpec ([`ModelSpecInfo`]).
//! - [`loading`]: [`load`], [`load_with_plan`], [`Loaded`].
//! - [`finding`], [`error`], [`progress`], [`codes`]: what a load reports.

pub mod artifact;
/// The runtime's finding codes (here for the paths that named them `load::codes`).
pub use crate::codes;
pub mod error;
pub mod finding;
pub mod loading;
pub mod model_ref;
pub mod plan_document;
pub mod plan_resolution;
pub mod progress;
pub mod request;
pub mod spec_info;

pub use artifact::{PreparedArtifact, prepare_artifact};
pub use error::LoadError;
pub use finding::PlanFinding;
pub(crate) use loading::load_resolved;
pub use loading::{Loaded, load, load_with, load_with_plan};
pub use model_ref::{
    ResolvedModel, known_names, read_spec_if_any, resolve_model, resolve_model_pinned,
};
pub use plan_document::{PlanDocument, read_plan};
pub(crate) use plan_resolution::locate;
pub use plan_resolution::{ResolvedPlan, resolve_plan};
pub use progress::LoadProgress;
pub use request::{LoadRequest, LoadSettings, PlanSource};
pub use spec_info::{
    AcceleratorInfo, BatchInfo, CostInfo, DeclaredArtifact, MetricsInfo, ModelSpecInfo,
    ResourcesInfo, ScalingInfo, ServingInfo,
};
