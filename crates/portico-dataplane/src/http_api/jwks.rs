//! HOT PATH. JWT authorizers' signing keys, per issuer: `{issuer}/.well-known/openid-configuration`
//! -> `jwks_uri` -> the key set (RSA keys with a `kid`; API Gateway supports only RSA
//! algorithms), each fetch limited to 1500 ms. A fetch runs in its own task, one per issuer at a
//! time; the keys are cached for an hour, then refreshed in the background while the old ones
//! keep serving; a token naming an unknown `kid` triggers a refetch (at most one per
//! [`MIN_REFETCH`]). A request waits only when its issuer has no keys yet or its `kid` is
//! unknown, and then only for its issuer's one fetch; nothing else waits. Issuers must be
//! `https://`, except `http://` on loopback addresses (local identity providers and tests).

use super::tls;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Each of the two requests of a fetch (discovery document, key set).
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long fetched keys are used before a background refresh.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// The least time between two fetches for one issuer when a token names an unknown `kid` or
/// the last fetch failed (so bad tokens cannot hammer the identity provider).
pub(crate) const MIN_REFETCH: Duration = Duration::from_millis(1000);
/// Largest discovery document or key set read.
const MAX_DOCUMENT: usize = 1024 * 1024;

/// One verification key.
pub(crate) struct Key {
    pub(crate) key: DecodingKey,
    /// The JWK's `alg`, when it names one: a token must then use exactly that algorithm.
    pub(crate) alg: Option<Algorithm>,
}

struct KeySet {
    keys: HashMap<String, Arc<Key>>,
    fetched: Instant,
}

struct Slot {
    keys: Option<Arc<KeySet>>,
    /// Why the last fetch failed (cleared by a successful one).
    error: Option<String>,
    fetching: bool,
    last_start: Option<Instant>,
    /// Bumped when a fetch ends; waiters subscribe before it starts or while it runs.
    done: watch::Sender<u64>,
    /// Which slot this is: a fetch started for a slot since flushed does not fill its successor.
    id: u64,
}

fn next_slot_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Slot {
    fn new() -> Slot {
        Slot {
            keys: None,
            error: None,
            fetching: false,
            last_start: None,
            done: watch::channel(0).0,
            id: next_slot_id(),
        }
    }

    /// Back to never fetched, keeping the waiters: a fetch in flight no longer fills it, and the
    /// next prefetch or request starts a fresh one whose end wakes them.
    fn forget(&mut self) {
        self.keys = None;
        self.error = None;
        self.fetching = false;
        self.last_start = None;
        self.id = next_slot_id();
    }
}

/// Why no key could be had for a token.
#[derive(Debug, PartialEq)]
pub(crate) enum KeyError {
    /// The issuer's key set has no key with this `kid`.
    UnknownKid,
    /// The key set could not be fetched (this reason goes to `$context.authorizer.error`).
    Fetch(String),
}

/// Signing keys of every issuer the served APIs name.
pub(crate) struct Jwks {
    slots: Mutex<HashMap<String, Slot>>,
    client: tls::Lazy,
}

impl Jwks {
    pub(crate) fn new(client: tls::Lazy) -> Jwks {
        Jwks {
            slots: Mutex::default(),
            client,
        }
    }

    /// Starts fetching the keys of issuers not fetched yet (called when a snapshot is
    /// published, so the first request to a JWT route rarely waits). Needs a tokio runtime;
    /// without one it does nothing.
    pub(crate) fn prefetch<'a>(self: &Arc<Self>, issuers: impl IntoIterator<Item = &'a str>) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut slots = self.slots.lock();
        for issuer in issuers {
            let slot = slots.entry(issuer.to_string()).or_insert_with(Slot::new);
            if slot.keys.is_none() && !slot.fetching && slot.last_start.is_none() {
                self.start(issuer, slot);
            }
        }
    }

    /// Forgets the keys of `issuers` (ResetAuthorizersCache): they are fetched again on the
    /// next prefetch or request. Requests waiting for a fetch in flight keep waiting, for the
    /// fresh one.
    pub(crate) fn flush<'a>(&self, issuers: impl IntoIterator<Item = &'a str>) {
        let mut slots = self.slots.lock();
        for issuer in issuers {
            if let Some(slot) = slots.get_mut(issuer) {
                slot.forget();
            }
        }
    }

    /// The key `kid` of `issuer`, fetching the issuer's key set when needed.
    pub(crate) async fn key(
        self: &Arc<Self>,
        issuer: &str,
        kid: &str,
    ) -> Result<Arc<Key>, KeyError> {
        let mut rx = {
            let mut slots = self.slots.lock();
            let slot = slots.entry(issuer.to_string()).or_insert_with(Slot::new);
            let now = Instant::now();
            // a fetch whose task died with its runtime never reports: forget it
            if slot.fetching
                && slot
                    .last_start
                    .is_some_and(|t| now.duration_since(t) > FETCH_TIMEOUT * 3)
            {
                slot.fetching = false;
            }
            if let Some(ks) = &slot.keys {
                if let Some(k) = ks.keys.get(kid) {
                    let k = k.clone();
                    if now.duration_since(ks.fetched) > MAX_AGE && !slot.fetching {
                        self.start(issuer, slot);
                    }
                    return Ok(k);
                }
            }
            if !slot.fetching {
                let recent = slot
                    .last_start
                    .is_some_and(|t| now.duration_since(t) < MIN_REFETCH);
                if recent {
                    return Err(Self::failure(slot));
                }
                self.start(issuer, slot);
            }
            slot.done.subscribe()
        };
        // the fetch task always ends within its two timeouts; the margin covers scheduling
        let _ = tokio::time::timeout(FETCH_TIMEOUT * 2 + Duration::from_millis(500), rx.changed())
            .await;
        let slots = self.slots.lock();
        let Some(slot) = slots.get(issuer) else {
            return Err(KeyError::UnknownKid);
        };
        match slot.keys.as_ref().and_then(|ks| ks.keys.get(kid)) {
            Some(k) => Ok(k.clone()),
            None => Err(Self::failure(slot)),
        }
    }

    fn failure(slot: &Slot) -> KeyError {
        match (&slot.keys, &slot.error) {
            (None, Some(e)) => KeyError::Fetch(e.clone()),
            (None, None) => KeyError::Fetch("the signing keys are not fetched yet".into()),
            (Some(_), _) => KeyError::UnknownKid,
        }
    }

    /// Marks `slot` fetching and spawns the fetch. The caller holds the lock.
    fn start(self: &Arc<Self>, issuer: &str, slot: &mut Slot) {
        slot.fetching = true;
        slot.last_start = Some(Instant::now());
        let this = self.clone();
        let issuer = issuer.to_string();
        let id = slot.id;
        tokio::spawn(async move {
            let r = this.fetch(&issuer).await;
            let mut slots = this.slots.lock();
            if let Some(slot) = slots.get_mut(&issuer).filter(|s| s.id == id) {
                slot.fetching = false;
                match r {
                    Ok(ks) => {
                        slot.keys = Some(Arc::new(ks));
                        slot.error = None;
                    }
                    Err(e) => {
                        tracing::debug!(issuer = %issuer, error = %e, "JWKS fetch failed");
                        slot.error = Some(e);
                    }
                }
                slot.done.send_modify(|g| *g += 1);
            }
        });
    }

    async fn fetch(&self, issuer: &str) -> Result<KeySet, String> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.get_json(&discovery).await?;
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{discovery} names no jwks_uri"))?;
        let set = self.get_json(jwks_uri).await?;
        let set: JwkSet = serde_json::from_value(set)
            .map_err(|e| format!("{jwks_uri} is not a JSON Web Key Set: {e}"))?;
        Ok(KeySet {
            keys: rsa_keys(&set),
            fetched: Instant::now(),
        })
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let uri: http::Uri = url.parse().map_err(|_| format!("{url} is not a URL"))?;
        fetchable(&uri)?;
        let client = self.client.get().map_err(str::to_string)?;
        let mut req = http::Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = uri;
        req.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        let exchange = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| format!("{url}: {}", tls::error_chain(&e)))?;
            if resp.status() != http::StatusCode::OK {
                return Err(format!("{url} answered {}", resp.status()));
            }
            #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
            let body = Limited::new(resp.into_body(), MAX_DOCUMENT)
                .collect()
                .await
                .map_err(|e| format!("{url}: {e}"))?
                .to_bytes();
            serde_json::from_slice::<Value>(&body).map_err(|e| format!("{url}: not JSON: {e}"))
        };
        tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                format!(
                    "{url} did not answer within {} ms",
                    FETCH_TIMEOUT.as_millis()
                )
            })?
    }
}

/// `https://` anywhere; `http://` only to a loopback address (AWS requires https; Portico
/// allows local identity providers).
pub(crate) fn fetchable(uri: &http::Uri) -> Result<(), String> {
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => {
            let host = uri.host().unwrap_or("");
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "{uri}: an issuer must use https (http is allowed on loopback addresses only)"
                ))
            }
        }
        _ => Err(format!("{uri}: an issuer must use https")),
    }
}

/// The RSA keys of a key set that have a `kid`, by `kid`.
fn rsa_keys(set: &JwkSet) -> HashMap<String, Arc<Key>> {
    let mut out = HashMap::new();
    for jwk in &set.keys {
        let (Some(kid), AlgorithmParameters::RSA(_)) = (&jwk.common.key_id, &jwk.algorithm) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let alg = match jwk.common.key_algorithm {
            Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
            Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
            Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
            Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
            Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
            Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
            _ => None,
        };
        out.insert(kid.clone(), Arc::new(Key { key, alg }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_issuers_only_on_loopback() {
        let ok = |u: &str| fetchable(&u.parse().unwrap()).is_ok();
        assert!(ok("https://idp.example.com/pool"));
        assert!(ok("http://127.0.0.1:8080/x"));
        assert!(ok("http://127.9.0.1/x"));
        assert!(ok("http://[::1]:9/x"));
        assert!(ok("http://localhost:9/x"));
        assert!(!ok("http://idp.example.com/x"));
        assert!(!ok("http://10.0.0.1/x"));
        assert!(!ok("ftp://127.0.0.1/x"));
    }

    #[test]
    fn only_rsa_keys_with_a_kid_are_kept() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "alg": "RS256", "use": "sig",
             "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
             "e": "AQAB"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "EC", "kid": "e", "crv": "P-256",
             "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
             "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}
        ]}))
        .unwrap();
        let keys = rsa_keys(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["a"].alg, Some(Algorithm::RS256));
    }

    #[tokio::test]
    async fn unreachable_issuer_fails_and_is_not_refetched_at_once() {
        // a port nothing listens on: bind then drop
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let jwks = Arc::new(Jwks::new(tls::Lazy::default()));
        let issuer = format!("http://127.0.0.1:{port}");
        match jwks.key(&issuer, "k").await {
            Err(KeyError::Fetch(e)) => assert!(e.contains("openid-configuration"), "{e}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        // right after, the failure is answered from the cache, without a new fetch
        let first = jwks.slots.lock()[&issuer].last_start;
        assert!(matches!(
            jwks.key(&issuer, "k").await,
            Err(KeyError::Fetch(_))
        ));
        assert_eq!(jwks.slots.lock()[&issuer].last_start, first);
    }

    #[tokio::test]
    async fn a_flushed_issuer_is_fetched_again_at_once() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let jwks = Arc::new(Jwks::new(tls::Lazy::default()));
        let issuer = format!("http://127.0.0.1:{port}");
        assert!(jwks.key(&issuer, "k").await.is_err());
        let first = jwks.slots.lock()[&issuer].last_start;
        jwks.flush(["http://other.example", issuer.as_str()]);
        assert!(jwks.slots.lock()[&issuer].last_start.is_none());
        // within MIN_REFETCH of the last fetch, yet fetched again
        assert!(jwks.key(&issuer, "k").await.is_err());
        let second = jwks.slots.lock()[&issuer].last_start;
        assert!(second.is_some() && second != first);
    }

    #[tokio::test]
    async fn plain_http_issuer_off_loopback_is_refused_without_a_request() {
        let jwks = Arc::new(Jwks::new(tls::Lazy::default()));
        match jwks.key("http://idp.example.com", "k").await {
            Err(KeyError::Fetch(e)) => assert!(e.contains("must use https"), "{e}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
