//! restJson1 routing support: matching a URI template such as `/v2/apis/{apiId}/stages/{stageName}`
//! against the raw (still percent-encoded) request path, segment by segment, then decoding each
//! label. Decoding first would turn `%2F` inside an ARN label into extra segments.

use percent_encoding::percent_decode_str;

/// Returns the decoded labels when `raw_path` matches `template`. A label written `{name+}`
/// takes the rest of the path (greedy).
pub fn match_template(template: &str, raw_path: &str) -> Option<Vec<(String, String)>> {
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let p: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
    let mut labels = Vec::new();
    for (i, seg) in t.iter().enumerate() {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if let Some(greedy) = name.strip_suffix('+') {
                let rest = p.get(i..)?.join("/");
                if rest.is_empty() {
                    return None;
                }
                labels.push((greedy.to_string(), decode(&rest)));
                return Some(labels);
            }
            let v = p.get(i)?;
            if v.is_empty() {
                return None;
            }
            labels.push((name.to_string(), decode(v)));
        } else if p.get(i) != Some(seg) {
            return None;
        }
    }
    (p.len() == t.len()).then_some(labels)
}

pub fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_decoded_after_split() {
        assert_eq!(
            match_template(
                "/v2/tags/{resource-arn}",
                "/v2/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fabc"
            ),
            Some(vec![(
                "resource-arn".into(),
                "arn:aws:apigateway:us-east-1::/apis/abc".into()
            )])
        );
        assert_eq!(
            match_template(
                "/v2/apis/{apiId}/stages/{stageName}",
                "/v2/apis/a1/stages/%24default"
            ),
            Some(vec![
                ("apiId".into(), "a1".into()),
                ("stageName".into(), "$default".into())
            ])
        );
        assert_eq!(
            match_template("/v2/apis/{apiId}", "/v2/apis/a1/routes"),
            None
        );
        assert_eq!(match_template("/v2/apis/{apiId}", "/v2/apis/"), None);
        assert_eq!(match_template("/v2/apis", "/v2/apis"), Some(vec![]));
    }
}
