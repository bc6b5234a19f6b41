//! Delivery: the retry policy, the pure planner that turns an attempt's result into the next
//! step, and the delivery record a host can persist.
//!
//! | answer | step |
//! | --- | --- |
//! | 2xx | delivered |
//! | 408, 429, 5xx, and transport errors (connect, timeout, DNS, TLS, body, other) | retry at the next scheduled time (later if `Retry-After` says so, within bounds), until the attempts or the maximum age run out |
//! | 410 Gone | dead letter, and the endpoint should be disabled |
//! | 3xx (never followed), other 4xx, 1xx | dead letter with the status |
//! | a blocked destination or an invalid request | dead letter |

mod attempt;
mod error;
mod limits;
pub(crate) mod policy;
pub(crate) mod record;
mod retry_after;
mod step;
mod stored_request;
#[cfg(feature = "tokio")]
pub(crate) mod worker;

pub use attempt::{Attempt, AttemptOutcome, KEPT_FIRST_ATTEMPTS, KEPT_LATEST_ATTEMPTS};
pub use error::{
    DeliveryError, DurationSetting, PolicyError, RetryAfterError, StoredRequestProblem,
};
pub use limits::{
    MAX_AGE, MAX_ATTEMPTS, MAX_DELAY, MAX_JITTER_PERCENT, MAX_RESPONSE_BODY_LIMIT, MIN_DELAY,
};
pub use policy::{DEFAULT_SCHEDULE, RetryPolicyBuilder, StatusClass};
pub use retry_after::parse_retry_after;
pub use step::{DeadLetterReason, DeliveryState, Step};
#[cfg(feature = "tokio")]
pub use worker::{Outcomes, Stopped, Stopper, SubmitError, WorkerBuilder};

// Crate-internal paths of the items the crate root exports.
#[cfg(feature = "tokio")]
pub(crate) use policy::RetryPolicy;
pub(crate) use record::Delivery;
