//! Dry-run previews of a built request: a `curl` command and a readable summary.

use std::fmt;

use crate::webhook::encode::encode_body;
use crate::webhook::request::WebhookRequest;
use crate::webhook::secret::looks_like_credential;

/// A dry-run view of a [`WebhookRequest`]: [`Preview::curl`] gives a copy-pasteable `curl`
/// command, [`Preview::summary`] (and `Display`) a readable summary.
///
/// From [`WebhookRequest::preview`], personal data (Email, Mobile, the Profile id, custom
/// attribute values) and credentials (the `authorization` header or the API-key header, and
/// static query parameters and headers whose names look like credentials, such as `?token=` or
/// `x-auth-token`) are masked: `a***@e***.com`, `+46*******67`, `p***`, `[masked]`,
/// `Bearer [redacted]`, `[redacted]`. The signature, computed over the real body, is shown as is
/// (it reveals nothing). From
/// [`WebhookRequest::preview_unmasked`], everything is shown and the `curl` command sends
/// exactly the built request.
///
/// Use it instead of testing against a public request bin with real personal data.
#[derive(Debug, Clone, Copy)]
pub struct Preview<'a> {
    request: &'a WebhookRequest,
    masked: bool,
}

impl WebhookRequest {
    /// A dry-run preview with personal data (Email, Mobile, custom attributes) and secrets
    /// (auth credentials) masked.
    pub fn preview(&self) -> Preview<'_> {
        Preview {
            request: self,
            masked: true,
        }
    }

    /// A dry-run preview showing everything: the exact request, personal data and secrets
    /// included. Do not log it.
    pub fn preview_unmasked(&self) -> Preview<'_> {
        Preview {
            request: self,
            masked: false,
        }
    }
}

impl Preview<'_> {
    /// Whether personal data and secrets are masked.
    pub fn is_masked(&self) -> bool {
        self.masked
    }

    /// The request URI, masked when the preview is.
    fn uri(&self) -> String {
        self.request.uri(self.masked)
    }

    fn body(&self) -> String {
        if !self.masked {
            return String::from_utf8_lossy(self.request.request.body()).into_owned();
        }
        let data = &self.request.preview;
        let mut body = Vec::new();
        encode_body(
            data.encoding,
            &data.params,
            &data.resolved,
            (data.kind, data.occurred_at),
            true,
            &mut body,
        );
        String::from_utf8_lossy(&body).into_owned()
    }

    fn headers(&self) -> Vec<(String, String)> {
        let masked_auth = self.request.preview.auth.as_ref().filter(|_| self.masked);
        self.request
            .request
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = match masked_auth {
                    Some((auth, masked)) if auth == name => (*masked).to_owned(),
                    // A static header that looks like a credential (not the crate's own
                    // `webhook-signature`, which reveals nothing).
                    _ if self.masked
                        && name.as_str() != "webhook-signature"
                        && looks_like_credential(name.as_str()) =>
                    {
                        "[redacted]".to_owned()
                    }
                    _ => String::from_utf8_lossy(value.as_bytes()).into_owned(),
                };
                (name.as_str().to_owned(), value)
            })
            .collect()
    }

    /// The request as a `curl` command, one option per line, every argument single-quoted for
    /// a POSIX shell:
    ///
    /// ```text
    /// curl --request POST 'https://crm.example.com/optout' \
    ///   --header 'content-type: application/json' \
    ///   --header 'webhook-id: msg_...' \
    ///   --data-binary '{"email":"a+b@example.com"}'
    /// ```
    ///
    /// `--data-binary` is present only when the body is not empty.
    pub fn curl(&self) -> String {
        let mut out = format!(
            "curl --request {} {}",
            self.request.request.method(),
            shell_quote(&self.uri())
        );
        for (name, value) in self.headers() {
            out.push_str(" \\\n  --header ");
            out.push_str(&shell_quote(&format!("{name}: {value}")));
        }
        let body = self.body();
        if !body.is_empty() {
            out.push_str(" \\\n  --data-binary ");
            out.push_str(&shell_quote(&body));
        }
        out
    }

    /// A readable summary: the request line, the headers, the body, and each parameter with
    /// its value and source.
    ///
    /// ```text
    /// POST https://crm.example.com/optout?email=a***%40e***.com
    /// webhook-id: msg_...
    /// (no body)
    /// parameters:
    ///   email = a***@e***.com  (from email)
    /// ```
    pub fn summary(&self) -> String {
        let mut out = format!("{} {}\n", self.request.request.method(), self.uri());
        for (name, value) in self.headers() {
            out.push_str(&format!("{name}: {value}\n"));
        }
        let body = self.body();
        if body.is_empty() {
            out.push_str("(no body)\n");
        } else {
            out.push_str(&format!("body:\n{body}\n"));
        }
        let data = &self.request.preview;
        if data.resolved.is_empty() {
            out.push_str("parameters: none\n");
        } else {
            out.push_str("parameters:\n");
            for resolved in &data.resolved {
                let param = &data.params[resolved.param];
                let value = if self.masked && param.source().is_personal() {
                    resolved.value.masked_text(param.source())
                } else {
                    resolved.value.text()
                };
                out.push_str(&format!(
                    "  {} = {}  (from {})\n",
                    param.name(),
                    value,
                    param.source()
                ));
            }
        }
        out
    }
}

impl fmt::Display for Preview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Quotes `text` for a POSIX shell: `'...'`, each `'` written `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
