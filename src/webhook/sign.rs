//! Standard Webhooks signatures.
//!
//! A signature is `v1,` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")),
//! where the key is the base64-decoded part of a `whsec_...` secret. The HMAC code is behind the
//! `signing` feature.

use std::fmt;

use crate::webhook::error::WebhookConfigError;
use crate::webhook::secret::Secret;

/// The prefix of a Standard Webhooks signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The shortest signing key accepted, in bytes (after base64 decoding).
pub const MIN_SECRET_BYTES: usize = 24;
/// The longest signing key accepted, in bytes (after base64 decoding).
pub const MAX_SECRET_BYTES: usize = 64;
/// The most signing secrets a node may hold at once (key rotation).
pub const MAX_SIGNING_SECRETS: usize = 8;

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
    use crate::webhook::error::WebhookConfigError;
    use crate::webhook::problem::SigningSecretProblem;
    use crate::webhook::secret::Secret;

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

        pub(super) fn parse(secret: &str) -> Result<Self, SigningSecretProblem> {
            let encoded = secret
                .strip_prefix(SECRET_PREFIX)
                .ok_or(SigningSecretProblem::NoPrefix)?;
            let key = STANDARD
                .decode(encoded)
                .map_err(|_| SigningSecretProblem::NotBase64)?;
            if key.len() < MIN_SECRET_BYTES {
                return Err(SigningSecretProblem::KeyTooShort);
            }
            if key.len() > MAX_SECRET_BYTES {
                return Err(SigningSecretProblem::KeyTooLong);
            }
            let keyed = <HmacSha256 as Mac>::new_from_slice(&key)
                .map_err(|_| SigningSecretProblem::NotHmacKey)?;
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
        /// use optout_relay::webhook::SigningSecret;
        ///
        /// // The Standard Webhooks specification's known-answer vector.
        /// let secret = SigningSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
        /// assert_eq!(
        ///     secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
        ///     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        /// );
        /// # Ok::<(), optout_relay::webhook::WebhookConfigError>(())
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
