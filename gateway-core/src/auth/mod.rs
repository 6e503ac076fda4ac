//! Authentication.

mod authenticate;
mod credential;
mod jwks;
pub mod jwt;
pub(crate) mod policy;
mod remembered;

pub(crate) use authenticate::authenticate;
pub use authenticate::Identity;
pub(crate) use jwks::KeyCache;
pub use policy::Consumer;
