//! One module per subcommand.

pub mod explain;
pub mod inspect;
pub mod quantize;
pub mod schema;
pub mod upgrade;
pub mod validate;
