//! `send`: one flow's request for one event, through the real transport, under the destination
//! policy; the response, and what the retry policy would do with it.

use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use serde_json::json;

use optout_relay::delivery::Step;
use optout_relay::explain::Explanation;
use optout_relay::transport::Cidr;
use optout_relay::webhook::{Auth, looks_like_credential};
use optout_relay::{
    Delivery, DestinationPolicy, FlowId, HttpClient, Profile, ReqwestClient, RetryPolicy,
    WebhookNode,
};

use crate::Failure;
use crate::flows::{EventArgs, Loaded, describe_event, known_flow, load, preview_of};
use crate::out::{Colour, Out, when};

/// How many characters of the response body are shown.
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
        ..
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
        // The error is said without the text given, as for every refused value.
        let range = Cidr::parse(range).map_err(|_| {
            Failure::Usage(
                "--allow: not a CIDR range such as 10.1.2.0/24 or 2001:db8::/32".to_owned(),
            )
        })?;
        policy = policy.allow(range);
    }
    let client = ReqwestClient::builder()
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .destination_policy(policy)
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot set up the transport: {e}")))?;

    let webhook_id = built.webhook_id().clone();
    let request = built.into_request();
    let scrubber = Scrubber::new(profile, &flow.webhook, &request);
    let clean = |text: &str| {
        let text = if masked {
            scrubber.clean(text)
        } else {
            text.to_owned()
        };
        printable(&text)
    };
    let started = Timestamp::now();
    // Created when it is sent (`--at` is only the time the request is built and signed at), so
    // that the retry policy's maximum age counts from now, as for a delivery a worker sends.
    let mut delivery = Delivery::new(
        webhook_id.clone(),
        flow.id.clone(),
        event.id().clone(),
        request.clone(),
        started,
    );
    let result = client.send(request).await;
    let ended = Timestamp::now();
    let retry = RetryPolicy::default();
    // The jitter's midpoint: the delay the schedule gives, neither shortened nor lengthened.
    let midpoint = u64::from(retry.jitter_percent());
    let step = delivery.record(result.as_ref(), started, ended, &retry, midpoint);
    let took = ended.duration_since(started).as_millis();

    out.line(describe_event(event, args.input.unmasked));
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
                let value = if masked && hides_header(name.as_str()) {
                    "[redacted]".to_owned()
                } else {
                    clean(&String::from_utf8_lossy(value.as_bytes()))
                };
                out.line(format!("  {name}: {value}"));
                headers.push(json!([name.as_str(), value]));
            }
            let body = response.body();
            // Cleaned whole, then cut: a value across the cut is hidden too.
            let cleaned = clean(&String::from_utf8_lossy(body));
            let text: String = cleaned.chars().take(BODY_SHOWN).collect();
            if body.is_empty() {
                out.line("  (no body)");
            } else {
                let cut = if text.len() < cleaned.len() {
                    format!(", the first {BODY_SHOWN} characters shown")
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

/// `text` with every control character but newline and tab written as an escape (`\u{1b}`): a
/// receiver's answer must not drive the operator's terminal (colours, cursor moves, a cleared
/// screen, a line rewritten by `\r`).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// How a receiver's JSON encoder escapes a string, by default (each escapes `"`, `\` and the
/// characters below U+0020).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonStyle {
    /// Python's `json.dumps`: DEL and every character outside ASCII as `\uXXXX`.
    Python,
    /// PHP's `json_encode`: every character outside ASCII as `\uXXXX`, and `/` as `\/`.
    Php,
    /// Go's `encoding/json`: `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX`; the rest as it is.
    Go,
}

/// `value` as a JSON encoder of `style` writes it inside a string: `"`, `\` and control
/// characters escaped, and what `style` escapes besides (a character beyond the Basic
/// Multilingual Plane as a pair of `\uXXXX`).
fn json_escaped(value: &str, style: JsonStyle) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if style == JsonStyle::Php => out.push_str("\\/"),
            c if escapes(style, c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether an encoder of `style` writes `c` as `\uXXXX` (those written with a short escape,
/// such as `\n`, aside).
fn escapes(style: JsonStyle, c: char) -> bool {
    c < ' '
        || match style {
            JsonStyle::Python => c == '\u{7f}' || !c.is_ascii(),
            JsonStyle::Php => !c.is_ascii(),
            JsonStyle::Go => matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'),
        }
}

/// How many leading digits of an E.164 number (without its `+`) are its country calling code,
/// by ITU-T E.164's plan: one for 1 and 7; two for the codes assigned as two digits; three for
/// the rest.
fn country_code_len(digits: &str) -> usize {
    let bytes = digits.as_bytes();
    let (Some(&first), Some(&second)) = (bytes.first(), bytes.get(1)) else {
        return 1;
    };
    let two = match first {
        b'1' | b'7' => return 1,
        b'2' => matches!(second, b'0' | b'7'),
        b'3' => matches!(second, b'0'..=b'4' | b'6' | b'9'),
        b'4' => second != b'2',
        b'5' => matches!(second, b'1'..=b'8'),
        b'6' => matches!(second, b'0'..=b'6'),
        b'8' => matches!(second, b'1' | b'2' | b'4' | b'6'),
        b'9' => matches!(second, b'0'..=b'5' | b'8'),
        _ => false,
    };
    if two { 2 } else { 3 }
}

/// A response header whose value is not shown in a masked `send`: one named like a credential
/// (`set-cookie`, a token), but for the challenges a receiver sends (`www-authenticate`), which
/// say why a request was refused.
fn hides_header(name: &str) -> bool {
    let challenge = name.eq_ignore_ascii_case("www-authenticate")
        || name.eq_ignore_ascii_case("proxy-authenticate");
    !challenge && looks_like_credential(name)
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

/// What a masked `send` hides in a receiver's answer: a receiver may echo what it was sent
/// (an httpbin-style echo, an error that quotes the request). The Profile's Email, Mobile (also
/// its national number), text attributes and id (where it stands alone), as they are,
/// percent-encoded and JSON-escaped, and the flow's credentials, each found whatever the case of
/// its ASCII letters.
struct Scrubber {
    /// Longest first.
    values: Vec<Hidden>,
}

/// One form of a value a masked `send` hides.
#[derive(Debug, PartialEq, Eq)]
struct Hidden {
    /// The value in ASCII lower case.
    value: String,
    /// What replaces it.
    mask: String,
    /// Replaced only where it stands alone, not inside a longer run of letters and digits: a
    /// Profile id such as `200` or `p-1` is also part of other words and numbers.
    alone: bool,
}

impl Scrubber {
    fn new(profile: &Profile, node: &WebhookNode, request: &http::Request<Vec<u8>>) -> Self {
        let mut personal: Vec<(String, String)> = Vec::new();
        let mut alone: Vec<String> = Vec::new();
        if let Some(email) = &profile.email {
            personal.push((email.as_str().to_owned(), email.masked()));
        }
        if let Some(mobile) = &profile.mobile {
            for form in [mobile.as_str(), mobile.as_given().trim()] {
                personal.push((form.to_owned(), mobile.masked()));
            }
            let digits: String = mobile
                .as_str()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            // Without the country code: the national number, as a national format (`070 123
            // 45 67` read as `0701234567`) holds it.
            if mobile.e164().is_some() {
                if let Some(national) = digits.get(country_code_len(&digits)..) {
                    if national.len() >= 6 {
                        personal.push((national.to_owned(), mobile.masked()));
                    }
                }
            }
            if digits.len() >= 6 {
                personal.push((digits, mobile.masked()));
            }
        }
        for value in profile.attributes.values() {
            personal.push((value.to_text().into_owned(), "[masked]".to_owned()));
        }
        // Some hosts use the Email or Mobile as the Profile id (after them, so that an id that
        // is the Email is masked as the Email).
        personal.push((profile.id.as_str().to_owned(), profile.id.masked()));
        alone.push(profile.id.as_str().to_owned());
        let redacted = "[redacted]".to_owned();
        // Static query parameters and headers named like credentials, as previews redact them.
        for (name, value) in node.url().query_pairs() {
            if looks_like_credential(&name) && !value.is_empty() {
                personal.push((value.into_owned(), redacted.clone()));
            }
        }
        for header in node.headers() {
            if looks_like_credential(header.name()) && !header.value().is_empty() {
                personal.push((header.value().to_owned(), redacted.clone()));
            }
        }
        match node.auth() {
            Auth::Bearer { token } => personal.push((token.expose().to_owned(), redacted.clone())),
            Auth::Basic { password, .. } => {
                personal.push((password.expose().to_owned(), redacted.clone()));
                let header = request.headers().get(http::header::AUTHORIZATION);
                if let Some(basic) = header.and_then(|v| v.to_str().ok()) {
                    let credentials = basic.trim_start_matches("Basic ").to_owned();
                    personal.push((credentials, redacted.clone()));
                }
            }
            Auth::Header { value, .. } => personal.push((value.expose().to_owned(), redacted)),
            _ => {}
        }
        let mut values = Vec::new();
        for (value, mask) in personal {
            let alone = alone.contains(&value);
            let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            let escaped = encoded.replace('+', "%20");
            let python = json_escaped(&value, JsonStyle::Python);
            let php = json_escaped(&value, JsonStyle::Php);
            let go = json_escaped(&value, JsonStyle::Go);
            for form in [value, encoded, escaped, python, php, go] {
                // Too short to be told from other text.
                if form.chars().count() >= 3 {
                    values.push(Hidden {
                        value: form.to_ascii_lowercase(),
                        mask: mask.clone(),
                        alone,
                    });
                }
            }
        }
        // Longest first, so that a value inside another is not replaced in part; of equal
        // values, the first given (an Email before a Profile id that is the Email).
        values.sort_by(|a, b| {
            b.value
                .len()
                .cmp(&a.value.len())
                .then_with(|| a.value.cmp(&b.value))
        });
        values.dedup_by(|later, first| later.value == first.value);
        Self { values }
    }

    /// `text` with every value replaced.
    fn clean(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for hidden in &self.values {
            // ASCII lower case keeps every byte where it was, so the positions found in the
            // lowered text are those of the text.
            let lower = text.to_ascii_lowercase();
            let mut cleaned = String::with_capacity(text.len());
            let mut last = 0;
            for (at, _) in lower.match_indices(hidden.value.as_str()) {
                let end = at + hidden.value.len();
                let joined = |byte: Option<&u8>| byte.is_some_and(u8::is_ascii_alphanumeric);
                if hidden.alone
                    && (joined(lower.as_bytes().get(end))
                        || at
                            .checked_sub(1)
                            .is_some_and(|i| joined(lower.as_bytes().get(i))))
                {
                    continue;
                }
                cleaned.push_str(&text[last..at]);
                cleaned.push_str(&hidden.mask);
                last = end;
            }
            cleaned.push_str(&text[last..]);
            text = cleaned;
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use optout_relay::webhook::{Auth, Secret};
    use optout_relay::{Profile, WebhookNode};

    use super::{JsonStyle, Scrubber, country_code_len, json_escaped, printable};

    #[test]
    fn country_codes_are_one_two_or_three_digits_by_the_e164_plan() {
        let lengths: Vec<(&str, usize)> = [
            "14155552671",
            "79161234567",
            "201001234567",
            "27821234567",
            "2348031234567",
            "33612345678",
            "353871234567",
            "380501234567",
            "420601123456",
            "447700900123",
            "46701234567",
            "5511912345678",
            "59899123456",
            "61412345678",
            "6701234567",
            "819012345678",
            "85291234567",
            "8613812345678",
            "919812345678",
            "971501234567",
        ]
        .into_iter()
        .map(|digits| (&digits[..4], country_code_len(digits)))
        .collect();
        assert_eq!(
            lengths,
            [
                ("1415", 1),
                ("7916", 1),
                ("2010", 2),
                ("2782", 2),
                ("2348", 3),
                ("3361", 2),
                ("3538", 3),
                ("3805", 3),
                ("4206", 3),
                ("4477", 2),
                ("4670", 2),
                ("5511", 2),
                ("5989", 3),
                ("6141", 2),
                ("6701", 3),
                ("8190", 2),
                ("8529", 3),
                ("8613", 2),
                ("9198", 2),
                ("9715", 3),
            ]
        );
    }

    #[test]
    fn values_are_json_escaped_as_python_php_and_go_write_them() {
        // (the value, then as Python, PHP and Go write it)
        for (value, written) in [
            (
                "Åsa \"R&D\"/<EMEA>\\\n😀",
                [
                    "\\u00c5sa \\\"R&D\\\"/<EMEA>\\\\\\n\\ud83d\\ude00",
                    "\\u00c5sa \\\"R&D\\\"\\/<EMEA>\\\\\\n\\ud83d\\ude00",
                    "Åsa \\\"R\\u0026D\\\"/\\u003cEMEA\\u003e\\\\\\n😀",
                ],
            ),
            // Control characters, DEL, a C1 control and the line separator.
            (
                "a\u{1}\u{7f}\u{85}\u{2028}b",
                [
                    "a\\u0001\\u007f\\u0085\\u2028b",
                    "a\\u0001\u{7f}\\u0085\\u2028b",
                    "a\\u0001\u{7f}\u{85}\\u2028b",
                ],
            ),
        ] {
            let styles = [JsonStyle::Python, JsonStyle::Php, JsonStyle::Go];
            assert_eq!(
                styles.map(|style| json_escaped(value, style)),
                written,
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_profile_id_is_masked_where_it_stands_alone_only() {
        let node = WebhookNode::builder("https://crm.example.com/optout")
            .build()
            .unwrap();
        let request = http::Request::new(Vec::new());
        let scrubber = Scrubber::new(&Profile::new("200".parse().unwrap()), &node, &request);
        assert_eq!(
            scrubber.clean("content-length: 1200\nstatus 200, id=200; x2000 200a"),
            "content-length: 1200\nstatus 2***, id=2***; x2000 200a"
        );
        // An id that is the Email is masked as the Email.
        let profile: Profile =
            serde_json::from_str(r#"{"id": "ada@example.com", "email": "ada@example.com"}"#)
                .unwrap();
        let scrubber = Scrubber::new(&profile, &node, &request);
        assert_eq!(scrubber.clean("for ada@example.com"), "for a***@e***.com");
    }

    #[test]
    fn a_receivers_answer_cannot_drive_the_terminal() {
        assert_eq!(
            printable("ok\x1b[2J\x1b[31mred\rover\u{7}\n\tnext"),
            "ok\\u{1b}[2J\\u{1b}[31mred\\u{d}over\\u{7}\n\tnext"
        );
    }

    #[test]
    fn a_receivers_echo_of_the_profiles_values_and_the_credentials_is_masked() {
        let profile: Profile = serde_json::from_str(
            r#"{"id": "p-1", "email": "Ada+News@Example.com", "mobile": "+46 70 123 45 67",
                "attributes": {"customer_no": "C-99817"}}"#,
        )
        .unwrap();
        let node = WebhookNode::builder("https://crm.example.com/optout?token=q-77&source=x")
            .header("x-api-key", "h-2219")
            .auth(Auth::Bearer {
                token: Secret::new("tok_live_4f9a77"),
            })
            .build()
            .unwrap();
        let request = http::Request::new(Vec::new());
        let scrubber = Scrubber::new(&profile, &node, &request);
        let echo = "ok Ada+News@Example.com ada+news@example.com ada%2Bnews%40example.com \
                    ADA%2bNEWS%40EXAMPLE.COM +46701234567 46701234567 +46 70 123 45 67 C-99817 \
                    authorization: Bearer tok_live_4f9a77 token=q-77 x-api-key: h-2219 source=x";
        assert_eq!(
            scrubber.clean(echo),
            "ok A***@E***.com A***@E***.com A***@E***.com A***@E***.com +46*******67 \
             +46*******67 +46*******67 [masked] authorization: Bearer [redacted] \
             token=[redacted] x-api-key: [redacted] source=x"
        );

        let basic = WebhookNode::builder("https://crm.example.com/optout")
            .basic("relay", "hunter22")
            .build()
            .unwrap();
        let mut request = http::Request::new(Vec::new());
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic cmVsYXk6aHVudGVyMjI="),
        );
        let scrubber = Scrubber::new(&Profile::new("p-2".parse().unwrap()), &basic, &request);
        assert_eq!(
            scrubber.clean("you sent Basic cmVsYXk6aHVudGVyMjI= (relay:hunter22)"),
            "you sent Basic [redacted] (relay:[redacted])"
        );
    }
}
