//! One module per subcommand.

pub mod artifact;
pub mod bench;
pub mod connect;
pub mod dataset;
pub mod dump;
pub mod explain;
pub mod inspect;
pub mod key;
pub mod lineage;
pub mod model;
pub mod plan;
pub mod pull;
pub mod quantize;
pub mod registry;
pub mod registry_serve;
pub mod run;
pub mod schema;
pub mod serve;
pub mod sign;
pub mod signer;
pub mod signer_serve;
pub mod transfer;
pub mod upgrade;
pub mod validate;
pub mod verify;
pub mod verify_signature;
