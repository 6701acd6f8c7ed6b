//! HOT PATH. The TLS client for `https://` integrations and for fetching JWT authorizers'
//! discovery documents and key sets: rustls with the ring provider, trust roots from the OS
//! store plus an optional extra CA bundle that the binary hands over ([`set_extra_ca_pem`]),
//! SNI = the URI's host, keep-alive connections pooled by hyper's client as on the http path.
//! A certificate that does not verify is told apart from other failures ([`is_tls_failure`]).

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Extra trust roots, set once by the binary before serving.
static EXTRA_ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();

/// Why an extra CA bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("no PEM certificate in the CA bundle")]
    Empty,
    #[error("the CA bundle is not valid PEM: {0}")]
    Pem(String),
    #[error("an extra CA bundle was already set")]
    AlreadySet,
}

/// Trusts the certificates of a PEM bundle besides the OS store, for every https integration
/// and JWKS fetch of this process (tests use a self-signed CA). Call once, before serving.
/// Returns how many certificates were added.
pub fn set_extra_ca_pem(pem: &[u8]) -> Result<usize, CaError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(CaError::Empty);
    }
    let n = certs.len();
    EXTRA_ROOTS.set(certs).map_err(|_| CaError::AlreadySet)?;
    Ok(n)
}

fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        tracing::debug!(errors = ?native.errors, "some OS trust roots could not be read");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(extra) = EXTRA_ROOTS.get() {
        let (a, i) = roots.add_parsable_certificates(extra.iter().cloned());
        if i > 0 {
            tracing::warn!(
                ignored = i,
                "extra CA certificates that are not usable trust roots"
            );
        }
        tracing::debug!(os = added, extra = a, ignored, "TLS trust roots loaded");
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// hyper's pooled client over http and https (`https_or_http`).
pub(crate) type HttpsClient =
    hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

fn build() -> Result<HttpsClient, String> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config().map_err(|e| format!("TLS client configuration failed: {e}"))?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector),
    )
}

/// The https client of one engine, built on first use (reading the OS trust store takes a few
/// milliseconds that an engine without https integrations never pays).
#[derive(Clone, Default)]
pub(crate) struct Lazy(Arc<OnceLock<Result<HttpsClient, String>>>);

impl Lazy {
    /// The client, or why it could not be built (then every https request fails with it).
    pub(crate) fn get(&self) -> Result<&HttpsClient, &str> {
        self.0.get_or_init(build).as_ref().map_err(String::as_str)
    }
}

/// Why an https exchange failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The TLS handshake failed (certificate, name, protocol): AWS answers 500.
    Tls(String),
    /// Connect refused, reset, DNS: 503 as on the http path.
    Unreachable(String),
    /// The response body is over the payload limit.
    TooLarge,
    /// No TLS client could be built.
    Config(String),
}

/// Sends one request to an `https://` URI and reads the whole response (at most `limit` bytes).
pub(crate) async fn send(
    client: &Lazy,
    req: http::Request<Full<Bytes>>,
    limit: usize,
) -> Result<(http::response::Parts, Bytes), Failure> {
    use http_body_util::{BodyExt, Limited};
    let c = client.get().map_err(|e| Failure::Config(e.to_string()))?;
    let resp = c.request(req).await.map_err(|e| {
        let detail = error_chain(&e);
        if is_tls_failure(&e) {
            Failure::Tls(format!(
                "TLS handshake with the integration failed: {detail}"
            ))
        } else {
            Failure::Unreachable(format!("integration unreachable: {detail}"))
        }
    })?;
    let (parts, body) = resp.into_parts();
    #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
    let collected = Limited::new(body, limit).collect().await;
    match collected {
        Ok(b) => Ok((parts, b.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Failure::TooLarge),
        Err(e) => Err(Failure::Unreachable(format!(
            "integration response failed: {e}"
        ))),
    }
}

/// The gateway's answer to a failed https exchange: (status, message, integration error).
pub(crate) fn gateway_answer(f: Failure) -> (u16, &'static str, String) {
    match f {
        Failure::Tls(e) | Failure::Config(e) => (500, "Internal Server Error", e),
        Failure::Unreachable(e) => (503, "Service Unavailable", e),
        Failure::TooLarge => (
            500,
            "Internal Server Error",
            "integration response exceeds 10 MB".into(),
        ),
    }
}

/// An error and its causes, `: `-joined (hyper's own message says little).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = s.source();
    }
    out
}

/// True when a request failed because the TLS handshake failed (a certificate that does not
/// verify, a name mismatch, a protocol alert), rather than the connection itself.
pub(crate) fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    // `io::Error::source` skips the error it wraps, so wrapped errors are visited explicitly
    let mut todo: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(err) = todo.pop() {
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            todo.push(inner);
        }
        if let Some(s) = err.source() {
            todo.push(s);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_are_found_in_the_source_chain() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(is_tls_failure(&io));
        let nested = std::io::Error::other(io);
        assert!(is_tls_failure(&nested));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!is_tls_failure(&refused));
    }

    #[test]
    fn extra_ca_must_be_pem() {
        assert!(matches!(
            set_extra_ca_pem(b"nothing here"),
            Err(CaError::Empty)
        ));
    }
}
