//! A small AWS client for Portico's own commands (`portico tutorial`): awsQuery, awsJson and
//! restJson1 requests to a Portico endpoint over HTTP, with the region named in a SigV4
//! credential scope (loopback Portico does not verify signatures unless asked to).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::fmt;

/// Largest response body this client reads.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub struct AwsClient {
    pub endpoint: String,
    pub region: String,
    http: Http,
}

/// An error answer from the endpoint, or a transport failure (`status` 0).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{} ({}): {}", self.code, self.status, self.message)
        }
    }
}

impl std::error::Error for ApiError {}

fn transport(e: impl fmt::Display) -> ApiError {
    ApiError {
        status: 0,
        code: "Transport".into(),
        message: e.to_string(),
    }
}

/// A response body and status.
pub struct Raw {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl AwsClient {
    pub fn new(endpoint: &str, region: &str) -> AwsClient {
        AwsClient {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: region.to_string(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    fn scope_header(&self, service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{}/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0",
            self.region
        )
    }

    /// Sends one request; `host` overrides the Host header (data-plane addresses).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        host: Option<&str>,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Raw, ApiError> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint));
        if let Some(h) = host {
            b = b.header("host", h);
        }
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        let req = b.body(Full::new(body)).map_err(transport)?;
        let resp = self.http.request(req).await.map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        #[allow(clippy::disallowed_methods, reason = "the body is wrapped in Limited")]
        let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(transport)?
            .to_bytes();
        Ok(Raw {
            status,
            headers,
            body,
        })
    }

    fn signed(&self, service: &str) -> Vec<(&'static str, String)> {
        vec![
            ("authorization", self.scope_header(service)),
            ("x-amz-date", "20260101T000000Z".into()),
        ]
    }

    /// awsQuery call; returns the XML text of a 200 answer.
    pub async fn query(
        &self,
        service: &str,
        version: &str,
        action: &str,
        params: &[(String, String)],
    ) -> Result<String, ApiError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action)
            .append_pair("Version", version);
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let mut headers = self.signed(service);
        headers.push((
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        ));
        let raw = self
            .send("POST", "/", None, &headers, Bytes::from(form.finish()))
            .await?;
        let text = String::from_utf8_lossy(&raw.body).into_owned();
        if raw.status != 200 {
            let (code, message) = xml_error(&text);
            return Err(ApiError {
                status: raw.status,
                code,
                message,
            });
        }
        Ok(text)
    }

    /// awsJson 1.1 call.
    pub async fn json(&self, service: &str, target: &str, body: &Value) -> Result<Value, ApiError> {
        let mut headers = self.signed(service);
        headers.push(("content-type", "application/x-amz-json-1.1".into()));
        headers.push(("x-amz-target", target.into()));
        let raw = self
            .send("POST", "/", None, &headers, Bytes::from(body.to_string()))
            .await?;
        json_answer(raw)
    }

    /// restJson1 call.
    pub async fn rest(
        &self,
        service: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let mut headers = self.signed(service);
        headers.push(("content-type", "application/json".into()));
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let raw = self.send(method, path, None, &headers, payload).await?;
        json_answer(raw)
    }
}

fn json_answer(raw: Raw) -> Result<Value, ApiError> {
    let v: Value = if raw.body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&raw.body).unwrap_or(Value::Null)
    };
    if raw.status >= 300 {
        let code = raw
            .headers
            .get("x-amzn-errortype")
            .and_then(|h| h.to_str().ok())
            .map(|s| s.split(':').next().unwrap_or(s).to_string())
            .or_else(|| v.get("__type").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        let message = v
            .get("message")
            .or_else(|| v.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Err(ApiError {
            status: raw.status,
            code,
            message,
        });
    }
    Ok(v)
}

fn xml_error(text: &str) -> (String, String) {
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return ("Unknown".into(), text.chars().take(200).collect());
    };
    let find = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .unwrap_or_default()
            .to_string()
    };
    (find("Code"), find("Message"))
}

/// Texts of every element named `name` in an XML document.
pub fn xml_texts(xml: &str, name: &str) -> Vec<String> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.has_tag_name(name))
        .filter_map(|n| n.text().map(str::to_string))
        .collect()
}

/// For each element named `parent`, a map of its direct children's texts.
pub fn xml_records(xml: &str, parent: &str) -> Vec<std::collections::HashMap<String, String>> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.has_tag_name(parent))
        .map(|n| {
            n.children()
                .filter(|c| c.is_element())
                .map(|c| {
                    (
                        c.tag_name().name().to_string(),
                        c.text().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}
