//! Entries bundles (C2SP tlog-tiles): the entries of an entries tile, each a big-endian 16-bit
//! length followed by that many bytes, back to back.

use ms_trust::codes::MT0605;

use crate::error::{Result, TlogError};

/// The largest entry a bundle can carry.
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// Encodes entries into a bundle; an entry longer than 65,535 bytes is an error.
pub fn encode_entries<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.as_ref().len() + 2).sum());
    for (i, e) in entries.iter().enumerate() {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| {
            TlogError::new(
                MT0605,
                format!(
                    "entry {i} of the bundle is {} bytes; an entries bundle holds entries of at most {MAX_ENTRY_LEN} bytes",
                    e.len()
                ),
            )
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Decodes a bundle into its entries (any number of them; compare with the tile's width).
pub fn decode_entries(bundle: &[u8]) -> Result<Vec<Vec<u8>>> {
    Ok(entry_spans(bundle)?
        .into_iter()
        .map(|(a, b)| bundle[a..b].to_vec())
        .collect())
}

/// Where each entry of a bundle lies (`start..end` in the bundle), without copying them.
pub fn entry_spans(bundle: &[u8]) -> Result<Vec<(usize, usize)>> {
    let mut spans = Vec::new();
    let mut at = 0usize;
    while at < bundle.len() {
        if bundle.len() - at < 2 {
            return Err(TlogError::new(
                MT0605,
                format!(
                    "the bundle ends inside the length of entry {} (byte {at})",
                    spans.len()
                ),
            ));
        }
        let len = usize::from(u16::from_be_bytes([bundle[at], bundle[at + 1]]));
        if bundle.len() - at - 2 < len {
            return Err(TlogError::new(
                MT0605,
                format!(
                    "entry {} says {len} bytes but the bundle ends after {} (byte {at})",
                    spans.len(),
                    bundle.len() - at - 2
                ),
            ));
        }
        spans.push((at + 2, at + 2 + len));
        at += 2 + len;
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_cut_bundles() {
        let entries: Vec<Vec<u8>> = vec![b"{}".to_vec(), Vec::new(), vec![7; 300]];
        let b = encode_entries(&entries).unwrap();
        assert_eq!(&b[..4], &[0, 2, b'{', b'}']);
        assert_eq!(decode_entries(&b).unwrap(), entries);
        assert_eq!(decode_entries(&b[..b.len() - 1]).unwrap_err().code, MT0605);
        assert_eq!(decode_entries(&[0]).unwrap_err().code, MT0605);
        assert!(encode_entries(&[vec![0u8; 70_000]]).is_err());
    }
}
