//! The destination policy (SSRF guard): which addresses a webhook may be sent to.
//!
//! A flow's endpoint comes from configuration that a host may let its users write. Without a
//! guard, an endpoint such as `http://169.254.169.254/latest/meta-data/` (a cloud metadata
//! service) or `http://10.0.0.5/admin` turns the relay into a way into the host's own network.
//! By default the policy refuses every address that is not globally routable:
//!
//! | refused | ranges |
//! | --- | --- |
//! | loopback | `127.0.0.0/8`, `::1` |
//! | private | `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16` |
//! | link-local (cloud metadata) | `169.254.0.0/16`, `fe80::/10` |
//! | shared address space (CGNAT) | `100.64.0.0/10` |
//! | unique-local | `fc00::/7` |
//! | multicast | `224.0.0.0/4`, `ff00::/8` |
//! | unspecified, "this network" | `0.0.0.0/8`, `::` |
//! | broadcast, reserved, documentation, benchmarking | `255.255.255.255`, `240.0.0.0/4`, `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `198.18.0.0/15`, `2001:db8::/32` |
//! | IPv4 inside IPv6 | `::ffff:a.b.c.d`, `::a.b.c.d`, `64:ff9b::/96`, `2002::/16`: judged by the IPv4 address inside |
//!
//! Exceptions are explicit: [`DestinationPolicy::allow_loopback`] for development and tests, and
//! [`DestinationPolicy::allow`] for CIDR ranges the host trusts (an allowed range wins over the
//! refusals). Host names are judged by the addresses they resolve to, at send time: the reqwest
//! transport resolves, drops refused addresses and connects only to the vetted ones.

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
    /// A multicast address.
    Multicast,
    /// The unspecified address or "this network".
    Unspecified,
    /// Broadcast, reserved, documentation or benchmarking ranges.
    Reserved,
    /// The host name `localhost`.
    Localhost,
    /// A host name resolved to no address that the policy allows.
    NoAllowedAddress,
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address (such as a cloud metadata service)",
            Self::SharedAddressSpace => "a carrier-grade NAT address",
            Self::UniqueLocal => "a unique-local address",
            Self::Multicast => "a multicast address",
            Self::Unspecified => "the unspecified address",
            Self::Reserved => "a reserved address",
            Self::Localhost => "localhost",
            Self::NoAllowedAddress => "a host name with no allowed address",
        })
    }
}

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

/// Which destinations webhooks may be sent to; see the [module docs](self).
///
/// ```
/// use optout_relay::transport::{BlockReason, DestinationPolicy};
///
/// let strict = DestinationPolicy::default();
/// assert_eq!(strict.check_ip("169.254.169.254".parse()?), Err(BlockReason::LinkLocal));
/// assert_eq!(strict.check_ip("::ffff:10.0.0.1".parse()?), Err(BlockReason::Private));
/// assert_eq!(strict.check_ip("93.184.216.34".parse()?), Ok(()));
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

impl DestinationPolicy {
    /// The strict default: only globally routable addresses.
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

    /// Checks the host of a URL or request URI: an IP literal is judged at once, `localhost`
    /// (and its subdomains) is loopback, any other name passes here and is judged by what it
    /// resolves to when the request is sent.
    ///
    /// # Errors
    ///
    /// The [`BlockReason`] of a refused literal or `localhost`.
    pub fn check_host(&self, host: &str) -> Result<(), BlockReason> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(address) = bare.parse::<IpAddr>() {
            return self.check_ip(address);
        }
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        if (name == "localhost" || name.ends_with(".localhost")) && !self.loopback {
            return Err(BlockReason::Localhost);
        }
        Ok(())
    }
}

/// The reason an address is not globally routable, if it is not.
fn classify(address: IpAddr) -> Option<BlockReason> {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(address: Ipv4Addr) -> Option<BlockReason> {
    let [a, b, c, _] = address.octets();
    Some(match (a, b, c) {
        (127, _, _) => BlockReason::Loopback,
        (10, _, _) | (192, 168, _) => BlockReason::Private,
        (172, 16..=31, _) => BlockReason::Private,
        (169, 254, _) => BlockReason::LinkLocal,
        (100, 64..=127, _) => BlockReason::SharedAddressSpace,
        (0, _, _) => BlockReason::Unspecified,
        (224..=239, _, _) => BlockReason::Multicast,
        (240..=255, _, _) => BlockReason::Reserved,
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => BlockReason::Reserved,
        (198, 18..=19, _) => BlockReason::Reserved,
        _ => return None,
    })
}

fn classify_v6(address: Ipv6Addr) -> Option<BlockReason> {
    let segments = address.segments();
    if address.is_loopback() {
        return Some(BlockReason::Loopback);
    }
    if address.is_unspecified() {
        return Some(BlockReason::Unspecified);
    }
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96).
    if let Some(v4) = address.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let low = Ipv4Addr::new(
        (segments[6] >> 8) as u8,
        segments[6] as u8,
        (segments[7] >> 8) as u8,
        segments[7] as u8,
    );
    if segments[..6] == [0; 6] || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(low);
    }
    // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if segments[0] == 0x2002 {
        let embedded = Ipv4Addr::new(
            (segments[1] >> 8) as u8,
            segments[1] as u8,
            (segments[2] >> 8) as u8,
            segments[2] as u8,
        );
        if let Some(reason) = classify_v4(embedded) {
            return Some(reason);
        }
    }
    Some(match segments[0] {
        0xfe80..=0xfebf => BlockReason::LinkLocal,
        0xfc00..=0xfdff => BlockReason::UniqueLocal,
        0xff00..=0xffff => BlockReason::Multicast,
        0x2001 if segments[1] == 0x0db8 => BlockReason::Reserved,
        _ => return None,
    })
}
