//! One module per subcommand.

pub mod bench;
pub mod dump;
pub mod explain;
pub mod inspect;
pub mod plan;
pub mod pull;
pub mod quantize;
pub mod run;
pub mod schema;
pub mod serve;
pub mod upgrade;
pub mod validate;
pub mod verify;
