//! HOT PATH. Route keys and route selection for HTTP APIs, as a pure module: parsing a route key
//! (`GET /pets/{id}`, `ANY /{proxy+}`, `$default`) and choosing the most specific route for a
//! request exactly as API Gateway does.
//!
//! Specificity (larger wins), compared in this order:
//! 1. class: a route without a greedy variable beats one with `{x+}`, which beats `$default`;
//! 2. for greedy routes, the longer prefix (segments before `{x+}`) wins;
//! 3. left to right, a literal segment beats a variable at the first position where they differ;
//! 4. a route naming the request's method beats `ANY`.
//!
//! The compiled [`Table`] keeps routes sorted by that key, so the first route that matches the
//! request is the most specific one.

use std::cmp::Ordering;

/// HTTP methods a route key may name (`ANY` is `None` in [`RouteKey::Path`]).
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Var(String),
    Greedy(String),
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    /// `$default`: matches anything no other route matches.
    Default,
    /// `METHOD /path`; `method` is `None` for `ANY`.
    Path {
        method: Option<String>,
        segments: Vec<Segment>,
    },
}

/// Why a route key does not parse. The control plane words the client-visible message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Empty key.
    Missing,
    /// Not `METHOD /path` (no space, unknown or lower-case method, path not starting with `/`).
    Malformed,
    /// A path part is neither literal text, `{name}` nor a final `{name+}`.
    InvalidPathPart,
    /// The same variable name twice.
    DuplicateVariable,
}

impl RouteKey {
    pub fn parse(key: &str) -> Result<RouteKey, KeyError> {
        if key.is_empty() {
            return Err(KeyError::Missing);
        }
        if key == "$default" {
            return Ok(RouteKey::Default);
        }
        let (method, path) = key.split_once(' ').ok_or(KeyError::Malformed)?;
        let method = match method {
            "ANY" => None,
            m if METHODS.contains(&m) => Some(m.to_string()),
            _ => return Err(KeyError::Malformed),
        };
        let rest = path.strip_prefix('/').ok_or(KeyError::Malformed)?;
        if path.contains(' ') {
            return Err(KeyError::Malformed);
        }
        let mut segments = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            let last = parts.len() - 1;
            let mut names: Vec<&str> = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                if p.is_empty() {
                    return Err(KeyError::InvalidPathPart);
                }
                let seg = if let Some(inner) = p.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
                {
                    let (name, greedy) = match inner.strip_suffix('+') {
                        Some(n) => (n, true),
                        None => (inner, false),
                    };
                    if name.is_empty()
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        return Err(KeyError::InvalidPathPart);
                    }
                    if greedy && i != last {
                        return Err(KeyError::InvalidPathPart);
                    }
                    if names.contains(&name) {
                        return Err(KeyError::DuplicateVariable);
                    }
                    names.push(name);
                    if greedy {
                        Segment::Greedy(name.to_string())
                    } else {
                        Segment::Var(name.to_string())
                    }
                } else if p.contains('{') || p.contains('}') {
                    return Err(KeyError::InvalidPathPart);
                } else {
                    Segment::Literal((*p).to_string())
                };
                segments.push(seg);
            }
        }
        Ok(RouteKey::Path { method, segments })
    }

    /// The specificity key: compare with `Ord`, larger is more specific.
    pub fn rank(&self) -> Rank {
        match self {
            RouteKey::Default => Rank {
                class: 0,
                prefix: 0,
                literals: Vec::new(),
                method: 0,
            },
            RouteKey::Path { method, segments } => {
                let greedy = matches!(segments.last(), Some(Segment::Greedy(_)));
                let prefix = if greedy {
                    segments.len() - 1
                } else {
                    segments.len()
                };
                Rank {
                    class: if greedy { 1 } else { 2 },
                    prefix,
                    literals: segments
                        .iter()
                        .map(|s| matches!(s, Segment::Literal(_)))
                        .collect(),
                    method: u8::from(method.is_some()),
                }
            }
        }
    }

    /// Path parameters when this key matches `method` and the decoded `segments`.
    pub fn matches<S: AsRef<str>>(
        &self,
        method: &str,
        segments: &[S],
    ) -> Option<Vec<(String, String)>> {
        let RouteKey::Path {
            method: m,
            segments: pattern,
        } = self
        else {
            return Some(Vec::new());
        };
        if m.as_deref().is_some_and(|m| m != method) {
            return None;
        }
        let mut params = Vec::new();
        for (i, p) in pattern.iter().enumerate() {
            match p {
                Segment::Greedy(name) => {
                    let mut joined = String::new();
                    for (j, seg) in segments.get(i..)?.iter().enumerate() {
                        if j > 0 {
                            joined.push('/');
                        }
                        joined.push_str(seg.as_ref());
                    }
                    params.push((name.clone(), joined));
                    return Some(params);
                }
                Segment::Literal(l) => {
                    if segments.get(i)?.as_ref() != l {
                        return None;
                    }
                }
                Segment::Var(name) => {
                    let v = segments.get(i)?.as_ref();
                    if v.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), v.to_string()));
                }
            }
        }
        (segments.len() == pattern.len()).then_some(params)
    }
}

/// Specificity of a route key; see the module documentation for the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rank {
    class: u8,
    prefix: usize,
    literals: Vec<bool>,
    method: u8,
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> Ordering {
        self.class
            .cmp(&other.class)
            .then(self.prefix.cmp(&other.prefix))
            .then_with(|| {
                // left to right: the first position where one has a literal and the other not
                for (a, b) in self.literals.iter().zip(&other.literals) {
                    if a != b {
                        return a.cmp(b);
                    }
                }
                self.literals.len().cmp(&other.literals.len())
            })
            .then(self.method.cmp(&other.method))
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Splits a raw request path into percent-decoded segments. `/` is no segments; a trailing `/`
/// is ignored (`/pets/` is `/pets`); `%2F` never creates a segment.
/// (Segments borrow the path unless they had escapes; up to 8 live inline, so the usual path
/// allocates nothing.)
pub fn split_path(raw: &str) -> smallvec::SmallVec<[std::borrow::Cow<'_, str>; 8]> {
    let p = raw.strip_prefix('/').unwrap_or(raw);
    let p = p.strip_suffix('/').unwrap_or(p);
    if p.is_empty() {
        return smallvec::SmallVec::new();
    }
    p.split('/')
        .map(|s| {
            // most segments have nothing to decode (and a `&str` is valid UTF-8 already)
            if s.contains('%') {
                percent_encoding::percent_decode_str(s).decode_utf8_lossy()
            } else {
                std::borrow::Cow::Borrowed(s)
            }
        })
        .collect()
}

/// Routes compiled for selection; `T` is whatever the caller attaches to a route.
#[derive(Debug)]
pub struct Table<T> {
    routes: Vec<(RouteKey, T)>,
}

/// The route a request selected.
#[derive(Debug)]
pub struct Selected<'a, T> {
    pub key: &'a RouteKey,
    pub value: &'a T,
    pub params: Vec<(String, String)>,
}

impl<T> Table<T> {
    pub fn new(mut routes: Vec<(RouteKey, T)>) -> Table<T> {
        // most specific first; stable, so equal ranks keep their given order
        routes.sort_by_key(|(k, _)| std::cmp::Reverse(k.rank()));
        Table { routes }
    }

    pub fn select<S: AsRef<str>>(&self, method: &str, segments: &[S]) -> Option<Selected<'_, T>> {
        self.routes.iter().find_map(|(k, v)| {
            k.matches(method, segments).map(|params| Selected {
                key: k,
                value: v,
                params,
            })
        })
    }

    /// The attached values, most specific route first.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.routes.iter().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(keys: &[&str]) -> Table<String> {
        Table::new(
            keys.iter()
                .map(|k| (RouteKey::parse(k).unwrap(), (*k).to_string()))
                .collect(),
        )
    }

    fn check(keys: &[&str], method: &str, path: &str, expect: Option<&str>) {
        let t = table(keys);
        let got = t.select(method, &split_path(path)).map(|s| s.value.clone());
        assert_eq!(got.as_deref(), expect, "{method} {path}");
    }

    #[test]
    fn parse_errors() {
        use KeyError::*;
        let cases = [
            ("", Err(Missing)),
            ("GET", Err(Malformed)),
            ("get /a", Err(Malformed)),
            ("FETCH /a", Err(Malformed)),
            ("GET a", Err(Malformed)),
            ("GET  /a", Err(Malformed)),
            ("GET /pets/{id}.json", Err(InvalidPathPart)),
            ("GET /a{b}", Err(InvalidPathPart)),
            ("GET /{proxy+}/x", Err(InvalidPathPart)),
            ("GET /a//b", Err(InvalidPathPart)),
            ("GET /a/", Err(InvalidPathPart)),
            ("GET /{}", Err(InvalidPathPart)),
            ("GET /{a}/{a}", Err(DuplicateVariable)),
        ];
        for (k, want) in cases {
            assert_eq!(RouteKey::parse(k).map(|_| ()), want, "{k}");
        }
        assert_eq!(RouteKey::parse("$default"), Ok(RouteKey::Default));
        assert!(RouteKey::parse("ANY /").is_ok());
        assert!(RouteKey::parse("GET /pets/{id}/{proxy+}").is_ok());
    }

    #[test]
    fn documented_example() {
        let keys = [
            "GET /pets/dog/1",
            "GET /pets/dog/{id}",
            "GET /pets/{proxy+}",
            "ANY /{proxy+}",
            "$default",
        ];
        check(&keys, "GET", "/pets/dog/1", Some("GET /pets/dog/1"));
        check(&keys, "GET", "/pets/dog/2", Some("GET /pets/dog/{id}"));
        check(&keys, "GET", "/pets/cat/1", Some("GET /pets/{proxy+}"));
        check(&keys, "POST", "/test/5", Some("ANY /{proxy+}"));
        check(&keys, "POST", "/", Some("ANY /{proxy+}"));
    }

    #[test]
    fn method_before_any_and_no_405() {
        check(&["ANY /a", "GET /a"], "GET", "/a", Some("GET /a"));
        check(&["ANY /a", "GET /a"], "PUT", "/a", Some("ANY /a"));
        check(&["GET /pets"], "POST", "/pets", None);
        check(
            &["GET /pets", "$default"],
            "POST",
            "/pets",
            Some("$default"),
        );
        check(&["HEAD /a"], "GET", "/a", None);
    }

    #[test]
    fn literal_beats_variable_left_to_right() {
        let keys = ["GET /{a}/b", "GET /x/{b}"];
        check(&keys, "GET", "/x/b", Some("GET /x/{b}"));
        check(&keys, "GET", "/y/b", Some("GET /{a}/b"));
        // path specificity before method
        check(&["GET /{a}", "ANY /x"], "GET", "/x", Some("ANY /x"));
    }

    #[test]
    fn greedy_captures_zero_or_more() {
        let t = table(&["ANY /{proxy+}"]);
        let s = t.select("GET", &split_path("/")).unwrap();
        assert_eq!(s.params, vec![("proxy".into(), "".into())]);
        let s = t.select("GET", &split_path("/a/b%20c/")).unwrap();
        assert_eq!(s.params, vec![("proxy".into(), "a/b c".into())]);
        check(
            &["ANY /api/{proxy+}", "ANY /{proxy+}"],
            "GET",
            "/api/x",
            Some("ANY /api/{proxy+}"),
        );
        check(
            &["GET /items/{id}", "ANY /{proxy+}"],
            "GET",
            "/items/7",
            Some("GET /items/{id}"),
        );
        check(
            &["GET /items/{id}", "ANY /{proxy+}"],
            "GET",
            "/items/7/x",
            Some("ANY /{proxy+}"),
        );
        // an encoded slash stays inside its segment
        let t = table(&["GET /items/{id}"]);
        let s = t.select("GET", &split_path("/items/a%2Fb")).unwrap();
        assert_eq!(s.params, vec![("id".into(), "a/b".into())]);
    }

    // ---- property test against a naive reference matcher ----

    /// Matches by building a regular-language check by hand: each pattern segment consumes
    /// request segments from a queue; greedy takes the rest.
    fn naive_matches(key: &str, method: &str, path: &[String]) -> bool {
        if key == "$default" {
            return true;
        }
        let (m, p) = key.split_once(' ').unwrap();
        if m != "ANY" && m != method {
            return false;
        }
        let pat: Vec<&str> = p
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let mut queue: std::collections::VecDeque<&String> = path.iter().collect();
        for seg in pat {
            if seg.ends_with("+}") {
                return true;
            }
            let Some(v) = queue.pop_front() else {
                return false;
            };
            if seg.starts_with('{') {
                if v.is_empty() {
                    return false;
                }
            } else if seg != v {
                return false;
            }
        }
        queue.is_empty()
    }

    /// Is `a` more specific than `b`? Written as the documentation states it, pairwise.
    fn naive_better(a: &str, b: &str) -> bool {
        let class = |k: &str| {
            if k == "$default" {
                0
            } else if k.contains("+}") {
                1
            } else {
                2
            }
        };
        if class(a) != class(b) {
            return class(a) > class(b);
        }
        if class(a) == 0 {
            return false;
        }
        let segs = |k: &str| -> Vec<String> {
            k.split_once(' ')
                .unwrap()
                .1
                .split('/')
                .filter(|s| !s.is_empty() && !s.ends_with("+}"))
                .map(String::from)
                .collect()
        };
        let (sa, sb) = (segs(a), segs(b));
        if sa.len() != sb.len() {
            return sa.len() > sb.len();
        }
        for (x, y) in sa.iter().zip(&sb) {
            let (lx, ly) = (!x.starts_with('{'), !y.starts_with('{'));
            if lx != ly {
                return lx;
            }
        }
        let any = |k: &str| k.starts_with("ANY ");
        !any(a) && any(b)
    }

    fn naive_select(keys: &[String], method: &str, path: &[String]) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, k) in keys.iter().enumerate() {
            if !naive_matches(k, method, path) {
                continue;
            }
            best = match best {
                Some(b) if !naive_better(k, &keys[b]) => Some(b),
                _ => Some(i),
            };
        }
        best
    }

    fn arb_segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("{x}".to_string()),
            Just("{y}".to_string()),
        ]
    }

    fn arb_key() -> impl Strategy<Value = String> {
        let method = prop_oneof![Just("GET"), Just("POST"), Just("ANY")];
        prop_oneof![
            1 => Just("$default".to_string()),
            8 => (method, prop::collection::vec(arb_segment(), 0..4), any::<bool>()).prop_map(
                |(m, segs, greedy)| {
                    // variable names must be unique within a key
                    let segs: Vec<String> = segs
                        .into_iter()
                        .enumerate()
                        .map(|(i, s)| if s.starts_with('{') { format!("{{v{i}}}") } else { s })
                        .collect();
                    let mut p = segs.join("/");
                    if greedy {
                        if !p.is_empty() {
                            p.push('/');
                        }
                        p.push_str("{proxy+}");
                    }
                    format!("{m} /{p}")
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn selection_agrees_with_naive_reference(
            keys in prop::collection::vec(arb_key(), 1..8),
            method in prop_oneof![Just("GET"), Just("POST"), Just("PUT")],
            path in prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 0..5),
        ) {
            // route keys are unique within an API
            let mut uniq: Vec<String> = Vec::new();
            for k in keys { if !uniq.contains(&k) { uniq.push(k); } }
            let segs: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            let t = Table::new(uniq.iter().enumerate().map(|(i, k)| (RouteKey::parse(k).unwrap(), i)).collect());
            let got = t.select(method, &segs).map(|s| *s.value);
            let want = naive_select(&uniq, method, &segs);
            // both must agree on which key (indices may differ only if keys are equal-ranked
            // duplicates, which uniqueness rules out)
            prop_assert_eq!(got.map(|i| uniq[i].clone()), want.map(|i| uniq[i].clone()));
        }
    }
}
