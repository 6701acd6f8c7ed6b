//! Telling which service and operation a request is for, by protocol: awsJson by
//! `X-Amz-Target`, restJson1 by path (`/v2/` is API Gateway v2), awsQuery/ec2Query by the form's
//! `Action`, with the SigV4 credential scope (or the query `Version`) naming the service where
//! the action alone is ambiguous (`DescribeTags` is both EC2 and ELB).

use portico_core::{AwsError, Protocol, Service};
use serde_json::Value;

/// The parts of an HTTP request the protocols look at.
pub struct RawRequest<'a> {
    pub method: &'a str,
    /// Raw path, still percent-encoded.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

impl RawRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, PartialEq)]
pub enum Detected {
    /// An operation with its decoded input.
    Op {
        service: Service,
        operation: String,
        input: Value,
    },
    /// A restJson1 request; the service's own route table names the operation.
    Rest { service: Service },
    /// Not an AWS API request at all.
    NotAws,
}

/// Detection failure: the service if it is known (so the error renders in its protocol).
pub type DetectError = (Option<Service>, AwsError);

pub fn detect(req: &RawRequest<'_>, scope_service: Option<&str>) -> Result<Detected, DetectError> {
    let scoped = scope_service.and_then(Service::from_signing_name);

    if let Some(target) = req.header("x-amz-target") {
        let (prefix, op) = target.split_once('.').unwrap_or((target, ""));
        let service = Service::from_json_target_prefix(prefix)
            .or(scoped
                .filter(|s| matches!(s.protocol(), Protocol::AwsJson10 | Protocol::AwsJson11)));
        let Some(service) = service else {
            return Err((
                None,
                AwsError::bad(
                    "UnknownOperationException",
                    format!("Unknown service target {target}"),
                ),
            ));
        };
        if Service::from_json_target_prefix(prefix) != Some(service) || op.is_empty() {
            return Err((Some(service), service.unknown_operation(target)));
        }
        let input = json_body(req.body).map_err(|e| (Some(service), e))?;
        return Ok(Detected::Op {
            service,
            operation: op.to_string(),
            input,
        });
    }

    if req.path.starts_with("/v2/") && matches!(scoped, None | Some(Service::ApiGatewayV2)) {
        return Ok(Detected::Rest {
            service: Service::ApiGatewayV2,
        });
    }

    let is_form = req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let query_has_action = req
        .query
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "Action"));
    if (req.method == "POST" && is_form) || query_has_action {
        let form: Vec<u8> = if query_has_action {
            let mut f = req.query.unwrap_or_default().as_bytes().to_vec();
            if is_form && !req.body.is_empty() {
                f.push(b'&');
                f.extend_from_slice(req.body);
            }
            f
        } else {
            req.body.to_vec()
        };
        let (action, version, input) = crate::query::decode(&form);
        let service = scoped
            .filter(|s| matches!(s.protocol(), Protocol::Query | Protocol::Ec2Query))
            .or_else(|| version.as_deref().and_then(Service::from_query_version));
        let Some(service) = service else {
            return Err((
                None,
                AwsError::bad(
                    "InvalidAction",
                    "Could not determine the service: sign the request or send a known Version.",
                ),
            ));
        };
        let Some(action) = action.filter(|a| !a.is_empty()) else {
            return Err((
                Some(service),
                AwsError::bad("MissingAction", "Missing Action"),
            ));
        };
        return Ok(Detected::Op {
            service,
            operation: action,
            input,
        });
    }

    Ok(Detected::NotAws)
}

fn json_body(body: &[u8]) -> Result<Value, AwsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(AwsError::bad(
            "SerializationException",
            "Start of structure or map found where not expected.",
        )),
        Err(e) => Err(AwsError::bad(
            "SerializationException",
            "Unable to parse the request body as JSON.",
        )
        .with_cause(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req<'a>(
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a http::HeaderMap,
        body: &'a [u8],
    ) -> RawRequest<'a> {
        RawRequest {
            method,
            path,
            query,
            headers,
            body,
        }
    }

    #[test]
    fn json_target() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-amz-target",
            "AmazonEC2ContainerServiceV20141113.ListClusters"
                .parse()
                .unwrap(),
        );
        let d = detect(&req("POST", "/", None, &h, b""), Some("ecs")).unwrap();
        assert_eq!(
            d,
            Detected::Op {
                service: Service::Ecs,
                operation: "ListClusters".into(),
                input: json!({})
            }
        );
        let e = detect(&req("POST", "/", None, &h, b"{"), Some("ecs")).unwrap_err();
        assert_eq!(e.1.code, "SerializationException");
    }

    #[test]
    fn query_disambiguated_by_scope_then_version() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        let body = b"Action=DescribeTags&Version=2015-12-01&ResourceArns.member.1=x";
        let d = detect(&req("POST", "/", None, &h, body), None).unwrap();
        assert!(matches!(
            d,
            Detected::Op {
                service: Service::Elbv2,
                ..
            }
        ));
        let body = b"Action=DescribeTags&Version=2016-11-15";
        let d = detect(&req("POST", "/", None, &h, body), Some("ec2")).unwrap();
        assert!(matches!(
            d,
            Detected::Op {
                service: Service::Ec2,
                ..
            }
        ));
        let d = detect(
            &req(
                "GET",
                "/",
                Some("Action=GetCallerIdentity&Version=2011-06-15"),
                &h,
                b"",
            ),
            None,
        )
        .unwrap();
        assert!(matches!(
            d,
            Detected::Op {
                service: Service::Sts,
                ..
            }
        ));
    }

    #[test]
    fn rest_and_other() {
        let h = http::HeaderMap::new();
        assert_eq!(
            detect(&req("GET", "/v2/apis", None, &h, b""), Some("apigateway")).unwrap(),
            Detected::Rest {
                service: Service::ApiGatewayV2
            }
        );
        assert_eq!(
            detect(&req("GET", "/index.html", None, &h, b""), None).unwrap(),
            Detected::NotAws
        );
    }
}
