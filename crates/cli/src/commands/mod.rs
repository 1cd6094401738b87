//! One module per subcommand.

pub mod bench;
pub mod compare;
pub mod devices;
pub mod envs;
pub mod eval;
pub mod export;
pub mod import;
pub mod plot;
pub mod record;
pub mod replay;
pub mod train;
