//! The Slurm executor (being written).
