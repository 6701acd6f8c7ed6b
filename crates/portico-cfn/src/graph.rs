//! The dependency graph: an edge B -> A when B has `DependsOn: A` or refers to A (`Ref`,
//! `Fn::GetAtt`, `${A}` in `Fn::Sub`) in its properties or metadata. Unknown names and cycles
//! are rejected with CloudFormation's texts.

use crate::intrinsics::{references, unresolved};
use crate::template::format_error;
use portico_core::AwsError;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// Logical ids in template order.
    pub order: Vec<String>,
    /// Each resource's dependencies (resources only).
    pub deps: BTreeMap<String, BTreeSet<String>>,
}

/// `DependsOn` as a list of names.
pub(crate) fn depends_on(r: &Value) -> Vec<String> {
    match r.get("DependsOn") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Builds the graph of `resources` (already filtered by their conditions). `names` are the
/// parameter names; pseudo parameters (`AWS::…`) are always known.
pub(crate) fn build(
    resources: &Map<String, Value>,
    params: &HashSet<String>,
    conditions: &HashMap<String, bool>,
    outputs: &Map<String, Value>,
) -> Result<Graph, AwsError> {
    let mut g = Graph::default();
    let mut missing: Vec<String> = Vec::new();
    for (id, r) in resources {
        let mut refs = BTreeSet::new();
        if let Some(p) = r.get("Properties") {
            references(p, conditions, &mut refs);
        }
        if let Some(m) = r.get("Metadata") {
            references(m, conditions, &mut refs);
        }
        for d in depends_on(r) {
            refs.insert(d);
        }
        let mut deps = BTreeSet::new();
        for name in refs {
            if resources.contains_key(&name) {
                deps.insert(name);
            } else if !(params.contains(&name)
                || name.starts_with("AWS::")
                || missing.contains(&name))
            {
                missing.push(name);
            }
        }
        g.order.push(id.clone());
        g.deps.insert(id.clone(), deps);
    }
    if !missing.is_empty() {
        return Err(AwsError::bad(
            "ValidationError",
            unresolved(&missing, "Resources"),
        ));
    }
    for out in outputs.values() {
        let mut refs = BTreeSet::new();
        if let Some(v) = out.get("Value") {
            references(v, conditions, &mut refs);
        }
        if let Some(v) = out.get("Export") {
            references(v, conditions, &mut refs);
        }
        for name in refs {
            if !(resources.contains_key(&name)
                || params.contains(&name)
                || name.starts_with("AWS::")
                || missing.contains(&name))
            {
                missing.push(name);
            }
        }
    }
    if !missing.is_empty() {
        return Err(AwsError::bad(
            "ValidationError",
            unresolved(&missing, "Outputs"),
        ));
    }
    let stuck = g.unorderable();
    if !stuck.is_empty() {
        return Err(format_error(format!(
            "Circular dependency between resources: [{}]",
            stuck.join(", ")
        )));
    }
    Ok(g)
}

impl Graph {
    /// Resources that can never be ordered (in a cycle, or waiting on one), in template order.
    fn unorderable(&self) -> Vec<String> {
        let mut done: HashSet<&str> = HashSet::new();
        loop {
            let before = done.len();
            for id in &self.order {
                if !done.contains(id.as_str())
                    && self.deps[id].iter().all(|d| done.contains(d.as_str()))
                {
                    done.insert(id);
                }
            }
            if done.len() == before {
                break;
            }
        }
        self.order
            .iter()
            .filter(|id| !done.contains(id.as_str()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build_of(resources: Value) -> Result<Graph, String> {
        let r = resources.as_object().cloned().unwrap_or_default();
        build(
            &r,
            &["P".to_string()].into_iter().collect(),
            &HashMap::new(),
            &Map::new(),
        )
        .map_err(|e| e.message)
    }

    #[test]
    fn edges_from_refs_getatt_sub_and_dependson() {
        let g = build_of(json!({
            "C": {"Type": "T", "Properties": {"x": {"Fn::Sub": "${B.Arn}-${P}"}}, "DependsOn": "A"},
            "B": {"Type": "T", "Properties": {"y": {"Ref": "A"}, "z": {"Ref": "AWS::Region"}}},
            "A": {"Type": "T"}
        }))
        .unwrap();
        assert_eq!(
            g.deps["C"].iter().cloned().collect::<Vec<_>>(),
            vec!["A".to_string(), "B".to_string()]
        );
    }

    #[test]
    fn cycles_and_unknown_names() {
        assert_eq!(
            build_of(json!({
                "A": {"Type": "T", "Properties": {"x": {"Ref": "B"}}},
                "B": {"Type": "T", "Properties": {"x": {"Fn::GetAtt": ["A", "Arn"]}}},
                "C": {"Type": "T"}
            }))
            .unwrap_err(),
            "Template format error: Circular dependency between resources: [A, B]"
        );
        assert_eq!(
            build_of(json!({
                "A": {"Type": "T", "Properties": {"x": {"Ref": "Nope"}}, "DependsOn": ["Gone"]}
            }))
            .unwrap_err(),
            "Template format error: Unresolved resource dependencies [Gone, Nope] in the Resources block of the template"
        );
    }

    #[test]
    fn outputs_are_checked() {
        let r = json!({"A": {"Type": "T"}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let o = json!({"O": {"Value": {"Ref": "B"}}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let e = build(&r, &HashSet::new(), &HashMap::new(), &o).unwrap_err();
        assert_eq!(
            e.message,
            "Template format error: Unresolved resource dependencies [B] in the Outputs block of the template"
        );
    }
}
