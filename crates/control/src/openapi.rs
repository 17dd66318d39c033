//! `GET /openapi.json`: the API as an OpenAPI 3.1 document. Bodies are the registry's records
//! (camelCase, as `ms_registry::entity` defines them); every error is `{"error": Error}`.

use axum::Json;
use serde_json::{Value, json};

/// One operation: method, path, summary, query parameters, request body schema, success
/// status and schema.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    query: &'static [(&'static str, &'static str)],
    body: Option<&'static str>,
    ok: (&'static str, &'static str),
}

const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/healthz",
        summary: "Liveness; no credentials needed.",
        query: &[],
        body: None,
        ok: ("200", "Health"),
    },
    Op {
        method: "get",
        path: "/openapi.json",
        summary: "This document; no credentials needed.",
        query: &[],
        body: None,
        ok: ("200", "Object"),
    },
    Op {
        method: "get",
        path: "/whoami",
        summary: "The principal the credentials stand for.",
        query: &[],
        body: None,
        ok: ("200", "Principal"),
    },
    Op {
        method: "post",
        path: "/models/register",
        summary: "Register a model version from a ModelSpec; 201 new, 200 identical version existed. Every artifact digest the spec declares must be in the store.",
        query: &[],
        body: Some("ModelRegistration"),
        ok: ("201", "RegisteredModelVersion"),
    },
    Op {
        method: "get",
        path: "/models",
        summary: "Search versions, paginated (pass nextPageToken as page_token).",
        query: &[
            ("family", "string"),
            ("status", "string"),
            ("q", "string"),
            ("page_token", "string"),
            ("limit", "integer"),
        ],
        body: None,
        ok: ("200", "ModelVersionPage"),
    },
    Op {
        method: "get",
        path: "/models/{id}",
        summary: "A model: versions, pointers, status, lineage, signature.",
        query: &[],
        body: None,
        ok: ("200", "Model"),
    },
    Op {
        method: "get",
        path: "/models/{id}/versions/{selector}",
        summary: "One version with its spec text; selector is a version number, a pointer or the version's digest.",
        query: &[],
        body: None,
        ok: ("200", "ModelVersion"),
    },
    Op {
        method: "get",
        path: "/models/{id}/history",
        summary: "Registrations and pointer moves, oldest first.",
        query: &[],
        body: None,
        ok: ("200", "History"),
    },
    Op {
        method: "post",
        path: "/models/{id}/promote",
        summary: "Move a pointer (staging, prod, an alias) to a version; approver role.",
        query: &[],
        body: Some("PromoteRequest"),
        ok: ("200", "PointerMove"),
    },
    Op {
        method: "post",
        path: "/artifact/upload",
        summary: "Upload an artifact, streamed: a raw body with ?name=&mediaType=&digest=&size= (Content-Length is the declared size), or multipart/form-data with a `metadata` part (JSON ArtifactUpload) then a `file` part. 201 new, 200 existed; 413 before reading when the declared size is above the store's limit; 422 when the bytes do not match the digest.",
        query: &[
            ("name", "string"),
            ("mediaType", "string"),
            ("digest", "string"),
            ("size", "integer"),
            ("provenance", "string"),
        ],
        body: Some("Binary"),
        ok: ("201", "RegisteredArtifact"),
    },
    Op {
        method: "post",
        path: "/artifact/uploads",
        summary: "Open a resumable upload session: 202, Location, Upload-Id.",
        query: &[],
        body: Some("ArtifactUpload"),
        ok: ("202", "UploadSession"),
    },
    Op {
        method: "get",
        path: "/artifact/uploads/{id}",
        summary: "A session's offset (also in Upload-Offset): where the next chunk starts.",
        query: &[],
        body: None,
        ok: ("200", "UploadSession"),
    },
    Op {
        method: "patch",
        path: "/artifact/uploads/{id}",
        summary: "Append a chunk at the session's offset (Content-Range: bytes START-END/*, Upload-Offset: START or ?offset=START); 409 when START is not the offset.",
        query: &[("offset", "integer")],
        body: Some("Binary"),
        ok: ("202", "UploadSession"),
    },
    Op {
        method: "put",
        path: "/artifact/uploads/{id}",
        summary: "Finish: verify digest and size, publish the blob.",
        query: &[],
        body: None,
        ok: ("201", "RegisteredArtifact"),
    },
    Op {
        method: "get",
        path: "/artifact/{id}",
        summary: "An artifact's metadata and provenance (id: sha256:HEX).",
        query: &[],
        body: None,
        ok: ("200", "Artifact"),
    },
    Op {
        method: "get",
        path: "/artifact/{id}/content",
        summary: "An artifact's bytes, verified as they stream; Range: bytes=START-END gives 206 with Content-Range, 416 outside; ETag is the digest.",
        query: &[],
        body: None,
        ok: ("200", "Binary"),
    },
    Op {
        method: "post",
        path: "/dataset/register",
        summary: "Register a dataset from its manifest; 201 new, 200 existed.",
        query: &[],
        body: Some("DatasetRegistration"),
        ok: ("201", "RegisteredDataset"),
    },
    Op {
        method: "get",
        path: "/datasets/{id}",
        summary: "A dataset with its manifest (id: sha256:HEX).",
        query: &[],
        body: None,
        ok: ("200", "Dataset"),
    },
    Op {
        method: "get",
        path: "/lineage/{id}",
        summary: "The lineage graph from a model (name@version or name) or a dataset (sha256:HEX); direction up (default) or down, depth 1..32 (default 5).",
        query: &[("direction", "string"), ("depth", "integer")],
        body: None,
        ok: ("200", "LineageGraph"),
    },
    Op {
        method: "get",
        path: "/provenance/{subject}",
        summary: "The provenance record of model:NAME@VERSION (or NAME@VERSION, NAME@prod) or dataset:sha256:HEX: its in-toto statement (SLSA Provenance v1) as the exact bytes signed, their digest, the signature bundle if any.",
        query: &[],
        body: None,
        ok: ("200", "ProvenanceRecord"),
    },
    Op {
        method: "post",
        path: "/provenance/{subject}/signature",
        summary: "Attach a Sigstore bundle made client-side over the record's statement; checked (payload = the statement, key registered and not revoked, signature valid). Writer role.",
        query: &[],
        body: Some("ProvenanceSignature"),
        ok: ("200", "ProvenanceRecord"),
    },
    Op {
        method: "post",
        path: "/tokens",
        summary: "Create a bearer token; the secret is in this answer only. Admin role.",
        query: &[],
        body: Some("TokenRequest"),
        ok: ("201", "CreatedToken"),
    },
    Op {
        method: "get",
        path: "/tokens",
        summary: "Tokens (never their secrets). Admin role.",
        query: &[],
        body: None,
        ok: ("200", "TokenList"),
    },
    Op {
        method: "delete",
        path: "/tokens/{id}",
        summary: "Revoke a token. Admin role.",
        query: &[],
        body: None,
        ok: ("200", "TokenInfo"),
    },
    Op {
        method: "get",
        path: "/audit",
        summary: "Audit events with seq > after, oldest first, at most limit (default 100, at most 1000).",
        query: &[("after", "integer"), ("limit", "integer")],
        body: None,
        ok: ("200", "AuditEvents"),
    },
    Op {
        method: "get",
        path: "/audit/checkpoint",
        summary: "The audit log's newest signed checkpoint (C2SP signed note: origin, size, base64 root, then the log's and the witnesses' signature lines); signed on demand when the log grew.",
        query: &[],
        body: None,
        ok: ("200", "Text"),
    },
    Op {
        method: "get",
        path: "/audit/tile/{*path}",
        summary: "A tile of the audit log (C2SP tlog-tiles): `<L>/<N>[.p/<W>]` (32-byte hashes) or `entries/<N>[.p/<W>]` (big-endian uint16-length-prefixed canonical JSON events). Full tiles are immutable.",
        query: &[],
        body: None,
        ok: ("200", "Binary"),
    },
    Op {
        method: "get",
        path: "/audit/events/{seq}",
        summary: "An audit event with its inclusion proof (RFC 9162 §2.1.3) in the newest signed checkpoint.",
        query: &[],
        body: None,
        ok: ("200", "EventProof"),
    },
    Op {
        method: "get",
        path: "/audit/proof/consistency",
        summary: "A consistency proof (RFC 9162 §2.1.4) between two tree sizes, 1 <= from <= to <= the newest checkpoint's size.",
        query: &[("from", "integer"), ("to", "integer")],
        body: None,
        ok: ("200", "ConsistencyProof"),
    },
    Op {
        method: "post",
        path: "/audit/cosignatures",
        summary: "Witness cosignatures (C2SP tlog-cosignature) of a checkpoint the log signed; kept only from configured witnesses, only when they verify.",
        query: &[],
        body: Some("Cosignatures"),
        ok: ("200", "CosignatureReceipt"),
    },
    Op {
        method: "post",
        path: "/registry/check",
        summary: "fsck: every blob re-hashed, every reference resolved. Admin role.",
        query: &[],
        body: None,
        ok: ("200", "CheckReport"),
    },
    Op {
        method: "post",
        path: "/models/{id}/versions/{selector}/signatures",
        summary: "Attach a client-made signature (a Sigstore bundle v0.3 of the version's OMS manifest); writer role. Checked first: the key is registered and active, the signature verifies, the manifest lists exactly the version's artifacts (name, sha256). 201 attached, 200 attached already; audit event model.sign.",
        query: &[],
        body: Some("SignatureRequest"),
        ok: ("201", "RegisteredManifestSignature"),
    },
    Op {
        method: "get",
        path: "/models/{id}/versions/{selector}/signatures",
        summary: "A version's signatures with their bundles, newest first.",
        query: &[],
        body: None,
        ok: ("200", "ManifestSignatures"),
    },
    Op {
        method: "post",
        path: "/keys",
        summary: "Register a public key (id = sha256 of its SubjectPublicKeyInfo DER); admin role; audit event key.add. 201 added, 200 identical existed.",
        query: &[],
        body: Some("KeyRequest"),
        ok: ("201", "RegisteredSigningKey"),
    },
    Op {
        method: "get",
        path: "/keys",
        summary: "Signing keys (active, retired, revoked), oldest first.",
        query: &[],
        body: None,
        ok: ("200", "SigningKeys"),
    },
    Op {
        method: "post",
        path: "/keys/{id}/rotate",
        summary: "Replace an active key by a new one: the new key is added and the old one retired (its earlier signatures stay valid); admin role; audit event key.rotate.",
        query: &[],
        body: Some("RotateKeyRequest"),
        ok: ("200", "KeyRotation"),
    },
    Op {
        method: "post",
        path: "/keys/{id}/revoke",
        summary: "Revoke a key: none of its signatures is valid any more; admin role; audit event key.revoke.",
        query: &[],
        body: Some("RevokeKeyRequest"),
        ok: ("200", "SigningKey"),
    },
];

fn schema_ref(name: &str) -> Value {
    match name {
        "Binary" => json!({"type": "string", "contentMediaType": "application/octet-stream"}),
        "Text" => json!({"type": "string", "contentMediaType": "text/plain"}),
        _ => json!({"$ref": format!("#/components/schemas/{name}")}),
    }
}

fn operation(op: &Op) -> Value {
    let mut params: Vec<Value> = Vec::new();
    for segment in op.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            params.push(
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
            );
        }
    }
    for (name, ty) in op.query {
        params
            .push(json!({"name": name, "in": "query", "required": false, "schema": {"type": ty}}));
    }
    let open = matches!(op.path, "/healthz" | "/openapi.json");
    let content_type = match op.ok.1 {
        "Binary" => "application/octet-stream",
        "Text" => "text/plain",
        _ => "application/json",
    };
    let mut value = json!({
        "summary": op.summary,
        "operationId": format!("{} {}", op.method, op.path),
        "parameters": params,
        "responses": {
            op.ok.0: {"description": "success", "content": {content_type: {"schema": schema_ref(op.ok.1)}}},
            "default": {"description": "an error", "content": {"application/json": {"schema": schema_ref("ErrorBody")}}},
        },
    });
    if open {
        value["security"] = json!([]);
    }
    if let Some(body) = op.body {
        let content = if body == "Binary" {
            json!({
                "application/octet-stream": {"schema": schema_ref("Binary")},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "metadata": schema_ref("ArtifactUpload"), "file": schema_ref("Binary")}}},
            })
        } else {
            json!({"application/json": {"schema": schema_ref(body)}})
        };
        value["requestBody"] = json!({"required": true, "content": content});
    }
    value
}

/// An object schema naming its fields (the records' documentation is ms_registry::entity).
fn record(fields: &[&str]) -> Value {
    let props: serde_json::Map<String, Value> =
        fields.iter().map(|f| (f.to_string(), json!({}))).collect();
    json!({"type": "object", "properties": props})
}

fn schemas() -> Value {
    let registered = |name: &str| json!({"allOf": [schema_ref(name), record(&["created"])]});
    let list = |name: &str| json!({"type": "array", "items": schema_ref(name)});
    let mut schemas = json!({
        "Health": record(&["status"]),
        "Object": {"type": "object"},
        "Principal": record(&["name", "role"]),
        "Error": {"type": "object", "required": ["type", "code", "message"], "properties": {
            "type": {"enum": ["invalid", "unauthenticated", "forbidden", "not_found", "conflict", "too_large", "range_not_satisfiable", "integrity", "unavailable", "internal"]},
            "code": {"type": "string", "pattern": "^MG[0-9]{4}$"},
            "message": {"type": "string"},
            "pointer": {"type": "string", "description": "a JSON pointer into the request body or the spec"},
            "hint": {"type": "string"}}},
        "ErrorBody": {"type": "object", "required": ["error"], "properties": {"error": schema_ref("Error")}},
        "ModelRegistration": record(&["spec", "specFile", "artifactIds", "codeRef", "metrics", "lineage", "provenance"]),
        "ModelVersion": record(&["modelId", "version", "digest", "family", "declaredVersion", "codeRef", "artifactIds", "metrics", "createdAt", "createdBy", "status", "pointers", "signerId", "signature", "lineage", "provenance", "specDigest", "spec"]),
        "RegisteredModelVersion": registered("ModelVersion"),
        "ModelVersionPage": {"type": "object", "properties": {"items": list("ModelVersion"), "nextPageToken": {"type": "string"}}},
        "Model": record(&["modelId", "family", "latestVersion", "pointers", "versions"]),
        "History": {"type": "array", "items": record(&["event", "version", "digest", "at", "by", "pointer", "fromVersion", "toVersion", "movedAt", "movedBy", "reason", "auditSeq"])},
        "PromoteRequest": record(&["version", "to", "reason"]),
        "PointerMove": record(&["modelId", "pointer", "fromVersion", "toVersion", "movedAt", "movedBy", "reason", "auditSeq"]),
        "ArtifactUpload": record(&["name", "mediaType", "expectedDigest", "size", "provenance"]),
        "UploadSession": record(&["uploadId", "offset", "request", "createdAt"]),
        "Artifact": record(&["artifactId", "size", "mediaType", "name", "createdAt", "createdBy", "provenance", "provenanceRecords"]),
        "ProvenanceRecord": record(&["subject", "statementDigest", "statement", "bundle", "keyId", "signedAt", "auditSeq"]),
        "ProvenanceSignature": record(&["bundle"]),
        "RegisteredArtifact": registered("Artifact"),
        "DatasetRegistration": record(&["name", "files", "license", "piiFlags", "sourceRefs", "transformations"]),
        "Dataset": record(&["datasetId", "name", "checksum", "license", "piiFlags", "sourceRefs", "transformations", "fileCount", "totalSize", "createdAt", "createdBy", "files"]),
        "RegisteredDataset": registered("Dataset"),
        "LineageGraph": record(&["root", "direction", "depth", "nodes", "edges", "truncated"]),
        "TokenRequest": record(&["name", "role"]),
        "TokenInfo": record(&["tokenId", "name", "role", "createdAt", "createdBy", "revokedAt"]),
        "TokenList": list("TokenInfo"),
        "CreatedToken": record(&["token", "info"]),
        "AuditEvents": {"type": "array", "items": record(&["seq", "at", "actor", "actorRole", "action", "subject", "beforeDigest", "afterDigest", "details", "digest"])},
        "CheckReport": record(&["blobsChecked", "bytesHashed", "rowsChecked", "problems"]),
        "SignatureRequest": record(&["bundle", "keyId"]),
        "ManifestSignature": record(&["modelId", "version", "envelopeDigest", "signerId", "keyId", "algorithm", "signedAt", "bundle", "auditSeq"]),
        "RegisteredManifestSignature": registered("ManifestSignature"),
        "ManifestSignatures": list("ManifestSignature"),
        "KeyRequest": record(&["name", "publicKey", "environments"]),
        "RotateKeyRequest": record(&["publicKey", "name", "environments"]),
        "RevokeKeyRequest": record(&["reason"]),
        "SigningKey": record(&["keyId", "name", "algorithm", "publicKey", "environments", "status", "addedAt", "addedBy", "revokedAt", "revokedBy", "revokeReason", "replacedBy", "auditSeq"]),
        "RegisteredSigningKey": registered("SigningKey"),
        "SigningKeys": list("SigningKey"),
        "KeyRotation": record(&["retired", "added", "auditSeq"]),
    });
    // The audit log's records (one json! of every schema would pass the macro's recursion
    // limit).
    for (name, fields) in [
        (
            "EventProof",
            &[
                "event",
                "entry",
                "leafIndex",
                "treeSize",
                "proof",
                "checkpoint",
            ][..],
        ),
        ("ConsistencyProof", &["from", "to", "proof"][..]),
        ("Cosignatures", &["checkpoint", "signatures"][..]),
        ("CosignatureReceipt", &["size", "witnesses"][..]),
    ] {
        schemas[name] = record(fields);
    }
    schemas
}

/// The whole document.
pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for op in OPS {
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = operation(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "modelspec registry",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The control plane: model versions, artifacts, datasets, lineage, signatures and signing keys, tokens, audit. Every call but /healthz and /openapi.json needs `Authorization: Bearer TOKEN` (or a client certificate when the server requires them). JSON bodies are at most 16 MiB by default; errors are {\"error\": Error} with the status of the error's type.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, "mtls": {"type": "mutualTLS"}},
        },
        "security": [{"bearer": []}, {"mtls": []}],
    })
}

/// `GET /openapi.json`.
pub async fn document() -> Json<Value> {
    Json(openapi())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc = super::openapi();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        let mut routes: Vec<(String, String)> = crate::routes::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        documented.sort();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
