//! Building: one typical request (static query parameters, then email, subscription, section and
//! event id) in each encoding, unsigned and signed, beside a hand-written baseline that does only
//! the unavoidable work with the same libraries: `url` query building or `form_urlencoded`,
//! `serde_json` serialization, `http::Request` assembly, and HMAC-SHA256 for the signed case.
//!
//! A counting allocator reports the allocations of one build of each.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use optout_relay::url::{Url, form_urlencoded};
use optout_relay::webhook::ParamSource;
use optout_relay::webhook::WebhookEncoding;
use optout_relay::webhook::WebhookId;
use optout_relay::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a side note.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let value = f();
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    drop(value);
    after - before
}

const URL: &str = "https://crm.example.com/optout?source=platform&v=2";
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const EMAIL: &str = "ada+news@example.com";

fn node(encoding: WebhookEncoding, signed: bool) -> WebhookNode {
    let mut builder = WebhookNode::builder(URL)
        .encoding(encoding)
        .param("email", ParamSource::Email)
        .param("subscription", ParamSource::SubscriptionId)
        .param("section", ParamSource::SectionId)
        .param("event", ParamSource::EventId);
    if signed {
        builder = builder.sign_with(SECRET);
    }
    builder.build().unwrap()
}

/// The hand-written baseline: the same request, with only the unavoidable work.
struct Baseline {
    url: Url,
    key: Hmac<sha2::Sha256>,
}

#[derive(serde::Serialize)]
struct Payload<'a> {
    email: &'a str,
    subscription: &'a str,
    section: &'a str,
    event: &'a str,
}

impl Baseline {
    fn new() -> Self {
        let key = base64::engine::general_purpose::STANDARD
            .decode(&SECRET[6..])
            .unwrap();
        Self {
            url: Url::parse(URL).unwrap(),
            key: Hmac::new_from_slice(&key).unwrap(),
        }
    }

    fn pairs(profile: &Profile, event: &OptOutEvent) -> [(&'static str, String); 4] {
        [
            ("email", profile.email.as_ref().unwrap().as_str().to_owned()),
            (
                "subscription",
                event.subscription().unwrap().as_str().to_owned(),
            ),
            ("section", event.section().as_str().to_owned()),
            ("event", event.id().as_str().to_owned()),
        ]
    }

    fn build(
        &self,
        encoding: WebhookEncoding,
        signed: bool,
        id: &str,
        profile: &Profile,
        event: &OptOutEvent,
        now: Timestamp,
    ) -> http::Request<Vec<u8>> {
        let mut request = http::Request::builder().method(http::Method::POST);
        let body = match encoding {
            WebhookEncoding::Query => {
                let mut url = self.url.clone();
                {
                    let mut query = url.query_pairs_mut();
                    for (name, value) in Self::pairs(profile, event) {
                        query.append_pair(name, &value);
                    }
                }
                request = request.uri(url.as_str());
                Vec::new()
            }
            WebhookEncoding::Form => {
                request = request
                    .uri(self.url.as_str())
                    .header("content-type", "application/x-www-form-urlencoded");
                let mut form = form_urlencoded::Serializer::new(String::new());
                for (name, value) in Self::pairs(profile, event) {
                    form.append_pair(name, &value);
                }
                form.finish().into_bytes()
            }
            _ => {
                request = request
                    .uri(self.url.as_str())
                    .header("content-type", "application/json");
                serde_json::to_vec(&Payload {
                    email: profile.email.as_ref().unwrap().as_str(),
                    subscription: event.subscription().unwrap().as_str(),
                    section: event.section().as_str(),
                    event: event.id().as_str(),
                })
                .unwrap()
            }
        };
        request = request.header("webhook-id", id);
        if signed {
            let timestamp = now.as_second().to_string();
            let mut mac = self.key.clone();
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(&body);
            let signature = format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            );
            request = request
                .header("webhook-timestamp", timestamp)
                .header("webhook-signature", signature);
        }
        request.body(body).unwrap()
    }
}

fn build(c: &mut Criterion) {
    let profile =
        Profile::new(ProfileId::new("p-ada").unwrap()).with_email(Email::new(EMAIL).unwrap());
    let event = OptOutEvent::email_unsubscribe(
        EventId::new("evt-1001").unwrap(),
        ProfileId::new("p-ada").unwrap(),
        SectionId::new("sec-1").unwrap(),
        SubscriptionId::new("123456").unwrap(),
        "2026-11-26T09:30:00Z".parse().unwrap(),
    );
    let flow = FlowId::new("crm-unsubscribes").unwrap();
    let now: Timestamp = "2026-11-26T09:30:05Z".parse().unwrap();
    let baseline = Baseline::new();
    let mut group = c.benchmark_group("build");
    for (name, encoding, signed) in [
        ("query", WebhookEncoding::Query, false),
        ("form", WebhookEncoding::Form, false),
        ("json", WebhookEncoding::Json, false),
        ("form_signed", WebhookEncoding::Form, true),
        ("json_signed", WebhookEncoding::Json, true),
    ] {
        // The flow is made once; what is measured is the one call from a flow to its request.
        let flow_of = Flow::new(
            flow.clone(),
            event.section().clone(),
            ListenNode::new([event.kind()]).unwrap(),
            node(encoding, signed),
        );
        let catalog = Catalog::default();
        let id = WebhookId::derive(&flow, event.id());
        // Both must build the very same request before their speed is compared.
        let ours = flow_of
            .build_request(&catalog, &profile, &event, now)
            .unwrap()
            .into_request();
        let theirs = baseline.build(encoding, signed, id.as_str(), &profile, &event, now);
        assert_eq!(ours.uri(), theirs.uri(), "{name}");
        assert_eq!(ours.body(), theirs.body(), "{name}");
        assert_eq!(ours.headers(), theirs.headers(), "{name}");
        eprintln!(
            "build/{name}: allocations per build: crate {}, baseline {}",
            allocations(|| flow_of
                .build_request(&catalog, &profile, &event, now)
                .unwrap()),
            allocations(|| baseline.build(encoding, signed, id.as_str(), &profile, &event, now)),
        );
        group.bench_function(format!("{name}/crate"), |b| {
            b.iter(|| {
                flow_of
                    .build_request(
                        black_box(&catalog),
                        black_box(&profile),
                        black_box(&event),
                        now,
                    )
                    .unwrap()
            })
        });
        group.bench_function(format!("{name}/baseline"), |b| {
            b.iter(|| {
                baseline.build(
                    encoding,
                    signed,
                    id.as_str(),
                    black_box(&profile),
                    black_box(&event),
                    now,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, build);
criterion_main!(benches);
