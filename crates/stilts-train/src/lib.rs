//! Training phases, sequential transfer (STILTs), multitask sampling, restarts and checkpoints.
//!
//! Uses `stilts-data` for tasks and `stilts-models` for encoders (see `ARCHITECTURE.md`). The
//! engine arrives with the training issue; today this crate re-exports its two leaves so the
//! dependency direction is fixed.

pub use stilts_data as data;
pub use stilts_models as models;
