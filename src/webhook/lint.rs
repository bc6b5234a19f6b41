//! Lints of a Webhook node against the event kinds its flow listens for.

use url::Host;

use crate::lint::{self, Diagnostic, Severity};
use crate::model::{EventKind, FlowId};
use crate::webhook::method::WebhookEncoding;
use crate::webhook::node::WebhookNode;
use crate::webhook::secret::{credential_name, looks_like_credential};
use crate::webhook::source::ParamSource;

impl WebhookNode {
    /// Checks this node against the event kinds its flow's listener takes. The codes, in the
    /// order they are reported, are listed in the [module docs](crate::webhook#lints).
    ///
    /// ```
    /// use optout_relay::*;
    /// use optout_relay::webhook::ParamSource;
    ///
    /// let node = WebhookNode::builder("https://crm.example.com/optout")
    ///     .param("email", ParamSource::Email)
    ///     .param("subscription", ParamSource::SubscriptionId)
    ///     .build()?;
    /// let flow = FlowId::new("abuse")?;
    /// let codes: Vec<_> = node.lint(&flow, &[EventKind::EmailAbuse]).iter().map(|d| d.code).collect();
    /// assert_eq!(codes, [lint::ABUSE_SENDS_SUBSCRIPTION, lint::ABUSE_WITHOUT_SECTION]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn lint(&self, flow: &FlowId, kinds: &[EventKind]) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let mut report = |code, severity, message: String| {
            out.push(Diagnostic {
                code,
                severity,
                flow: flow.clone(),
                message,
            });
        };
        let has = |wanted: &ParamSource| self.params.iter().any(|p| p.source() == wanted);
        let abuse = kinds.contains(&EventKind::EmailAbuse);
        let unsubscribe = kinds
            .iter()
            .any(|k| matches!(k, EventKind::EmailUnsubscribe | EventKind::SmsUnsubscribe));

        if abuse {
            // An optional Subscription in a flow that also takes Unsubscribe events is right:
            // it is sent for those and left out for Email - Abuse.
            for param in self.params.iter().filter(|p| {
                matches!(
                    p.source(),
                    ParamSource::SubscriptionId | ParamSource::FolderId
                ) && !(p.is_optional() && unsubscribe)
            }) {
                let (severity, consequence) = if param.is_optional() {
                    (
                        Severity::Warning,
                        "it is left out of every Email - Abuse request",
                    )
                } else {
                    (
                        Severity::Error,
                        "every Email - Abuse request fails to build, so no spam complaint is \
                         forwarded",
                    )
                };
                report(
                    lint::ABUSE_SENDS_SUBSCRIPTION,
                    severity,
                    format!(
                        "parameter `{}` sends the {}, but an Email - Abuse event opts out of the \
                         whole Section and has none: {consequence}; send the Section \
                         (source section_id){}",
                        param.name(),
                        param.source(),
                        if unsubscribe {
                            " and mark this parameter optional"
                        } else {
                            " instead"
                        }
                    ),
                );
            }
            if !has(&ParamSource::SectionId) {
                report(
                    lint::ABUSE_WITHOUT_SECTION,
                    Severity::Warning,
                    "the flow takes Email - Abuse but sends no section_id: the receiver cannot \
                     tell that the Profile opted out of every Subscription of the Section; add a \
                     parameter such as `section` with source section_id"
                        .to_owned(),
                );
            }
        }

        if unsubscribe && !has(&ParamSource::SubscriptionId) {
            report(
                lint::UNSUBSCRIBE_WITHOUT_SUBSCRIPTION,
                Severity::Warning,
                "the flow takes an Unsubscribe event but sends no subscription_id: the receiver \
                 cannot tell which Subscription the Profile left; add a parameter such as \
                 `subscription` with source subscription_id"
                    .to_owned(),
            );
        }

        let identifies = |source: &ParamSource| {
            self.params
                .iter()
                .any(|p| p.source() == source || matches!(p.source(), ParamSource::Attribute(_)))
                || has(&ParamSource::ProfileId)
        };
        if kinds.contains(&EventKind::SmsUnsubscribe)
            && has(&ParamSource::Email)
            && !identifies(&ParamSource::Mobile)
        {
            report(
                lint::IDENTIFIER_MISMATCH,
                Severity::Warning,
                "the flow takes SMS - Unsubscribe but identifies the Profile by Email only: a \
                 Profile known by its Mobile may have no Email; send the Mobile (source mobile)"
                    .to_owned(),
            );
        }
        if kinds
            .iter()
            .any(|k| matches!(k, EventKind::EmailUnsubscribe | EventKind::EmailAbuse))
            && has(&ParamSource::Mobile)
            && !identifies(&ParamSource::Email)
        {
            report(
                lint::IDENTIFIER_MISMATCH,
                Severity::Warning,
                "the flow takes an Email event but identifies the Profile by Mobile only: a \
                 Profile known by its Email may have no Mobile; send the Email (source email)"
                    .to_owned(),
            );
        }

        if !self.params.iter().any(|p| p.source().identifies_profile()) {
            report(
                lint::NO_IDENTIFIER,
                Severity::Error,
                "no parameter identifies the Profile (email, mobile, profile_id or a custom \
                 attribute): the receiver cannot tell who opted out"
                    .to_owned(),
            );
        }

        let mut distinct: Vec<EventKind> = kinds.to_vec();
        distinct.sort();
        distinct.dedup();
        let told_apart = has(&ParamSource::EventKind)
            || self.encoding == WebhookEncoding::JsonEnvelope
            || (!abuse && has(&ParamSource::Channel));
        if distinct.len() > 1 && !told_apart {
            report(
                lint::KIND_NOT_SENT,
                Severity::Warning,
                "the flow takes several event kinds but sends nothing that tells them apart: add \
                 a parameter with source event_kind (or use the json_envelope encoding)"
                    .to_owned(),
            );
        }

        if self.is_signed() && self.encoding == WebhookEncoding::Query {
            report(
                lint::SIGNED_QUERY_ENCODING,
                Severity::Warning,
                "the node signs its requests but sends the parameters in the query string: the \
                 signature covers only the (empty) body, so the Email, Subscription and every \
                 other parameter can be changed without breaking it; use the form, json or \
                 json_envelope encoding"
                    .to_owned(),
            );
        }

        if self.url.scheme() == "http" && !is_loopback(&self.url) {
            report(
                lint::PLAIN_HTTP,
                Severity::Warning,
                format!(
                    "the endpoint uses plain http to `{}`: personal data and credentials cross \
                     the network unencrypted; use https",
                    self.url.host_str().unwrap_or_default()
                ),
            );
        }

        // The query's names as written (percent-encoded, so never a control character), with
        // a value: an empty one holds no credential.
        let in_url = self
            .url
            .query()
            .into_iter()
            .flat_map(|query| query.split('&'))
            .filter_map(credential_name)
            .map(|name| {
                format!(
                    "the static query parameter `{name}` looks like a credential: it is stored \
                     with every delivery of the flow and travels with the URL into logs and \
                     proxies"
                )
            });
        let in_headers = self
            .headers
            .iter()
            .filter(|h| !h.value().is_empty() && looks_like_credential(h.name()))
            .map(|h| {
                format!(
                    "the static header `{}` looks like a credential: it is stored with every \
                     delivery of the flow",
                    h.name()
                )
            });
        for problem in in_url.chain(in_headers) {
            report(
                lint::CREDENTIAL_OUTSIDE_AUTH,
                Severity::Warning,
                format!(
                    "{problem}; put it in `auth` (bearer, basic or header), which is never \
                     stored and always redacted"
                ),
            );
        }

        out
    }
}

/// Whether the URL's host is `localhost` (or a `.localhost` name), 127.0.0.0/8 or `::1`.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.');
            domain.eq_ignore_ascii_case("localhost")
                || domain.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
