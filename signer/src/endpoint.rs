//! Where requests go: `http(s)://host[:port]`, parsed once. Default ports (80/443) are dropped
//! from the signed `host`, as every S3 client does.

use crate::Error;

/// URL scheme of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http`.
    Http,
    /// `https`.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    const fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// How the bucket is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Addressing {
    /// `https://endpoint/bucket/key` (S3-compatible stores, custom endpoints).
    #[default]
    Path,
    /// `https://bucket.endpoint/key` (AWS S3's default).
    VirtualHost,
}

/// A parsed S3 endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    scheme: Scheme,
    host: String,
    port: Option<u16>,
    /// `host[:port]` as signed and sent, without a default port.
    authority: String,
}

impl Endpoint {
    /// Parses `http://host`, `https://host:port`, `http://[::1]:9000`; one trailing `/` is allowed.
    ///
    /// # Errors
    /// [`Error::InvalidEndpoint`] for another scheme, user info, a path, a query, an empty or
    /// malformed host, or a port outside 1..=65535.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let (scheme, rest) = split_scheme(url)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(Error::InvalidEndpoint(
                "an endpoint has no path, query or fragment",
            ));
        }
        if rest.contains('@') {
            return Err(Error::InvalidEndpoint(
                "user info is not allowed in an endpoint",
            ));
        }
        let (host, port) = split_port(rest)?;
        let host = host.to_ascii_lowercase();
        let port = port.filter(|&p| p != scheme.default_port());
        let authority = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        Ok(Self {
            scheme,
            host,
            port,
            authority,
        })
    }

    /// The endpoint's scheme.
    #[must_use]
    pub const fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name or address (IPv6 in brackets), lowercase.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, unless it is the scheme's default.
    #[must_use]
    pub const fn port(&self) -> Option<u16> {
        self.port
    }

    /// `host[:port]`: the signed `host` header for path-style requests.
    #[must_use]
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// True when the host is an IP address, which cannot carry a bucket sub-domain.
    #[must_use]
    pub fn is_ip(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<std::net::Ipv4Addr>().is_ok()
    }
}

fn split_scheme(url: &str) -> Result<(Scheme, &str), Error> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or(Error::InvalidEndpoint("expected http:// or https://"))?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else {
        return Err(Error::InvalidEndpoint("scheme must be http or https"));
    };
    Ok((scheme, rest))
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), Error> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or(Error::InvalidEndpoint("unclosed IPv6 bracket"))?;
        let (host, after) = authority.split_at(end + 1);
        let inner = host.get(1..host.len() - 1).unwrap_or_default();
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(Error::InvalidEndpoint("malformed IPv6 address"));
        }
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or(Error::InvalidEndpoint("junk after IPv6 address"))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if !host.starts_with('[')
        && (host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')))
    {
        return Err(Error::InvalidEndpoint(
            "host must be a DNS name or IP address",
        ));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or(Error::InvalidEndpoint("port must be 1..=65535"))?,
        ),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_are_not_signed() {
        let e = Endpoint::parse("https://s3.amazonaws.com:443").unwrap();
        assert_eq!(e.authority(), "s3.amazonaws.com");
        let e = Endpoint::parse("http://LOCALHOST:80/").unwrap();
        assert_eq!(e.authority(), "localhost");
        let e = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(e.authority(), "127.0.0.1:9000");
        assert!(e.is_ip());
        let e = Endpoint::parse("http://[::1]:9000").unwrap();
        assert_eq!(e.authority(), "[::1]:9000");
        assert!(e.is_ip());
        let e = Endpoint::parse("https://minio.internal").unwrap();
        assert!(!e.is_ip());
        assert_eq!(e.scheme(), Scheme::Https);
    }

    #[test]
    fn malformed_endpoints_are_rejected() {
        for bad in [
            "s3.amazonaws.com",
            "ftp://host",
            "https://",
            "https://host/path",
            "https://host?x=1",
            "https://user@host",
            "https://host:0",
            "https://host:65536",
            "https://host:abc",
            "https://host:",
            "https://[::1",
            "https://[zz]:80",
            "https://[::1]x",
            "https://ho st",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(Error::InvalidEndpoint(_))),
                "{bad}"
            );
        }
    }
}
