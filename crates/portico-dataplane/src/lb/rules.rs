//! Listener rule matching, as a pure module: which rule a request selects (AWS's condition
//! semantics: wildcards, case rules, AND across conditions, OR within one), which target group a
//! weighted forward picks, and where a redirect points. No IO, no clock, no randomness of its own.

use std::net::IpAddr;

/// One rule condition, already validated by the control plane.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Host name patterns; case-insensitive, `*` and `?` wildcards, port ignored.
    Host(Vec<String>),
    /// Path patterns; case-sensitive, `*` (crosses `/`) and `?`, path only (no query).
    Path(Vec<String>),
    /// A header (name compared case-insensitively) whose value matches any pattern,
    /// case-insensitive with wildcards; any occurrence of a repeated header may match.
    Header { name: String, values: Vec<String> },
    /// Exact, case-sensitive method names.
    Method(Vec<String>),
    /// Query parameter pairs: key (absent = any key) and value, case-insensitive wildcards,
    /// `\*` and `\?` literal; compared after URL-decoding.
    Query(Vec<(Option<String>, String)>),
    /// The TCP peer of the client connection.
    SourceIp(Vec<Cidr>),
}

/// An address block (`10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// A rule: lower priority numbers win; the default rule has `u32::MAX` and no conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule<A> {
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub action: A,
}

/// What rule conditions look at.
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// Host header (or URI authority), possibly with a port.
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub source: IpAddr,
}

/// The matching rule with the lowest priority, if any.
pub fn select<'r, A>(rules: &'r [Rule<A>], f: &RequestFacts<'_>) -> Option<&'r Rule<A>> {
    rules
        .iter()
        .filter(|r| r.conditions.iter().all(|c| matches(c, f)))
        .min_by_key(|r| r.priority)
}

/// Whether one condition holds for a request.
pub fn matches(c: &Condition, f: &RequestFacts<'_>) -> bool {
    match c {
        Condition::Host(pats) => {
            let Some(h) = f.host else { return false };
            let h = strip_port(h);
            pats.iter().any(|p| wildcard(p, h, true, false))
        }
        Condition::Path(pats) => pats.iter().any(|p| wildcard(p, f.path, false, false)),
        Condition::Header { name, values } => f.headers.get_all(name.as_str()).iter().any(|v| {
            v.to_str()
                .map(|v| values.iter().any(|p| wildcard(p, v, true, false)))
                .unwrap_or(false)
        }),
        Condition::Method(ms) => ms.iter().any(|m| m == f.method),
        Condition::Query(pairs) => {
            let params = parse_query(f.query.unwrap_or(""));
            params.iter().any(|(k, v)| {
                pairs.iter().any(|(pk, pv)| {
                    pk.as_deref().is_none_or(|pk| wildcard(pk, k, true, true))
                        && wildcard(pv, v, true, true)
                })
            })
        }
        Condition::SourceIp(cidrs) => cidrs.iter().any(|c| c.contains(f.source)),
    }
}

/// The host name without a `:port` suffix (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Lit(char),
    One,
    Many,
}

/// AWS wildcard matching: `*` is any run of characters (also empty), `?` exactly one. With
/// `escapes`, `\*` and `\?` are literal. Text with control characters never matches.
pub fn wildcard(pattern: &str, text: &str, case_insensitive: bool, escapes: bool) -> bool {
    if text.chars().any(char::is_control) {
        return false;
    }
    let mut toks = Vec::with_capacity(pattern.len());
    let mut it = pattern.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' if escapes && matches!(it.peek(), Some('*') | Some('?')) => {
                if let Some(n) = it.next() {
                    toks.push(Tok::Lit(n));
                }
            }
            '*' => toks.push(Tok::Many),
            '?' => toks.push(Tok::One),
            c => toks.push(Tok::Lit(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if case_insensitive {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    // Iterative matching with one backtrack point (the last `*`): linear in practice.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Many) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                p += 1;
                t += 1;
            }
            Some(Tok::Lit(c)) if eq(*c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Many)
}

/// Query parameters, URL-decoded (`+` is a space), in order.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

/// Percent-decoding that leaves malformed escapes as they are.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Picks an index with probability weight/Σweights, given `r` uniform in `0..Σweights`.
/// `None` when every weight is zero.
pub fn pick_weighted(weights: &[u32], r: u64) -> Option<usize> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let mut r = r % total;
    for (i, w) in weights.iter().enumerate() {
        let w = u64::from(*w);
        if r < w {
            return Some(i);
        }
        r -= w;
    }
    None
}

/// A redirect action's template; `None` keeps the request's component.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Redirect {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub permanent: bool,
}

/// The `Location` a redirect sends, with `#{protocol}`, `#{host}`, `#{port}`, `#{path}` (without
/// its leading `/`) and `#{query}` substituted. Default ports (80 for http, 443 for https) are
/// left out of the URL.
pub fn redirect_location(
    r: &Redirect,
    f: &RequestFacts<'_>,
    listener_protocol: &str,
    listener_port: u16,
) -> String {
    let proto_in = listener_protocol.to_ascii_lowercase();
    let host_in = f.host.map(strip_port).unwrap_or("");
    let port_in = listener_port.to_string();
    let path_in = f.path.strip_prefix('/').unwrap_or(f.path);
    let query_in = f.query.unwrap_or("");
    let subst = |t: &str| {
        t.replace("#{protocol}", &proto_in)
            .replace("#{host}", host_in)
            .replace("#{port}", &port_in)
            .replace("#{path}", path_in)
            .replace("#{query}", query_in)
    };
    let proto = r
        .protocol
        .as_deref()
        .map(subst)
        .unwrap_or_else(|| proto_in.clone())
        .to_ascii_lowercase();
    let host = r
        .host
        .as_deref()
        .map(subst)
        .unwrap_or_else(|| host_in.to_string());
    let port = r.port.as_deref().map(subst).unwrap_or(port_in.clone());
    let path = r
        .path
        .as_deref()
        .map(subst)
        .unwrap_or_else(|| f.path.to_string());
    let query = r
        .query
        .as_deref()
        .map(subst)
        .unwrap_or_else(|| query_in.to_string());
    let default_port = (proto == "http" && port == "80") || (proto == "https" && port == "443");
    let mut out = format!("{proto}://{host}");
    if !default_port {
        out.push(':');
        out.push_str(&port);
    }
    if !path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&path);
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn facts<'a>(
        method: &'a str,
        host: Option<&'a str>,
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a http::HeaderMap,
    ) -> RequestFacts<'a> {
        RequestFacts {
            method,
            host,
            path,
            query,
            headers,
            source: "10.0.0.5".parse().unwrap(),
        }
    }

    fn check(c: Condition, method: &str, host: &str, path: &str, query: &str, expect: bool) {
        let mut h = http::HeaderMap::new();
        h.insert("x-env", "Staging".parse().unwrap());
        h.append("x-multi", "one".parse().unwrap());
        h.append("x-multi", "two".parse().unwrap());
        let q = (!query.is_empty()).then_some(query);
        let f = facts(method, Some(host), path, q, &h);
        assert_eq!(
            matches(&c, &f),
            expect,
            "{c:?} on {method} {host}{path}?{query}"
        );
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn condition_semantics() {
        use Condition::*;
        check(
            Path(s(&["/img/*"])),
            "GET",
            "a.com",
            "/img/a/b.png",
            "",
            true,
        );
        check(
            Path(s(&["/img/*"])),
            "GET",
            "a.com",
            "/IMG/a.png",
            "",
            false,
        );
        check(Path(s(&["/a?c"])), "GET", "a.com", "/abc", "", true);
        check(Path(s(&["/a?c"])), "GET", "a.com", "/ac", "", false);
        check(Path(s(&["/api"])), "GET", "a.com", "/api", "x=1", true);
        check(Path(s(&["/x", "/y"])), "GET", "a.com", "/y", "", true);
        check(
            Host(s(&["*.example.com"])),
            "GET",
            "A.Example.COM",
            "/",
            "",
            true,
        );
        check(
            Host(s(&["*.example.com"])),
            "GET",
            "example.com",
            "/",
            "",
            false,
        );
        check(
            Host(s(&["api.example.com"])),
            "GET",
            "api.example.com:8080",
            "/",
            "",
            true,
        );
        check(Method(s(&["GET"])), "GET", "a.com", "/", "", true);
        check(Method(s(&["get"])), "GET", "a.com", "/", "", false);
        let hdr = |v: &[&str]| Header {
            name: "x-env".into(),
            values: s(v),
        };
        check(hdr(&["staging"]), "GET", "a.com", "/", "", true);
        check(hdr(&["stag*"]), "GET", "a.com", "/", "", true);
        check(hdr(&["prod"]), "GET", "a.com", "/", "", false);
        let multi = Header {
            name: "X-Multi".into(),
            values: s(&["two"]),
        };
        check(multi, "GET", "a.com", "/", "", true);
        let q = |k: Option<&str>, v: &str| Query(vec![(k.map(String::from), v.to_string())]);
        check(
            q(Some("version"), "v1"),
            "GET",
            "a.com",
            "/",
            "a=b&Version=V1",
            true,
        );
        check(q(None, "v*"), "GET", "a.com", "/", "a=v2", true);
        check(q(Some("a"), "x y"), "GET", "a.com", "/", "a=x%20y", true);
        check(q(Some("a"), "\\*"), "GET", "a.com", "/", "a=*", true);
        check(q(Some("a"), "\\*"), "GET", "a.com", "/", "a=b", false);
        check(q(Some("a"), "b"), "GET", "a.com", "/", "", false);
        let src = |c: &str| SourceIp(vec![Cidr::parse(c).unwrap()]);
        check(src("10.0.0.0/24"), "GET", "a.com", "/", "", true);
        check(src("10.0.1.0/24"), "GET", "a.com", "/", "", false);
        check(src("::/0"), "GET", "a.com", "/", "", false);
        check(Path(s(&["/*"])), "GET", "a.com", "/a\u{1}b", "", false);
    }

    #[test]
    fn lowest_priority_match_wins() {
        let h = http::HeaderMap::new();
        let rules = vec![
            Rule {
                priority: u32::MAX,
                conditions: vec![],
                action: "default",
            },
            Rule {
                priority: 20,
                conditions: vec![Condition::Path(s(&["/api/*"]))],
                action: "api",
            },
            Rule {
                priority: 10,
                conditions: vec![
                    Condition::Path(s(&["/api/*"])),
                    Condition::Method(s(&["POST"])),
                ],
                action: "api-post",
            },
        ];
        let pick = |m, p| select(&rules, &facts(m, None, p, None, &h)).unwrap().action;
        assert_eq!(pick("GET", "/api/x"), "api");
        assert_eq!(pick("POST", "/api/x"), "api-post");
        assert_eq!(pick("GET", "/other"), "default");
    }

    #[test]
    fn redirects() {
        let h = http::HeaderMap::new();
        let f = facts("GET", Some("a.com:8080"), "/p/q", Some("x=1"), &h);
        let r = Redirect {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            ..Default::default()
        };
        assert_eq!(
            redirect_location(&r, &f, "HTTP", 8080),
            "https://a.com/p/q?x=1"
        );
        let r = Redirect {
            host: Some("b.#{host}".into()),
            path: Some("/new/#{path}".into()),
            query: Some("#{query}&y=2".into()),
            ..Default::default()
        };
        assert_eq!(
            redirect_location(&r, &f, "HTTP", 8080),
            "http://b.a.com:8080/new/p/q?x=1&y=2"
        );
    }

    #[test]
    fn cidrs() {
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn literal_pattern_matches_itself(t in "[a-zA-Z0-9/._-]{0,40}") {
            prop_assert!(wildcard(&t, &t, false, false));
            prop_assert!(wildcard(&t.to_uppercase(), &t, true, false));
        }

        #[test]
        fn star_matches_everything_printable(t in "[ -~]{0,60}") {
            prop_assert!(wildcard("*", &t, false, false));
        }

        #[test]
        fn prefix_star(p in "[a-z/]{0,10}", rest in "[a-z/]{0,10}") {
            let text = format!("{p}{rest}");
            let pat = format!("{p}*");
            prop_assert!(wildcard(&pat, &text, false, false));
        }

        #[test]
        fn question_marks_count_chars(t in "[a-z]{0,20}", n in 0usize..25) {
            let pat = "?".repeat(n);
            prop_assert_eq!(wildcard(&pat, &t, false, false), n == t.chars().count());
        }

        #[test]
        fn weighted_pick_in_range(ws in proptest::collection::vec(0u32..1000, 1..6), r in any::<u64>()) {
            match pick_weighted(&ws, r) {
                Some(i) => prop_assert!(ws[i] > 0),
                None => prop_assert!(ws.iter().all(|w| *w == 0)),
            }
        }

        #[test]
        fn weighted_pick_is_proportional(a in 1u32..50, b in 1u32..50) {
            let ws = [a, b];
            let total = u64::from(a + b);
            let n0 = (0..total).filter(|r| pick_weighted(&ws, *r) == Some(0)).count() as u64;
            prop_assert_eq!(n0, u64::from(a));
        }
    }
}
