//! Standard Webhooks verification of an incoming request (feature `signing`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use jiff::{SignedDuration, Timestamp};

use crate::receive::error::{HeaderProblem, VerifyError};
use crate::webhook::MAX_WEBHOOK_ID_LEN;
use crate::webhook::WebhookConfigError;
use crate::webhook::{Secret, SigningSecret, WebhookNode};

/// The default timestamp tolerance: 5 minutes either way, as the Standard Webhooks
/// specification recommends.
pub const DEFAULT_TOLERANCE: SignedDuration = SignedDuration::from_secs(5 * 60);

/// The most signatures read from one `webhook-signature` header. A sender signs with one secret
/// per active key (two during a rotation); more than this is refused rather than hashed.
pub const MAX_SIGNATURES: usize = 16;

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";

/// Verifies the Standard Webhooks headers of incoming requests against one or more secrets.
///
/// A request is accepted when:
///
/// 1. `webhook-id`, `webhook-timestamp` and `webhook-signature` are each present exactly once;
/// 2. `webhook-timestamp` (Unix seconds) is within the tolerance of `now`, either way (the
///    bounds are inclusive: exactly 5 minutes old passes with the default tolerance);
/// 3. one of the space-separated `v1,<base64>` signatures in `webhook-signature` is the
///    HMAC-SHA256 of `{id}.{timestamp}.{body}` under one of the secrets. Every secret and every
///    signature is checked (no early exit), each comparison in constant time with a length
///    check. Entries of other versions (`v1a,...`) and undecodable entries are skipped.
///
/// Several secrets serve key rotation: configure the new and the old one while senders move
/// over. A verifier without secrets accepts nothing.
///
/// No clock inside: `now` is passed in. `Debug` never shows the secrets.
///
/// **What a signature covers.** The body, the id and the timestamp: not the URL. With the
/// `query` encoding the parameters are in the URL and the body is empty, so a valid signature
/// says nothing about them: treat query parameters as unauthenticated, and sign a body encoding
/// (`form`, `json`, `json_envelope`) instead.
///
/// ```
/// use optout_relay::receive::Verifier;
/// use optout_relay::webhook::SigningSecret;
/// use optout_relay::Timestamp;
///
/// let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// let body = br#"{"test": 2432232314}"#;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse()?);
/// headers.insert("webhook-timestamp", "1614265330".parse()?);
/// headers.insert("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".parse()?);
///
/// let verifier = Verifier::new([SigningSecret::new(secret)?]);
/// let now = Timestamp::from_second(1614265330 + 60)?;
/// let verified = verifier.verify(&headers, body, now)?;
/// assert_eq!(verified.id(), "msg_p5jXN8AQM9LWM0D4loKWxJek");
///
/// // Ten minutes later, the same request is a replay.
/// let later = Timestamp::from_second(1614265330 + 600)?;
/// assert!(verifier.verify(&headers, body, later).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    secrets: Vec<SigningSecret>,
    tolerance: SignedDuration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier {
    /// A verifier accepting signatures by any of `secrets`, with the default tolerance of
    /// 5 minutes.
    pub fn new(secrets: impl IntoIterator<Item = SigningSecret>) -> Self {
        Self {
            secrets: secrets.into_iter().collect(),
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// A verifier from `whsec_...` strings.
    ///
    /// # Errors
    ///
    /// [`WebhookConfigError::InvalidSigningSecret`] naming the position of the first invalid
    /// secret (the secret is not repeated).
    pub fn from_secrets<S: Into<Secret>>(
        secrets: impl IntoIterator<Item = S>,
    ) -> Result<Self, WebhookConfigError> {
        let secrets = secrets
            .into_iter()
            .enumerate()
            .map(|(index, secret)| SigningSecret::for_node(index, &secret.into()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(secrets))
    }

    /// A verifier with the secrets the sender's Webhook node signs with, so that one flow file
    /// describes both ends; `None` when the node does not sign.
    pub fn from_node(node: &WebhookNode) -> Option<Self> {
        node.is_signed()
            .then(|| Self::new(node.signing.iter().cloned()))
    }

    /// Sets the tolerance: how far `webhook-timestamp` may be from `now`, either way. A negative
    /// duration counts as its absolute value.
    #[must_use]
    pub fn tolerance(mut self, tolerance: SignedDuration) -> Self {
        self.tolerance = if tolerance.is_negative() {
            tolerance.checked_neg().unwrap_or(SignedDuration::MAX)
        } else {
            tolerance
        };
        self
    }

    /// The tolerance.
    pub fn tolerance_value(&self) -> SignedDuration {
        self.tolerance
    }

    /// How many secrets are accepted.
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// Verifies the Standard Webhooks headers of a request with this `body` at `now`.
    ///
    /// # Errors
    ///
    /// In the order checked: [`VerifyError::MissingHeader`], [`VerifyError::MalformedHeader`],
    /// [`VerifyError::InvalidTimestamp`], [`VerifyError::TooOld`], [`VerifyError::TooNew`],
    /// [`VerifyError::NoMatchingSignature`].
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: Timestamp,
    ) -> Result<VerifiedWebhook, VerifyError> {
        let id = header(headers, ID)?;
        let timestamp_text = header(headers, TIMESTAMP)?;
        let signatures = header(headers, SIGNATURE)?;
        if id.len() > MAX_WEBHOOK_ID_LEN {
            return Err(VerifyError::MalformedHeader {
                name: ID,
                reason: HeaderProblem::TooLong,
            });
        }

        let seconds = parse_seconds(timestamp_text).ok_or(VerifyError::InvalidTimestamp)?;
        let tolerance = self.tolerance.as_secs();
        let age = now.as_second().saturating_sub(seconds);
        if age > tolerance {
            return Err(VerifyError::TooOld {
                age: SignedDuration::from_secs(age),
                tolerance: self.tolerance,
            });
        }
        if age < -tolerance {
            return Err(VerifyError::TooNew {
                ahead: SignedDuration::from_secs(age.saturating_neg()),
                tolerance: self.tolerance,
            });
        }
        let timestamp =
            Timestamp::from_second(seconds).map_err(|_| VerifyError::InvalidTimestamp)?;

        let tags = decode_signatures(signatures)?;
        let matched = self.secrets.iter().fold(false, |found, secret| {
            found | secret.matches_any(id, seconds, body, &tags)
        });
        if !matched {
            return Err(VerifyError::NoMatchingSignature);
        }
        Ok(VerifiedWebhook {
            id: id.to_owned(),
            timestamp,
        })
    }

    /// Verifies a whole request: its headers and its body.
    ///
    /// # Errors
    ///
    /// As [`Verifier::verify`].
    pub fn verify_request<B: AsRef<[u8]>>(
        &self,
        request: &http::Request<B>,
        now: Timestamp,
    ) -> Result<VerifiedWebhook, VerifyError> {
        self.verify(request.headers(), request.body().as_ref(), now)
    }
}

/// What a successful verification established: the request's `webhook-id` and when it was
/// signed. The id is now authentic: de-duplicate on it when the signature also covers the
/// content, that is with a body encoding. With the `query` encoding the parameters are in the
/// URL, which no signature covers: apply such a request every time, as an unsigned one (see
/// [the module docs](crate::receive#de-duplicating-on-the-webhook-id)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct VerifiedWebhook {
    id: String,
    timestamp: Timestamp,
}

impl VerifiedWebhook {
    /// The `webhook-id`: stable across retries and re-deliveries of the same event.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The `webhook-timestamp`: when this attempt was signed.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
}

/// The single value of a required header, as visible ASCII.
fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(VerifyError::MissingHeader { name })?;
    if values.next().is_some() {
        return Err(VerifyError::MalformedHeader {
            name,
            reason: HeaderProblem::Repeated,
        });
    }
    let text = value.to_str().map_err(|_| VerifyError::MalformedHeader {
        name,
        reason: HeaderProblem::NotVisibleAscii,
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(VerifyError::MalformedHeader {
            name,
            reason: HeaderProblem::Empty,
        });
    }
    Ok(text)
}

/// Unix seconds: ASCII digits only (no sign, no fraction), at most 19 of them.
fn parse_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The decoded tags of the `v1,` entries of a `webhook-signature` value.
fn decode_signatures(value: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
    let entries: Vec<&str> = value.split(' ').filter(|e| !e.is_empty()).collect();
    if entries.len() > MAX_SIGNATURES {
        return Err(VerifyError::MalformedHeader {
            name: SIGNATURE,
            reason: HeaderProblem::TooManySignatures,
        });
    }
    let versioned: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.strip_prefix("v1,"))
        .collect();
    if versioned.is_empty() {
        return Err(VerifyError::MalformedHeader {
            name: SIGNATURE,
            reason: HeaderProblem::NoV1Signature,
        });
    }
    Ok(versioned
        .into_iter()
        .filter_map(|s| STANDARD.decode(s).ok())
        .collect())
}
