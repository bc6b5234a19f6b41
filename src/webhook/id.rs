//! The `webhook-id` of a request, derived from the flow and the event.

use std::fmt;
use std::str::FromStr;

use crate::hash::Fnv1a128;
use crate::model::{EventId, FlowId};
use crate::webhook::error::WebhookIdError;

/// The longest `webhook-id` read from text or accepted by a receiver, in bytes (the ids this
/// crate derives are 36).
pub const MAX_WEBHOOK_ID_LEN: usize = 256;

/// The `webhook-id` of a request: `msg_` and 32 lowercase hex digits, derived from the flow and
/// the event only, so it is the same on every retry and every re-delivery of the same event, in
/// every process and every version of this crate. Receivers de-duplicate on it once the
/// request's signature verifies (see [`receive`](crate::receive#de-duplicating-on-the-webhook-id)).
///
/// The 32 hex digits are FNV-1a-128 (offset basis `0x6c62272e07bb014262b821756295c58d`, prime
/// `2^88 + 0x13b`) over the bytes `optout-relay/webhook-id/v1`, `0x00`, the flow id, `0x00`, the
/// event id (ids hold no control characters, so the `0x00` separators are unambiguous), then
/// finalized so that every input bit affects every output digit (FNV alone leaves ids of similar
/// events looking alike): with `hi`/`lo` the high and low 64 bits and `mix` the SplitMix64
/// finalizer, `lo = mix(lo ^ rotate_left(hi, 32))`, then `hi = mix(hi ^ lo)`. FNV is
/// not a cryptographic hash: the id is for de-duplication, not for authenticity (that is what the
/// signature is for). It needs no dependency, so it is identical without the `signing` feature.
///
/// ```
/// use optout_relay::EventId;
/// use optout_relay::FlowId;
/// use optout_relay::webhook::WebhookId;
///
/// let id = WebhookId::derive(&FlowId::new("crm-unsubscribes")?, &EventId::new("evt-1")?);
/// assert_eq!(id.as_str(), "msg_f602f46a34bde42fbf025123344f856d");
/// # Ok::<(), optout_relay::model::IdError>(())
/// ```
///
/// An id held as text (a receiver's log, an operator's command) is read back with
/// [`str::parse`]: any id of 1 to [`MAX_WEBHOOK_ID_LEN`] visible ASCII characters, so that a
/// delivery stored under an id its host chose can still be found
/// ([`DeliveryStore::get`](crate::DeliveryStore::get), [`replay`](crate::DeliveryStore::replay)).
///
/// ```
/// use optout_relay::webhook::{WebhookId, WebhookIdError};
///
/// let id: WebhookId = "msg_f602f46a34bde42fbf025123344f856d".parse()?;
/// assert_eq!(id, "msg_f602f46a34bde42fbf025123344f856d");
/// assert_eq!("msg 1".parse::<WebhookId>(), Err(WebhookIdError::NotVisibleAscii { position: 3 }));
/// # Ok::<(), WebhookIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WebhookId(String);

impl FromStr for WebhookId {
    type Err = WebhookIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(WebhookIdError::Empty);
        }
        if text.len() > MAX_WEBHOOK_ID_LEN {
            return Err(WebhookIdError::TooLong {
                len: text.len(),
                max: MAX_WEBHOOK_ID_LEN,
            });
        }
        if let Some(position) = text.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(WebhookIdError::NotVisibleAscii { position });
        }
        Ok(Self(text.to_owned()))
    }
}

impl WebhookId {
    /// An id read back from a stored delivery, as it was written (a delivery of an earlier
    /// version may hold any id its host gave it).
    pub(crate) fn from_stored(id: String) -> Self {
        Self(id)
    }

    /// Derives the id of the request that `flow` sends for `event`.
    pub fn derive(flow: &FlowId, event: &EventId) -> Self {
        let mut hash = Fnv1a128::new();
        hash.write(b"optout-relay/webhook-id/v1");
        hash.write(&[0]);
        hash.write(flow.as_str().as_bytes());
        hash.write(&[0]);
        hash.write(event.as_str().as_bytes());
        let digest = hash.finish_mixed();
        let mut id = String::with_capacity(36);
        id.push_str("msg_");
        for shift in (0..32).rev() {
            let nibble = ((digest >> (shift * 4)) & 0xf) as u32;
            id.push(char::from_digit(nibble, 16).unwrap_or('0'));
        }
        Self(id)
    }

    /// The id, such as `msg_f602f46a34bde42fbf025123344f856d`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebhookId").field(&self.0).finish()
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for WebhookId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for WebhookId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
