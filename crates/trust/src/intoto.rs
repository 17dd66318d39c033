//! in-toto attestation framework v1: the Statement that every signed document of ours is (OMS
//! model manifests, SLSA provenance), and the ResourceDescriptor both use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codes::MT0103;
use crate::error::{Result, TrustError};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The DSSE `payloadType` of a JSON in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A ResourceDescriptor (in-toto v1): what a statement is about, or what a build used.
/// `digest` maps algorithm names (`sha256`) to lowercase hex.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, Value>>,
}

impl ResourceDescriptor {
    /// A descriptor with a name and a `sha256` digest (hex).
    pub fn sha256(name: impl Into<String>, hex: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            digest: BTreeMap::from([("sha256".to_string(), hex.into())]),
            ..Self::default()
        }
    }

    /// The `sha256` digest, if present.
    pub fn sha256_hex(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }
}

/// An in-toto Statement v1: subjects, a predicate type and a predicate (kept as JSON so that
/// unknown fields survive a round trip).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: Value,
}

impl Statement {
    /// A statement of the current version.
    pub fn new(
        subject: Vec<ResourceDescriptor>,
        predicate_type: impl Into<String>,
        predicate: Value,
    ) -> Self {
        Self {
            type_: STATEMENT_TYPE.to_string(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// Parses a statement from JSON (a DSSE payload) and checks its `_type`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| TrustError::new(MT0103, format!("the payload is not JSON: {e}")))?;
        Self::from_value(value)
    }

    /// Reads a statement from a JSON value and checks its `_type`.
    pub fn from_value(value: Value) -> Result<Self> {
        let ty = value.get("_type").and_then(Value::as_str).unwrap_or("");
        if ty != STATEMENT_TYPE {
            return Err(TrustError::new(
                MT0103,
                format!("/_type is {ty:?}; expected {STATEMENT_TYPE:?} (an in-toto Statement v1)"),
            ));
        }
        let mut track = serde_path_to_error::Track::new();
        let de = serde_path_to_error::Deserializer::new(value, &mut track);
        Statement::deserialize(de).map_err(|e| {
            TrustError::new(
                MT0103,
                format!("the statement is not in-toto v1 at `{}`: {e}", track.path()),
            )
        })
    }

    /// The statement as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a statement is plain JSON")
    }

    /// Checks the predicate type, naming what was expected.
    pub fn expect_predicate_type(&self, expected: &str) -> Result<()> {
        if self.predicate_type == expected {
            Ok(())
        } else {
            Err(TrustError::new(
                MT0103,
                format!(
                    "/predicateType is {:?}; expected {expected:?}",
                    self.predicate_type
                ),
            ))
        }
    }
}
