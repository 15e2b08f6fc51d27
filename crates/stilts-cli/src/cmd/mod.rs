pub mod data;
pub mod env;
pub mod eval;
pub mod export;
pub mod predict;
pub mod run;
pub mod show;
pub mod train;
