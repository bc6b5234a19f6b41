//! Which destinations webhooks may be sent to: the policy, CIDR blocks and the special-purpose
//! registries.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BlockReason {
    /// A loopback address.
    Loopback,
    /// A private address (RFC 1918).
    Private,
    /// A link-local address, such as a cloud metadata service at 169.254.169.254.
    LinkLocal,
    /// The shared address space of carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// An IPv6 unique-local address.
    UniqueLocal,
    /// A deprecated IPv6 site-local address (`fec0::/10`, RFC 3879).
    SiteLocal,
    /// A multicast address.
    Multicast,
    /// The unspecified address or "this network".
    Unspecified,
    /// A documentation range (`192.0.2.0/24`, `2001:db8::/32`, `3fff::/20`, ...).
    Documentation,
    /// A benchmarking range (`198.18.0.0/15`, `2001:2::/48`).
    Benchmarking,
    /// An address of a translation or tunnelling mechanism that is not globally reachable
    /// (IPv4-mapped, local-use NAT64, Teredo, NAT64 discovery, ...).
    Translation,
    /// Broadcast, or any other reserved or unallocated range.
    Reserved,
    /// The host name `localhost`.
    Localhost,
    /// A host name resolved to no address that the policy allows.
    NoAllowedAddress,
    /// A host that the URL standard does not read as a host (or a request without one).
    InvalidHost,
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address (such as a cloud metadata service)",
            Self::SharedAddressSpace => "a carrier-grade NAT address",
            Self::UniqueLocal => "a unique-local address",
            Self::SiteLocal => "a site-local address",
            Self::Multicast => "a multicast address",
            Self::Unspecified => "the unspecified address",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::Translation => "a translation or tunnelling address",
            Self::Reserved => "a reserved address",
            Self::Localhost => "localhost",
            Self::NoAllowedAddress => "a host name with no allowed address",
            Self::InvalidHost => "not a valid host",
        })
    }
}

/// How the policy treats one entry of a special-purpose address registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Treatment {
    /// Refused, for this reason.
    Refused(BlockReason),
    /// Globally reachable: allowed (a more specific entry inside a refused one).
    Allowed,
    /// Carries an IPv4 address (NAT64 `64:ff9b::/96`, 6to4 `2002::/16`): refused when that
    /// address is (a loopback one as [`BlockReason::Translation`]: it is the translator's own
    /// loopback, not this machine's, so [`DestinationPolicy::allow_loopback`] does not allow it).
    Embedded,
    /// IPv4-mapped (`::ffff:0:0/96`): refused, with the IPv4 address's reason when that one is
    /// refused too.
    Mapped,
}

/// One entry of a special-purpose address table: a range, its registry name and source, and how
/// the policy treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpecialPurpose {
    /// The range, as the registry writes it.
    pub range: &'static str,
    /// The registry's name for it, and the RFC that defines it.
    pub name: &'static str,
    /// What the policy does with an address in it.
    pub treatment: Treatment,
}

const fn entry(range: &'static str, name: &'static str, treatment: Treatment) -> SpecialPurpose {
    SpecialPurpose {
        range,
        name,
        treatment,
    }
}

use BlockReason as R;
use Treatment::{Allowed, Embedded, Mapped, Refused};

/// The IPv4 table: every entry of the IANA IPv4 Special-Purpose Address Registry
/// (<https://www.iana.org/assignments/iana-ipv4-special-registry/>, as of 2025), and multicast
/// from the IPv4 Multicast Address Space Registry. Addresses in none of them are allowed.
#[rustfmt::skip]
pub const IPV4_SPECIAL_PURPOSE: &[SpecialPurpose] = &[
    entry("0.0.0.0/8", "\"This network\" (RFC 791)", Refused(R::Unspecified)),
    entry("0.0.0.0/32", "\"This host on this network\" (RFC 1122)", Refused(R::Unspecified)),
    entry("10.0.0.0/8", "Private-Use (RFC 1918)", Refused(R::Private)),
    entry("100.64.0.0/10", "Shared Address Space (RFC 6598)", Refused(R::SharedAddressSpace)),
    entry("127.0.0.0/8", "Loopback (RFC 1122)", Refused(R::Loopback)),
    entry("169.254.0.0/16", "Link Local (RFC 3927)", Refused(R::LinkLocal)),
    entry("172.16.0.0/12", "Private-Use (RFC 1918)", Refused(R::Private)),
    entry("192.0.0.0/24", "IETF Protocol Assignments (RFC 6890)", Refused(R::Reserved)),
    entry("192.0.0.0/29", "IPv4 Service Continuity Prefix (RFC 7335)", Refused(R::Translation)),
    entry("192.0.0.8/32", "IPv4 dummy address (RFC 7600)", Refused(R::Reserved)),
    entry("192.0.0.9/32", "Port Control Protocol Anycast (RFC 7723)", Allowed),
    entry("192.0.0.10/32", "Traversal Using Relays around NAT Anycast (RFC 8155)", Allowed),
    entry("192.0.0.170/32", "NAT64/DNS64 Discovery (RFC 8880)", Refused(R::Translation)),
    entry("192.0.0.171/32", "NAT64/DNS64 Discovery (RFC 8880)", Refused(R::Translation)),
    entry("192.0.2.0/24", "Documentation (TEST-NET-1) (RFC 5737)", Refused(R::Documentation)),
    entry("192.31.196.0/24", "AS112-v4 (RFC 7535)", Allowed),
    entry("192.52.193.0/24", "AMT (RFC 7450)", Allowed),
    entry("192.88.99.0/24", "Deprecated (6to4 Relay Anycast) (RFC 7526)", Refused(R::Reserved)),
    entry("192.88.99.2/32", "6a44-relay anycast address (RFC 6751)", Refused(R::Translation)),
    entry("192.168.0.0/16", "Private-Use (RFC 1918)", Refused(R::Private)),
    entry("192.175.48.0/24", "Direct Delegation AS112 Service (RFC 7534)", Allowed),
    entry("198.18.0.0/15", "Benchmarking (RFC 2544)", Refused(R::Benchmarking)),
    entry("198.51.100.0/24", "Documentation (TEST-NET-2) (RFC 5737)", Refused(R::Documentation)),
    entry("203.0.113.0/24", "Documentation (TEST-NET-3) (RFC 5737)", Refused(R::Documentation)),
    entry("224.0.0.0/4", "Multicast (RFC 5771)", Refused(R::Multicast)),
    entry("240.0.0.0/4", "Reserved (RFC 1112)", Refused(R::Reserved)),
    entry("255.255.255.255/32", "Limited Broadcast (RFC 919)", Refused(R::Reserved)),
];

/// The IPv6 table: every entry of the IANA IPv6 Special-Purpose Address Registry
/// (<https://www.iana.org/assignments/iana-ipv6-special-registry/>, as of 2025), site-local and
/// multicast from the IPv6 Address Space Registry, and IPv4-translated addresses (RFC 2765). An address in none of them is allowed inside `2000::/3`
/// and refused ([`BlockReason::Reserved`]) outside it.
#[rustfmt::skip]
pub const IPV6_SPECIAL_PURPOSE: &[SpecialPurpose] = &[
    entry("::1/128", "Loopback Address (RFC 4291)", Refused(R::Loopback)),
    entry("::/128", "Unspecified Address (RFC 4291)", Refused(R::Unspecified)),
    entry("::ffff:0:0/96", "IPv4-mapped Address (RFC 4291)", Mapped),
    entry("::ffff:0:0:0/96", "IPv4-translated Address (RFC 2765)", Refused(R::Translation)),
    entry("64:ff9b::/96", "IPv4-IPv6 Translat. (RFC 6052)", Embedded),
    entry("64:ff9b:1::/48", "IPv4-IPv6 Translat. (RFC 8215)", Refused(R::Translation)),
    entry("100::/64", "Discard-Only Address Block (RFC 6666)", Refused(R::Reserved)),
    entry("100:0:0:1::/64", "Dummy IPv6 Prefix (RFC 9780)", Refused(R::Reserved)),
    entry("2001::/23", "IETF Protocol Assignments (RFC 2928)", Refused(R::Reserved)),
    entry("2001::/32", "TEREDO (RFC 4380)", Refused(R::Translation)),
    entry("2001:1::1/128", "Port Control Protocol Anycast (RFC 7723)", Allowed),
    entry("2001:1::2/128", "Traversal Using Relays around NAT Anycast (RFC 8155)", Allowed),
    entry("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast (RFC 9665)", Allowed),
    entry("2001:2::/48", "Benchmarking (RFC 5180)", Refused(R::Benchmarking)),
    entry("2001:3::/32", "AMT (RFC 7450)", Allowed),
    entry("2001:4:112::/48", "AS112-v6 (RFC 7535)", Allowed),
    entry("2001:10::/28", "Deprecated (previously ORCHID) (RFC 4843)", Refused(R::Reserved)),
    entry("2001:20::/28", "ORCHIDv2 (RFC 7343)", Allowed),
    entry("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix (RFC 9374)", Allowed),
    entry("2001:db8::/32", "Documentation (RFC 3849)", Refused(R::Documentation)),
    entry("2002::/16", "6to4 (RFC 3056)", Embedded),
    entry("2620:4f:8000::/48", "Direct Delegation AS112 Service (RFC 7534)", Allowed),
    entry("3fff::/20", "Documentation (RFC 9637)", Refused(R::Documentation)),
    entry("5f00::/16", "Segment Routing (SRv6) SIDs (RFC 9602)", Refused(R::Reserved)),
    entry("fc00::/7", "Unique-Local (RFC 4193)", Refused(R::UniqueLocal)),
    entry("fe80::/10", "Link-Local Unicast (RFC 4291)", Refused(R::LinkLocal)),
    entry("fec0::/10", "Site-Local, deprecated (RFC 3879)", Refused(R::SiteLocal)),
    entry("ff00::/8", "Multicast (RFC 4291)", Refused(R::Multicast)),
];

/// A CIDR range such as `203.0.113.0/24` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// A CIDR range could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR range `{range}`: {reason}")]
pub struct CidrError {
    /// The text given (ranges are configuration, not personal data).
    pub range: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Cidr {
    /// Reads `address/prefix`; a bare address is a single-address range.
    ///
    /// # Errors
    ///
    /// [`CidrError`] when the address or the prefix length is invalid.
    ///
    /// ```
    /// use optout_relay::transport::Cidr;
    ///
    /// let range = Cidr::parse("10.1.0.0/16")?;
    /// assert!(range.contains("10.1.2.3".parse()?));
    /// assert!(!range.contains("10.2.0.1".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let fail = |reason| CidrError {
            range: text.chars().take(64).collect(),
            reason,
        };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| fail("the address is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| fail("the prefix length is out of range"))?,
        };
        Ok(Self { network, prefix })
    }

    /// Whether `address` is in the range.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl TryFrom<String> for Cidr {
    type Error = CidrError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Cidr> for String {
    fn from(cidr: Cidr) -> Self {
        cidr.to_string()
    }
}

/// Which destinations webhooks may be sent to.
///
/// The destination policy (SSRF guard): which addresses a webhook may be sent to.
///
/// A flow's endpoint comes from configuration that a host may let its users write. Without a
/// guard, an endpoint such as `http://169.254.169.254/latest/meta-data/` (a cloud metadata
/// service) or `http://10.0.0.5/admin` turns the relay into a way into the host's own network.
///
/// # What is refused
///
/// By default the policy refuses every address that is not globally reachable, as the IANA
/// special-purpose address registries say (RFC 6890):
///
/// - the [IPv4 Special-Purpose Address Registry] and the [IPv6 Special-Purpose Address
///   Registry]: every entry whose "Globally Reachable" is `False`, and the entries marked `N/A`
///   that no public endpoint lives in (Teredo `2001::/32`, the deprecated ORCHID `2001:10::/28`
///   and 6to4 relay anycast `192.88.99.0/24`); a more specific entry wins over the one that holds
///   it, so `192.0.0.9` (PCP anycast, globally reachable) inside `192.0.0.0/24` (not) is allowed;
/// - multicast (`224.0.0.0/4`, `ff00::/8`), from the multicast address registries;
/// - every IPv6 address outside `2000::/3`, the only block the [IPv6 Address Space] registry
///   allocates to global unicast: this covers the deprecated site-local `fec0::/10`, IPv4-compatible
///   `::/96`, IPv4-translated `::ffff:0:0:0/96` and whatever IANA allocates later;
/// - IPv6 forms that carry an IPv4 address are judged by it: IPv4-mapped `::ffff:a.b.c.d` is
///   always refused (not globally reachable; the reason is the IPv4 address's when that one is
///   refused too), NAT64 `64:ff9b::/96` and 6to4 `2002::/16` are refused when the address inside
///   is.
///
/// The tables [`IPV4_SPECIAL_PURPOSE`] and [`IPV6_SPECIAL_PURPOSE`] list every entry with its
/// decision; the tests check each one.
///
/// [IPv4 Special-Purpose Address Registry]: https://www.iana.org/assignments/iana-ipv4-special-registry/
/// [IPv6 Special-Purpose Address Registry]: https://www.iana.org/assignments/iana-ipv6-special-registry/
/// [IPv6 Address Space]: https://www.iana.org/assignments/ipv6-address-space/
///
/// # Hosts are read as the URL standard reads them
///
/// A host is parsed exactly as the WHATWG URL standard does (the `url` crate's host parser, the
/// one the reqwest transport uses to connect) before it is judged, so `127.1`, `2130706433`,
/// `0x7f000001`, `0177.0.0.1`, `127.0.0.1.` and `%31%32%37.0.0.1` are all the loopback address
/// `127.0.0.1` and are refused; a host the standard rejects is refused as
/// [`BlockReason::InvalidHost`].
///
/// # One owner
///
/// The policy belongs to the transport: [`HttpClient::destination_policy`](crate::HttpClient::destination_policy)
/// says which policy a client enforces (the strict default unless the client says otherwise),
/// and the worker vets every request with that same policy before handing it over. The reqwest
/// transport also vets every address a host name resolves to, and connects only to vetted
/// addresses. Exceptions are explicit: [`DestinationPolicy::allow_loopback`] for development and
/// tests, and [`DestinationPolicy::allow`] for CIDR ranges the host trusts (an allowed range wins
/// over the refusals).
///
/// ```
/// use optout_relay::transport::BlockReason;
/// use optout_relay::DestinationPolicy;
///
/// let strict = DestinationPolicy::default();
/// assert_eq!(strict.check_ip("169.254.169.254".parse()?), Err(BlockReason::LinkLocal));
/// assert_eq!(strict.check_ip("::ffff:10.0.0.1".parse()?), Err(BlockReason::Private));
/// assert_eq!(strict.check_ip("93.184.216.34".parse()?), Ok(()));
/// // Hosts are read as the URL standard reads them: `127.1` is 127.0.0.1.
/// assert_eq!(strict.check_host("127.1"), Err(BlockReason::Loopback));
///
/// let dev = DestinationPolicy::default().allow_loopback();
/// assert_eq!(dev.check_ip("127.0.0.1".parse()?), Ok(()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct DestinationPolicy {
    #[serde(default)]
    loopback: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allow: Vec<Cidr>,
}

/// The strict default, for [`HttpClient::destination_policy`](crate::HttpClient::destination_policy).
pub(crate) static STRICT: DestinationPolicy = DestinationPolicy {
    loopback: false,
    allow: Vec::new(),
};

impl DestinationPolicy {
    /// The strict default: only globally reachable addresses.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also allows loopback addresses and `localhost`: for development and tests.
    #[must_use]
    pub fn allow_loopback(mut self) -> Self {
        self.loopback = true;
        self
    }

    /// Also allows every address in `range`, whatever else the policy says.
    #[must_use]
    pub fn allow(mut self, range: Cidr) -> Self {
        self.allow.push(range);
        self
    }

    /// Whether `address` may be connected to, and if not, why.
    ///
    /// # Errors
    ///
    /// The [`BlockReason`] of a refused address.
    pub fn check_ip(&self, address: IpAddr) -> Result<(), BlockReason> {
        if self.allow.iter().any(|range| range.contains(address)) {
            return Ok(());
        }
        match classify(address) {
            None => Ok(()),
            Some(BlockReason::Loopback) if self.loopback => Ok(()),
            Some(reason) => Err(reason),
        }
    }

    /// Checks a host as written in a URL or request URI (`[...]` around an IPv6 address).
    ///
    /// The host is parsed exactly as the WHATWG URL standard parses the host of an `http` or
    /// `https` URL (percent-decoding, IDNA, and the IPv4 number forms: `127.1`, `2130706433`,
    /// `0x7f000001`, `0177.0.0.1` and `127.0.0.1.` are all 127.0.0.1). An address is judged at
    /// once; `localhost` (and its subdomains) is loopback; any other name passes here and is
    /// judged by what it resolves to when the request is sent.
    ///
    /// # Errors
    ///
    /// The [`BlockReason`] of a refused address or `localhost`; [`BlockReason::InvalidHost`]
    /// when the standard does not read `host` as a host.
    pub fn check_host(&self, host: &str) -> Result<(), BlockReason> {
        match url::Host::parse(host) {
            Ok(host) => self.check_parsed(&host),
            Err(_) => Err(BlockReason::InvalidHost),
        }
    }

    /// Checks the host of a parsed URL (the form the reqwest transport connects to).
    ///
    /// # Errors
    ///
    /// As [`check_host`](Self::check_host); [`BlockReason::InvalidHost`] for a URL without a
    /// host.
    pub fn check_url(&self, url: &url::Url) -> Result<(), BlockReason> {
        match url.host() {
            Some(host) => self.check_parsed(&host),
            None => Err(BlockReason::InvalidHost),
        }
    }

    /// Checks the host of a request URI, as [`check_host`](Self::check_host) reads it.
    ///
    /// # Errors
    ///
    /// As [`check_host`](Self::check_host); [`BlockReason::InvalidHost`] for a URI without a
    /// host.
    pub fn check_uri(&self, uri: &http::Uri) -> Result<(), BlockReason> {
        match uri.host() {
            Some(host) => self.check_host(host),
            None => Err(BlockReason::InvalidHost),
        }
    }

    fn check_parsed<S: AsRef<str>>(&self, host: &url::Host<S>) -> Result<(), BlockReason> {
        match host {
            url::Host::Ipv4(address) => self.check_ip(IpAddr::V4(*address)),
            url::Host::Ipv6(address) => self.check_ip(IpAddr::V6(*address)),
            url::Host::Domain(name) => {
                let name = name.as_ref().trim_end_matches('.').to_ascii_lowercase();
                if (name == "localhost" || name.ends_with(".localhost")) && !self.loopback {
                    return Err(BlockReason::Localhost);
                }
                Ok(())
            }
        }
    }
}

/// A table entry with its range read.
struct Parsed {
    range: Cidr,
    treatment: Treatment,
}

fn parse_table(table: &[SpecialPurpose]) -> Vec<Parsed> {
    // Every range is checked to read in the tests; one that did not would be skipped.
    table
        .iter()
        .filter_map(|entry| {
            Some(Parsed {
                range: Cidr::parse(entry.range).ok()?,
                treatment: entry.treatment,
            })
        })
        .collect()
}

static IPV4_TABLE: std::sync::LazyLock<Vec<Parsed>> =
    std::sync::LazyLock::new(|| parse_table(IPV4_SPECIAL_PURPOSE));
static IPV6_TABLE: std::sync::LazyLock<Vec<Parsed>> =
    std::sync::LazyLock::new(|| parse_table(IPV6_SPECIAL_PURPOSE));

/// The most specific entry of `table` that holds `address`.
fn most_specific(table: &[Parsed], address: IpAddr) -> Option<Treatment> {
    table
        .iter()
        .filter(|entry| entry.range.contains(address))
        .max_by_key(|entry| entry.range.prefix)
        .map(|entry| entry.treatment)
}

/// The reason an address is not globally reachable, if it is not.
fn classify(address: IpAddr) -> Option<BlockReason> {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(address: Ipv4Addr) -> Option<BlockReason> {
    match most_specific(&IPV4_TABLE, IpAddr::V4(address)) {
        Some(Refused(reason)) => Some(reason),
        // The IPv4 table holds no entry that carries another address.
        Some(Allowed | Embedded | Mapped) | None => None,
    }
}

fn classify_v6(address: Ipv6Addr) -> Option<BlockReason> {
    let bits = u128::from(address);
    match most_specific(&IPV6_TABLE, IpAddr::V6(address)) {
        Some(Refused(reason)) => Some(reason),
        Some(Allowed) => None,
        Some(Mapped) => Some(classify_v4(low_v4(bits)).unwrap_or(BlockReason::Translation)),
        Some(Embedded) => {
            // 6to4 carries its IPv4 address in bits 16..48, NAT64 in the last 32 bits.
            let embedded = if address.segments()[0] == 0x2002 {
                Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32)
            } else {
                low_v4(bits)
            };
            classify_v4(embedded).map(|reason| match reason {
                BlockReason::Loopback => BlockReason::Translation,
                other => other,
            })
        }
        // Only 2000::/3 is allocated to global unicast.
        None if address.segments()[0] & 0xe000 != 0x2000 => Some(BlockReason::Reserved),
        None => None,
    }
}

fn low_v4(bits: u128) -> Ipv4Addr {
    Ipv4Addr::from((bits & 0xffff_ffff) as u32)
}
