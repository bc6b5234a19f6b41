//! `send`: one flow's request for one event, through the real transport, under the destination
//! policy; the response, and what the retry policy would do with it.

use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use serde_json::json;

use optout_relay::delivery::Step;
use optout_relay::explain::Explanation;
use optout_relay::transport::Cidr;
use optout_relay::{
    Delivery, DestinationPolicy, FlowId, HttpClient, Profile, ReqwestClient, RetryPolicy,
};

use crate::Failure;
use crate::flows::{EventArgs, Loaded, describe_event, known_flow, load, preview_of};
use crate::out::{Colour, Out, when};

/// How much of the response body is shown.
const BODY_SHOWN: usize = 1024;

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    input: EventArgs,
    /// The flow whose request is sent.
    #[arg(long, value_name = "ID")]
    flow: FlowId,
    /// Also allow addresses on this machine (127.0.0.0/8, ::1), which the destination policy
    /// refuses by default.
    #[arg(long)]
    allow_loopback: bool,
    /// Also allow this range (such as 10.1.2.0/24), which the destination policy would refuse.
    #[arg(long, value_name = "CIDR")]
    allow: Vec<String>,
    /// The most seconds the request may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

pub(crate) async fn send(args: SendArgs, mut out: Out) -> Result<(), Failure> {
    let loaded = load(&args.input)?;
    let Loaded {
        router,
        event,
        profile,
        at,
    } = &loaded;
    let flow = known_flow(router, &args.flow, &args.input.flows)?;
    let unmatched = |why: String| {
        Failure::Usage(format!(
            "event {} does not enter flow `{}`: {why}; nothing was sent",
            event.id(),
            flow.id
        ))
    };
    if let Some(Explanation::Rejected(rejection)) = router.explain(&flow.id, event) {
        return Err(unmatched(rejection.to_string()));
    }
    let built = loaded
        .build(&flow.id)
        .ok_or_else(|| unmatched("it does not match".to_owned()))?
        .map_err(|e| {
            Failure::Usage(format!(
                "flow `{}`: the request cannot be built: {e}; nothing was sent",
                flow.id
            ))
        })?;
    let masked = !args.input.unmasked;
    let preview = preview_of(&built, args.input.unmasked);
    let shown_request = preview.summary();
    let request_line = shown_request.lines().next().unwrap_or_default().to_owned();

    let mut policy = DestinationPolicy::new();
    if args.allow_loopback {
        policy = policy.allow_loopback();
    }
    for range in &args.allow {
        let range = Cidr::parse(range).map_err(|e| Failure::Usage(format!("--allow: {e}")))?;
        policy = policy.allow(range);
    }
    let client = ReqwestClient::builder()
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .destination_policy(policy)
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot set up the transport: {e}")))?;

    let webhook_id = built.webhook_id().clone();
    let request = built.into_request();
    let mut delivery = Delivery::new(
        webhook_id.clone(),
        flow.id.clone(),
        event.id().clone(),
        request.clone(),
        *at,
    );
    let started = Timestamp::now();
    let result = client.send(request).await;
    let ended = Timestamp::now();
    let retry = RetryPolicy::default();
    // The jitter's midpoint: the delay the schedule gives, neither shortened nor lengthened.
    let midpoint = u64::from(retry.jitter_percent());
    let step = delivery.record(result.as_ref(), started, ended, &retry, midpoint);
    let took = ended.duration_since(started).as_millis();

    out.line(describe_event(event));
    out.line(format!("flow {}, webhook id {webhook_id}", flow.id));
    out.line(format!("sent {request_line}"));
    let mut report = json!({
        "event": event.id(),
        "flow": flow.id,
        "webhook_id": webhook_id.as_str(),
        "request": request_line,
        "masked": masked,
        "took_ms": took,
    });
    match &result {
        Ok(response) => {
            let status = response.status();
            let reason = status.canonical_reason().unwrap_or("");
            out.line(format!(
                "response {} {reason} in {took} ms",
                status.as_u16()
            ));
            let mut headers = Vec::new();
            for (name, value) in response.headers() {
                let value = scrub(&String::from_utf8_lossy(value.as_bytes()), profile, masked);
                out.line(format!("  {name}: {value}"));
                headers.push(json!([name.as_str(), value]));
            }
            let body = response.body();
            let shown = &body[..body.len().min(BODY_SHOWN)];
            let text = scrub(&String::from_utf8_lossy(shown), profile, masked);
            if body.is_empty() {
                out.line("  (no body)");
            } else {
                let cut = if shown.len() < body.len() {
                    format!(", the first {}", shown.len())
                } else {
                    String::new()
                };
                out.line(format!("body ({} bytes{cut}):", body.len()));
                for line in text.lines() {
                    out.line(format!("  {line}"));
                }
            }
            report["response"] = json!({
                "status": status.as_u16(),
                "headers": headers,
                "body": text,
                "body_bytes": body.len(),
            });
        }
        Err(error) => {
            out.line(format!("no response after {took} ms: {error}"));
            if let Some(attempt) = delivery.attempts().last() {
                report["error"] = json!(attempt.outcome);
            }
        }
    }
    let (decision, accepted) = decide(&step, &retry);
    let colour = if accepted {
        Colour::Green
    } else {
        Colour::Yellow
    };
    let painted = out.paint(&decision, colour);
    out.line(format!("retry policy: {painted}"));
    report["step"] = json!(step);
    report["retry_policy"] = json!(decision);
    out.finish(&report);
    if accepted {
        Ok(())
    } else {
        Err(Failure::Check(
            "the receiver did not accept the request".to_owned(),
        ))
    }
}

/// What the retry policy would do, in words, and whether the request was accepted.
fn decide(step: &Step, retry: &RetryPolicy) -> (String, bool) {
    match step {
        Step::Delivered => ("delivered: the receiver accepted it".to_owned(), true),
        Step::RetryAt { at } => (
            format!(
                "retry at {} (attempt 2 of {}); a worker would try again then",
                when(*at),
                retry.max_attempts()
            ),
            false,
        ),
        Step::DeadLetter { reason } => (
            format!("dead letter: {reason}; a worker would give up on it"),
            false,
        ),
        _ => ("unknown".to_owned(), false),
    }
}

/// `text` with the Profile's personal values (Email, Mobile, text attributes), as they are and
/// percent-encoded, replaced by their masked forms: a receiver may echo what it was sent.
fn scrub(text: &str, profile: &Profile, masked: bool) -> String {
    if !masked {
        return text.to_owned();
    }
    let mut values: Vec<(String, String)> = Vec::new();
    if let Some(email) = &profile.email {
        values.push((email.as_str().to_owned(), email.masked()));
    }
    if let Some(mobile) = &profile.mobile {
        values.push((mobile.as_str().to_owned(), mobile.masked()));
        values.push((mobile.as_given().trim().to_owned(), mobile.masked()));
    }
    for value in profile.attributes.values() {
        values.push((value.to_text().into_owned(), "[masked]".to_owned()));
    }
    let mut scrubbed = text.to_owned();
    let mut all: Vec<(String, String)> = Vec::new();
    for (value, mask) in values {
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let escaped = encoded.replace('+', "%20");
        all.push((value, mask.clone()));
        all.push((encoded, mask.clone()));
        all.push((escaped, mask));
    }
    // Longest first, so that a value inside another is not replaced in part.
    all.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
    for (value, mask) in all {
        if value.chars().count() >= 3 {
            scrubbed = scrubbed.replace(&value, &mask);
        }
    }
    scrubbed
}

#[cfg(test)]
mod tests {
    use optout_relay::Profile;

    use super::scrub;

    #[test]
    fn a_receivers_echo_of_the_profiles_values_is_masked() {
        let profile: Profile = serde_json::from_str(
            r#"{"id": "p-1", "email": "ada+news@example.com", "mobile": "+46 70 123 45 67",
                "attributes": {"customer_no": "C-99817"}}"#,
        )
        .unwrap();
        let echo = "ok ada+news@example.com ada%2Bnews%40example.com +46701234567 \
                    +46 70 123 45 67 C-99817";
        assert_eq!(
            scrub(echo, &profile, true),
            "ok a***@e***.com a***@e***.com +46*******67 +46*******67 [masked]"
        );
        assert_eq!(scrub(echo, &profile, false), echo);
    }
}
