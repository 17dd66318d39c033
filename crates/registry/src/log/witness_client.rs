//! Getting the log's newest checkpoint cosigned: the log side of C2SP tlog-witness. The
//! checkpoint and a consistency proof from the size the witness last cosigned go to the
//! witness's `POST /add-checkpoint`; a 409 answer names that size, and the request is made
//! once more with the right proof; the cosignature lines the witness answers are given to the
//! registry (`add_cosignatures`), which verifies them against its configured witnesses.
//! Run by `modelspec audit checkpoint --witness URL` (the registry itself calls no one).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ms_tlog::checkpoint::Checkpoint;
use ms_tlog::witness::AddCheckpoint;

use super::codes::WITNESS_FAILED;
use super::{CosignatureReceipt, Cosignatures};
use crate::api::Registry;
use crate::error::{ErrorKind, RegistryError, Result};

fn failed(url: &str, msg: impl std::fmt::Display) -> RegistryError {
    RegistryError::new(
        ErrorKind::Unavailable,
        WITNESS_FAILED,
        format!("witness {url}: {msg}"),
    )
}

/// The checkpoint note without signature lines other than the log's: what a witness is sent
/// (the registry's note also carries earlier cosignatures).
fn body_of(note: &str) -> Result<Checkpoint> {
    let body = note.split("\n\n").next().unwrap_or_default();
    Checkpoint::parse(&format!("{body}\n")).map_err(|e| {
        RegistryError::new(
            ErrorKind::Internal,
            WITNESS_FAILED,
            format!("the registry's checkpoint is malformed: {e}"),
        )
    })
}

/// Sends the registry's newest checkpoint to the witness at `url` and keeps its cosignature.
pub async fn cosign(registry: &dyn Registry, url: &str) -> Result<CosignatureReceipt> {
    let note = registry.audit_checkpoint().await?;
    let cp = body_of(&note)?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| failed(url, e))?;
    let endpoint = format!("{}/add-checkpoint", url.trim_end_matches('/'));
    let mut old = 0u64;
    for attempt in 0..2 {
        let proof = if old == 0 || old == cp.size {
            Vec::new()
        } else if old > cp.size {
            return Err(failed(
                url,
                format!(
                    "it cosigned size {old}, larger than the log's {}: it saw another log or \
                     a fork",
                    cp.size
                ),
            ));
        } else {
            registry
                .audit_consistency(old, cp.size)
                .await?
                .proof
                .iter()
                .map(|h| {
                    B64.decode(h)
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| failed(url, "the registry's proof is malformed"))
                })
                .collect::<Result<Vec<_>>>()?
        };
        let body = AddCheckpoint {
            old,
            proof,
            checkpoint: note.clone(),
        }
        .to_text();
        let response = client
            .post(&endpoint)
            .body(body)
            .send()
            .await
            .map_err(|e| failed(url, format!("cannot be reached: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| failed(url, format!("answer unreadable: {e}")))?;
        if status.as_u16() == 409 && attempt == 0 {
            old = text
                .trim()
                .parse()
                .map_err(|_| failed(url, format!("409 without a size: {:?}", text.trim())))?;
            continue;
        }
        if !status.is_success() {
            return Err(failed(url, format!("{status}: {}", text.trim())));
        }
        let signatures: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        return registry
            .add_cosignatures(Cosignatures {
                checkpoint: note,
                signatures,
            })
            .await;
    }
    Err(failed(url, "it answered 409 twice"))
}
