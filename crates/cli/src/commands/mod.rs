//! One module per subcommand.

pub mod bench;
pub mod devices;
pub mod envs;
pub mod eval;
pub mod export;
pub mod replay;
pub mod train;
