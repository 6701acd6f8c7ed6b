//! TLS for load balancers: termination on HTTPS (ALB) and TLS (NLB) listeners with rustls
//! (ring provider), SNI selection among a listener's certificates, ALPN, certificate/key
//! inspection for the control plane (IAM's UploadServerCertificate checks), self-signed
//! certificates for certificate ARNs Portico cannot hold (ACM), a TLS client for TLS and HTTPS
//! target groups (which, as on AWS, does not validate the target's certificate), and API
//! Gateway's side of a private integration's `tlsConfig` (a handshake with the listener that
//! checks the certificate's name; see docs/tls-upstreams.md).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// One certificate of a listener, PEM-encoded as IAM stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPem {
    pub certificate: String,
    /// Intermediate certificates, leaf's issuer first.
    pub chain: Option<String>,
    pub private_key: String,
}

/// What a TLS-terminating listener serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSpec {
    /// The listener's certificates; the first is the default (served without SNI, or when no
    /// certificate matches the client's server name).
    pub certificates: Vec<CertPem>,
    /// ALPN protocol ids offered, in the server's order of preference (empty = no ALPN).
    pub alpn: Vec<String>,
    /// The security policy allows TLS 1.3 only.
    pub tls13_only: bool,
}

/// Why a certificate or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("Unable to parse certificate. Please ensure the certificate is in PEM format.")]
    MalformedCertificate,
    #[error(
        "Unable to parse certificate chain. Please ensure the certificate chain is in PEM format."
    )]
    MalformedChain,
    #[error("Unable to parse private key. Please ensure the private key is in PEM format and unencrypted.")]
    MalformedKey,
    #[error("The private key did not match the public key embedded in the certificate.")]
    KeyMismatch,
    #[error("Unable to create a certificate: {0}")]
    Generate(String),
}

/// Facts about an accepted certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Validity, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// DNS names (subject alternative names, else the subject's common name), lower-cased.
    pub names: Vec<String>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn parse_certs(pem: &str, err: CertError) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| err.clone())?;
    if certs.is_empty() {
        return Err(err);
    }
    Ok(certs)
}

fn names_and_validity(der: &[u8]) -> Result<CertInfo, CertError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CertError::MalformedCertificate)?;
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    let v = cert.validity();
    Ok(CertInfo {
        not_before: v.not_before.timestamp(),
        not_after: v.not_after.timestamp(),
        names,
    })
}

/// Is this a [`self_signed`] stand-in for an ACM certificate?
fn is_stand_in(der: &[u8]) -> bool {
    use x509_parser::prelude::*;
    X509Certificate::from_der(der).is_ok_and(|(_, c)| {
        c.subject()
            .iter_organization()
            .any(|o| o.as_str() == Ok(STAND_IN_ORG))
    })
}

/// Parses a certificate, its optional chain and its private key, and checks that the key
/// belongs to the certificate.
fn certified(c: &CertPem) -> Result<(CertifiedKey, CertInfo), CertError> {
    let mut certs = parse_certs(&c.certificate, CertError::MalformedCertificate)?;
    if certs.len() != 1 {
        return Err(CertError::MalformedCertificate);
    }
    let info = names_and_validity(&certs[0])?;
    if let Some(chain) = c.chain.as_deref().filter(|s| !s.trim().is_empty()) {
        let chain = parse_certs(chain, CertError::MalformedChain)?;
        for der in &chain {
            names_and_validity(der).map_err(|_| CertError::MalformedChain)?;
        }
        certs.extend(chain);
    }
    let key = PrivateKeyDer::from_pem_slice(c.private_key.as_bytes())
        .map_err(|_| CertError::MalformedKey)?;
    let provider = provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| CertError::MalformedKey)?;
    let ck = CertifiedKey::new(certs, signing);
    match ck.keys_match() {
        Ok(()) => Ok((ck, info)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok((ck, info)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(CertError::KeyMismatch),
        Err(_) => Err(CertError::MalformedCertificate),
    }
}

/// Checks a certificate (with optional chain) and private key as IAM does on upload.
pub fn inspect(c: &CertPem) -> Result<CertInfo, CertError> {
    certified(c).map(|(_, info)| info)
}

/// The subject organization of [`self_signed`] certificates: they stand in for ACM
/// certificates, whose names Portico cannot know (there is no ACM), so API Gateway's
/// `serverNameToVerify` check accepts any name on them.
const STAND_IN_ORG: &str = "Portico stand-in for an ACM certificate";

/// A self-signed certificate (ECDSA P-256) for `dns_name`, valid for ten years, marked as a
/// stand-in for an ACM certificate ([`STAND_IN_ORG`]).
pub fn self_signed(dns_name: &str) -> Result<CertPem, CertError> {
    let key = rcgen::KeyPair::generate().map_err(|e| CertError::Generate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec![dns_name.to_string()])
        .map_err(|e| CertError::Generate(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, dns_name);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, STAND_IN_ORG);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params
        .self_signed(&key)
        .map_err(|e| CertError::Generate(e.to_string()))?;
    Ok(CertPem {
        certificate: cert.pem(),
        chain: None,
        private_key: key.serialize_pem(),
    })
}

/// Does certificate name `pattern` (possibly `*.example.com`) cover `host`? A wildcard covers
/// exactly one leftmost label.
pub(crate) fn name_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
        None => host == pattern,
    }
}

/// Picks the certificate for a client's server name: an exact name match first, then a
/// wildcard match, else the default (first) certificate.
#[derive(Debug)]
struct SniResolver {
    certs: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl SniResolver {
    fn choose(&self, sni: Option<&str>) -> Option<usize> {
        if let Some(host) = sni {
            let host = host.to_ascii_lowercase();
            let exact = self
                .certs
                .iter()
                .position(|(names, _)| names.contains(&host));
            let wild = || {
                self.certs.iter().position(|(names, _)| {
                    names
                        .iter()
                        .any(|n| n.starts_with("*.") && name_matches(n, &host))
                })
            };
            if let Some(i) = exact.or_else(wild) {
                return Some(i);
            }
        }
        (!self.certs.is_empty()).then_some(0)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let i = self.choose(hello.server_name())?;
        Some(self.certs[i].1.clone())
    }
}

/// A TLS acceptor serving `spec`'s certificates. Certificates that fail to parse are skipped
/// (with a warning); with none left this fails.
pub(crate) fn acceptor(spec: &TlsSpec) -> Result<tokio_rustls::TlsAcceptor, CertError> {
    let mut certs = Vec::new();
    for c in &spec.certificates {
        match certified(c) {
            Ok((ck, info)) => certs.push((info.names, Arc::new(ck))),
            Err(e) => tracing::warn!(error = %e, "listener certificate skipped"),
        }
    }
    if certs.is_empty() {
        return Err(CertError::MalformedCertificate);
    }
    let versions: &[&rustls::SupportedProtocolVersion] = if spec.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| CertError::Generate(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { certs }));
    cfg.alpn_protocols = spec.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// How Portico's TLS clients judge a server certificate; the handshake signatures are always
/// checked. Targets' certificates are accepted as they are (AWS load balancers do not validate
/// them); a VPC link with a `tlsConfig` checks the listener's certificate ([`check_link_cert`]).
#[derive(Debug)]
struct CertCheck {
    provider: Arc<CryptoProvider>,
    /// Check dates and the server name (VPC links), or accept any certificate (targets).
    link: bool,
}

#[cfg(test)]
impl CertCheck {
    /// A target-style check (any certificate), for test clients.
    fn any(provider: Arc<CryptoProvider>) -> CertCheck {
        CertCheck {
            provider,
            link: false,
        }
    }
}

impl ServerCertVerifier for CertCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.link {
            return Ok(ServerCertVerified::assertion());
        }
        let name = match server_name {
            ServerName::DnsName(d) => Some(d.as_ref()),
            // no serverNameToVerify: the connection was opened by address, no name to check
            _ => None,
        };
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        check_link_cert(end_entity, name, now).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client that judges certificates as `link` says ([`CertCheck`]), made once per kind.
fn connector(link: bool) -> Option<tokio_rustls::TlsConnector> {
    type Cell = std::sync::OnceLock<Option<tokio_rustls::TlsConnector>>;
    static TARGETS: Cell = Cell::new();
    static LINKS: Cell = Cell::new();
    let cell = if link { &LINKS } else { &TARGETS };
    cell.get_or_init(|| {
        let provider = provider();
        let check = CertCheck {
            provider: provider.clone(),
            link,
        };
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(check))
            .with_no_client_auth();
        Some(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
    })
    .clone()
}

/// The TLS client for TLS target groups.
pub(crate) fn target_connector() -> Option<tokio_rustls::TlsConnector> {
    connector(false)
}

/// Opens TLS over a connection to a target (TLS target groups, HTTPS health checks), within
/// the handshake timeout; the target's certificate is not validated.
pub(crate) async fn connect_target(
    upstream: tokio::net::TcpStream,
    addr: std::net::SocketAddr,
) -> Option<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let connector = target_connector()?;
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, upstream))
        .await
        .ok()?
        .ok()
}

/// A private integration's `tlsConfig`: API Gateway speaks TLS to the listener, sends
/// `server_name` (`serverNameToVerify`) as SNI and checks that the listener's certificate
/// covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTls {
    pub server_name: Option<String>,
}

/// The VPC-link certificate check ([`CertCheck`] with `link`): the validity dates and, when the
/// connection was opened with a server name (`serverNameToVerify`), that one of the
/// certificate's names covers it. The issuer is not checked (unconfirmed: AWS may require a
/// trusted CA; a listener's IAM certificate is often self-signed locally).
fn check_link_cert(der: &[u8], server_name: Option<&str>, now: i64) -> Result<(), rustls::Error> {
    use rustls::CertificateError;
    let info = names_and_validity(der)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    if now < info.not_before {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if now > info.not_after {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    match server_name {
        // an ACM certificate's names are unknown here: its stand-in passes any name
        Some(host) if !info.names.iter().any(|n| name_matches(n, host)) && !is_stand_in(der) => {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ))
        }
        _ => Ok(()),
    }
}

/// API Gateway's TLS client for private integrations with a `tlsConfig`.
fn link_connector() -> Option<tokio_rustls::TlsConnector> {
    connector(true)
}

/// The name API Gateway connects with: `serverNameToVerify` as SNI, else no SNI (an address).
fn link_server_name(server_name: Option<&str>) -> Result<ServerName<'static>, String> {
    match server_name {
        Some(n) => ServerName::try_from(n.to_string())
            .map_err(|_| format!("serverNameToVerify {n} is not a valid server name")),
        None => Ok(ServerName::IpAddress(
            std::net::IpAddr::from([127, 0, 0, 1]).into(),
        )),
    }
}

/// The TLS handshake API Gateway makes with a listener for a private integration with a
/// `tlsConfig`, run in memory against the listener's own acceptor (the request then goes to
/// the ALB in-process, as if it came out of this connection). `acceptor` is `None` for a
/// listener that does not speak TLS (HTTP): the handshake fails, as a ClientHello sent to a
/// plain HTTP port does.
pub(crate) async fn link_handshake(
    acceptor: Option<&tokio_rustls::TlsAcceptor>,
    link: &LinkTls,
) -> Result<(), String> {
    let Some(acceptor) = acceptor else {
        return Err("TLS handshake failed: the listener does not speak TLS".into());
    };
    let connector = link_connector().ok_or("TLS client configuration failed")?;
    let name = link_server_name(link.server_name.as_deref())?;
    let (a, b) = tokio::io::duplex(16 * 1024);
    let server = async move {
        // the server side ends with the client's failure (an alert, or the pipe closing)
        let _ = acceptor.accept(b).await;
    };
    let client = async move { connector.connect(name, a).await };
    let handshake = async {
        let (_, c) = tokio::join!(server, client);
        c
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Err(_) => Err("TLS handshake with the listener timed out".into()),
        Ok(Err(e)) => Err(format!("TLS handshake with the listener failed: {e}")),
        Ok(Ok(_)) => Ok(()),
    }
}

/// How long a link handshake's outcome is reused for requests to the same listener (as
/// published) with the same server name; the certificates' dates are checked again after it.
const LINK_CHECK_TTL: std::time::Duration = std::time::Duration::from_secs(60);
const LINK_CHECKS: usize = 64;

type LinkCheck = (
    std::sync::Weak<super::ListenerRt>,
    Option<String>,
    std::time::Instant,
    Result<(), String>,
);

/// [`link_handshake`] with the listener's acceptor, its outcome remembered per (listener
/// snapshot, server name) for [`LINK_CHECK_TTL`]: API Gateway keeps its connections to a
/// listener alive, so a request does not pay for a full handshake (an RSA signature is about a
/// millisecond). A new snapshot of the listener (e.g. a certificate change) is checked afresh.
pub(crate) async fn link_check(l: &Arc<super::ListenerRt>, link: &LinkTls) -> Result<(), String> {
    static CHECKS: parking_lot::Mutex<Vec<LinkCheck>> = parking_lot::Mutex::new(Vec::new());
    let fresh = |c: &LinkCheck| c.2.elapsed() < LINK_CHECK_TTL && c.0.strong_count() > 0;
    {
        let checks = CHECKS.lock();
        // a Weak keeps its allocation: equal pointers mean this very listener snapshot
        if let Some(c) = checks.iter().find(|c| {
            std::ptr::eq(c.0.as_ptr(), Arc::as_ptr(l)) && c.1 == link.server_name && fresh(c)
        }) {
            return c.3.clone();
        }
    }
    let r = link_handshake(l.tls.as_ref(), link).await;
    let mut checks = CHECKS.lock();
    checks.retain(fresh);
    if checks.len() >= LINK_CHECKS {
        let _ = checks.remove(0);
    }
    checks.push((
        Arc::downgrade(l),
        link.server_name.clone(),
        std::time::Instant::now(),
        r.clone(),
    ));
    r
}

/// API Gateway's TLS connection to a listener's socket (an NLB's: TLS listeners terminate it,
/// TCP listeners pass it through to a target that must speak TLS itself).
pub(crate) async fn connect_link(
    tcp: tokio::net::TcpStream,
    link: &LinkTls,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let connector = link_connector().ok_or("TLS client configuration failed")?;
    let name = link_server_name(link.server_name.as_deref())?;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => Err("TLS handshake with the listener timed out".into()),
        Ok(Err(e)) => Err(format!("TLS handshake with the listener failed: {e}")),
        Ok(Ok(s)) => Ok(s),
    }
}

/// What an ALB's HTTPS listener answers a plain HTTP request with (as API Gateway's private
/// integrations send without a `tlsConfig`).
pub(crate) fn plain_http_to_https_port() -> http::Response<crate::body::Body> {
    let body = "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port</center>\r\n</body>\r\n</html>\r\n";
    let mut r = http::Response::new(crate::body::full(body));
    *r.status_mut() = http::StatusCode::BAD_REQUEST;
    let h = r.headers_mut();
    h.insert(
        http::header::SERVER,
        http::HeaderValue::from_static("awselb/2.0"),
    );
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html"),
    );
    r
}

/// How long a TLS handshake (client or target side) may take.
pub(crate) const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_names() {
        assert!(name_matches("*.example.com", "a.example.com"));
        assert!(name_matches("*.example.com", "A.Example.COM"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(name_matches("www.example.com", "www.example.com."));
        assert!(!name_matches("www.example.com", "ww.example.com"));
    }

    #[test]
    fn inspect_checks_pem_and_key_pair() {
        let a = self_signed("a.example.com").unwrap();
        let b = self_signed("b.example.com").unwrap();
        let info = inspect(&a).unwrap();
        assert_eq!(info.names, vec!["a.example.com".to_string()]);
        assert!(info.not_after > info.not_before);
        let mismatched = CertPem {
            private_key: b.private_key.clone(),
            ..a.clone()
        };
        assert_eq!(inspect(&mismatched), Err(CertError::KeyMismatch));
        let garbage = CertPem {
            certificate: "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n".into(),
            ..a.clone()
        };
        assert_eq!(inspect(&garbage), Err(CertError::MalformedCertificate));
        let no_key = CertPem {
            private_key: "not a key".into(),
            ..a.clone()
        };
        assert_eq!(inspect(&no_key), Err(CertError::MalformedKey));
        let bad_chain = CertPem {
            chain: Some("junk".into()),
            ..a
        };
        assert_eq!(inspect(&bad_chain), Err(CertError::MalformedChain));
    }

    /// Handshakes over an in-memory pipe; returns (ALPN chosen, DER of the served certificate).
    async fn handshake(
        spec: &TlsSpec,
        sni: &str,
        alpn: &[&str],
        tls12_only: bool,
    ) -> Option<(Option<Vec<u8>>, Vec<u8>)> {
        let acceptor = acceptor(spec).unwrap();
        let p = provider();
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let mut cfg = rustls::ClientConfig::builder_with_provider(p.clone())
            .with_protocol_versions(versions)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CertCheck::any(p)))
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
        let (a, b) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move { acceptor.accept(b).await.ok().map(|_| ()) });
        let name = ServerName::try_from(sni.to_string()).unwrap();
        let client = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, a)
            .await
            .ok()?;
        server.await.unwrap()?;
        let conn = client.get_ref().1;
        Some((
            conn.alpn_protocol().map(<[u8]>::to_vec),
            conn.peer_certificates()?[0].to_vec(),
        ))
    }

    fn der(pem: &CertPem) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.certificate.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn acceptor_serves_by_sni_with_alpn_and_policy() {
        let a = self_signed("a.example.com").unwrap();
        let b = self_signed("b.example.com").unwrap();
        let mut spec = TlsSpec {
            certificates: vec![a.clone(), b.clone()],
            alpn: vec!["h2".into(), "http/1.1".into()],
            tls13_only: false,
        };
        let (alpn, cert) = handshake(&spec, "b.example.com", &["http/1.1", "h2"], false)
            .await
            .unwrap();
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "server preference wins");
        assert_eq!(cert, der(&b));
        let (alpn, cert) = handshake(&spec, "c.example.com", &["http/1.1"], true)
            .await
            .unwrap();
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(cert, der(&a), "no name matches: the default certificate");
        spec.tls13_only = true;
        assert!(handshake(&spec, "a.example.com", &[], true).await.is_none());
        assert!(handshake(&spec, "a.example.com", &[], false)
            .await
            .is_some());
    }

    /// An HTTPS ALB listener through the real accept path: TLS, ALPN h2, an HTTP/2 request
    /// answered by the listener's fixed-response rule.
    #[tokio::test]
    async fn https_listener_serves_h2_over_tls() {
        use super::super::*;
        let e = Engine::default();
        let cert = self_signed("web.example.com").unwrap();
        let spec = ListenerSpec {
            arn: "l".into(),
            port: 443,
            protocol: "HTTPS".into(),
            rules: vec![Rule {
                priority: u32::MAX,
                conditions: vec![],
                action: Action::Fixed {
                    status: 200,
                    content_type: Some("text/plain".into()),
                    body: "over h2".into(),
                },
            }],
            tls: Some(TlsSpec {
                certificates: vec![cert],
                alpn: vec!["h2".into(), "http/1.1".into()],
                tls13_only: false,
            }),
            udp_idle_timeout: std::time::Duration::ZERO,
            tcp_idle_timeout: std::time::Duration::ZERO,
        };
        let snapshot = Snapshot {
            load_balancers: vec![fixture::lb(LbKind::Application, "web", vec![spec])],
            target_groups: vec![],
        };
        e.publish(snapshot, &crate::addr::AddressBook::default());
        let bound = e.bind(vec![ListenerBind {
            arn: "l".into(),
            ip: "127.0.0.1".parse().unwrap(),
            port: 0,
            kind: LbKind::Application,
            protocol: "HTTPS".into(),
            udp_idle_timeout: std::time::Duration::ZERO,
        }]);
        let tcp = tokio::net::TcpStream::connect(bound["l"]).await.unwrap();
        let p = provider();
        let mut cfg = rustls::ClientConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CertCheck::any(p)))
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(ServerName::try_from("web.example.com").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let req = http::Request::builder()
            .uri("https://web.example.com/")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
        let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
            resp.into_body(),
            1 << 16,
        ))
        .await
        .unwrap()
        .to_bytes();
        assert_eq!(&body[..], b"over h2");
    }

    #[test]
    fn sni_prefers_exact_then_wildcard_then_default() {
        let key = |n: &str| {
            let (ck, _) = certified(&self_signed(n).unwrap()).unwrap();
            Arc::new(ck)
        };
        let r = SniResolver {
            certs: vec![
                (vec!["default.example".into()], key("default.example")),
                (vec!["*.example.com".into()], key("x.example.com")),
                (vec!["api.example.com".into()], key("api.example.com")),
            ],
        };
        assert_eq!(r.choose(None), Some(0));
        assert_eq!(r.choose(Some("other.test")), Some(0));
        assert_eq!(r.choose(Some("www.example.com")), Some(1));
        assert_eq!(r.choose(Some("API.example.com")), Some(2));
    }

    /// A certificate for `name` as a user would upload to IAM (not an ACM stand-in).
    fn iam_cert(name: &str) -> CertPem {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        CertPem {
            certificate: cert.pem(),
            chain: None,
            private_key: key.serialize_pem(),
        }
    }

    /// A certificate for `names`, valid from `from` to `to` days from now.
    fn cert_for(names: &[&str], from: i64, to: i64) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(from);
        params.not_after = now + time::Duration::days(to);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn link_certificate_checks() {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let check = |names: &[&str], from, to, host: Option<&str>| {
            check_link_cert(&cert_for(names, from, to), host, now)
        };
        let name_err = Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName,
        ));
        assert_eq!(
            check(&["api.example.com"], -1, 1, Some("api.example.com")),
            Ok(())
        );
        assert_eq!(
            check(&["API.example.com"], -1, 1, Some("api.EXAMPLE.com")),
            Ok(())
        );
        assert_eq!(
            check(&["*.example.com"], -1, 1, Some("api.example.com")),
            Ok(())
        );
        assert_eq!(
            check(&["*.example.com"], -1, 1, Some("example.com")),
            name_err
        );
        assert_eq!(check(&["a.test", "b.test"], -1, 1, Some("b.test")), Ok(()));
        assert_eq!(
            check(&["api.example.com"], -1, 1, Some("web.example.com")),
            name_err
        );
        // no serverNameToVerify: nothing to match
        assert_eq!(check(&["api.example.com"], -1, 1, None), Ok(()));
        assert_eq!(
            check(&["api.example.com"], -10, -1, Some("api.example.com")),
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired
            ))
        );
        assert_eq!(
            check(&["api.example.com"], 1, 10, None),
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidYet
            ))
        );
        assert!(check_link_cert(b"junk", None, now).is_err());
        // the stand-in for an ACM certificate (whose names Portico cannot know) passes any name
        let acm = self_signed("internal-lb-1.us-east-1.elb.localhost").unwrap();
        let acm = CertificateDer::from_pem_slice(acm.certificate.as_bytes()).unwrap();
        assert_eq!(check_link_cert(&acm, Some("api.example.com"), now), Ok(()));
        assert!(!is_stand_in(&cert_for(&["api.example.com"], -1, 1)));
    }

    #[tokio::test]
    async fn link_handshake_selects_by_sni_and_checks_the_name() {
        let spec = TlsSpec {
            certificates: vec![
                iam_cert("default.example.com"),
                iam_cert("api.internal.test"),
            ],
            alpn: vec!["h2".into(), "http/1.1".into()],
            tls13_only: false,
        };
        let a = acceptor(&spec).unwrap();
        let link = |n: Option<&str>| LinkTls {
            server_name: n.map(str::to_string),
        };
        assert_eq!(
            link_handshake(Some(&a), &link(Some("default.example.com"))).await,
            Ok(())
        );
        // SNI picks the second certificate
        assert_eq!(
            link_handshake(Some(&a), &link(Some("api.internal.test"))).await,
            Ok(())
        );
        // no certificate covers the name: the default one is served and refused
        let e = link_handshake(Some(&a), &link(Some("other.example.com")))
            .await
            .unwrap_err();
        assert!(e.contains("NotValidForName"), "{e}");
        assert_eq!(link_handshake(Some(&a), &link(None)).await, Ok(()));
        assert!(link_handshake(Some(&a), &link(Some("not a name!")))
            .await
            .is_err());
        // a plain HTTP listener has no acceptor
        assert!(link_handshake(None, &link(Some("api.internal.test")))
            .await
            .is_err());
    }

    /// The VPC-link handoff: plain to an HTTPS listener is its 400 page; TLS with a name the
    /// certificate covers is served with `https` semantics; a name mismatch or TLS to a plain
    /// listener is an error for API Gateway to answer.
    #[tokio::test]
    async fn serve_link_follows_the_listener_protocol() {
        use super::super::*;
        let e = Engine::default();
        let fixed = |body: &str| Rule {
            priority: u32::MAX,
            conditions: vec![],
            action: Action::Fixed {
                status: 200,
                content_type: None,
                body: body.into(),
            },
        };
        let listener = |arn: &str, port, protocol: &str, tls| ListenerSpec {
            rules: vec![fixed(arn)],
            tls,
            ..fixture::listener(arn, port, protocol)
        };
        let publish = |name: &str| {
            let tls = TlsSpec {
                certificates: vec![iam_cert(name)],
                alpn: vec![],
                tls13_only: false,
            };
            Snapshot {
                load_balancers: vec![fixture::lb(
                    LbKind::Application,
                    "app",
                    vec![
                        listener("https", 443, "HTTPS", Some(tls)),
                        listener("http", 80, "HTTP", None),
                    ],
                )],
                target_groups: vec![],
            }
        };
        e.publish(
            publish("app.internal.test"),
            &crate::addr::AddressBook::default(),
        );
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let call = |arn: &'static str, name: Option<&'static str>| {
            let e = e.clone();
            async move {
                let link = name.map(|n| LinkTls {
                    server_name: Some(n.to_string()),
                });
                let r = e
                    .serve_link(
                        arn,
                        http::Request::new(crate::body::empty()),
                        ip,
                        link.as_ref(),
                    )
                    .await
                    .unwrap()?;
                #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
                let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                    r.into_body(),
                    1 << 16,
                ))
                .await
                .unwrap()
                .to_bytes();
                Ok::<_, String>(body)
            }
        };
        let body = call("https", Some("app.internal.test")).await.unwrap();
        assert_eq!(&body[..], b"https");
        assert!(call("https", Some("other.internal.test")).await.is_err());
        assert!(call("http", Some("app.internal.test")).await.is_err());
        let body = call("http", None).await.unwrap();
        assert_eq!(&body[..], b"http");
        let r = e
            .serve_link("https", http::Request::new(crate::body::empty()), ip, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()[http::header::SERVER], "awselb/2.0");
        // the outcome is remembered per listener snapshot: a new certificate is checked afresh
        assert!(call("https", Some("app.internal.test")).await.is_ok());
        e.publish(
            publish("new.internal.test"),
            &crate::addr::AddressBook::default(),
        );
        assert!(call("https", Some("app.internal.test")).await.is_err());
        assert!(call("https", Some("new.internal.test")).await.is_ok());
    }

    /// A VPC link with a tlsConfig to an NLB TLS listener: TLS to the listener's socket, the
    /// NLB's certificate checked, the decrypted request passed to a plain TCP target.
    #[tokio::test]
    async fn serve_link_reaches_an_nlb_tls_listener_over_tls() {
        use super::super::*;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let taddr = target.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = target.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let line = String::from_utf8_lossy(&buf[..n])
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{line}",
                        line.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        let e = Engine::default();
        let mut listener = fixture::listener("nl", 443, "TLS");
        listener.tls = Some(TlsSpec {
            certificates: vec![iam_cert("nlb.internal.test")],
            alpn: vec![],
            tls13_only: false,
        });
        e.publish(
            Snapshot {
                load_balancers: vec![fixture::lb(LbKind::Network, "nlb", vec![listener])],
                target_groups: vec![fixture::group("TCP", &[taddr])],
            },
            &crate::addr::AddressBook::default(),
        );
        e.bind(vec![ListenerBind {
            arn: "nl".into(),
            ip: "127.0.0.1".parse().unwrap(),
            port: 0,
            kind: LbKind::Network,
            protocol: "TLS".into(),
            udp_idle_timeout: std::time::Duration::ZERO,
        }]);
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let link = |n: &str| LinkTls {
            server_name: Some(n.to_string()),
        };
        let req = || {
            http::Request::builder()
                .uri("/via/nlb?q=1")
                .header("host", "api.example")
                .body(crate::body::empty())
                .unwrap()
        };
        let r = e
            .serve_link("nl", req(), ip, Some(&link("nlb.internal.test")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status(), 200);
        #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
        let body =
            http_body_util::BodyExt::collect(http_body_util::Limited::new(r.into_body(), 1 << 16))
                .await
                .unwrap()
                .to_bytes();
        assert_eq!(&body[..], b"GET /via/nlb?q=1 HTTP/1.1");
        let e2 = e
            .serve_link("nl", req(), ip, Some(&link("other.test")))
            .await
            .unwrap()
            .unwrap_err();
        assert!(e2.contains("NotValidForName"), "{e2}");
        // without a tlsConfig, NLB requests do not come through the engine
        assert!(e.serve_link("nl", req(), ip, None).await.is_none());
    }

    /// An ALB forwarding to an HTTPS target group: TLS to the target (its self-signed
    /// certificate accepted); a target that does not speak TLS is a 502.
    #[tokio::test]
    async fn alb_speaks_tls_to_https_target_groups() {
        use super::super::*;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let acceptor = acceptor(&TlsSpec {
            certificates: vec![iam_cert("target.internal")],
            alpn: vec![],
            tls13_only: false,
        })
        .unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls_addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(s).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\ntls")
                        .await;
                    let _ = s.shutdown().await;
                });
            }
        });
        // a plain HTTP server: answers a ClientHello with a 400
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain_addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let e = Engine::default();
        let snapshot = |target: std::net::SocketAddr| Snapshot {
            load_balancers: vec![fixture::lb(
                LbKind::Application,
                "app",
                vec![fixture::listener("l", 80, "HTTP")],
            )],
            target_groups: vec![fixture::group("HTTPS", &[target])],
        };
        let get = || async {
            let r = e
                .serve_http(
                    "l",
                    http::Request::new(crate::body::empty()),
                    "10.0.0.1".parse().unwrap(),
                )
                .await
                .unwrap();
            let status = r.status();
            #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
            let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                r.into_body(),
                1 << 16,
            ))
            .await
            .unwrap()
            .to_bytes();
            (status, body)
        };
        let book = crate::addr::AddressBook::default();
        e.publish(snapshot(tls_addr), &book);
        let (status, body) = get().await;
        assert_eq!((status.as_u16(), &body[..]), (200, &b"tls"[..]));
        e.publish(snapshot(plain_addr), &book);
        let (status, body) = get().await;
        assert_eq!(status, 502);
        assert!(String::from_utf8_lossy(&body).contains("502 Bad Gateway"));
    }
}
