//! Encoding an operation's output or an `AwsError` exactly as each protocol does on AWS.

use crate::xml;
use bytes::Bytes;
use portico_core::{AwsError, Protocol, Service};
use serde_json::Value;

pub type WireResponse = http::Response<Bytes>;

fn response(status: u16, content_type: &str, request_id: &str) -> http::response::Builder {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", request_id)
}

fn build(b: http::response::Builder, body: Bytes) -> WireResponse {
    b.body(body.clone()).unwrap_or_else(|_| {
        let mut r = http::Response::new(body);
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn json_content_type(p: Protocol) -> &'static str {
    match p {
        Protocol::AwsJson10 => "application/x-amz-json-1.0",
        Protocol::AwsJson11 => "application/x-amz-json-1.1",
        _ => "application/json",
    }
}

/// Encodes a successful output. `rest_status` is the operation's modeled status (restJson1 only;
/// 204 sends no body).
pub fn encode_success(
    service: Service,
    op: &str,
    request_id: &str,
    output: &Value,
    rest_status: u16,
) -> WireResponse {
    match service.protocol() {
        p @ (Protocol::AwsJson10 | Protocol::AwsJson11) => {
            let body = Bytes::from(serde_json::to_vec(output).unwrap_or_else(|_| b"{}".to_vec()));
            build(response(200, json_content_type(p), request_id), body)
        }
        Protocol::RestJson1 => {
            let body = if rest_status == 204 {
                Bytes::new()
            } else {
                Bytes::from(serde_json::to_vec(output).unwrap_or_else(|_| b"{}".to_vec()))
            };
            build(response(rest_status, "application/json", request_id), body)
        }
        Protocol::Query => {
            let mut s = String::with_capacity(512);
            s.push_str(&format!(
                "<{op}Response xmlns=\"{}\">",
                service.xml_namespace()
            ));
            if output.as_object().is_some_and(|o| !o.is_empty()) {
                s.push_str(&format!("<{op}Result>"));
                xml::write_members(output, "member", &mut s);
                s.push_str(&format!("</{op}Result>"));
            } else {
                s.push_str(&format!("<{op}Result/>"));
            }
            s.push_str(&format!("<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>"));
            build(response(200, "text/xml", request_id), Bytes::from(s))
        }
        Protocol::Ec2Query => {
            let mut s = String::with_capacity(512);
            s.push_str(&format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{op}Response xmlns=\"{}\"><requestId>{request_id}</requestId>",
                service.xml_namespace()
            ));
            xml::write_members(output, "item", &mut s);
            s.push_str(&format!("</{op}Response>"));
            build(
                response(200, "text/xml;charset=UTF-8", request_id),
                Bytes::from(s),
            )
        }
    }
}

/// Encodes an error in `service`'s protocol; `None` (service unknown) renders restJson1-style.
pub fn encode_error(service: Option<Service>, request_id: &str, err: &AwsError) -> WireResponse {
    let protocol = service
        .map(Service::protocol)
        .unwrap_or(Protocol::RestJson1);
    match protocol {
        Protocol::AwsJson10 | Protocol::AwsJson11 | Protocol::RestJson1 => {
            let mut body = serde_json::Map::new();
            if protocol != Protocol::RestJson1 {
                body.insert("__type".into(), Value::String(err.code.to_string()));
            }
            body.insert("message".into(), Value::String(err.message.clone()));
            for (k, v) in &err.extra {
                body.insert((*k).to_string(), Value::String(v.clone()));
            }
            let bytes = Bytes::from(serde_json::to_vec(&Value::Object(body)).unwrap_or_default());
            build(
                response(err.status, json_content_type(protocol), request_id)
                    .header("x-amzn-errortype", err.code.as_ref()),
                bytes,
            )
        }
        Protocol::Query => {
            let mut s = String::new();
            let ns = service.map(Service::xml_namespace).unwrap_or_default();
            s.push_str(&format!(
                "<ErrorResponse xmlns=\"{ns}\"><Error><Type>{}</Type><Code>",
                if err.sender_fault {
                    "Sender"
                } else {
                    "Receiver"
                }
            ));
            xml::escape(&err.code, &mut s);
            s.push_str("</Code><Message>");
            xml::escape(&err.message, &mut s);
            s.push_str(&format!(
                "</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ));
            build(response(err.status, "text/xml", request_id), Bytes::from(s))
        }
        Protocol::Ec2Query => {
            let mut s = String::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>",
            );
            xml::escape(&err.code, &mut s);
            s.push_str("</Code><Message>");
            xml::escape(&err.message, &mut s);
            s.push_str(&format!(
                "</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ));
            build(
                response(err.status, "text/xml;charset=UTF-8", request_id),
                Bytes::from(s),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(r: &WireResponse) -> String {
        String::from_utf8(r.body().to_vec()).unwrap()
    }

    #[test]
    fn query_success_and_error() {
        let r = encode_success(Service::Elbv2, "DeleteLoadBalancer", "rid", &json!({}), 200);
        assert_eq!(body(&r), "<DeleteLoadBalancerResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><DeleteLoadBalancerResult/><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DeleteLoadBalancerResponse>");
        let r = encode_error(
            Some(Service::Elbv2),
            "rid",
            &AwsError::bad(
                "LoadBalancerNotFound",
                "One or more load balancers not found",
            ),
        );
        assert_eq!(r.status(), 400);
        assert!(body(&r).contains("<Type>Sender</Type><Code>LoadBalancerNotFound</Code>"));
    }

    #[test]
    fn json_and_rest_errors() {
        let e = AwsError::bad("ClusterNotFoundException", "Cluster not found.");
        let r = encode_error(Some(Service::Ecs), "rid", &e);
        assert_eq!(
            body(&r),
            r#"{"__type":"ClusterNotFoundException","message":"Cluster not found."}"#
        );
        let e = AwsError::new(
            404,
            "NotFoundException",
            "Invalid API identifier specified 0:x",
        )
        .with_extra("resourceType", "Api");
        let r = encode_error(Some(Service::ApiGatewayV2), "rid", &e);
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-amzn-errortype"], "NotFoundException");
        assert_eq!(
            body(&r),
            r#"{"message":"Invalid API identifier specified 0:x","resourceType":"Api"}"#
        );
    }

    #[test]
    fn ec2_shapes() {
        let r = encode_success(
            Service::Ec2,
            "CreateVpc",
            "rid",
            &json!({"vpc": {"vpcId": "vpc-1", "tagSet": []}}),
            200,
        );
        assert!(body(&r).ends_with("<CreateVpcResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>rid</requestId><vpc><vpcId>vpc-1</vpcId><tagSet/></vpc></CreateVpcResponse>"));
        let r = encode_error(
            Some(Service::Ec2),
            "rid",
            &AwsError::bad("InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist"),
        );
        assert!(body(&r).contains("<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code>"));
    }
}
