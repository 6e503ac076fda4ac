//! Request and response transforms.
pub mod body;
pub(crate) mod edits;
