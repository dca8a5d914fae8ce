//! The Avi Controller REST client: sessions with CSRF and re-login, retries with backoff honouring `Retry-After`,
//! an adaptive request budget, pagination, typed errors classified transient/permanent, typed models that keep
//! unknown fields, the client's TLS configuration, and metrics. Reference parsing and `Debug` redaction are the
//! pure core's ([`refs`], [`redact`]), re-exported here.

pub mod budget;
pub mod client;
pub mod error;
pub mod metrics;
pub mod tls;

pub use ako_core::{redact, refs};
/// The typed Avi objects ([`ako_model`]).
pub use ako_model as models;

pub use client::{
    AviApi, AviClient, ClientConfig, Created, Credentials, ListQuery, PatchOp, RetryPolicy, Secret,
    WriteFence,
};
pub use error::AviError;
