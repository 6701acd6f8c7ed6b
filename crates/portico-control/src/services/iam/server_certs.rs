//! IAM server certificates (the certificates ELB HTTPS/TLS listeners serve when ACM is not
//! used): upload with IAM's checks (PEM parsing, key matches certificate), get, list, rename or
//! move, tags, and delete (refused while a load balancer listener uses the certificate).
//!
//! Store kind (account, region ""): `iam.server-certificate`, id = lowercased name (names are
//! case-insensitive), name = ServerCertificateName. The private key is kept in the record, as
//! IAM keeps it, and is never returned.

use super::{check_name, check_path, conflict, iam_id, no_such, page, req, s, tags_of, Call};
use crate::services::elbv2::model::{Listener, KIND_LISTENER};
use portico_core::{time, AwsError, AwsResult};
use portico_dataplane::lb::tls::{self, CertError, CertPem};
use portico_store::{Scope, Tx};
use serde_json::{json, Value};

pub(crate) const KIND_SERVER_CERT: &str = "iam.server-certificate";

/// The operations this file serves.
pub(super) fn handles(op: &str) -> bool {
    matches!(
        op,
        "UploadServerCertificate"
            | "GetServerCertificate"
            | "ListServerCertificates"
            | "DeleteServerCertificate"
            | "UpdateServerCertificate"
            | "TagServerCertificate"
            | "UntagServerCertificate"
            | "ListServerCertificateTags"
    )
}

pub(super) fn dispatch(store: &portico_store::Store, op: &str, c: &Call<'_>) -> AwsResult<Value> {
    match op {
        "UploadServerCertificate" => store.write(|tx| upload(tx, c)),
        "GetServerCertificate" => store.read(|tx| get(tx, c)),
        "ListServerCertificates" => store.read(|tx| list(tx, c)),
        "DeleteServerCertificate" => store.write(|tx| delete(tx, c)),
        "UpdateServerCertificate" => store.write(|tx| update(tx, c)),
        "TagServerCertificate" => store.write(|tx| tag(tx, c)),
        "UntagServerCertificate" => store.write(|tx| untag(tx, c)),
        "ListServerCertificateTags" => store.read(|tx| {
            let cert = load(tx, c, req(c.input, "ServerCertificateName")?)?;
            page(c.input, "Tags", tags(&cert))
        }),
        _ => Err(portico_core::Service::Iam.unknown_operation(op)),
    }
}

/// A stored server certificate's PEM material, by its ARN (for load balancer listeners).
pub(crate) fn by_arn(tx: &Tx<'_>, scope: &Scope, arn: &str) -> AwsResult<Option<CertPem>> {
    let global = scope.global();
    for r in tx.list(&global, KIND_SERVER_CERT, None)? {
        if s(&r.body, "Arn") == arn {
            return Ok(Some(pem_of(&r.body)));
        }
    }
    Ok(None)
}

/// Every stored server certificate as (ARN, PEM material), across accounts (reconciler).
pub(crate) fn all(tx: &Tx<'_>) -> AwsResult<Vec<(String, CertPem)>> {
    Ok(tx
        .list_all(KIND_SERVER_CERT)?
        .iter()
        .map(|r| (s(&r.body, "Arn"), pem_of(&r.body)))
        .collect())
}

fn pem_of(body: &Value) -> CertPem {
    CertPem {
        certificate: s(body, "CertificateBody"),
        chain: body
            .get("CertificateChain")
            .and_then(Value::as_str)
            .map(str::to_string),
        private_key: s(body, "PrivateKey"),
    }
}

fn cert_error(e: CertError) -> AwsError {
    match e {
        CertError::KeyMismatch => AwsError::bad("KeyPairMismatch", e.to_string()),
        _ => AwsError::bad("MalformedCertificate", e.to_string()),
    }
}

/// IAM refuses a certificate outside its validity period at upload time, expired or not yet
/// valid, as MalformedCertificate ("malformed or expired"). AWS's message for this case is the
/// generic parse message (aws/aws-sdk-go#2586: the service team calls it misleading but
/// expected); docs/fidelity-s3.md.
fn check_validity(info: &tls::CertInfo, now_secs: i64) -> AwsResult<()> {
    if now_secs < info.not_before || now_secs > info.not_after {
        return Err(cert_error(CertError::MalformedCertificate));
    }
    Ok(())
}

fn load(tx: &Tx<'_>, c: &Call<'_>, name: &str) -> AwsResult<Value> {
    Ok(tx
        .get(c.scope, KIND_SERVER_CERT, &name.to_lowercase())?
        .ok_or_else(|| no_such("Server Certificate", name))?
        .body)
}

fn save(tx: &Tx<'_>, c: &Call<'_>, cert: &Value) -> AwsResult<()> {
    let name = s(cert, "ServerCertificateName");
    tx.put(
        c.scope,
        KIND_SERVER_CERT,
        &name.to_lowercase(),
        None,
        Some(&name),
        cert,
    )?;
    Ok(())
}

fn metadata(cert: &Value) -> Value {
    json!({
        "Path": cert.get("Path"),
        "ServerCertificateName": cert.get("ServerCertificateName"),
        "ServerCertificateId": cert.get("ServerCertificateId"),
        "Arn": cert.get("Arn"),
        "UploadDate": cert.get("UploadDate"),
        "Expiration": cert.get("Expiration"),
    })
}

fn tags(cert: &Value) -> Vec<Value> {
    cert.get("Tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn check_pem_field(value: &str, field: &str, max: usize) -> AwsResult<()> {
    if value.is_empty() || value.len() > max {
        return Err(AwsError::validation(
            "ValidationError",
            &[format!(
                "Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
            )],
        ));
    }
    Ok(())
}

fn upload(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let name = req(c.input, "ServerCertificateName")?.to_string();
    check_name(&name, "serverCertificateName", 128)?;
    let path = c.input.str("Path").unwrap_or("/").to_string();
    check_path(&path)?;
    let body = req(c.input, "CertificateBody")?.to_string();
    check_pem_field(&body, "certificateBody", 16384)?;
    let key = req(c.input, "PrivateKey")?.to_string();
    check_pem_field(&key, "privateKey", 16384)?;
    let chain = c.input.str("CertificateChain").map(str::to_string);
    if let Some(ch) = &chain {
        check_pem_field(ch, "certificateChain", 2_097_152)?;
    }
    let new_tags = tags_of(c.input);
    if new_tags.len() > 50 {
        return Err(AwsError::new(
            409,
            "LimitExceeded",
            "The number of tags has reached the maximum limit.",
        ));
    }
    let pem = CertPem {
        certificate: body.clone(),
        chain: chain.clone(),
        private_key: key.clone(),
    };
    let info = tls::inspect(&pem).map_err(cert_error)?;
    check_validity(&info, time::now_millis() / 1000)?;
    if tx
        .get(c.scope, KIND_SERVER_CERT, &name.to_lowercase())?
        .is_some()
    {
        return Err(AwsError::new(
            409,
            "EntityAlreadyExists",
            format!("The Server Certificate with name {name} already exists."),
        ));
    }
    let arn = c.arn(&format!("server-certificate{path}{name}"));
    let mut cert = json!({
        "Path": path,
        "ServerCertificateName": name,
        "ServerCertificateId": iam_id("ASCA", 17),
        "Arn": arn,
        "UploadDate": time::iso_seconds(time::now_millis()),
        "Expiration": time::iso_seconds(info.not_after.saturating_mul(1000)),
        "CertificateBody": body,
        "PrivateKey": key,
        "Tags": new_tags,
    });
    if let Some(ch) = chain {
        cert["CertificateChain"] = json!(ch);
    }
    save(tx, c, &cert)?;
    let mut out = json!({"ServerCertificateMetadata": metadata(&cert)});
    if !tags(&cert).is_empty() {
        out["Tags"] = json!(tags(&cert));
    }
    Ok(out)
}

fn get(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let cert = load(tx, c, req(c.input, "ServerCertificateName")?)?;
    let mut out = json!({
        "ServerCertificateMetadata": metadata(&cert),
        "CertificateBody": cert.get("CertificateBody"),
        "Tags": tags(&cert),
    });
    if let Some(ch) = cert.get("CertificateChain") {
        out["CertificateChain"] = ch.clone();
    }
    Ok(json!({"ServerCertificate": out}))
}

fn list(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let prefix = c.input.str("PathPrefix").unwrap_or("/");
    let items: Vec<Value> = tx
        .list(c.scope, KIND_SERVER_CERT, None)?
        .iter()
        .filter(|r| s(&r.body, "Path").starts_with(prefix))
        .map(|r| metadata(&r.body))
        .collect();
    page(c.input, "ServerCertificateMetadataList", items)
}

/// The load balancer listeners (any region of the account) that serve `arn`.
fn listeners_using(tx: &Tx<'_>, c: &Call<'_>, arn: &str) -> AwsResult<Vec<String>> {
    let mut out = Vec::new();
    for r in tx.list_all(KIND_LISTENER)? {
        if r.scope.account != c.scope.account {
            continue;
        }
        let Ok(l) = serde_json::from_value::<Listener>(r.body) else {
            continue;
        };
        if l.certificates
            .iter()
            .any(|x| x.get("CertificateArn").and_then(Value::as_str) == Some(arn))
        {
            out.push(l.lb_arn);
        }
    }
    Ok(out)
}

fn delete(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let name = req(c.input, "ServerCertificateName")?;
    let cert = load(tx, c, name)?;
    if let Some(lb) = listeners_using(tx, c, &s(&cert, "Arn"))?.first() {
        return Err(conflict(format!(
            "Certificate: {} is currently in use by {lb}. Please remove it first before deleting it from IAM.",
            s(&cert, "ServerCertificateId")
        )));
    }
    tx.delete(c.scope, KIND_SERVER_CERT, &name.to_lowercase())?;
    Ok(json!({}))
}

fn update(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let name = req(c.input, "ServerCertificateName")?.to_string();
    let mut cert = load(tx, c, &name)?;
    let new_name = c
        .input
        .str("NewServerCertificateName")
        .map(str::to_string)
        .unwrap_or_else(|| s(&cert, "ServerCertificateName"));
    check_name(&new_name, "newServerCertificateName", 128)?;
    let new_path = c
        .input
        .str("NewPath")
        .map(str::to_string)
        .unwrap_or_else(|| s(&cert, "Path"));
    check_path(&new_path)?;
    let old_arn = s(&cert, "Arn");
    let new_arn = c.arn(&format!("server-certificate{new_path}{new_name}"));
    if new_arn != old_arn {
        if let Some(lb) = listeners_using(tx, c, &old_arn)?.first() {
            // A listener names the certificate by ARN; renaming it would strand the listener.
            return Err(conflict(format!(
                "Certificate: {} is currently in use by {lb}.",
                s(&cert, "ServerCertificateId")
            )));
        }
    }
    if new_name.to_lowercase() != name.to_lowercase() {
        if tx
            .get(c.scope, KIND_SERVER_CERT, &new_name.to_lowercase())?
            .is_some()
        {
            return Err(AwsError::new(
                409,
                "EntityAlreadyExists",
                format!("The Server Certificate with name {new_name} already exists."),
            ));
        }
        tx.delete(c.scope, KIND_SERVER_CERT, &name.to_lowercase())?;
    }
    cert["ServerCertificateName"] = json!(new_name);
    cert["Path"] = json!(new_path);
    cert["Arn"] = json!(new_arn);
    save(tx, c, &cert)?;
    Ok(json!({}))
}

fn tag(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut cert = load(tx, c, req(c.input, "ServerCertificateName")?)?;
    let mut t = tags(&cert);
    for n in tags_of(c.input) {
        t.retain(|x| x.get("Key") != n.get("Key"));
        t.push(n);
    }
    if t.len() > 50 {
        return Err(AwsError::new(
            409,
            "LimitExceeded",
            "The number of tags has reached the maximum limit.",
        ));
    }
    cert["Tags"] = json!(t);
    save(tx, c, &cert)?;
    Ok(json!({}))
}

fn untag(tx: &Tx<'_>, c: &Call<'_>) -> AwsResult<Value> {
    let mut cert = load(tx, c, req(c.input, "ServerCertificateName")?)?;
    let keys = c.input.str_list("TagKeys").unwrap_or_default();
    let mut t = tags(&cert);
    t.retain(|x| {
        !keys
            .iter()
            .any(|k| x.get("Key").and_then(Value::as_str) == Some(k.as_str()))
    });
    cert["Tags"] = json!(t);
    save(tx, c, &cert)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_period_is_inclusive_and_refusals_are_malformed_certificate() {
        let info = tls::CertInfo {
            not_before: 1_000,
            not_after: 2_000,
            names: vec![],
        };
        for now in [1_000, 1_500, 2_000] {
            assert!(check_validity(&info, now).is_ok(), "{now}");
        }
        for now in [999, 2_001] {
            let e = check_validity(&info, now).unwrap_err();
            assert_eq!(
                (e.code.as_ref(), e.message.as_str(), e.status),
                (
                    "MalformedCertificate",
                    "Unable to parse certificate. Please ensure the certificate is in PEM format.",
                    400
                ),
                "{now}"
            );
        }
    }
}
