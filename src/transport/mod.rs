//! The HTTP-client trait the host plugs its transport into and a closure adapter (a recording,
//! scripted client for tests is in `testing`, feature `test-util`).
//!
//! The crate's currency is `http::Request<Vec<u8>>` in and `http::Response<Vec<u8>>` out. A
//! response with any status (including 4xx and 5xx) is a response, not an error: the retry policy
//! decides what it means. A [`TransportError`] is for when no response arrived.

pub(crate) mod client;
pub(crate) mod destination;
pub(crate) mod error;

pub use client::ClientFn;
pub use destination::{
    BlockReason, Cidr, CidrError, IPV4_SPECIAL_PURPOSE, IPV6_SPECIAL_PURPOSE, SpecialPurpose,
    Treatment,
};
pub use error::TransportErrorKind;

#[cfg(feature = "reqwest")]
pub(crate) mod reqwest;
#[cfg(feature = "reqwest")]
pub use self::reqwest::{DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT, ReqwestClientBuilder};

// Crate-internal paths of the items the crate root exports.
#[cfg(any(feature = "tokio", feature = "test-util"))]
pub(crate) use client::HttpClient;
pub(crate) use destination::DestinationPolicy;
pub(crate) use error::TransportError;
