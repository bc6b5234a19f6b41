//! Standard Webhooks signatures and the webhook id.
//!
//! A signature is `v1,` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")),
//! where the key is the base64-decoded part of a `whsec_...` secret. The HMAC code is behind the
//! `signing` feature; the webhook id is not (it is the same with and without the feature).

use std::fmt;

use crate::error::WebhookConfigError;
use crate::model::{EventId, FlowId};
use crate::webhook::node::Secret;

/// The prefix of a Standard Webhooks signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The shortest signing key accepted, in bytes (after base64 decoding).
pub const MIN_SECRET_BYTES: usize = 24;
/// The longest signing key accepted, in bytes (after base64 decoding).
pub const MAX_SECRET_BYTES: usize = 64;

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
/// use optout_relay::{EventId, FlowId, WebhookId};
///
/// let id = WebhookId::derive(&FlowId::new("crm-unsubscribes")?, &EventId::new("evt-1")?);
/// assert_eq!(id.as_str(), "msg_f602f46a34bde42fbf025123344f856d");
/// # Ok::<(), optout_relay::IdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WebhookId(String);

impl WebhookId {
    /// Derives the id of the request that `flow` sends for `event`.
    pub fn derive(flow: &FlowId, event: &EventId) -> Self {
        let mut hash = Fnv1a128::new();
        hash.write(b"optout-relay/webhook-id/v1");
        hash.write(&[0]);
        hash.write(flow.as_str().as_bytes());
        hash.write(&[0]);
        hash.write(event.as_str().as_bytes());
        let digest = finalize(hash.finish());
        let mut id = String::with_capacity(36);
        id.push_str("msg_");
        for shift in (0..32).rev() {
            let nibble = ((digest >> (shift * 4)) & 0xf) as u32;
            id.push(char::from_digit(nibble, 16).unwrap_or('0'));
        }
        Self(id)
    }

    /// An id read back from a stored delivery, as it was written (a delivery of an earlier
    /// version may hold any id its host gave it).
    pub(crate) fn from_stored(id: String) -> Self {
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

/// The SplitMix64 finalizer: a bijection of `u64` with full avalanche. Also the worker's jitter
/// source, over a SplitMix64 counter.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Spreads every bit of a FNV-1a-128 state over the whole result.
fn finalize(hash: u128) -> u128 {
    let hi = (hash >> 64) as u64;
    let lo = hash as u64;
    let lo = mix(lo ^ hi.rotate_left(32));
    let hi = mix(hi ^ lo);
    (u128::from(hi) << 64) | u128::from(lo)
}

/// FNV-1a with a 128-bit state (<http://www.isthe.com/chongo/tech/comp/fnv/>).
struct Fnv1a128(u128);

impl Fnv1a128 {
    const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    fn new() -> Self {
        Self(Self::OFFSET_BASIS)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u128::from(byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> u128 {
        self.0
    }
}

/// A validated Standard Webhooks signing secret: `whsec_` + base64 (standard alphabet, padded)
/// of 24 to 64 bytes. `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct SigningSecret {
    text: Secret,
    /// HMAC-SHA256 keyed with the decoded secret, cloned for each message.
    #[cfg(feature = "signing")]
    keyed: hmac_signing::HmacSha256,
}

impl PartialEq for SigningSecret {
    fn eq(&self, other: &Self) -> bool {
        // The keyed HMAC follows from the text.
        self.text == other.text
    }
}

impl Eq for SigningSecret {}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret([redacted])")
    }
}

impl SigningSecret {
    /// The secret as configured (for the node's JSON form).
    pub(crate) fn secret(&self) -> Secret {
        self.text.clone()
    }

    /// Validates the secret at `index` of a node's list.
    #[cfg(not(feature = "signing"))]
    pub(crate) fn for_node(_index: usize, _secret: &Secret) -> Result<Self, WebhookConfigError> {
        Err(WebhookConfigError::SigningUnavailable)
    }

    /// Validates the secret at `index` of a node's list.
    #[cfg(feature = "signing")]
    pub(crate) fn for_node(index: usize, secret: &Secret) -> Result<Self, WebhookConfigError> {
        Self::parse(secret.expose())
            .map_err(|reason| WebhookConfigError::InvalidSigningSecret { index, reason })
    }
}

#[cfg(feature = "signing")]
mod hmac_signing {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use super::{MAX_SECRET_BYTES, MIN_SECRET_BYTES, SECRET_PREFIX, SigningSecret};
    use crate::error::WebhookConfigError;
    use crate::webhook::node::Secret;

    pub(super) type HmacSha256 = Hmac<Sha256>;

    impl SigningSecret {
        /// Validates a `whsec_...` secret.
        ///
        /// # Errors
        ///
        /// [`WebhookConfigError::InvalidSigningSecret`] (with index 0) when the prefix is missing,
        /// the rest is not base64, or the key is not 24 to 64 bytes long. The secret is not
        /// repeated.
        pub fn new(secret: impl Into<Secret>) -> Result<Self, WebhookConfigError> {
            Self::for_node(0, &secret.into())
        }

        pub(super) fn parse(secret: &str) -> Result<Self, &'static str> {
            let encoded = secret
                .strip_prefix(SECRET_PREFIX)
                .ok_or("it does not start with `whsec_`")?;
            let key = STANDARD
                .decode(encoded)
                .map_err(|_| "the part after `whsec_` is not standard base64")?;
            if key.len() < MIN_SECRET_BYTES {
                return Err("the key is shorter than 24 bytes");
            }
            if key.len() > MAX_SECRET_BYTES {
                return Err("the key is longer than 64 bytes");
            }
            let keyed = <HmacSha256 as Mac>::new_from_slice(&key)
                .map_err(|_| "the key cannot key HMAC-SHA256")?;
            Ok(Self {
                text: Secret::new(secret),
                keyed,
            })
        }

        fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
            let mut mac = self.keyed.clone();
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            mac
        }

        /// The signature `v1,<base64>` of a message: HMAC-SHA256 over
        /// `"{id}.{timestamp}.{body}"`.
        ///
        /// ```
        /// use optout_relay::SigningSecret;
        ///
        /// // The Standard Webhooks specification's known-answer vector.
        /// let secret = SigningSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
        /// assert_eq!(
        ///     secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
        ///     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        /// );
        /// # Ok::<(), optout_relay::WebhookConfigError>(())
        /// ```
        pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
            let tag = self.mac(id, timestamp, body).finalize().into_bytes();
            format!("v1,{}", STANDARD.encode(tag))
        }

        /// Whether one of the space-separated `v1,<base64>` signatures in `signatures` (a
        /// `webhook-signature` header value) is this secret's signature of the message. The
        /// comparison is constant-time and checks the length. Checking the timestamp's age is
        /// the caller's business.
        pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], signatures: &str) -> bool {
            signatures
                .split(' ')
                .filter_map(|s| s.strip_prefix("v1,"))
                .filter_map(|s| STANDARD.decode(s).ok())
                .any(|tag| self.mac(id, timestamp, body).verify_slice(&tag).is_ok())
        }

        /// Whether one of the decoded signature `tags` is this secret's tag of the message.
        /// Hashes the body once, compares with every tag (no early exit), each comparison
        /// constant-time with a length check. For the receiving side's verifier.
        pub(crate) fn matches_any(
            &self,
            id: &str,
            timestamp: i64,
            body: &[u8],
            tags: &[Vec<u8>],
        ) -> bool {
            let mac = self.mac(id, timestamp, body);
            tags.iter().fold(false, |found, tag| {
                found | mac.clone().verify_slice(tag).is_ok()
            })
        }
    }
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
#[cfg(feature = "signing")]
pub(crate) fn signature_header(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let signatures: Vec<String> = secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect();
    signatures.join(" ")
}

#[cfg(test)]
mod tests {
    use super::Fnv1a128;

    fn fnv(bytes: &[u8]) -> u128 {
        let mut hash = Fnv1a128::new();
        hash.write(bytes);
        hash.finish()
    }

    #[test]
    fn fnv1a_128_known_answers() {
        assert_eq!(fnv(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
        assert_eq!(fnv(b"foobar"), 0x343e1662793c64bf6f0d3597ba446f18);
    }
}
