//! Property: a signed OMS bundle with any one byte changed is either refused or still verifies
//! to exactly the manifest that was signed (a byte in a field nobody reads, such as `keyid`'s
//! name). Nothing else gets through, and nothing panics.

use ms_trust::keyfile::KeyFileSigner;
use ms_trust::oms::{self, Resource};
use ms_trust::{Algorithm, Bundle, Signer as _};
use proptest::prelude::*;

fn resources(n: usize, seed: u8) -> Vec<Resource> {
    (0..n)
        .map(|i| Resource {
            name: format!("dir{}/file-{i}.bin", i % 3),
            digest: [seed.wrapping_add(i as u8); 32],
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn one_changed_byte_never_passes_as_something_else(
        n in 1usize..6,
        seed in any::<u8>(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        p256 in any::<bool>(),
    ) {
        let alg = if p256 { Algorithm::EcdsaP256Sha256 } else { Algorithm::Ed25519 };
        let signer = KeyFileSigner::generate(alg).unwrap();
        let signed = resources(n, seed);
        let bundle = oms::sign(&oms::statement("m", &signed), &signer).unwrap();
        let mut text = bundle.to_json().into_bytes();
        let i = at.index(text.len());
        text[i] ^= flip;
        let outcome = Bundle::from_json(&text).and_then(|b| oms::verify(&b, signer.public_key()));
        if let Ok(m) = outcome {
            let mut want = signed.clone();
            oms::sort_resources(&mut want);
            prop_assert_eq!(m.resources, want);
            prop_assert_eq!(m.model_name, "m");
        }
    }
}
