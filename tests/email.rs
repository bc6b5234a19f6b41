//! Email addresses: every address RFC 5321 and RFC 5322 (with RFC 6531's UTF-8) allow is
//! accepted, only what cannot be an address is refused, each with the rule it breaks; a Profile
//! read from JSON keeps a text that is not an address as given.

use optout_relay::Email;
use optout_relay::Profile;
use optout_relay::model::AttributeError;
use optout_relay::model::EmailProblem;
use optout_relay::model::MAX_EMAIL_LEN;

#[test]
fn addresses_the_rfcs_allow_are_kept_exactly_as_given() {
    for (input, masked) in [
        (r#""o'neil & co=1#x"@example.com"#, r#""***@e***.com"#),
        (r#""a@b"@example.com"#, r#""***@e***.com"#),
        (r#""john doe"@example.com"#, r#""***@e***.com"#),
        (r#""a\"b"@example.com"#, r#""***@e***.com"#),
        (r#""a\\b"@example.com"#, r#""***@e***.com"#),
        ("\"tab\there\"@example.com", r#""***@e***.com"#),
        (r#"""@example.com"#, "***@e***.com"),
        ("用户@例子.广告", "***@***.广告"),
        ("jo@x.io", "***@***.io"),
        ("Pelé@exämple.com", "P***@e***.com"),
        ("user@[192.0.2.1]", "u***@[***"),
        ("user@[IPv6:2001:db8::1]", "u***@[***"),
        ("user@[ipv6:::ffff:192.0.2.1]", "u***@[***"),
        ("user@[x-tag:any!text]", "u***@[***"),
        ("a+b@example.com", "a***@e***.com"),
        ("A+B@Example.COM", "A***@E***.COM"),
        ("john..doe@docomo.ne.jp", "j***@d***.jp"),
        (".leading@example.com", ".***@e***.com"),
        ("trailing.@example.com", "t***@e***.com"),
        ("!#$%&'*+-/=?^_`{|}~@example.com", "!***@e***.com"),
        ("x@localhost", "***@l***"),
        ("x@xn--fsq.example", "***@x***.example"),
        ("a@1.2.3.4", "***@1***.4"),
    ] {
        let email = Email::new(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(email.as_str(), input);
        assert!(email.is_address());
        assert_eq!(email.problem(), None);
        assert_eq!(email.masked(), masked, "{input:?}");
        assert_eq!(email.to_string(), masked);
        assert_eq!(format!("{email:?}"), format!("Email({masked:?})"));
        assert_eq!(input.parse::<Email>().unwrap(), email);
        assert_eq!(Email::try_from(input.to_owned()).unwrap(), email);
        assert_eq!(String::from(email), input);
    }
}

#[test]
fn whitespace_around_an_address_is_not_part_of_it() {
    for input in [
        " ada@example.com",
        "ada@example.com ",
        "ada@example.com\r\n",
        "\tada@example.com\n",
        "\u{feff}ada@example.com",
        "\u{a0}ada@example.com\u{a0}",
    ] {
        let email = Email::new(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(email.as_str(), "ada@example.com", "{input:?}");
        assert_eq!(Email::lenient(input), email);
    }
    // Inside an address, whitespace is still what it was: refused unquoted.
    assert_eq!(
        Email::new("ada @example.com"),
        Err(AttributeError::Email {
            reason: EmailProblem::UnquotedSpecial
        })
    );
    // A text that is not an address stays exactly as given.
    let kept = Email::lenient(" n/a \r\n");
    assert_eq!(
        (kept.as_str(), kept.problem()),
        (" n/a \r\n", Some(EmailProblem::NoAt))
    );
}

#[test]
fn what_cannot_be_an_address_is_refused_with_the_rule_it_breaks() {
    let local_64 = "l".repeat(64);
    let local_65 = "l".repeat(65);
    let quoted_65 = format!("\"{}\"", "q".repeat(63));
    let whole_255 = format!("{local_64}@{}.com", "d".repeat(186));
    for (input, problem) in [
        ("plainaddress", EmailProblem::NoAt),
        (r#""a@b""#, EmailProblem::NoAt),
        ("@example.com", EmailProblem::EmptyLocalPart),
        ("a@", EmailProblem::EmptyDomain),
        (r#""unbalanced@example.com"#, EmailProblem::UnbalancedQuote),
        (r#""a\"@example.com"#, EmailProblem::UnbalancedQuote),
        (r#""a"b@example.com"#, EmailProblem::TextAfterQuote),
        ("a b@example.com", EmailProblem::UnquotedSpecial),
        ("a\tb@example.com", EmailProblem::UnquotedSpecial),
        ("a,b@example.com", EmailProblem::UnquotedSpecial),
        ("a@b@example.com", EmailProblem::UnquotedSpecial),
        (r#"a"b"@example.com"#, EmailProblem::UnquotedSpecial),
        ("a(b)@example.com", EmailProblem::UnquotedSpecial),
        ("a\u{a0}b@example.com", EmailProblem::UnquotedSpecial),
        ("a@exa mple.com", EmailProblem::DomainCharacter),
        ("a@exam_ple.com", EmailProblem::DomainCharacter),
        (r#""a"@b@example.com"#, EmailProblem::DomainCharacter),
        ("a@-example.com", EmailProblem::DomainHyphen),
        ("a@example-.com", EmailProblem::DomainHyphen),
        ("a@example..com", EmailProblem::EmptyDomainLabel),
        ("a@.example.com", EmailProblem::EmptyDomainLabel),
        ("a@example.com.", EmailProblem::EmptyDomainLabel),
        ("a@[300.1.1.1]", EmailProblem::DomainLiteral),
        ("a@[IPv6:2001:db8::g]", EmailProblem::DomainLiteral),
        ("a@[192.0.2.1", EmailProblem::DomainLiteral),
        ("a@[tag:]", EmailProblem::DomainLiteral),
        ("a@[:text]", EmailProblem::DomainLiteral),
        ("a@[tag:a b]", EmailProblem::DomainLiteral),
        ("a\r\n@example.com", EmailProblem::ControlCharacter),
        ("\"a\r\nb\"@example.com", EmailProblem::ControlCharacter),
        ("\"a\0\"@example.com", EmailProblem::ControlCharacter),
        ("a@example.com\0", EmailProblem::ControlCharacter),
        (
            &format!("{local_65}@example.com"),
            EmailProblem::LocalPartTooLong,
        ),
        (
            &format!("{quoted_65}@example.com"),
            EmailProblem::LocalPartTooLong,
        ),
        (&whole_255, EmailProblem::TooLong),
    ] {
        assert_eq!(
            Email::new(input),
            Err(AttributeError::Email { reason: problem }),
            "{input:?}"
        );
        let kept = Email::lenient(input);
        assert_eq!(kept.problem(), Some(problem), "{input:?}");
        assert!(!kept.is_address());
        assert_eq!(kept.as_str(), input);
    }
    // One byte less is an address.
    assert!(Email::new(format!("{local_64}@example.com")).is_ok());
    let whole_254 = format!("{local_64}@{}.com", "d".repeat(185));
    assert_eq!(whole_254.len(), MAX_EMAIL_LEN);
    assert!(Email::new(whole_254).is_ok());
}

#[test]
fn each_rule_has_its_own_message_and_none_repeats_the_address() {
    for (problem, message) in [
        (EmailProblem::TooLong, "it is longer than 254 bytes"),
        (
            EmailProblem::ControlCharacter,
            "it holds a control character",
        ),
        (EmailProblem::NoAt, "it has no `@` outside quotes"),
        (
            EmailProblem::EmptyLocalPart,
            "it has nothing before the `@`",
        ),
        (
            EmailProblem::LocalPartTooLong,
            "it has more than 64 bytes before the `@`",
        ),
        (
            EmailProblem::UnbalancedQuote,
            "its local part opens a quote it does not close",
        ),
        (
            EmailProblem::TextAfterQuote,
            "its quoted local part goes on after the closing quote",
        ),
        (
            EmailProblem::UnquotedSpecial,
            r#"its local part holds whitespace or one of `( ) < > [ ] : ; @ \ , "` outside quotes"#,
        ),
        (EmailProblem::EmptyDomain, "it has no domain after the `@`"),
        (
            EmailProblem::EmptyDomainLabel,
            "its domain has an empty label",
        ),
        (
            EmailProblem::DomainCharacter,
            "its domain holds a character other than letters, digits, `-` and `.`",
        ),
        (
            EmailProblem::DomainHyphen,
            "a label of its domain starts or ends with `-`",
        ),
        (
            EmailProblem::DomainLiteral,
            "its domain literal is not an IPv4 address, `IPv6:` and an IPv6 address, or \
             `tag:text`",
        ),
    ] {
        assert_eq!(problem.to_string(), message);
        assert_eq!(
            AttributeError::Email { reason: problem }.to_string(),
            format!("invalid email address: {message}")
        );
    }
    let error = Email::new("secret.person@@example.com").unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid email address: its local part holds whitespace or one of \
         `( ) < > [ ] : ; @ \\ , \"` outside quotes"
    );
}

#[test]
fn a_text_that_is_not_an_address_is_masked_whole() {
    for (input, masked) in [
        ("not an address", "n***"),
        ("a@b@example.com", "a***"),
        (r#""a@b""#, "\"***"),
        ("@example.com", "@***"),
        ("ab", "***"),
        ("", "***"),
    ] {
        let kept = Email::lenient(input);
        assert_eq!(kept.masked(), masked, "{input:?}");
        assert_eq!(kept.to_string(), masked);
        assert_eq!(format!("{kept:?}"), format!("Email({masked:?})"));
    }
}

#[test]
fn a_profile_whose_email_is_not_an_address_is_still_read_and_written_back_as_given() {
    let json = r#"{"id":"p-1","email":"not an address","mobile":"+46701234567"}"#;
    let profile: Profile = serde_json::from_str(json).unwrap();
    let email = profile.email.as_ref().unwrap();
    assert_eq!(email.as_str(), "not an address");
    assert_eq!(email.problem(), Some(EmailProblem::NoAt));
    assert_eq!(
        format!("{profile:?}").matches("Email(\"n***\")").count(),
        1,
        "{profile:?}"
    );
    assert_eq!(serde_json::to_string(&profile).unwrap(), json);
    // An address reads back as one.
    let json = r#"{"id":"p-1","email":"\"a@b\"@example.com"}"#;
    let profile: Profile = serde_json::from_str(json).unwrap();
    let email = profile.email.as_ref().unwrap();
    assert!(email.is_address());
    assert_eq!(email, &Email::new(r#""a@b"@example.com"#).unwrap());
    assert_eq!(serde_json::to_string(&profile).unwrap(), json);
    // Still a string: a number is not an Email.
    assert!(serde_json::from_str::<Profile>(r#"{"id":"p-1","email":7}"#).is_err());
}
