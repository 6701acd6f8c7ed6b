//! CloudWatch Logs (awsJson 1.1): log groups (retention, tags), streams, PutLogEvents,
//! GetLogEvents with forward/backward tokens, FilterLogEvents with filter patterns (see
//! [`pattern`]), DescribeLogGroups/Streams with prefixes and pagination. Enough for
//! `aws logs tail GROUP --follow` (FilterLogEvents polling with stable event ids) and for ECS,
//! which writes task output through `Control::call(Service::Logs, "PutLogEvents", ...)`.
//!
//! Store kinds (account, region):
//! - `logs.group`  id = group name, body = the group
//! - `logs.stream` id = `{group}:{stream}` (group names cannot hold `:`), parent = group
//! - `logs.batch`  id = `{group}:{stream}:{first seq}`, parent = group: one PutLogEvents batch
//!   (events as `[timestamp, seq, ingestionTime, message]`)
//!
//! Every event gets a sequence number from one global counter; its `eventId` is
//! `{timestamp:020}{seq:036}` (56 digits like AWS's), so ids are stable and sort as (time, seq).

mod pattern;

use crate::Ctx;
use portico_core::context::partition_of;
use portico_core::{time, AwsError, AwsResult, Input, Service};
use portico_store::{Scope, Tx};
use serde_json::{json, Map, Value};

const KIND_GROUP: &str = "logs.group";
const KIND_STREAM: &str = "logs.stream";
const KIND_BATCH: &str = "logs.batch";

const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

const DAY_MS: i64 = 24 * 3600 * 1000;

pub async fn dispatch(ctx: &Ctx<'_>, op: &str, input: Input) -> AwsResult<Value> {
    let scope = &ctx.scope;
    let store = ctx.store();
    let i = &input;
    match op {
        "CreateLogGroup" => store.write(|tx| create_log_group(tx, scope, i)),
        "DeleteLogGroup" => store.write(|tx| delete_log_group(tx, scope, i)),
        "DescribeLogGroups" => store.read(|tx| describe_log_groups(tx, scope, i)),
        "PutRetentionPolicy" => store.write(|tx| put_retention_policy(tx, scope, i)),
        "DeleteRetentionPolicy" => store.write(|tx| delete_retention_policy(tx, scope, i)),
        "TagLogGroup" => store.write(|tx| tag_group(tx, scope, i, Some(group_name(i)?))),
        "UntagLogGroup" => store.write(|tx| untag_group(tx, scope, i, Some(group_name(i)?))),
        "ListTagsLogGroup" => store.read(|tx| list_tags(tx, scope, i, Some(group_name(i)?))),
        "TagResource" => store.write(|tx| tag_group(tx, scope, i, None)),
        "UntagResource" => store.write(|tx| untag_group(tx, scope, i, None)),
        "ListTagsForResource" => store.read(|tx| list_tags(tx, scope, i, None)),
        "CreateLogStream" => store.write(|tx| create_log_stream(tx, scope, i)),
        "DeleteLogStream" => store.write(|tx| delete_log_stream(tx, scope, i)),
        "DescribeLogStreams" => store.read(|tx| describe_log_streams(tx, scope, i)),
        "PutLogEvents" => store.write(|tx| put_log_events(tx, scope, i)),
        "GetLogEvents" => store.read(|tx| get_log_events(tx, scope, i)),
        "FilterLogEvents" => store.read(|tx| filter_log_events(tx, scope, i)),
        "TestMetricFilter" => test_metric_filter(i),
        _ => Err(Service::Logs.unknown_operation(op)),
    }
}

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::bad("InvalidParameterException", msg)
}

fn group_missing() -> AwsError {
    AwsError::bad(
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
}

fn stream_missing() -> AwsError {
    AwsError::bad(
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn i64_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn int(input: &Input, key: &str) -> AwsResult<Option<i64>> {
    input
        .i64(key)
        .map_err(|raw| invalid(format!("Invalid value {raw} for {key}")))
}

fn group_arn(scope: &Scope, name: &str) -> String {
    format!(
        "arn:{}:logs:{}:{}:log-group:{name}",
        partition_of(&scope.region),
        scope.region,
        scope.account
    )
}

/// The log group a call names: `logGroupName`, or `logGroupIdentifier` (a name or an ARN).
fn group_name(input: &Input) -> AwsResult<&str> {
    if let Some(n) = input.str("logGroupName") {
        return Ok(n);
    }
    if let Some(id) = input.str("logGroupIdentifier") {
        if let Some(rest) = id.split_once(":log-group:").map(|(_, r)| r) {
            return Ok(rest.trim_end_matches(":*"));
        }
        return Ok(id);
    }
    Err(invalid(
        "Either logGroupName or logGroupIdentifier must be specified",
    ))
}

fn check_group_name(name: &str) -> AwsResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")))
    }
}

fn load_group(tx: &Tx<'_>, scope: &Scope, name: &str) -> AwsResult<Value> {
    Ok(tx
        .get(scope, KIND_GROUP, name)?
        .ok_or_else(group_missing)?
        .body)
}

fn save_group(tx: &Tx<'_>, scope: &Scope, g: &Value) -> AwsResult<()> {
    tx.put(scope, KIND_GROUP, &s(g, "logGroupName"), None, None, g)?;
    Ok(())
}

fn tags_map(input: &Input, key: &str) -> Map<String, Value> {
    match input.get(key) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Groups

fn create_log_group(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let name = input.req_str("logGroupName", "InvalidParameterException")?;
    check_group_name(name)?;
    if tx.get(scope, KIND_GROUP, name)?.is_some() {
        return Err(AwsError::bad(
            "ResourceAlreadyExistsException",
            "The specified log group already exists",
        ));
    }
    let class = input.str("logGroupClass").unwrap_or("STANDARD");
    if !matches!(class, "STANDARD" | "INFREQUENT_ACCESS" | "DELIVERY") {
        return Err(invalid(format!("1 validation error detected: Value '{class}' at 'logGroupClass' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, INFREQUENT_ACCESS, DELIVERY]")));
    }
    let tags = tags_map(input, "tags");
    if tags.len() > 50 {
        return Err(invalid(
            "Too many tags: a log group can have at most 50 tags.",
        ));
    }
    let mut g = json!({
        "logGroupName": name, "creationTime": time::now_millis(), "metricFilterCount": 0,
        "logGroupClass": class, "tags": tags,
    });
    if let Some(k) = input.str("kmsKeyId") {
        g["kmsKeyId"] = json!(k);
    }
    if let Some(p) = input.bool("deletionProtectionEnabled").ok().flatten() {
        g["deletionProtectionEnabled"] = json!(p);
    }
    save_group(tx, scope, &g)?;
    Ok(json!({}))
}

fn delete_log_group(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let name = group_name(input)?;
    let g = load_group(tx, scope, name)?;
    if g.get("deletionProtectionEnabled").and_then(Value::as_bool) == Some(true) {
        return Err(AwsError::bad(
            "OperationAbortedException",
            "Log group deletion protection is enabled. Disable deletion protection before deleting.",
        ));
    }
    for r in tx.list(scope, KIND_STREAM, Some(name))? {
        tx.delete(scope, KIND_STREAM, &r.id)?;
    }
    for r in tx.list(scope, KIND_BATCH, Some(name))? {
        tx.delete(scope, KIND_BATCH, &r.id)?;
    }
    tx.delete(scope, KIND_GROUP, name)?;
    Ok(json!({}))
}

fn stored_bytes(tx: &Tx<'_>, scope: &Scope, group: &str, stream: Option<&str>) -> AwsResult<i64> {
    let mut total = 0i64;
    for b in tx.list(scope, KIND_BATCH, Some(group))? {
        if stream.is_some_and(|st| s(&b.body, "stream") != st) {
            continue;
        }
        total += i64_of(&b.body, "bytes").unwrap_or(0);
    }
    Ok(total)
}

fn render_group(tx: &Tx<'_>, scope: &Scope, g: &Value) -> AwsResult<Value> {
    let name = s(g, "logGroupName");
    let arn = group_arn(scope, &name);
    let mut v = json!({
        "logGroupName": name, "creationTime": g.get("creationTime"),
        "metricFilterCount": 0, "arn": format!("{arn}:*"), "logGroupArn": arn,
        "storedBytes": stored_bytes(tx, scope, &name, None)?,
        "logGroupClass": g.get("logGroupClass").cloned().unwrap_or(json!("STANDARD")),
    });
    for k in ["retentionInDays", "kmsKeyId", "deletionProtectionEnabled"] {
        if let Some(x) = g.get(k) {
            v[k] = x.clone();
        }
    }
    Ok(v)
}

/// A page from an offset token; `limit` is checked against 1..=max.
fn page(input: &Input, items: Vec<Value>, max: i64) -> AwsResult<(Vec<Value>, Option<String>)> {
    let limit = int(input, "limit")?.unwrap_or(max);
    if !(1..=max).contains(&limit) {
        return Err(invalid(format!("1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to {max}")));
    }
    let start = match input.str("nextToken") {
        Some(t) => t
            .strip_prefix("o/")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| invalid("The specified nextToken is invalid."))?,
        None => 0,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(limit as usize).collect();
    let end = start + page.len();
    Ok((page, (end < total).then(|| format!("o/{end}"))))
}

fn describe_log_groups(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let prefix = input.str("logGroupNamePrefix");
    let pattern = input.str("logGroupNamePattern");
    if prefix.is_some() && pattern.is_some() {
        return Err(invalid(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
        ));
    }
    let class = input.str("logGroupClass");
    let ids = input.str_list("logGroupIdentifiers");
    let mut groups = tx.list(scope, KIND_GROUP, None)?;
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = Vec::new();
    for g in groups {
        if prefix.is_some_and(|p| !g.id.starts_with(p)) {
            continue;
        }
        if pattern.is_some_and(|p| !g.id.to_lowercase().contains(&p.to_lowercase())) {
            continue;
        }
        if class.is_some_and(|c| s(&g.body, "logGroupClass") != c) {
            continue;
        }
        if let Some(ids) = &ids {
            let arn = group_arn(scope, &g.id);
            if !ids.iter().any(|i| *i == g.id || *i == arn) {
                continue;
            }
        }
        out.push(render_group(tx, scope, &g.body)?);
    }
    let (items, next) = page(input, out, 50)?;
    let mut v = json!({"logGroups": items});
    if let Some(n) = next {
        v["nextToken"] = json!(n);
    }
    Ok(v)
}

fn put_retention_policy(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let name = input.req_str("logGroupName", "InvalidParameterException")?;
    let days = int(input, "retentionInDays")?
        .ok_or_else(|| invalid("1 validation error detected: Value null at 'retentionInDays' failed to satisfy constraint: Member must not be null"))?;
    if !RETENTION_DAYS.contains(&days) {
        return Err(invalid(format!("1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]")));
    }
    let mut g = load_group(tx, scope, name)?;
    g["retentionInDays"] = json!(days);
    save_group(tx, scope, &g)?;
    Ok(json!({}))
}

fn delete_retention_policy(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let name = input.req_str("logGroupName", "InvalidParameterException")?;
    let mut g = load_group(tx, scope, name)?;
    if let Some(o) = g.as_object_mut() {
        o.remove("retentionInDays");
    }
    save_group(tx, scope, &g)?;
    Ok(json!({}))
}

/// The group a tagging call names: by name (old API) or by ARN (TagResource & co).
fn tagged_group(tx: &Tx<'_>, scope: &Scope, input: &Input, name: Option<&str>) -> AwsResult<Value> {
    match name {
        Some(n) => load_group(tx, scope, n),
        None => {
            let arn = input.req_str("resourceArn", "InvalidParameterException")?;
            let name = arn
                .split_once(":log-group:")
                .map(|(_, r)| r.trim_end_matches(":*"))
                .ok_or_else(|| invalid(format!("Invalid resource ARN: {arn}")))?;
            if arn != group_arn(scope, name) && arn != format!("{}:*", group_arn(scope, name)) {
                return Err(AwsError::bad(
                    "ResourceNotFoundException",
                    format!("The specified resource does not exist: {arn}"),
                ));
            }
            load_group(tx, scope, name)
        }
    }
}

fn tag_group(tx: &Tx<'_>, scope: &Scope, input: &Input, name: Option<&str>) -> AwsResult<Value> {
    let mut g = tagged_group(tx, scope, input, name)?;
    let mut tags = g
        .get("tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in tags_map(input, "tags") {
        tags.insert(k, v);
    }
    if tags.len() > 50 {
        return Err(invalid(
            "Too many tags: a log group can have at most 50 tags.",
        ));
    }
    g["tags"] = Value::Object(tags);
    save_group(tx, scope, &g)?;
    Ok(json!({}))
}

fn untag_group(tx: &Tx<'_>, scope: &Scope, input: &Input, name: Option<&str>) -> AwsResult<Value> {
    let mut g = tagged_group(tx, scope, input, name)?;
    let keys = input
        .str_list("tags")
        .or_else(|| input.str_list("tagKeys"))
        .unwrap_or_default();
    if let Some(t) = g.get_mut("tags").and_then(Value::as_object_mut) {
        for k in keys {
            t.remove(&k);
        }
    }
    save_group(tx, scope, &g)?;
    Ok(json!({}))
}

fn list_tags(tx: &Tx<'_>, scope: &Scope, input: &Input, name: Option<&str>) -> AwsResult<Value> {
    let g = tagged_group(tx, scope, input, name)?;
    Ok(json!({"tags": g.get("tags").cloned().unwrap_or(json!({}))}))
}

// ---------------------------------------------------------------------------------------------
// Streams

fn stream_id(group: &str, stream: &str) -> String {
    format!("{group}:{stream}")
}

fn check_stream_name(name: &str) -> AwsResult<()> {
    if name.is_empty() || name.len() > 512 || name.contains([':', '*']) {
        return Err(invalid(format!("1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*")));
    }
    Ok(())
}

fn create_log_stream(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let group = input.req_str("logGroupName", "InvalidParameterException")?;
    let name = input.req_str("logStreamName", "InvalidParameterException")?;
    check_stream_name(name)?;
    load_group(tx, scope, group)?;
    let id = stream_id(group, name);
    if tx.get(scope, KIND_STREAM, &id)?.is_some() {
        return Err(AwsError::bad(
            "ResourceAlreadyExistsException",
            "The specified log stream already exists",
        ));
    }
    let st = json!({"logStreamName": name, "creationTime": time::now_millis()});
    tx.put(scope, KIND_STREAM, &id, Some(group), Some(name), &st)?;
    Ok(json!({}))
}

/// How AWS services deliver their own logs (API Gateway access logs): appends `events`
/// (epoch ms, message) to `stream` of an existing `group`, creating the stream when missing,
/// in one transaction. Events are sorted and sent in PutLogEvents-sized batches (10,000
/// events, 1 MiB, 24 h each); empty messages are skipped. `Ok(None)` when the group does not
/// exist (the caller drops the events, as AWS does).
pub(crate) fn append_events(
    store: &portico_store::Store,
    scope: &Scope,
    group: &str,
    stream: &str,
    mut events: Vec<(i64, String)>,
) -> AwsResult<Option<usize>> {
    events.retain(|(_, m)| !m.is_empty());
    // an event holds at most 256 KiB (message plus 26 bytes)
    for (_, m) in events.iter_mut() {
        if m.len() > 262_118 {
            let mut end = 262_118;
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            m.truncate(end);
        }
    }
    events.sort_by_key(|(ts, _)| *ts);
    check_stream_name(stream)?;
    store.write(|tx| {
        if tx.get(scope, KIND_GROUP, group)?.is_none() {
            return Ok(None);
        }
        let id = stream_id(group, stream);
        if tx.get(scope, KIND_STREAM, &id)?.is_none() {
            let st = json!({"logStreamName": stream, "creationTime": time::now_millis()});
            tx.put(scope, KIND_STREAM, &id, Some(group), Some(stream), &st)?;
        }
        let mut sent = 0;
        let mut rest = events.as_slice();
        while !rest.is_empty() {
            let first_ts = rest[0].0;
            let mut bytes = 0;
            let n = rest
                .iter()
                .take(10_000)
                .take_while(|(ts, m)| {
                    bytes += m.len() + 26;
                    bytes <= 1_048_576 && ts - first_ts <= DAY_MS
                })
                .count()
                .max(1);
            let batch: Vec<Value> = rest[..n]
                .iter()
                .map(|(ts, m)| json!({"timestamp": ts, "message": m}))
                .collect();
            put_log_events(
                tx,
                scope,
                &Input(json!({"logGroupName": group, "logStreamName": stream, "logEvents": batch})),
            )?;
            sent += n;
            rest = &rest[n..];
        }
        Ok(Some(sent))
    })
}

fn delete_log_stream(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let group = input.req_str("logGroupName", "InvalidParameterException")?;
    let name = input.req_str("logStreamName", "InvalidParameterException")?;
    load_group(tx, scope, group)?;
    if !tx.delete(scope, KIND_STREAM, &stream_id(group, name))? {
        return Err(stream_missing());
    }
    for b in tx.find_by_name(scope, KIND_BATCH, &stream_id(group, name))? {
        tx.delete(scope, KIND_BATCH, &b.id)?;
    }
    Ok(json!({}))
}

fn render_stream(scope: &Scope, group: &str, st: &Value) -> Value {
    let name = s(st, "logStreamName");
    let mut v = json!({
        "logStreamName": name, "creationTime": st.get("creationTime"),
        "arn": format!("{}:log-stream:{name}", group_arn(scope, group)),
        "storedBytes": 0,
    });
    for k in [
        "firstEventTimestamp",
        "lastEventTimestamp",
        "lastIngestionTime",
        "uploadSequenceToken",
    ] {
        if let Some(x) = st.get(k) {
            v[k] = x.clone();
        }
    }
    v
}

fn describe_log_streams(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let group = group_name(input)?.to_string();
    load_group(tx, scope, &group)?;
    let prefix = input.str("logStreamNamePrefix");
    let order = input.str("orderBy").unwrap_or("LogStreamName");
    if !matches!(order, "LogStreamName" | "LastEventTime") {
        return Err(invalid(format!("1 validation error detected: Value '{order}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]")));
    }
    if order == "LastEventTime" && prefix.is_some() {
        return Err(invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let descending = input.bool("descending").ok().flatten() == Some(true);
    let mut streams: Vec<Value> = tx
        .list(scope, KIND_STREAM, Some(&group))?
        .into_iter()
        .map(|r| r.body)
        .filter(|b| prefix.is_none_or(|p| s(b, "logStreamName").starts_with(p)))
        .collect();
    if order == "LastEventTime" {
        streams.sort_by_key(|b| {
            (
                i64_of(b, "lastEventTimestamp").unwrap_or(0),
                s(b, "logStreamName"),
            )
        });
    } else {
        streams.sort_by_key(|b| s(b, "logStreamName"));
    }
    if descending {
        streams.reverse();
    }
    let rendered: Vec<Value> = streams
        .iter()
        .map(|b| render_stream(scope, &group, b))
        .collect();
    let (items, next) = page(input, rendered, 50)?;
    let mut v = json!({"logStreams": items});
    if let Some(n) = next {
        v["nextToken"] = json!(n);
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Events

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    stream: String,
    timestamp: i64,
    seq: i64,
    ingestion: i64,
    message: String,
}

impl Event {
    fn key(&self) -> (i64, i64) {
        (self.timestamp, self.seq)
    }

    fn id(&self) -> String {
        event_id(self.key())
    }
}

fn event_id((ts, seq): (i64, i64)) -> String {
    format!("{:020}{:036}", ts.max(0), seq.max(0))
}

fn parse_key(s: &str) -> Option<(i64, i64)> {
    if s.len() != 56 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((s[..20].parse().ok()?, s[20..].parse().ok()?))
}

fn put_log_events(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let group = input.req_str("logGroupName", "InvalidParameterException")?;
    let stream = input.req_str("logStreamName", "InvalidParameterException")?;
    let g = load_group(tx, scope, group)?;
    let sid = stream_id(group, stream);
    let mut st = tx
        .get(scope, KIND_STREAM, &sid)?
        .ok_or_else(stream_missing)?
        .body;
    let events = input.list("logEvents").unwrap_or_default();
    if events.is_empty() || events.len() > 10_000 {
        return Err(invalid(format!("1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length {}", if events.is_empty() { "greater than or equal to 1" } else { "less than or equal to 10000" })));
    }
    let mut parsed = Vec::with_capacity(events.len());
    let mut bytes = 0usize;
    for (i, e) in events.iter().enumerate() {
        let ts = e.i64("timestamp").ok().flatten().ok_or_else(|| {
            invalid(format!("1 validation error detected: Value null at 'logEvents.{}.member.timestamp' failed to satisfy constraint: Member must not be null", i + 1))
        })?;
        if ts < 0 {
            return Err(invalid(format!("1 validation error detected: Value '{ts}' at 'logEvents.{}.member.timestamp' failed to satisfy constraint: Member must have value greater than or equal to 0", i + 1)));
        }
        let msg = e.string("message").unwrap_or_default();
        if msg.is_empty() {
            return Err(invalid(format!("1 validation error detected: Value '' at 'logEvents.{}.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1", i + 1)));
        }
        bytes += msg.len() + 26;
        parsed.push((ts, msg));
    }
    if bytes > 1_048_576 {
        return Err(invalid(
            "Upload too large: 1048576 bytes exceeds the maximum allowed batch size.",
        ));
    }
    if parsed.windows(2).any(|w| w[1].0 < w[0].0) {
        return Err(invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    if let (Some(first), Some(last)) = (parsed.first(), parsed.last()) {
        if last.0.saturating_sub(first.0) > DAY_MS {
            return Err(invalid(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
            ));
        }
    }
    let now = time::now_millis();
    let too_old = now - 14 * DAY_MS;
    let too_new = now + 2 * 3600 * 1000;
    let expired = i64_of(&g, "retentionInDays").map(|d| now - d * DAY_MS);
    let mut rejected = Map::new();
    let mut stored = Vec::new();
    let mut stored_bytes = 0i64;
    for (i, (ts, msg)) in parsed.into_iter().enumerate() {
        if expired.is_some_and(|e| ts < e) {
            rejected.insert("expiredLogEventEndIndex".into(), json!(i));
            continue;
        }
        if ts < too_old {
            rejected.insert("tooOldLogEventEndIndex".into(), json!(i));
            continue;
        }
        if ts > too_new {
            if !rejected.contains_key("tooNewLogEventStartIndex") {
                rejected.insert("tooNewLogEventStartIndex".into(), json!(i));
            }
            continue;
        }
        let seq = tx.next_counter("logs.event")?;
        stored_bytes += msg.len() as i64;
        stored.push(json!([ts, seq, now, msg]));
    }
    if let (Some(first), Some(last)) = (stored.first(), stored.last()) {
        let first_seq = first[1].as_i64().unwrap_or(0);
        let first_ts = first[0].as_i64().unwrap_or(0);
        let last_ts = last[0].as_i64().unwrap_or(0);
        tx.put(
            scope,
            KIND_BATCH,
            &format!("{sid}:{first_seq}"),
            Some(group),
            Some(&sid),
            &json!({"stream": stream, "bytes": stored_bytes, "events": stored}),
        )?;
        if i64_of(&st, "firstEventTimestamp").is_none_or(|f| first_ts < f) {
            st["firstEventTimestamp"] = json!(first_ts);
        }
        if i64_of(&st, "lastEventTimestamp").is_none_or(|l| last_ts > l) {
            st["lastEventTimestamp"] = json!(last_ts);
        }
        st["lastIngestionTime"] = json!(now);
    }
    let token = format!("{:056}", tx.next_counter("logs.token")?);
    st["uploadSequenceToken"] = json!(token);
    tx.put(scope, KIND_STREAM, &sid, Some(group), Some(stream), &st)?;
    let mut out = json!({"nextSequenceToken": token});
    if !rejected.is_empty() {
        out["rejectedLogEventsInfo"] = Value::Object(rejected);
    }
    Ok(out)
}

/// Events of a group (optionally one set of streams), oldest first, without expired ones.
fn load_events(
    tx: &Tx<'_>,
    scope: &Scope,
    group: &Value,
    only: Option<&str>,
    stream_ok: &dyn Fn(&str) -> bool,
) -> AwsResult<Vec<Event>> {
    let name = s(group, "logGroupName");
    let cutoff = i64_of(group, "retentionInDays").map(|d| time::now_millis() - d * DAY_MS);
    let mut out = Vec::new();
    // One stream: its batches by name (indexed); otherwise every batch of the group.
    let batches = match only {
        Some(st) => tx.find_by_name(scope, KIND_BATCH, &stream_id(&name, st))?,
        None => tx.list(scope, KIND_BATCH, Some(&name))?,
    };
    for b in batches {
        let stream = s(&b.body, "stream");
        if !stream_ok(&stream) {
            continue;
        }
        for e in b
            .body
            .get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ev = Event {
                stream: stream.clone(),
                timestamp: e[0].as_i64().unwrap_or(0),
                seq: e[1].as_i64().unwrap_or(0),
                ingestion: e[2].as_i64().unwrap_or(0),
                message: e[3].as_str().unwrap_or_default().to_string(),
            };
            if cutoff.is_some_and(|c| ev.timestamp < c) {
                continue;
            }
            out.push(ev);
        }
    }
    out.sort_by_key(Event::key);
    Ok(out)
}

fn get_log_events(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let group = group_name(input)?.to_string();
    let stream = input.req_str("logStreamName", "InvalidParameterException")?;
    let g = load_group(tx, scope, &group)?;
    if tx
        .get(scope, KIND_STREAM, &stream_id(&group, stream))?
        .is_none()
    {
        return Err(stream_missing());
    }
    let limit = int(input, "limit")?.unwrap_or(10_000);
    if !(1..=10_000).contains(&limit) {
        return Err(invalid(format!("1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000")));
    }
    let limit = limit as usize;
    let start = int(input, "startTime")?;
    let end = int(input, "endTime")?;
    let events: Vec<Event> = load_events(tx, scope, &g, Some(stream), &|st| st == stream)?
        .into_iter()
        .filter(|e| start.is_none_or(|t| e.timestamp >= t) && end.is_none_or(|t| e.timestamp < t))
        .collect();
    // A token is a cursor: `f/K` reads events after key K, `b/K` events before it.
    let token = match input.str("nextToken") {
        None => None,
        Some(t) => {
            let (dir, key) = t
                .split_once('/')
                .and_then(|(d, k)| Some((d, parse_key(k)?)))
                .filter(|(d, _)| *d == "f" || *d == "b")
                .ok_or_else(|| invalid("The specified nextToken is invalid."))?;
            Some((dir == "f", key))
        }
    };
    let head = input.bool("startFromHead").ok().flatten() == Some(true);
    let (page, forward): (Vec<&Event>, bool) = match token {
        Some((true, k)) => (
            events.iter().filter(|e| e.key() > k).take(limit).collect(),
            true,
        ),
        Some((false, k)) => {
            let before: Vec<&Event> = events.iter().filter(|e| e.key() < k).collect();
            (before[before.len().saturating_sub(limit)..].to_vec(), false)
        }
        None if head => (events.iter().take(limit).collect(), true),
        None => (
            events[events.len().saturating_sub(limit)..]
                .iter()
                .collect(),
            false,
        ),
    };
    let (fwd, back) = match (page.first(), page.last()) {
        (Some(first), Some(last)) => (last.key(), (first.key().0, first.key().1)),
        _ => match token {
            Some((true, k)) => (k, (k.0, k.1.saturating_add(1))),
            Some((false, k)) => ((k.0, k.1.saturating_sub(1)), k),
            None if forward => ((0, 0), (0, 0)),
            None => {
                let k = events.last().map(Event::key).unwrap_or((0, 0));
                (k, (k.0, k.1.saturating_add(1)))
            }
        },
    };
    let out: Vec<Value> = page
        .iter()
        .map(|e| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion}))
        .collect();
    Ok(json!({
        "events": out,
        "nextForwardToken": format!("f/{}", event_id(fwd)),
        "nextBackwardToken": format!("b/{}", event_id(back)),
    }))
}

fn filter_log_events(tx: &Tx<'_>, scope: &Scope, input: &Input) -> AwsResult<Value> {
    let group = group_name(input)?.to_string();
    let g = load_group(tx, scope, &group)?;
    let names = input.str_list("logStreamNames");
    let prefix = input.str("logStreamNamePrefix");
    if names.is_some() && prefix.is_some() {
        return Err(invalid(
            "Parameters logStreamNames and logStreamNamePrefix are mutually exclusive.",
        ));
    }
    if let Some(ns) = &names {
        for n in ns {
            if tx.get(scope, KIND_STREAM, &stream_id(&group, n))?.is_none() {
                return Err(stream_missing());
            }
        }
    }
    let pat = pattern::parse(input.str("filterPattern").unwrap_or(""))?;
    let limit = int(input, "limit")?.unwrap_or(10_000);
    if !(1..=10_000).contains(&limit) {
        return Err(invalid(format!("1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000")));
    }
    let start = int(input, "startTime")?;
    let end = int(input, "endTime")?;
    let after = match input.str("nextToken") {
        Some(t) => Some(
            t.strip_prefix("e/")
                .and_then(parse_key)
                .ok_or_else(|| invalid("The specified nextToken is invalid."))?,
        ),
        None => None,
    };
    let stream_ok = |st: &str| match (&names, prefix) {
        (Some(ns), _) => ns.iter().any(|n| n == st),
        (None, Some(p)) => st.starts_with(p),
        (None, None) => true,
    };
    let matching: Vec<Event> = load_events(tx, scope, &g, None, &stream_ok)?
        .into_iter()
        .filter(|e| {
            start.is_none_or(|t| e.timestamp >= t)
                && end.is_none_or(|t| e.timestamp <= t)
                && after.is_none_or(|k| e.key() > k)
                && pat.matches(&e.message)
        })
        .collect();
    let more = matching.len() > limit as usize;
    let page = &matching[..matching.len().min(limit as usize)];
    let events: Vec<Value> = page
        .iter()
        .map(|e| {
            json!({
                "logStreamName": e.stream, "timestamp": e.timestamp, "message": e.message,
                "ingestionTime": e.ingestion, "eventId": e.id(),
            })
        })
        .collect();
    let mut searched: Vec<Value> = tx
        .list(scope, KIND_STREAM, Some(&group))?
        .iter()
        .map(|r| s(&r.body, "logStreamName"))
        .filter(|n| stream_ok(n))
        .map(|n| json!({"logStreamName": n, "searchedCompletely": true}))
        .collect();
    searched.sort_by_key(|v| s(v, "logStreamName"));
    let mut out = json!({"events": events, "searchedLogStreams": searched});
    if more {
        if let Some(last) = page.last() {
            out["nextToken"] = json!(format!("e/{}", last.id()));
        }
    }
    Ok(out)
}

/// Runs a filter pattern over sample messages (no state involved).
fn test_metric_filter(input: &Input) -> AwsResult<Value> {
    let pattern = input.req_str("filterPattern", "InvalidParameterException")?;
    let pat = pattern::parse(pattern)?;
    let messages = input.str_list("logEventMessages").unwrap_or_default();
    if messages.is_empty() || messages.len() > 50 {
        return Err(invalid("1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: Member must have length between 1 and 50"));
    }
    let matches: Vec<Value> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| pat.matches(m))
        .map(|(i, m)| {
            let extracted: Map<String, Value> = pat
                .extract(m)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            json!({"eventNumber": i + 1, "eventMessage": m, "extractedValues": extracted})
        })
        .collect();
    Ok(json!({"matches": matches}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip_and_sort() {
        let a = event_id((1_700_000_000_000, 7));
        let b = event_id((1_700_000_000_000, 12));
        let c = event_id((1_700_000_000_001, 1));
        assert_eq!(a.len(), 56);
        assert!(a < b && b < c);
        assert_eq!(parse_key(&a), Some((1_700_000_000_000, 7)));
        assert_eq!(parse_key("123"), None);
    }

    #[test]
    fn append_events_creates_the_stream_splits_batches_and_skips_missing_groups() {
        let store = portico_store::Store::in_memory().unwrap();
        let scope = Scope::new("000000000000", "us-east-1");
        let now = time::now_millis();
        let evs = |n: usize| -> Vec<(i64, String)> {
            (0..n)
                .map(|i| (now - i as i64, format!("line {i}")))
                .collect()
        };
        assert_eq!(
            append_events(&store, &scope, "nope", "s", evs(2)).unwrap(),
            None
        );
        store
            .write(|tx| create_log_group(tx, &scope, &Input(json!({"logGroupName": "g"}))))
            .unwrap();
        // out of order, one empty message, more than one PutLogEvents batch
        let mut many = evs(10_001);
        many.push((now, String::new()));
        assert_eq!(
            append_events(&store, &scope, "g", "api_$default", many).unwrap(),
            Some(10_001)
        );
        let got = store
            .read(|tx| {
                get_log_events(
                    tx,
                    &scope,
                    &Input(json!({"logGroupName": "g", "logStreamName": "api_$default", "startFromHead": true, "limit": 10000})),
                )
            })
            .unwrap();
        let events = got["events"].as_array().unwrap();
        assert_eq!(events.len(), 10_000);
        assert_eq!(events[0]["message"], "line 10000");
        assert!(append_events(&store, &scope, "g", "bad:stream", evs(1)).is_err());
    }

    #[test]
    fn names() {
        assert!(check_group_name("/ecs/web-app_1#x").is_ok());
        assert!(check_group_name("bad name").is_err());
        assert!(check_group_name("").is_err());
        assert!(check_stream_name("ecs/web/abc123").is_ok());
        assert!(check_stream_name("a:b").is_err());
        assert_eq!(
            group_name(&Input(
                json!({"logGroupIdentifier": "arn:aws:logs:us-east-1:1:log-group:/x/y:*"})
            ))
            .unwrap(),
            "/x/y"
        );
    }
}
