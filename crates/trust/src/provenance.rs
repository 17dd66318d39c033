//! SLSA Provenance v1 (`https://slsa.dev/provenance/v1`): the predicate of the provenance
//! statements of model versions, datasets and deployments, and the statement around it. No ML
//! profile of SLSA exists; ours records a registration or a training run as its inputs
//! (`externalParameters`) and what it consumed (`resolvedDependencies`: dataset digests, base
//! model digests, the code commit, the environment). Signed like a manifest (`dsse`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codes::MT0501;
use crate::error::{Result, TrustError};
use crate::intoto::{ResourceDescriptor, Statement};

/// The predicate type of SLSA Provenance v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// The SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

/// What was built and from what: the inputs someone chose (`externalParameters`), those the
/// platform chose (`internalParameters`) and the artifacts read (`resolvedDependencies`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// A URI naming the template of the build (e.g. `https://modelspec.dev/registration/v1`).
    pub build_type: String,
    pub external_parameters: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// Who ran the build and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byproducts: Vec<ResourceDescriptor>,
}

/// The platform that ran the build; `version` maps component names to versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    pub id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builder_dependencies: Vec<ResourceDescriptor>,
}

/// The run's id and times (RFC 3339 strings, as SLSA writes them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
}

/// The in-toto statement saying `provenance` about `subjects` (each with a `sha256` digest).
pub fn statement(subjects: Vec<ResourceDescriptor>, provenance: &Provenance) -> Statement {
    Statement::new(
        subjects,
        PREDICATE_TYPE,
        serde_json::to_value(provenance).expect("provenance is plain JSON"),
    )
}

/// The provenance a statement carries: its predicate type must be SLSA v1 and every subject
/// must have a `sha256` digest.
pub fn parse(statement: &Statement) -> Result<Provenance> {
    if statement.predicate_type != PREDICATE_TYPE {
        return Err(TrustError::new(
            MT0501,
            format!(
                "/predicateType is {:?}; expected {PREDICATE_TYPE:?} (SLSA Provenance v1)",
                statement.predicate_type
            ),
        ));
    }
    if statement.subject.is_empty() {
        return Err(TrustError::new(
            MT0501,
            "/subject is empty: a provenance statement names what it is about",
        ));
    }
    for (i, s) in statement.subject.iter().enumerate() {
        if !s.sha256_hex().is_some_and(is_sha256_hex) {
            return Err(TrustError::new(
                MT0501,
                format!("/subject/{i}/digest/sha256 is missing or not 64 lowercase hex digits"),
            ));
        }
    }
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(&statement.predicate, &mut track);
    Provenance::deserialize(de).map_err(|e| {
        TrustError::new(
            MT0501,
            format!("the SLSA predicate is invalid at `{}`: {e}", track.path()),
        )
    })
}

/// True for 64 lowercase hex digits.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Provenance {
        Provenance {
            build_definition: BuildDefinition {
                build_type: "https://modelspec.dev/registration/v1".into(),
                external_parameters: serde_json::json!({"model": "m", "version": "1"}),
                internal_parameters: None,
                resolved_dependencies: vec![ResourceDescriptor::sha256(
                    "dataset:d@1",
                    "ab".repeat(32),
                )],
            },
            run_details: RunDetails {
                builder: Builder {
                    id: "https://modelspec.dev/registry".into(),
                    version: BTreeMap::from([("modelspec".into(), "0.1.0".into())]),
                    builder_dependencies: vec![],
                },
                metadata: Some(BuildMetadata {
                    invocation_id: Some("42".into()),
                    started_on: Some("2026-12-07T00:00:00Z".into()),
                    finished_on: None,
                }),
                byproducts: vec![],
            },
        }
    }

    #[test]
    fn statements_round_trip_with_slsa_field_names() {
        let st = statement(
            vec![ResourceDescriptor::sha256("m@1", "cd".repeat(32))],
            &sample(),
        );
        let json = serde_json::to_string(&st).unwrap();
        for field in [
            "buildDefinition",
            "externalParameters",
            "resolvedDependencies",
            "runDetails",
            "invocationId",
            "startedOn",
        ] {
            assert!(json.contains(field), "{field} missing from {json}");
        }
        let back = Statement::from_json(json.as_bytes()).unwrap();
        assert_eq!(parse(&back).unwrap(), sample());
    }

    #[test]
    fn a_wrong_predicate_or_subject_is_named() {
        let mut st = statement(
            vec![ResourceDescriptor::sha256("m@1", "cd".repeat(32))],
            &sample(),
        );
        st.subject[0].digest.insert("sha256".into(), "xyz".into());
        let err = parse(&st).unwrap_err();
        assert_eq!(err.code, MT0501);
        assert!(err.message.contains("/subject/0/digest/sha256"), "{err}");
        st.predicate_type = "https://example/other".into();
        assert!(parse(&st).unwrap_err().message.contains("/predicateType"));
        let mut st = statement(
            vec![ResourceDescriptor::sha256("m@1", "cd".repeat(32))],
            &sample(),
        );
        st.predicate["buildDefinition"]
            .as_object_mut()
            .unwrap()
            .remove("buildType");
        let err = parse(&st).unwrap_err();
        assert!(err.message.contains("buildDefinition"), "{err}");
    }
}
