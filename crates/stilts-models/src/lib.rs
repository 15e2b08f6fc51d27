//! Sentence encoders for STILTs on burn: BERT, GPT and ELMo, and loaders for the weight formats
//! users have. Models know nothing about GLUE: they map token ids to hidden states and logits.
//!
//! This crate is a leaf of the workspace (see `ARCHITECTURE.md`); the encoders arrive with the
//! BERT issue.
