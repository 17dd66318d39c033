//! PKCS#11's CKM_ECDSA returns `r ‖ s` (two 32-byte big-endian integers for P-256); Sigstore,
//! OMS and `PublicKey::verify` want the ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }`.

use crate::codes::MT0306;
use crate::error::{Result, TrustError};

/// `r ‖ s` (64 bytes) to DER.
pub fn p256_raw_to_der(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.len() != 64 {
        return Err(TrustError::new(
            MT0306,
            format!(
                "the token returned a {}-byte ECDSA signature; P-256 gives 64 bytes (r ‖ s)",
                raw.len()
            ),
        ));
    }
    let (r, s) = raw.split_at(32);
    let (r, s) = (integer(r), integer(s));
    // At most 2 × 35 bytes: a one-byte length always suffices.
    let mut out = vec![0x30, (r.len() + s.len()) as u8];
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    Ok(out)
}

/// A DER INTEGER of an unsigned big-endian value: leading zeros dropped, one 0x00 added when
/// the high bit is set (else it would read as negative).
fn integer(mut v: &[u8]) -> Vec<u8> {
    while v.len() > 1 && v[0] == 0 {
        v = &v[1..];
    }
    let pad = v[0] & 0x80 != 0;
    let mut out = vec![0x02, (v.len() + usize::from(pad)) as u8];
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
        UnparsedPublicKey,
    };

    #[test]
    fn fixed_signatures_become_der_that_verifies() {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, kp.public_key().as_ref());
        // Enough signatures to meet short r/s and high bits (each about half the time).
        for i in 0..200u32 {
            let msg = i.to_le_bytes();
            let raw = kp.sign(&rng, &msg).unwrap();
            let der = p256_raw_to_der(raw.as_ref()).unwrap();
            key.verify(&msg, &der).unwrap();
        }
    }

    #[test]
    fn edge_values_encode_minimally() {
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[32] = 0x80;
        let der = p256_raw_to_der(&raw).unwrap();
        let mut want = vec![0x30, 3 + 35, 0x02, 1, 1, 0x02, 33, 0, 0x80];
        want.extend_from_slice(&[0; 31]);
        assert_eq!(der, want);
        assert_eq!(p256_raw_to_der(&[1; 63]).unwrap_err().code, MT0306);
    }
}
