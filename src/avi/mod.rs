//! Avi Controller REST client (issue 3): typed models, typed errors, session handling and retries.

pub mod budget;
pub mod client;
pub mod error;
pub mod metrics;
pub mod models;
pub mod redact;
pub mod refs;
pub mod tls;

pub use client::{
    AviApi, AviClient, ClientConfig, Created, Credentials, ListQuery, PatchOp, RetryPolicy, Secret,
    WriteFence,
};
pub use error::AviError;
