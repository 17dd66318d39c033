//! The trust errors' codes (`MT` + 4 digits) with their documentation, read by
//! `modelspec explain MT…`. Ranges: MT00xx keys and signatures, MT01xx OMS bundles and model
//! directories, MT02xx trust policies, MT03xx PKCS#11, MT04xx the signing proxy, MT05xx
//! provenance, MT06xx the audit log's notes and proofs (`ms-tlog` reuses this table's style).

/// One documented code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub code: &'static str,
    pub title: &'static str,
    pub explanation: &'static str,
}

macro_rules! codes {
    ($( $id:ident $title:literal $text:literal ;)*) => {
        $( #[doc = $title] pub const $id: &str = stringify!($id); )*
        /// The codes defined here, in code order.
        pub const TABLE: &[CodeInfo] = &[ $( CodeInfo {
            code: stringify!($id),
            title: $title,
            explanation: $text,
        }, )* ];
    };
}

codes! {
    MT0001 "A public key cannot be read."
    "The key is neither a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) nor raw bytes of the expected length, or its algorithm is not Ed25519 or ECDSA P-256. Export the public key as PEM (`openssl pkey -pubout`, or `modelspec signer public-key`).";
    MT0002 "A signature does not verify."
    "The signature was not made by this key over these bytes: the signed content changed, or another key signed it. Check which key is trusted for this content; never re-sign content you have not reviewed.";
    MT0003 "A signer cannot be opened."
    "The signer reference is not `file:PATH`, `pkcs11:…` (RFC 7512) or an `http(s)://` signing proxy URL, or what it names cannot be reached. The message says which part failed.";
}
