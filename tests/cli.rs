//! The `optout-relay` binary, run as an operator runs it: exact output, exit codes, and a replay
//! that makes a dead-lettered delivery arrive at a receiver on 127.0.0.1.

#![cfg(feature = "cli")]

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/pg.rs"]
mod pg;
#[path = "support/stores.rs"]
mod stores;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use optout_relay::delivery::Outcomes;
use optout_relay::webhook::ParamSource;
use optout_relay::*;
use stores::Scratch;
use support::{Answer, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_optout-relay");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What one run printed and its exit status.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("OPTOUT_RELAY_STORE")
        .env_remove("NO_COLOR")
        .output()
        .expect("run optout-relay");
    Run {
        code: status.code().expect("an exit status"),
        stdout: String::from_utf8(stdout).expect("UTF-8 output"),
        stderr: String::from_utf8(stderr).expect("UTF-8 errors"),
    }
}

/// Runs the binary from the crate's root (so that `examples/...` paths are as in the README).
fn run(args: &[&str]) -> Run {
    run_in(Path::new(ROOT), args)
}

/// Runs the binary on a blocking thread, for tests whose loopback server runs on the runtime.
async fn run_async(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .unwrap()
}

/// The one JSON document of a `--format json` run's output (or error).
fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document ({e}): {text}"))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// lint

const TRAPS_LINT: &str = "\
warning[entry_limit_loses_opt_outs] flow crm-first-unsubscribe
  entry limit is at most 1 entry: a Profile that opts out of one Subscription and later of another is forwarded only once, and the later opt-out is lost; set settings.entry_limit to \"unlimited\" (a re-delivered copy of one event never enters twice anyway)
note[inactive_flow] flow old-spam-complaints
  the flow is inactive and takes no opt-out; set \"active\": true or remove it
warning[plain_http] flow old-spam-complaints
  the endpoint uses plain http to `crm.example.com`: personal data and credentials cross the network unencrypted; use https
warning[double_delivery] flow crm-first-unsubscribe
  flow `crm-newsletter-unsubscribes` can take the same Email - Unsubscribe event and sends it to the same endpoint https://crm.example.com/optout: the receiver gets it twice under two webhook ids; merge the flows or make their listen nodes disjoint
warning[double_delivery] flow crm-newsletter-unsubscribes
  flow `crm-first-unsubscribe` can take the same Email - Unsubscribe event and sends it to the same endpoint https://crm.example.com/optout: the receiver gets it twice under two webhook ids; merge the flows or make their listen nodes disjoint
";

const UNKNOWN_SUBSCRIPTION: &str = "\
warning[unknown_subscription] flow crm-newsletter-unsubscribes
  the listen node selects 1 subscription section `sec-1` does not hold (`777777`): no opt-out of it can arrive; fix \"listen.subscriptions\" or add it to the catalog
";

#[test]
fn lint_prints_every_finding_with_code_severity_flow_and_fix() {
    let run = run(&["lint", "examples/flows/traps.json"]);
    assert_eq!(
        run.stdout,
        format!("{TRAPS_LINT}\nexamples/flows/traps.json: 4 warnings, 1 note in 3 flows\n")
    );
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));

    // With the catalog, the Subscription the catalog does not hold is found too.
    let run = self::run(&[
        "lint",
        "examples/flows/traps.json",
        "--catalog",
        "examples/host/catalog.json",
    ]);
    assert_eq!(
        run.stdout,
        format!(
            "{TRAPS_LINT}{UNKNOWN_SUBSCRIPTION}\nexamples/flows/traps.json: 5 warnings, 1 note in 3 flows\n"
        )
    );
    assert_eq!(run.code, 0);
}

#[test]
fn lint_exits_1_on_warnings_only_when_asked_and_on_errors_always() {
    let run = run(&["lint", "examples/flows/traps.json", "--deny-warnings"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr, "lint failed: 4 warnings (--deny-warnings)\n");
    assert!(run.stdout.starts_with(TRAPS_LINT), "{}", run.stdout);

    // Standard output and error closed before anything is written (`2>&1 | head -0`): the
    // status is still 1, not a panic's 101.
    let mut child = Command::new(BIN)
        .args(["lint", "examples/flows/traps.json", "--deny-warnings"])
        .current_dir(ROOT)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));

    let clean = self::run(&["lint", "examples/flows/relay.json", "--deny-warnings"]);
    assert_eq!(
        (clean.code, clean.stdout.as_str(), clean.stderr.as_str()),
        (0, "examples/flows/relay.json: no findings in 3 flows\n", "")
    );

    // A Folder the catalog does not hold is an error: the router would refuse the flows.
    let scratch = Scratch::new("cli-lint-error");
    std::fs::write(
        scratch.0.join("flows.json"),
        r#"{"version": 1, "flows": [{"id": "news-only", "section": "sec-1",
            "listen": {"kinds": ["email_unsubscribe"], "folders": ["archive"]},
            "webhook": {"method": "POST", "url": "https://crm.example.com/optout",
                        "params": [{"name": "email", "source": "email"},
                                   {"name": "subscription", "source": "subscription_id"}]}}]}"#,
    )
    .unwrap();
    let catalog = format!("{ROOT}/examples/host/catalog.json");
    let run = run_in(
        &scratch.0,
        &["lint", "flows.json", "--catalog", catalog.as_str()],
    );
    assert_eq!(
        run.stdout,
        "error[unknown_folder] flow news-only\n  the listen node narrows by 1 folder section \
         `sec-1` does not hold (`archive`): the flow could never match and the router refuses \
         the flows; fix \"listen.folders\" or add it to the catalog\n\nflows.json: 1 error in 1 flow\n"
    );
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (1, "lint failed: 1 error\n")
    );
}

#[test]
fn lint_in_json_gives_every_diagnostic_and_the_verdict() {
    let run = run(&[
        "lint",
        "examples/flows/traps.json",
        "--catalog",
        "examples/host/catalog.json",
        "--deny-warnings",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1);
    let error = json_of(&run.stderr);
    assert_eq!(
        error,
        serde_json::json!({"error": {"kind": "check", "message": "lint failed: 5 warnings (--deny-warnings)"}})
    );
    let report = json_of(&run.stdout);
    let codes: Vec<(&str, &str, &str)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["severity"].as_str().unwrap(),
                d["code"].as_str().unwrap(),
                d["flow"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (
                "warning",
                "entry_limit_loses_opt_outs",
                "crm-first-unsubscribe"
            ),
            ("note", "inactive_flow", "old-spam-complaints"),
            ("warning", "plain_http", "old-spam-complaints"),
            ("warning", "double_delivery", "crm-first-unsubscribe"),
            ("warning", "double_delivery", "crm-newsletter-unsubscribes"),
            (
                "warning",
                "unknown_subscription",
                "crm-newsletter-unsubscribes"
            ),
        ]
    );
    assert_eq!(
        (
            &report["file"],
            &report["flows"],
            &report["errors"],
            &report["warnings"],
            &report["notes"],
            &report["passed"]
        ),
        (
            &serde_json::json!("examples/flows/traps.json"),
            &serde_json::json!(3),
            &serde_json::json!(0),
            &serde_json::json!(5),
            &serde_json::json!(1),
            &serde_json::json!(false)
        )
    );
}

#[test]
fn a_broken_file_is_named_with_its_json_path_and_no_value_from_it() {
    let scratch = Scratch::new("cli-bad-input");
    // A token written where a kind belongs, on line 3.
    std::fs::write(
        scratch.0.join("flows.json"),
        "{\"version\": 1, \"flows\": [{\"id\": \"crm\", \"section\": \"sec-1\",\n\
         \"listen\": {\"kinds\":\n[\"sk_live_SECRETTOKEN\"]},\n\
         \"webhook\": {\"method\": \"POST\", \"url\": \"https://crm.example.com/optout\"}}]}",
    )
    .unwrap();
    let run = run_in(&scratch.0, &["lint", "flows.json"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: flows.json: flows[0].listen.kinds[0]: unknown variant, expected one of \
         `Email - Unsubscribe`, `email_unsubscribe`, `Email - Abuse`, `email_abuse`, \
         `SMS - Unsubscribe`, `sms_unsubscribe` (line 3, column 22)\n  the file should hold a \
         flow file ({\"version\": 1, \"flows\": [...]})\n"
    );

    // An Email in the wrong shape, in a Profile: the path, never the value.
    std::fs::write(
        scratch.0.join("profile.json"),
        r#"{"id": "p-1", "email": {"address": "ada.lovelace@example.com"}}"#,
    )
    .unwrap();
    let flows = format!("{ROOT}/examples/flows/relay.json");
    let event = format!("{ROOT}/examples/host/event.json");
    let preview = |profile: &str| {
        run_in(
            &scratch.0,
            &[
                "preview",
                flows.as_str(),
                "--event",
                event.as_str(),
                "--profile",
                profile,
                "--flow",
                "crm-unsubscribes",
            ],
        )
    };
    let run = preview("profile.json");
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: profile.json: email: invalid type: an object, expected a string (line 1, column \
         24)\n  the file should hold a Profile (a JSON object)\n"
    );

    // An Email that is not an address is kept (the platform holds such values): the flow that
    // needs it cannot build its request, and the preview says why without the value.
    std::fs::write(
        scratch.0.join("bad-email.json"),
        r#"{"id": "p-1", "email": "ada.lovelace@@example.com"}"#,
    )
    .unwrap();
    let run = preview("bad-email.json");
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert_eq!(
        run.stdout,
        format!(
            "{PREVIEW_EVENT}\n\ncrm-unsubscribes: does not enter: its request cannot be built\n  \
             why: Email - Unsubscribe in section sec-1 through communication, any subscription, \
             any activity\n  error: parameter `email` (source email) has no value: the Profile's \
             Email is not an address: its local part holds whitespace or one of `( ) < > [ ] : ; \
             @ \\ , \"` outside quotes; mark the parameter optional to leave it out instead\n"
        )
    );

    // A file far larger than any flow file (a log given by mistake, /dev/zero): refused once
    // 64 MiB are read, not read to the end, whatever it holds (here text whose 64 MiB cut falls
    // inside a character).
    std::fs::write(scratch.0.join("huge.json"), "é".repeat((32 << 20) + 1)).unwrap();
    let run = run_in(&scratch.0, &["lint", "huge.json"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            2,
            "error: huge.json: larger than 64 MiB; give the flow, catalog, event or Profile \
             file itself\n"
        )
    );

    // Bytes that are not UTF-8 text: where, not what.
    std::fs::write(scratch.0.join("binary.json"), b"{\"a\": \xff\xfe}").unwrap();
    let run = run_in(&scratch.0, &["lint", "binary.json"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            2,
            "error: binary.json: not UTF-8 text (byte 6 is not); give the JSON file itself\n"
        )
    );

    // A file that is not there, and one of JSON that is something else.
    let run = run_in(&scratch.0, &["lint", "missing.json", "--format", "json"]);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""));
    let error = json_of(&run.stderr);
    assert_eq!(error["error"]["kind"], "input");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("missing.json: cannot read it: "),
        "{error}"
    );
    // An option clap does not know, in JSON too.
    let run = run_in(&scratch.0, &["lint", "x.json", "--colour", "--format=json"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        json_of(&run.stderr),
        serde_json::json!({"error": {"kind": "usage", "message":
            "unexpected option `--colour`; see `optout-relay --help`, or `optout-relay COMMAND --help`"}})
    );
    let run = run_in(&scratch.0, &["lint", "missing.json"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("error: missing.json: cannot read it: "),
        "{}",
        run.stderr
    );
    let run = run_in(
        &scratch.0,
        &[
            "preview",
            flows.as_str(),
            "--event",
            "profile.json",
            "--profile",
            "profile.json",
        ],
    );
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: profile.json: .: unknown field, expected one of `id`, `profile`, `section`, \
         `kind`, `subscription`, `activity`, `occurred_at`, `origin` (line 1, column 21)\n  \
         the file should hold an opt-out event (a JSON object)\n"
    );
}

#[test]
fn usage_errors_say_what_is_missing_and_repeat_no_value() {
    let hint = "see `optout-relay --help`, or `optout-relay COMMAND --help`";
    // No command: the help, on standard error, and the usage status.
    let bare = run(&[]);
    assert_eq!((bare.code, bare.stdout.as_str()), (2, ""));
    assert!(
        bare.stderr.starts_with(
            "The operator's command line for optout-relay: check flows, preview and test-send"
        ) && bare
            .stderr
            .contains("\nUsage: optout-relay [OPTIONS] <COMMAND>\n"),
        "{}",
        bare.stderr
    );
    let bare_json = run(&["--format", "json"]);
    assert_eq!(bare_json.code, 2);
    assert_eq!(
        json_of(&bare_json.stderr),
        serde_json::json!({"error": {"kind": "usage",
            "message": format!("a command is needed; {hint}")}})
    );
    let flows = "examples/flows/relay.json";
    let (event, profile) = ("examples/host/event.json", "examples/host/profile.json");
    for (args, expected) in [
        (
            vec!["send", flows, "--event", event, "--profile", profile],
            format!("missing `--flow <ID>`; {hint}"),
        ),
        (
            vec!["status"],
            format!("missing `--store <STORE>` (or OPTOUT_RELAY_STORE set); {hint}"),
        ),
        (
            vec!["lint", flows, "--deny-warnings=hunter2"],
            format!(
                "`--deny-warnings` is given more values than it takes (a flag takes none); {hint}"
            ),
        ),
        (
            vec![
                "send",
                flows,
                "--event",
                event,
                "--profile",
                profile,
                "--flow",
                "a",
                "--flow",
                "b",
            ],
            format!("`--flow <ID>` is given more than once; {hint}"),
        ),
        (
            vec!["pending", "--store", "sqlite:relay.db", "--limit"],
            format!("`--limit <LIMIT>` needs a value; {hint}"),
        ),
        (
            vec!["replay", "--store", "sqlite:relay.db", "msg_1", "--all"],
            format!("`[WEBHOOK_ID]...` cannot be used with `--all`; {hint}"),
        ),
    ] {
        let run = run(&args);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (2, "", format!("error: {expected}\n").as_str()),
            "{args:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// preview

const PREVIEW_EVENT: &str = "event evt-1: Email - Unsubscribe of profile p*** in section sec-1, \
                             subscription 123456, through communication, at 2026-11-26T09:30:00Z";

#[test]
fn preview_shows_which_flows_the_event_enters_and_the_masked_request() {
    // The README's preview of the example files, with `extra` arguments.
    let preview = |extra: &[&str]| {
        let mut list = vec![
            "preview",
            "examples/flows/relay.json",
            "--event",
            "examples/host/event.json",
            "--profile",
            "examples/host/profile.json",
            "--at",
            "2026-11-26T09:30:05Z",
        ];
        list.extend_from_slice(extra);
        run(&list)
    };
    let run = preview(&[]);
    assert_eq!(
        run.stdout,
        format!(
            "{PREVIEW_EVENT}

crm-unsubscribes: enters
  why: Email - Unsubscribe in section sec-1 through communication, any subscription, any activity
  curl --request POST 'https://crm.example.com/optout?email=a***%40e***.com&subscription=123456' \\
    --header 'webhook-id: msg_f602f46a34bde42fbf025123344f856d'

crm-spam-complaints: does not enter
  why not: the flow does not take Email - Unsubscribe

sms-gateway-stop: does not enter
  why not: the flow does not take Email - Unsubscribe
"
        )
    );
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert!(!run.stdout.contains("ada"));

    let json = preview(&["--format", "json"]);
    assert_eq!(json.code, 0);
    let report = json_of(&json.stdout);
    assert_eq!(
        (&report["event"], &report["masked"]),
        (&serde_json::json!("evt-1"), &serde_json::json!(true))
    );
    let flows = report["flows"].as_array().unwrap();
    assert_eq!(
        flows
            .iter()
            .map(|f| (f["flow"].as_str().unwrap(), f["enters"].as_bool().unwrap()))
            .collect::<Vec<_>>(),
        [
            ("crm-unsubscribes", true),
            ("crm-spam-complaints", false),
            ("sms-gateway-stop", false)
        ]
    );
    assert_eq!(
        flows[0]["why"],
        serde_json::json!({"section": "sec-1", "kind": "email_unsubscribe", "origin": "communication",
            "subscription": {"by": "any"}, "activity": {"by": "any"}})
    );
    assert_eq!(
        flows[0]["curl"],
        "curl --request POST 'https://crm.example.com/optout?email=a***%40e***.com&subscription=123456' \\\n  \
         --header 'webhook-id: msg_f602f46a34bde42fbf025123344f856d'"
    );
    assert_eq!(
        flows[1]["rejected"],
        serde_json::json!({"rejected_by": "kind", "kind": "email_unsubscribe"})
    );
    assert!(!json.stdout.contains("ada"));
}

#[test]
fn preview_unmasked_gives_the_exact_request_and_signs_it_at_the_time_given() {
    let scratch = Scratch::new("cli-preview-sms");
    std::fs::write(
        scratch.0.join("event.json"),
        r#"{"id": "evt-2", "profile": "p-2", "section": "sec-1", "kind": "sms_unsubscribe",
            "subscription": "123456", "occurred_at": "2026-11-26T09:31:00Z",
            "origin": "communication"}"#,
    )
    .unwrap();
    std::fs::write(
        scratch.0.join("profile.json"),
        r#"{"id": "p-2", "email": "grace@example.com", "mobile": "+46701234567"}"#,
    )
    .unwrap();
    let flows = format!("{ROOT}/examples/flows/relay.json");
    let preview = |flow: &str, extra: &[&str]| {
        let mut list = vec![
            "preview",
            flows.as_str(),
            "--event",
            "event.json",
            "--profile",
            "profile.json",
            "--flow",
            flow,
        ];
        list.extend_from_slice(extra);
        run_in(&scratch.0, &list)
    };
    let at = ["--at", "2026-11-26T09:31:05Z"];
    // The Profile id is masked too, unless --unmasked (some hosts use the Mobile as the id).
    let head = |profile: &str| {
        format!(
            "event evt-2: SMS - Unsubscribe of profile {profile} in section sec-1, subscription \
             123456, through communication, at 2026-11-26T09:31:00Z

sms-gateway-stop: enters
  why: SMS - Unsubscribe in section sec-1 through communication, any subscription, any activity
  curl --request POST 'https://sms-gateway.example.com/webhooks/stop' \\
    --header 'content-type: application/json' \\
    --header 'webhook-id: msg_dfc894e999ee10eebe52b465f864968b' \\
    --header 'webhook-timestamp: 1795685465' \\
"
        )
    };
    let masked = preview("sms-gateway-stop", &at);
    let unmasked = preview("sms-gateway-stop", &[&at[..], &["--unmasked"]].concat());
    // The signature is over the real body, in both (it reveals nothing).
    let signature = "    --header 'webhook-signature: v1,";
    let body = |mobile: &str| {
        format!(
            "    --data-binary '{{\"type\":\"opt_out.sms_unsubscribe\",\"timestamp\":\
             \"2026-11-26T09:31:00Z\",\"data\":{{\"mobile\":\"{mobile}\",\"subscription\":\
             \"123456\",\"occurred_at\":\"2026-11-26T09:31:00Z\"}}}}'\n"
        )
    };
    for (run, mobile, profile) in [
        (&masked, "+46*******67", "p***"),
        (&unmasked, "+46701234567", "p-2"),
    ] {
        let head = head(profile);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.starts_with(&head), "{}", run.stdout);
        let rest = &run.stdout[head.len()..];
        let (signature_line, last) = rest.split_once('\n').unwrap();
        assert!(signature_line.starts_with(signature), "{signature_line}");
        assert_eq!(last, body(mobile));
    }
    // The same signature: computed over the exact body, masked or not.
    assert_eq!(masked.stdout.lines().nth(8), unmasked.stdout.lines().nth(8));

    // An unknown flow is named, with the file's flows.
    let run = preview("nope", &[]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {flows}: no flow has the id `nope`; the file's flows are: \
             `crm-unsubscribes`, `crm-spam-complaints`, `sms-gateway-stop`\n"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// send

/// A flow file whose one flow sends the email in the query string to `url`.
/// Writes `dir/name`: one flow `crm` taking Email - Unsubscribe, with the webhook node
/// `webhook`.
fn write_flow(dir: &Path, name: &str, webhook: serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    let file = serde_json::json!({"version": 1, "flows": [{
        "id": "crm", "section": "sec-1",
        "listen": {"kinds": ["email_unsubscribe"]},
        "webhook": webhook
    }]});
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

/// The Email and the Subscription id as query parameters.
fn email_and_subscription() -> serde_json::Value {
    serde_json::json!([{"name": "email", "source": "email"},
                       {"name": "subscription", "source": "subscription_id"}])
}

/// `dir/flows.json`: flow `crm` sends the Email and the Subscription id to `url`.
fn write_flows(dir: &Path, url: &str) -> PathBuf {
    let webhook = serde_json::json!({"method": "POST", "url": url, "encoding": "query",
                                     "params": email_and_subscription()});
    write_flow(dir, "flows.json", webhook)
}

fn send_args(flows: &Path, extra: &[&str]) -> Vec<String> {
    let mut list = args(&[
        "send",
        flows.to_str().unwrap(),
        "--event",
        "examples/host/event.json",
        "--profile",
        "examples/host/profile.json",
        "--flow",
        "crm",
        "--at",
        "2026-11-26T09:30:05Z",
    ]);
    list.extend(args(extra));
    list
}

/// The output with the varying parts (the duration, the `date` header) replaced.
fn steady(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("  date: ") {
                "  date: DATE".to_owned()
            } else if let Some(rest) = line.strip_prefix("no response after ") {
                let (_, tail) = rest.split_once(" ms: ").unwrap();
                format!("no response after N ms: {tail}")
            } else if let Some((head, tail)) = line.split_once(" in ") {
                if tail.ends_with(" ms") {
                    format!("{head} in N ms")
                } else {
                    line.to_owned()
                }
            } else {
                line.to_owned()
            }
        })
        .map(|line| line + "\n")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_delivers_to_a_loopback_receiver_only_when_allowed_and_masks_an_echo() {
    let server = TestServer::start(
        [],
        Answer::Status(
            200,
            vec![("content-type".into(), "text/plain".into())],
            b"unsubscribed ada@example.com\n".to_vec(),
        ),
    )
    .await;
    let scratch = Scratch::new("cli-send");
    let flows = write_flows(&scratch.0, &server.url("/optout"));

    // Refused by the destination policy: not one request reaches the server.
    let refused = run_async(send_args(&flows, &[])).await;
    assert_eq!(server.received().len(), 0);
    assert_eq!(refused.code, 1);
    assert_eq!(refused.stderr, "the receiver did not accept the request\n");
    let request_line = format!(
        "sent POST http://{}/optout?email=a***%40e***.com&subscription=123456",
        server.addr
    );
    assert_eq!(
        steady(&refused.stdout),
        format!(
            "{PREVIEW_EVENT}\nflow crm, webhook id msg_46a47ecd72329acaecc6c01c46207852\n\
             {request_line}\nno response after N ms: blocked error: blocked by the destination \
             policy: the destination is a loopback address\nretry policy: dead letter: blocked error, \
             not retryable; a worker would give up on it\n"
        )
    );

    // Allowed: one request, exactly the flow's, and the echo of the email is masked.
    let sent = run_async(send_args(&flows, &["--allow-loopback"])).await;
    assert_eq!((sent.code, sent.stderr.as_str()), (0, ""));
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(
        received[0].target,
        "/optout?email=ada%40example.com&subscription=123456"
    );
    assert_eq!(
        received[0].header("webhook-id"),
        Some("msg_46a47ecd72329acaecc6c01c46207852")
    );
    assert_eq!(
        steady(&sent.stdout),
        format!(
            "{PREVIEW_EVENT}\nflow crm, webhook id msg_46a47ecd72329acaecc6c01c46207852\n\
             {request_line}\nresponse 200 OK in N ms\n  content-length: 29\n  \
             content-type: text/plain\nbody (29 bytes):\n  unsubscribed a***@e***.com\n\
             retry policy: delivered: the receiver accepted it\n"
        )
    );
    assert!(!sent.stdout.contains("ada@"), "{}", sent.stdout);

    // --allow: a range of the policy's own choosing. Another range leaves loopback refused.
    let other = run_async(send_args(&flows, &["--allow", "10.0.0.0/8"])).await;
    assert_eq!(other.code, 1);
    assert_eq!(server.received().len(), 1, "no request under another range");
    let range = run_async(send_args(&flows, &["--allow", "127.0.0.1/32"])).await;
    assert_eq!((range.code, range.stderr.as_str()), (0, ""));
    assert_eq!(server.received().len(), 2);
    // Refused values are not repeated: a range, a time, a flow id that is not a plain id.
    for (extra, error) in [
        (
            ["--allow", "hunter2/33"],
            "error: --allow: not a CIDR range such as 10.1.2.0/24 or 2001:db8::/32\n",
        ),
        (
            ["--at", "2026-11-26T09:30:00Z tok_x"],
            "error: --at: not an RFC 3339 time such as 2026-11-26T09:30:05Z\n",
        ),
    ] {
        let mut list = send_args(&flows, &[]);
        // `send_args` gives `--at` already, and an option given twice is refused: drop it.
        let at = list.iter().position(|a| a == "--at").unwrap();
        list.drain(at..at + 2);
        list.extend(args(&extra));
        let bad = run_async(list).await;
        assert_eq!((bad.code, bad.stderr.as_str()), (2, error), "{extra:?}");
    }
    let mut list = send_args(&flows, &[]);
    let flow = list.iter().position(|a| a == "crm").unwrap();
    list[flow] = "ada@example.com".to_owned();
    let bad = run_async(list).await;
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        format!(
            "error: {}: no flow has the id given; the file's flows are: `crm`\n",
            flows.display()
        )
    );
    assert_eq!(server.received().len(), 2);

    // Static credentials the receiver echoes are masked as the preview masks them.
    let echo = TestServer::start(
        [],
        Answer::Status(
            200,
            Vec::new(),
            b"got token=tk-5501 and x-api-key: hk-7731\n".to_vec(),
        ),
    )
    .await;
    let with_token = write_flow(
        &scratch.0,
        "token.json",
        serde_json::json!({"method": "POST", "url": echo.url("/optout?token=tk-5501"),
                           "encoding": "query",
                           "headers": [{"name": "x-api-key", "value": "hk-7731"}],
                           "params": email_and_subscription()}),
    );
    let sent = run_async(send_args(&with_token, &["--allow-loopback"])).await;
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    assert_eq!(echo.received()[0].header("x-api-key"), Some("hk-7731"));
    assert!(
        sent.stdout.contains(&format!(
            "sent POST http://{}/optout?token=[redacted]&email=a***%40e***.com&subscription=123456\n",
            echo.addr
        )),
        "{}",
        sent.stdout
    );
    assert!(
        sent.stdout
            .contains("  got token=[redacted] and x-api-key: [redacted]\n"),
        "{}",
        sent.stdout
    );
    assert!(!sent.stdout.contains("tk-5501") && !sent.stdout.contains("hk-7731"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_masks_what_a_receiver_echoes_in_its_headers_and_json() {
    // A receiver that echoes the request in a header and in JSON written the way Python's
    // json.dumps and PHP's json_encode write it (non-ASCII as \uXXXX, `/` as `\/`), sets a
    // cookie, and sends a C1 control character (CSI) that a terminal would obey.
    // (Go's encoding/json writes `&` as \u0026.)
    let body = "{\"profile\": \"ada@example.com\", \"name\": \"\\u00c5sa M\\u00fcller\", \
                \"dept\": \"R&D\\/EMEA\", \"team\": \"R\\u0026D/EMEA\", \"phone\": \"0701234567\"}";
    let server = TestServer::start(
        [],
        Answer::Status(
            200,
            vec![
                ("x-echo".into(), "ADA@example.com \u{9b}2J".into()),
                ("set-cookie".into(), "session=s3cr3t-77; Path=/".into()),
                ("www-authenticate".into(), "Bearer realm=\"crm\"".into()),
            ],
            body.as_bytes().to_vec(),
        ),
    )
    .await;
    let scratch = Scratch::new("cli-send-echo");
    // The flow sends the Profile id too, which this host sets to the Email.
    let mut params = email_and_subscription();
    params
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "id", "source": "profile_id"}));
    let flows = write_flow(
        &scratch.0,
        "flows.json",
        serde_json::json!({"method": "POST", "url": server.url("/optout"), "encoding": "query",
                           "params": params}),
    );
    let event = scratch.0.join("event.json");
    std::fs::write(
        &event,
        r#"{"id": "evt-1", "profile": "ada@example.com", "section": "sec-1",
            "kind": "email_unsubscribe", "subscription": "123456",
            "occurred_at": "2026-11-26T09:30:00Z", "origin": "communication"}"#,
    )
    .unwrap();
    let profile = scratch.0.join("profile.json");
    std::fs::write(
        &profile,
        r#"{"id": "ada@example.com", "email": "ada@example.com", "mobile": "+46 70 123 45 67",
            "attributes": {"name": "Åsa Müller", "dept": "R&D/EMEA"}}"#,
    )
    .unwrap();
    let send = |extra: &[&str]| {
        let mut list = args(&[
            "send",
            flows.to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
            "--profile",
            profile.to_str().unwrap(),
            "--flow",
            "crm",
            "--allow-loopback",
        ]);
        list.extend(args(extra));
        run_async(list)
    };
    let sent = send(&[]).await;
    assert_eq!((sent.code, sent.stderr.as_str()), (0, ""));
    assert_eq!(
        steady(&sent.stdout),
        format!(
            "event evt-1: Email - Unsubscribe of profile a*** in section sec-1, subscription \
             123456, through communication, at 2026-11-26T09:30:00Z\n\
             flow crm, webhook id msg_46a47ecd72329acaecc6c01c46207852\n\
             sent POST http://{}/optout?email=a***%40e***.com&subscription=123456&id=a***\n\
             response 200 OK in N ms\n  content-length: {}\n  x-echo: a***@e***.com \\u{{9b}}2J\n  \
             set-cookie: [redacted]\n  www-authenticate: Bearer realm=\"crm\"\n\
             body ({} bytes):\n  {{\"profile\": \"a***@e***.com\", \"name\": \"[masked]\", \
             \"dept\": \"[masked]\", \"team\": \"[masked]\", \"phone\": \"0+46*******67\"}}\n\
             retry policy: delivered: the receiver accepted it\n",
            server.addr,
            body.len(),
            body.len()
        )
    );
    assert_eq!(
        server.received()[0].target,
        "/optout?email=ada%40example.com&subscription=123456&id=ada%40example.com"
    );

    // In JSON, and in a preview (text and JSON), the Profile id is masked as well.
    let sent = send(&["--format", "json"]).await;
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    let report = json_of(&sent.stdout);
    assert_eq!(
        report["request"],
        format!(
            "POST http://{}/optout?email=a***%40e***.com&subscription=123456&id=a***",
            server.addr
        )
    );
    let preview = |format: &str| {
        run_in(
            &scratch.0,
            &[
                "preview",
                "flows.json",
                "--event",
                "event.json",
                "--profile",
                "profile.json",
                "--format",
                format,
            ],
        )
    };
    let (text, json) = (preview("text"), preview("json"));
    assert_eq!(
        (text.code, json.code),
        (0, 0),
        "{}{}",
        text.stderr,
        json.stderr
    );
    assert!(
        text.stdout.contains(&format!(
            "  curl --request POST '{}?email=a***%40e***.com&subscription=123456&id=a***'",
            server.url("/optout")
        )),
        "{}",
        text.stdout
    );
    assert!(
        json_of(&json.stdout)["flows"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("  id = a***  (from profile_id)\n"),
        "{}",
        json.stdout
    );
    for run in [&sent, &text, &json] {
        assert!(
            !run.stdout.contains("ada@") && !run.stdout.contains("ada%40"),
            "{}",
            run.stdout
        );
    }
    assert_eq!(server.received().len(), 2);

    // Unmasked, the answer is shown as it came, but for the control character.
    let sent = send(&["--unmasked"]).await;
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    assert!(
        sent.stdout.contains(
            "  x-echo: ADA@example.com \\u{9b}2J\n  set-cookie: session=s3cr3t-77; Path=/\n"
        ),
        "{}",
        sent.stdout
    );
    assert!(
        sent.stdout.contains(&format!("  {body}\n")),
        "{}",
        sent.stdout
    );
    assert!(sent.stdout.contains("of profile ada@example.com in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_says_what_the_retry_policy_would_do_with_the_answer() {
    let server = TestServer::start(
        [
            Answer::with_header(503, "retry-after", "120"),
            Answer::status(400),
        ],
        Answer::status(410),
    )
    .await;
    let scratch = Scratch::new("cli-send-policy");
    let flows = write_flows(&scratch.0, &server.url("/optout"));
    let decision = |run: &Run| {
        run.stdout
            .lines()
            .find_map(|l| l.strip_prefix("retry policy: "))
            .unwrap()
            .to_owned()
    };

    let busy = run_async(send_args(&flows, &["--allow-loopback", "--format", "json"])).await;
    assert_eq!(busy.code, 1);
    let report = json_of(&busy.stdout);
    assert_eq!(report["response"]["status"], 503);
    assert_eq!(report["step"]["step"], "retry_at");
    // Retry-After: 120 seconds after the attempt ended, which is at most a few ms after it
    // started.
    let at: Timestamp = report["step"]["at"].as_str().unwrap().parse().unwrap();
    let delay = at.duration_since(Timestamp::now());
    assert!(
        delay > jiff::SignedDuration::from_secs(110)
            && delay <= jiff::SignedDuration::from_secs(120),
        "{delay:?}"
    );

    let rejected = run_async(send_args(&flows, &["--allow-loopback"])).await;
    assert_eq!(rejected.code, 1);
    assert_eq!(
        decision(&rejected),
        "dead letter: rejected with status 400; a worker would give up on it"
    );
    let gone = run_async(send_args(&flows, &["--allow-loopback"])).await;
    assert_eq!(
        decision(&gone),
        "dead letter: 410 Gone: the endpoint should be disabled; a worker would give up on it"
    );
    assert_eq!(server.received().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// the store commands

fn crm_flow(url: &str) -> Flow {
    Flow::new(
        FlowId::new("crm").unwrap(),
        SectionId::new("sec-1").unwrap(),
        ListenNode::new([EventKind::EmailUnsubscribe]).unwrap(),
        WebhookNode::builder(url)
            .param("email", ParamSource::Email)
            .param("subscription", ParamSource::SubscriptionId)
            .build()
            .unwrap(),
    )
}

/// Opt-out `i`: Email - Unsubscribe `evt-{i}` of Profile `p-{i}` (`p-{i}@example.com`).
fn opt_out(i: usize) -> (OptOutEvent, Profile) {
    let profile = format!("p-{i}");
    (
        fixtures::event(&format!("evt-{i}"), &profile),
        fixtures::profile(&profile),
    )
}

fn loopback_client() -> ReqwestClient {
    ReqwestClient::builder()
        .destination_policy(DestinationPolicy::default().allow_loopback())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn next(outcomes: &mut Outcomes) -> Outcome {
    tokio::time::timeout(Duration::from_secs(20), outcomes.recv())
        .await
        .expect("an outcome within 20 s")
        .expect("the worker runs")
}

/// Submits opt-outs `events` through a worker over `store` and returns the deliveries as the
/// worker ended them.
async fn relay_in(
    store: Arc<dyn DeliveryStore>,
    url: &str,
    events: std::ops::Range<usize>,
) -> Vec<Delivery> {
    let router = Router::new([crm_flow(url)], &Catalog::default()).unwrap();
    let (worker, mut outcomes) = Worker::builder(router, loopback_client(), store).start();
    let mut ended = Vec::new();
    for i in events {
        let (event, profile) = opt_out(i);
        let submitted = worker.submit(&event, &profile).await.unwrap();
        assert_eq!(submitted.entered().count(), 1);
        match next(&mut outcomes).await {
            Outcome::Delivered(d) | Outcome::DeadLettered(d) => ended.push(d),
            other => panic!("{other:?}"),
        }
    }
    let _ = worker.shutdown().await;
    ended
}

/// [`relay_in`] the SQLite store at `db`.
async fn relay(db: &Path, url: &str, events: std::ops::Range<usize>) -> Vec<Delivery> {
    relay_in(Arc::new(SqliteStore::open(db).await.unwrap()), url, events).await
}

/// The first `count` outcomes of a worker started on `store` (what is due in it).
async fn drain_in(store: Arc<dyn DeliveryStore>, url: &str, count: usize) -> Vec<Outcome> {
    let router = Router::new([crm_flow(url)], &Catalog::default()).unwrap();
    let (worker, mut outcomes) = Worker::builder(router, loopback_client(), store).start();
    let mut seen = Vec::new();
    for _ in 0..count {
        seen.push(next(&mut outcomes).await);
    }
    let _ = worker.shutdown().await;
    seen
}

/// [`drain_in`] the SQLite store at `db`.
async fn drain(db: &Path, url: &str, count: usize) -> Vec<Outcome> {
    drain_in(Arc::new(SqliteStore::open(db).await.unwrap()), url, count).await
}

/// `replay ID --format json` on `store`.
async fn replay_json(store: &str, id: &str) -> Run {
    run_async(args(&["replay", "--store", store, id, "--format", "json"])).await
}

/// `replay`'s JSON for one id given that is not a dead letter (`webhook_id`: the id as shown,
/// or null).
fn not_replayed(webhook_id: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"replayed": 0, "webhook_ids": [],
                       "not_dead_letters": [{"given": 1, "webhook_id": webhook_id}]})
}

fn when(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_dead_letter_arrives_at_the_receiver() {
    // The receiver refuses the first request (400: dead-lettered at once, with a body that
    // echoes the Email), then accepts.
    let refusal = Answer::Status(400, Vec::new(), b"no list for p-0@example.com".to_vec());
    let server = TestServer::start([refusal], Answer::status(204)).await;
    let scratch = Scratch::new("cli-replay");
    let db = scratch.0.join("relay.db");
    let url = server.url("/optout");
    let ended = relay(&db, &url, 0..1).await;
    let dead = &ended[0];
    let delivery::DeliveryState::DeadLettered { at, .. } = dead.state().clone() else {
        panic!("{:?}", dead.state());
    };
    let id = dead.webhook_id().as_str().to_owned();
    let store = format!("sqlite:{}", db.display());
    let endpoint = format!("http://{}/optout", server.addr);
    let w = endpoint.len();

    let status = run_async(args(&["status", "--store", &store])).await;
    assert_eq!(
        status.stdout,
        format!(
            "store {store}

state          deliveries
pending                 0
  in flight             0
delivered               0
dead-lettered           1
entries                 1

{:<w$}  state    pending  in flight  detail
{endpoint}  healthy        0          0  -
",
            "endpoint"
        )
    );
    assert_eq!((status.code, status.stderr.as_str()), (0, ""));

    let listed = run_async(args(&["dead", "--store", &store])).await;
    assert_eq!((listed.code, listed.stderr.as_str()), (0, ""));
    assert_eq!(
        listed.stdout,
        format!(
            "webhook id                            flow  event  {:<w$}  attempts  dead since            reason
{id}  crm   evt-0  {endpoint}         1  {}  rejected with status 400
",
            "endpoint",
            when(at)
        )
    );
    let listed_json = run_async(args(&["dead", "--store", &store, "--format", "json"])).await;
    for text in [&listed.stdout, &listed_json.stdout] {
        assert!(!text.contains("p-0@") && !text.contains("p-0%40"), "{text}");
    }
    let pending = run_async(args(&["pending", "--store", &store])).await;
    assert_eq!(
        (pending.code, pending.stdout.as_str()),
        (0, "no pending deliveries\n")
    );
    // The store from the environment, as a shell profile sets it.
    let from_env = tokio::task::spawn_blocking({
        let store = store.clone();
        move || {
            Command::new(BIN)
                .args(["dead", "--format", "json"])
                .env("OPTOUT_RELAY_STORE", &store)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8(from_env.stdout).unwrap(),
        listed_json.stdout
    );

    // Replay it: pending again, due now; a worker then delivers it.
    let replayed = run_async(args(&["replay", "--store", &store, &id])).await;
    assert_eq!(
        (replayed.code, replayed.stdout.as_str()),
        (0, format!("replayed {id}\n").as_str())
    );
    let again_json = replay_json(&store, &id).await;
    assert_eq!(
        (again_json.code, json_of(&again_json.stdout)),
        (1, not_replayed(id.as_str().into()))
    );
    assert_eq!(
        json_of(&again_json.stderr),
        serde_json::json!({"error": {"kind": "check",
            "message": "1 webhook id not replayed: not a dead letter in this store"}})
    );
    let again = run_async(args(&["replay", "--store", &store, &id])).await;
    assert_eq!(again.code, 1);
    assert_eq!(
        again.stdout,
        format!("{id}: not a dead letter in this store\n")
    );
    assert_eq!(
        again.stderr,
        "1 webhook id not replayed: not a dead letter in this store\n"
    );
    let pending = run_async(args(&["pending", "--store", &store, "--format", "json"])).await;
    let page = json_of(&pending.stdout);
    assert_eq!(page["deliveries"][0]["webhook_id"], id.as_str());
    assert_eq!(page["deliveries"][0]["last_status"], 400);
    assert_eq!(page["deliveries"][0]["held"], false);
    assert_eq!(page["next_after"], serde_json::Value::Null);
    let due: Timestamp = page["deliveries"][0]["state"]["next_attempt_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let pending = run_async(args(&["pending", "--store", &store])).await;
    assert_eq!(
        (pending.code, pending.stdout.as_str()),
        (
            0,
            format!(
                "webhook id                            flow  event  {:<w$}  attempts  next attempt
{id}  crm   evt-0  {endpoint}         1  {}
",
                "endpoint",
                when(due)
            )
            .as_str()
        )
    );

    // Paused, its endpoint holds it: `pending` says so instead of a due time.
    let paused = run_async(args(&["pause", "--store", &store, &endpoint])).await;
    assert_eq!(paused.code, 0, "{}", paused.stderr);
    let held = run_async(args(&["pending", "--store", &store])).await;
    assert_eq!(
        held.stdout,
        format!(
            "webhook id                            flow  event  {:<w$}  attempts  next attempt
{id}  crm   evt-0  {endpoint}         1  held: its endpoint is paused
",
            "endpoint"
        )
    );
    let held = run_async(args(&["pending", "--store", &store, "--format", "json"])).await;
    assert_eq!(json_of(&held.stdout)["deliveries"][0]["held"], true);
    let resumed = run_async(args(&["resume", "--store", &store, &endpoint])).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);

    // An id that is not a plain id (a URL pasted in the wrong place) is named by its place.
    let pasted = run_async(args(&[
        "replay",
        "--store",
        &store,
        "postgres://relay:hunter2@db/relay",
    ]))
    .await;
    assert_eq!(
        (pasted.code, pasted.stdout.as_str()),
        (
            1,
            "the webhook id given #1: not a dead letter in this store\n"
        )
    );
    assert!(!pasted.stderr.contains("hunter2"), "{}", pasted.stderr);
    let pasted = replay_json(&store, "postgres://relay:hunter2@db/relay").await;
    assert_eq!(
        (pasted.code, json_of(&pasted.stdout)),
        (1, not_replayed(serde_json::Value::Null))
    );

    let outcomes = drain(&db, &url, 1).await;
    assert!(
        matches!(&outcomes[0], Outcome::Delivered(d) if d.webhook_id().as_str() == id),
        "{outcomes:?}"
    );
    let received = server.received();
    assert_eq!(received.len(), 2, "the first attempt and the replayed one");
    assert_eq!(received[0], received[1], "the same request, byte for byte");
    assert_eq!(
        received[1].target,
        "/optout?email=p-0%40example.com&subscription=123456"
    );
    let status = run_async(args(&["status", "--store", &store, "--format", "json"])).await;
    let report = json_of(&status.stdout);
    assert_eq!(
        report["counts"],
        serde_json::json!({"pending": 0, "leased": 0, "delivered": 1, "dead_lettered": 0, "entries": 1})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_pages_through_every_dead_letter_with_progress() {
    let server = TestServer::start([], Answer::status(422)).await;
    let scratch = Scratch::new("cli-replay-all");
    let db = scratch.0.join("relay.db");
    let ended = relay(&db, &server.url("/optout"), 0..5).await;
    assert_eq!(ended.len(), 5);
    let store = format!("sqlite:{}", db.display());

    // Paged: two at a time, the next page named.
    let first = run_async(args(&[
        "dead", "--store", &store, "--limit", "2", "--flow", "crm",
    ]))
    .await;
    let mut ids: Vec<String> = ended
        .iter()
        .map(|d| d.webhook_id().as_str().to_owned())
        .collect();
    ids.sort();
    assert_eq!(first.stdout.lines().count(), 5, "{}", first.stdout);
    // The next page of the same listing: the same flow and page size.
    assert!(
        first.stdout.ends_with(&format!(
            "\nmore: optout-relay dead --after {} --flow crm --limit 2 (with the same --store)\n",
            ids[1]
        )),
        "{}",
        first.stdout
    );
    let second = run_async(args(&[
        "dead", "--store", &store, "--limit", "2", "--after", &ids[1], "--format", "json",
    ]))
    .await;
    let page = json_of(&second.stdout);
    let listed: Vec<&str> = page["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["webhook_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[3].as_str()]);
    assert_eq!(page["next_after"], ids[3].as_str());

    let all = run_async(args(&[
        "replay",
        "--store",
        &store,
        "--all",
        "--flow",
        "crm",
        "--progress-every",
        "2",
        "--page",
        "2",
    ]))
    .await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert_eq!(
        all.stdout,
        "replayed 5 dead letters; each is due now with the retry policy's whole allowance\n"
    );
    assert_eq!(all.stderr, "replayed 2 so far\nreplayed 4 so far\n");
    let status = run_async(args(&["status", "--store", &store, "--format", "json"])).await;
    let report = json_of(&status.stdout);
    assert_eq!(report["counts"]["pending"], 5);
    assert_eq!(report["counts"]["dead_lettered"], 0);

    // Dead again (the receiver still answers 422), then replayed with JSON: the ids replayed,
    // and no progress lines (standard error holds only an error, as one JSON object).
    let outcomes = drain(&db, &server.url("/optout"), 5).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::DeadLettered(_))),
        "{outcomes:?}"
    );
    let json = run_async(args(&[
        "replay",
        "--store",
        &store,
        "--all",
        "--progress-every",
        "1",
        "--page",
        "2",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!((json.code, json.stderr.as_str()), (0, ""));
    assert_eq!(
        json_of(&json.stdout),
        serde_json::json!({"replayed": 5, "webhook_ids": ids, "not_dead_letters": []})
    );

    // Another flow's dead letters are left alone.
    let none = run_async(args(&[
        "replay", "--store", &store, "--all", "--flow", "other",
    ]))
    .await;
    assert_eq!(
        (none.code, none.stdout.as_str()),
        (
            0,
            "replayed 0 dead letters; each is due now with the retry policy's whole allowance\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_an_endpoint_resume_releases_it_and_purge_deletes_old_deliveries() {
    let server = TestServer::start([], Answer::status(204)).await;
    let scratch = Scratch::new("cli-pause");
    let db = scratch.0.join("relay.db");
    let url = server.url("/optout");
    relay(&db, &url, 0..2).await;
    let store = format!("sqlite:{}", db.display());
    let endpoint = format!("http://{}/optout", server.addr);

    let paused = run_async(args(&["pause", "--store", &store, &endpoint])).await;
    assert_eq!(
        (paused.code, paused.stdout.as_str()),
        (
            0,
            format!(
                "paused {endpoint} (was healthy): nothing more is sent to it and its deliveries \
                 are held until `optout-relay resume`\n"
            )
            .as_str()
        )
    );
    let twice = run_async(args(&["pause", "--store", &store, &endpoint])).await;
    assert_eq!(
        (twice.code, twice.stdout.as_str()),
        (
            0,
            format!("{endpoint} was already paused by an operator\n").as_str()
        )
    );
    let status = run_async(args(&["status", "--store", &store, "--format", "json"])).await;
    let report = json_of(&status.stdout);
    assert_eq!(report["endpoints"][0]["endpoint"], endpoint.as_str());
    assert_eq!(report["endpoints"][0]["state"], "paused");
    assert!(
        report["endpoints"][0]["detail"]
            .as_str()
            .unwrap()
            .ends_with(": paused by an operator"),
        "{}",
        report["endpoints"][0]["detail"]
    );

    let resumed = run_async(args(&[
        "resume", "--store", &store, &endpoint, "--format", "json",
    ]))
    .await;
    assert_eq!(resumed.code, 0);
    let change = json_of(&resumed.stdout);
    assert_eq!(
        change,
        serde_json::json!({"endpoint": endpoint, "result": "resumed", "from": "paused", "to": "healthy"})
    );
    let again = run_async(args(&["resume", "--store", &store, &endpoint])).await;
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (0, format!("{endpoint} is healthy already\n").as_str())
    );
    let paused_json = run_async(args(&[
        "pause", "--store", &store, &endpoint, "--format", "json",
    ]))
    .await;
    assert_eq!(
        json_of(&paused_json.stdout),
        serde_json::json!({"endpoint": endpoint, "result": "paused", "from": "healthy", "to": "paused"})
    );
    let resumed = run_async(args(&["resume", "--store", &store, &endpoint])).await;
    assert_eq!(
        resumed.stdout,
        format!(
            "resumed {endpoint} (was paused): its held deliveries are due now, in admission order\n"
        )
    );

    // An endpoint the store does not hold is refused, not paused.
    let unknown = run_async(args(&[
        "pause",
        "--store",
        &store,
        "https://crm.example.com/optout",
    ]))
    .await;
    assert_eq!(unknown.code, 2);
    assert_eq!(
        unknown.stderr,
        "error: the store holds nothing pending and no health for https://crm.example.com/optout \
         (`optout-relay status` lists the endpoints it holds); check the endpoint, or give \
         --force to pause it all the same\n"
    );

    let unknown = run_async(args(&[
        "resume",
        "--store",
        &store,
        "https://crm.example.com/optout",
    ]))
    .await;
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .ends_with("give --force to resume it all the same\n"),
        "{}",
        unknown.stderr
    );

    // Purge: nothing ended 30 days ago; both deliveries ended more than a second ago.
    let before = Timestamp::now();
    let none = run_async(args(&["purge", "--store", &store, "--older-than", "30d"])).await;
    let after = Timestamp::now();
    assert_eq!(none.code, 0);
    let cutoff = none
        .stdout
        .strip_prefix("purged 0 deliveries that ended before ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{}", none.stdout));
    // The cut-off is now less 30 days, to the second, some time within the run.
    let month = jiff::SignedDuration::from_hours(30 * 24);
    let cutoff: Timestamp = cutoff.parse().unwrap();
    assert!(
        cutoff
            >= (before - month).round(jiff::Unit::Second).unwrap()
                - jiff::SignedDuration::from_secs(1)
            && cutoff <= after - month,
        "{cutoff}"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let purged = run_async(args(&[
        "purge",
        "--store",
        &store,
        "--older-than",
        "1s",
        "--format",
        "json",
    ]))
    .await;
    let report = json_of(&purged.stdout);
    assert_eq!((purged.code, &report["purged"]), (0, &serde_json::json!(2)));
    // The entries (ids only) are kept: a re-delivered copy of either event still enters nothing.
    let status = run_async(args(&["status", "--store", &store, "--format", "json"])).await;
    let report = json_of(&status.stdout);
    assert_eq!(
        report["counts"],
        serde_json::json!({"pending": 0, "leased": 0, "delivered": 0, "dead_lettered": 0, "entries": 2})
    );
    for age in ["12h", "2w"] {
        let run = run_async(args(&["purge", "--store", &store, "--older-than", age])).await;
        assert_eq!(run.code, 0, "{age}: {}", run.stderr);
    }
    let bad = run_async(args(&[
        "purge",
        "--store",
        &store,
        "--older-than",
        "30 days",
    ]))
    .await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("an age is a whole number and a unit (s, m, h, d or w), such as 30d"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_store_that_cannot_be_opened_is_named_without_its_password() {
    let scratch = Scratch::new("cli-no-store");
    // No file: not created, refused.
    let run = run_in(&scratch.0, &["status", "--store", "sqlite:nowhere.db"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: sqlite:nowhere.db: no such file; give the path of the relay's SQLite store\n"
    );
    assert!(!scratch.0.join("nowhere.db").exists());
    // A file that is not a SQLite database: named as such, exit 2, left as it was.
    std::fs::write(
        scratch.0.join("notes.txt"),
        "not a database, just text\n".repeat(64),
    )
    .unwrap();
    let run = run_in(&scratch.0, &["status", "--store", "sqlite:notes.txt"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("error: sqlite:notes.txt: not a SQLite database: "),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(scratch.0.join("notes.txt")).unwrap(),
        "not a database, just text\n".repeat(64)
    );
    // Neither a device nor a directory is a store file.
    let run = run_in(&scratch.0, &["status", "--store", "sqlite:/dev/null"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            2,
            "error: sqlite:/dev/null: not a regular file; give the path of the relay's SQLite \
             store\n"
        )
    );
    std::fs::create_dir(scratch.0.join("stores")).unwrap();
    let run = run_in(&scratch.0, &["status", "--store", "sqlite:stores"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: sqlite:stores: is a directory; give the path of the relay's SQLite store\n"
    );

    // Not a store URL: the value is not repeated.
    let run = run_in(&scratch.0, &["status", "--store", "mysql://u:hunter2@db/x"]);
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("a store is `sqlite:PATH` or `postgres://USER@HOST/DB`"),
        "{}",
        run.stderr
    );

    // A PostgreSQL server that hangs up at once (a listener this test holds): exit 3, and the
    // password is masked, written before the `@` or in the query.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hang_up = std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            drop(stream);
        }
    });
    for (url, shown) in [
        (
            format!("postgres://relay:hunter2@127.0.0.1:{port}/relay?connect_timeout=5"),
            format!("postgres://relay:***@127.0.0.1:{port}/relay?connect_timeout=5"),
        ),
        (
            format!("postgresql://relay@127.0.0.1:{port}/relay?password=hunter2&sslmode=disable"),
            format!("postgresql://relay@127.0.0.1:{port}/relay?password=***&sslmode=disable"),
        ),
    ] {
        let run = run_in(&scratch.0, &["status", "--store", &url, "--format", "json"]);
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
        let error = json_of(&run.stderr);
        assert_eq!(error["error"]["kind"], "runtime");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{shown}: cannot connect: ")),
            "{message}"
        );
    }
    drop(hang_up);

    // clap would quote an unexpected argument or an invalid value whole: a store URL pasted in
    // the wrong place, an endpoint with an Email in its query, a URL taken for a webhook id.
    let db = scratch.0.join("relay.db");
    std::fs::write(&db, b"").unwrap();
    for (args, expected) in [
        (
            vec!["status", "postgres://relay:hunter2@db/relay"],
            "error: unexpected argument (not repeated here: it may hold a secret); see \
             `optout-relay --help`, or `optout-relay COMMAND --help`\n",
        ),
        (
            vec![
                "pause",
                "--store",
                "sqlite:relay.db",
                "crm.example.com/optout?email=ada@example.com",
            ],
            "error: ENDPOINT: an endpoint is an absolute URL such as https://crm.example.com/optout\n",
        ),
        (
            vec![
                "replay",
                "--store",
                "sqlite:relay.db",
                "postgres://relay:hunter2@db/relay",
            ],
            "error: sqlite:relay.db: holds no optout-relay store (no table \
             optout_relay_deliveries); give the store the relay writes to\n",
        ),
        (
            vec!["status", "--format", "xml"],
            "error: invalid value for `--format <FORMAT>`: expected one of text, json\n",
        ),
    ] {
        let run = run_in(&scratch.0, &args);
        assert_eq!((run.code, run.stderr.as_str()), (2, expected), "{args:?}");
        assert!(!run.stderr.contains("hunter2") && !run.stderr.contains("ada@"));
    }
    // Neither an empty file nor another application's SQLite database is made a store.
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
    let other = scratch.0.join("other.db");
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            use sqlx::Connection as _;
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&other)
                .create_if_missing(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            sqlx::query("CREATE TABLE contacts (email TEXT)")
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        });
    let before = std::fs::read(&other).unwrap();
    let run = run_in(&scratch.0, &["dead", "--store", "sqlite:other.db"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: sqlite:other.db: holds no optout-relay store (no table optout_relay_deliveries); \
         give the store the relay writes to\n"
    );
    assert_eq!(std::fs::read(&other).unwrap(), before, "not written to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_commands_work_on_postgresql_too() {
    let db = pg::database().await;
    // An empty database is refused, and not given the relay's tables.
    let empty = run_async(args(&["status", "--store", &db.url])).await;
    assert_eq!(empty.code, 2);
    assert!(
        empty
            .stderr
            .ends_with(": holds no optout-relay store (no table optout_relay_deliveries); give the store the relay writes to\n"),
        "{}",
        empty.stderr
    );
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'optout_relay%'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(tables, 0);
        conn.close().await.unwrap();
    }
    let server = TestServer::start([Answer::status(400)], Answer::status(204)).await;
    let url = server.url("/optout");
    let store: Arc<dyn DeliveryStore> = Arc::new(PostgresStore::open(&db.url).await.unwrap());
    let ended = relay_in(Arc::clone(&store), &url, 0..1).await;
    let id = ended[0].webhook_id().as_str().to_owned();

    let status = run_async(args(&["status", "--store", &db.url, "--format", "json"])).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    let report = json_of(&status.stdout);
    assert_eq!(
        report["counts"],
        serde_json::json!({"pending": 0, "leased": 0, "delivered": 0, "dead_lettered": 1, "entries": 1})
    );
    // Without endpoint health, PostgreSQL keeps no row for an endpoint with nothing pending.
    assert_eq!(report["endpoints"], serde_json::json!([]));
    let endpoint = format!("http://{}/optout", server.addr);
    let unknown = run_async(args(&["pause", "--store", &db.url, &endpoint])).await;
    assert_eq!(unknown.code, 2);
    let paused = run_async(args(&["pause", "--store", &db.url, &endpoint, "--force"])).await;
    assert_eq!(paused.code, 0, "{}", paused.stderr);
    let status = run_async(args(&["status", "--store", &db.url, "--format", "json"])).await;
    let report = json_of(&status.stdout);
    assert_eq!(report["endpoints"][0]["endpoint"], endpoint.as_str());
    assert_eq!(report["endpoints"][0]["state"], "paused");
    let resumed = run_async(args(&["resume", "--store", &db.url, &endpoint])).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);

    let dead = run_async(args(&["dead", "--store", &db.url, "--format", "json"])).await;
    let page = json_of(&dead.stdout);
    assert_eq!(page["deliveries"][0]["webhook_id"], id.as_str());
    assert_eq!(page["deliveries"][0]["state"]["state"], "dead_lettered");
    assert_eq!(
        page["deliveries"][0]["state"]["reason"],
        serde_json::json!({"reason": "rejected", "status": 400})
    );

    let replayed = run_async(args(&["replay", "--store", &db.url, &id])).await;
    assert_eq!(
        (replayed.code, replayed.stdout.as_str()),
        (0, format!("replayed {id}\n").as_str())
    );
    let outcomes = drain_in(Arc::clone(&store), &url, 1).await;
    assert!(
        matches!(&outcomes[0], Outcome::Delivered(d) if d.webhook_id().as_str() == id),
        "{outcomes:?}"
    );
    assert_eq!(server.received().len(), 2);
    assert_eq!(store.counts().await.unwrap().delivered, 1);
}

/// Runs the binary under a pseudo-terminal (`script` from util-linux), as a person at a
/// terminal would, and returns what the terminal showed.
fn on_terminal(command: &str, no_color: bool) -> String {
    let mut script = Command::new("script");
    script
        .args(["--quiet", "--return", "--command", command, "/dev/null"])
        .current_dir(ROOT)
        .env_remove("NO_COLOR");
    if no_color {
        script.env("NO_COLOR", "1");
    }
    let output = script.output().unwrap_or_else(|e| {
        panic!(
            "cannot run `script` to give the binary a terminal ({e}); to fix: install util-linux \
             (Debian: apt-get install bsdutils)"
        )
    });
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .replace("\r\n", "\n")
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let command = format!("{BIN} lint examples/flows/traps.json");
    let coloured = on_terminal(&command, false);
    assert!(
        coloured.starts_with(
            "\x1b[33mwarning\x1b[0m[entry_limit_loses_opt_outs] flow crm-first-unsubscribe\n"
        ),
        "{coloured:?}"
    );
    assert!(
        coloured.contains("\x1b[36mnote\x1b[0m[inactive_flow] flow old-spam-complaints\n"),
        "{coloured:?}"
    );
    // The same text without the escapes is what a pipe gets.
    let piped = run(&["lint", "examples/flows/traps.json"]).stdout;
    let stripped = coloured
        .replace("\x1b[33m", "")
        .replace("\x1b[36m", "")
        .replace("\x1b[0m", "");
    assert_eq!(stripped, piped);
    assert!(!piped.contains('\x1b'));
    // NO_COLOR on a terminal: plain text.
    assert_eq!(on_terminal(&command, true), piped);
}
