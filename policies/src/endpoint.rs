//! Whether an endpoint names this machine, decided by parsing it, never by string prefixes
//! (`127.evil.example` is not loopback). Used to confine `insecure_*` and plain-http shortcuts
//! to loopback.

use std::net::{IpAddr, SocketAddr};

/// `endpoint` is `[scheme://]host[:port][/path]` and its host is a loopback IP address
/// (`127.0.0.0/8`, `::1`) or exactly `localhost`. Anything that does not parse is not loopback.
pub fn is_loopback_endpoint(endpoint: &str) -> bool {
    let rest = match endpoint.split_once("://") {
        // Only a real scheme may come before "://": `evil.example:2379/://127.0.0.1` has none,
        // and a client that adds `http://` to it connects to evil.example.
        Some((scheme, r)) if is_scheme(scheme) => r,
        Some(_) => return false,
        None => endpoint,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    if let Ok(addr) = authority.parse::<SocketAddr>() {
        return addr.ip().is_loopback();
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => h,
            Some((h, port)) if port.strip_prefix(':').is_some_and(is_port) => h,
            _ => return false,
        },
        None => match authority.rsplit_once(':') {
            Some((h, port)) if is_port(port) && !h.contains(':') => h,
            Some(_) if authority.parse::<IpAddr>().is_err() => return false,
            _ => authority,
        },
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// RFC 3986: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::is_loopback_endpoint;

    #[test]
    fn loopback_is_parsed_not_prefixed() {
        let cases = [
            ("http://127.0.0.1:2379", true),
            ("127.0.0.1:2379", true),
            ("http://127.9.9.9:9955/path", true),
            ("https://[::1]:9955", true),
            ("http://[::1]", true),
            ("http://localhost:9955", true),
            ("http://localhost", true),
            ("127.0.0.1", true),
            ("http://127.evil.example:2379", false),
            ("http://127.0.0.1.attacker.example:9955", false),
            ("http://localhost.example:9955", false),
            ("http://10.9.9.9:2379", false),
            ("10.9.9.9:2379", false),
            ("http://user@127.0.0.1:9955", false),
            ("http://[::2]:9955", false),
            ("http://127.0.0.1:99999", false),
            ("http://[::1", false),
            ("evil.example:2379/://127.0.0.1", false),
            ("evil.example:2379/x://127.0.0.1:2379", false),
            ("://127.0.0.1:2379", false),
            ("", false),
        ];
        for (endpoint, loopback) in cases {
            assert_eq!(is_loopback_endpoint(endpoint), loopback, "{endpoint}");
        }
    }
}
