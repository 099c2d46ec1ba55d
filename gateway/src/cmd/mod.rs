//! The subcommands of the `gateway` binary: parsing ([`cli`]), exit statuses ([`exit`]), and one
//! module per subcommand ([`serve`], [`sweep`], [`presign`]).

pub mod cli;
pub mod exit;
pub mod presign;
pub mod serve;
pub mod sweep;
