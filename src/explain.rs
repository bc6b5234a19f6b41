//! Why an event did or did not enter a flow: the answer of
//! [`Router::explain`](crate::Router::explain) and the reasons a [`Match`](crate::listen::Match)
//! carries.

pub use crate::listen::router::{ActivityMatch, Explanation, Rejection, SubscriptionMatch, Why};
