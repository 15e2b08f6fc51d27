pub mod data;
pub mod predict;
