//! Stack-level tests against a real control plane (in-memory store) with a fake Parameter
//! Store registered as an external service: create, rollback, update, change sets, delete and
//! restart recovery, checked as stable text snapshots of events and state.

use crate::model::{self, Operation, ResRec, Stack};
use crate::CloudFormation;
use parking_lot::Mutex;
use portico_control::{BoxFuture, Config, Control, ExternalService};
use portico_core::{AwsError, AwsResult, Input, RequestContext, Service};
use portico_store::{Scope, Store};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A Parameter Store that fails `PutParameter` for the value `FAIL`.
#[derive(Default)]
struct FakeSsm {
    params: Mutex<BTreeMap<String, String>>,
}

impl ExternalService for FakeSsm {
    fn call<'a>(
        &'a self,
        _rc: &'a RequestContext,
        op: &'a str,
        input: Input,
    ) -> BoxFuture<'a, AwsResult<Value>> {
        Box::pin(async move {
            let name = input.string("Name").unwrap_or_default();
            match op {
                "PutParameter" => {
                    let v = input.string("Value").unwrap_or_default();
                    if v == "SLOW" {
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    }
                    if v == "FAIL" {
                        return Err(AwsError::bad(
                            "ValidationException",
                            "Parameter value FAIL is not allowed",
                        ));
                    }
                    let mut p = self.params.lock();
                    if p.contains_key(&name) && input.bool("Overwrite").ok().flatten() != Some(true)
                    {
                        return Err(AwsError::bad(
                            "ParameterAlreadyExists",
                            "The parameter already exists.",
                        ));
                    }
                    p.insert(name, v);
                    Ok(json!({"Version": 1}))
                }
                "GetParameter" => match self.params.lock().get(&name) {
                    Some(v) => Ok(json!({"Parameter": {"Name": name, "Value": v}})),
                    None => Err(AwsError::bad("ParameterNotFound", "")),
                },
                "DeleteParameter" => match self.params.lock().remove(&name) {
                    Some(_) => Ok(json!({})),
                    None => Err(AwsError::bad("ParameterNotFound", "")),
                },
                _ => Err(Service::Ssm.unknown_operation(op)),
            }
        })
    }
}

struct Env {
    control: Control,
    ssm: Arc<FakeSsm>,
    rc: RequestContext,
}

fn env() -> Env {
    let control = Control::new(
        Store::in_memory().unwrap(),
        Config::default(),
        portico_dataplane::Dataplane::default(),
        portico_runtime::Runtime::default(),
    );
    let ssm = Arc::new(FakeSsm::default());
    control.register_external(Service::Ssm, ssm.clone());
    CloudFormation::install(&control);
    Env {
        control,
        ssm,
        rc: RequestContext::new("000000000000", "us-east-1"),
    }
}

impl Env {
    async fn call(&self, op: &str, input: Value) -> AwsResult<Value> {
        self.control
            .call(&self.rc, Service::CloudFormation, op, Input(input))
            .await
    }

    async fn settle(&self, stack: &str) -> String {
        for _ in 0..400 {
            let out = self
                .call("DescribeStacks", json!({"StackName": stack}))
                .await
                .unwrap();
            let st = out["Stacks"][0]["StackStatus"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !st.ends_with("_IN_PROGRESS") {
                return st;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("stack {stack} did not settle");
    }

    /// Events oldest first, one line each, physical ids and times left out.
    async fn events(&self, stack: &str) -> String {
        let out = self
            .call("DescribeStackEvents", json!({"StackName": stack}))
            .await
            .unwrap();
        let mut lines: Vec<String> = out["StackEvents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let reason = e["ResourceStatusReason"].as_str().unwrap_or_default();
                let reason = reason.split(" (RequestToken").next().unwrap_or_default();
                format!(
                    "{} {}{}",
                    e["LogicalResourceId"].as_str().unwrap_or_default(),
                    e["ResourceStatus"].as_str().unwrap_or_default(),
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(" [{reason}]")
                    }
                )
            })
            .collect();
        lines.reverse();
        lines.join("\n")
    }

    fn ssm_state(&self) -> String {
        self.ssm
            .params
            .lock()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

const TEMPLATE: &str = r#"
Parameters:
  Greeting:
    Type: String
    Default: hello
    AllowedValues: [hello, bonjour, FAIL]
Conditions:
  Never: !Equals [!Ref "AWS::Region", mars-1]
Resources:
  First:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/first"
      Type: String
      Value: !Ref Greeting
  Second:
    Type: AWS::SSM::Parameter
    DependsOn: First
    DeletionPolicy: Retain
    Properties:
      Name: !Sub "/${AWS::StackName}/second"
      Type: String
      Value: !Join ["-", [!GetAtt First.Value, world]]
  Skipped:
    Type: AWS::SSM::Parameter
    Condition: Never
    Properties: {Type: String, Value: x}
  Meta:
    Type: AWS::CDK::Metadata
    Properties:
      Analytics: v2
Outputs:
  SecondName:
    Value: !Ref Second
    Export:
      Name: !Sub "${AWS::StackName}-second"
"#;

#[tokio::test]
async fn create_then_delete() {
    let e = env();
    let out = e
        .call(
            "CreateStack",
            json!({"StackName": "st", "TemplateBody": TEMPLATE}),
        )
        .await
        .unwrap();
    assert!(out["StackId"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:cloudformation:us-east-1:000000000000:stack/st/"));
    assert_eq!(e.settle("st").await, "CREATE_COMPLETE");
    let ev = e.events("st").await;
    // Independent resources run in parallel, so order the lines per resource.
    for expected in [
        "First CREATE_IN_PROGRESS\nFirst CREATE_IN_PROGRESS [Resource creation Initiated]\nFirst CREATE_COMPLETE",
        "Second CREATE_IN_PROGRESS\nSecond CREATE_IN_PROGRESS [Resource creation Initiated]\nSecond CREATE_COMPLETE",
    ] {
        assert!(ev.contains(expected), "{ev}");
    }
    assert!(
        ev.starts_with("st CREATE_IN_PROGRESS [User Initiated]"),
        "{ev}"
    );
    assert!(ev.ends_with("st CREATE_COMPLETE"), "{ev}");
    assert!(!ev.contains("Skipped"));
    assert_eq!(e.ssm_state(), "/st/first=hello,/st/second=hello-world");
    let d = e
        .call("DescribeStacks", json!({"StackName": "st"}))
        .await
        .unwrap();
    assert_eq!(
        d["Stacks"][0]["Outputs"],
        json!([{"OutputKey": "SecondName", "OutputValue": "/st/second", "ExportName": "st-second"}])
    );
    let ex = e.call("ListExports", json!({})).await.unwrap();
    assert_eq!(ex["Exports"][0]["Value"], "/st/second");
    let r = e
        .call(
            "DescribeStackResource",
            json!({"StackName": "st", "LogicalResourceId": "First"}),
        )
        .await
        .unwrap();
    assert_eq!(r["StackResourceDetail"]["PhysicalResourceId"], "/st/first");

    // Deleting goes in reverse order and keeps the retained parameter.
    e.call("DeleteStack", json!({"StackName": "st"}))
        .await
        .unwrap();
    let id = d["Stacks"][0]["StackId"].as_str().unwrap().to_string();
    assert_eq!(e.settle(&id).await, "DELETE_COMPLETE");
    let ev = e.events(&id).await;
    let tail: Vec<&str> = ev
        .lines()
        .skip_while(|l| !l.contains("DELETE_IN_PROGRESS [User"))
        .collect();
    let second = tail
        .iter()
        .position(|l| *l == "Second DELETE_SKIPPED")
        .unwrap();
    let first = tail
        .iter()
        .position(|l| *l == "First DELETE_COMPLETE")
        .unwrap();
    assert!(second < first, "{ev}");
    assert_eq!(e.ssm_state(), "/st/second=hello-world");
    let err = e
        .call("DescribeStacks", json!({"StackName": "st"}))
        .await
        .unwrap_err();
    assert_eq!(err.message, "Stack with id st does not exist");
}

#[tokio::test]
async fn failing_resource_rolls_back_with_reason() {
    let e = env();
    e.call(
        "CreateStack",
        json!({"StackName": "bad", "TemplateBody": TEMPLATE, "Parameters": [{"ParameterKey": "Greeting", "ParameterValue": "FAIL"}]}),
    )
    .await
    .unwrap();
    assert_eq!(e.settle("bad").await, "ROLLBACK_COMPLETE");
    let ev = e.events("bad").await;
    assert!(
        ev.contains("First CREATE_FAILED [Resource handler returned message: \"Parameter value FAIL is not allowed (Service: Ssm, Status Code: 400, Request ID: "),
        "{ev}"
    );
    assert!(
        ev.contains("bad ROLLBACK_IN_PROGRESS [The following resource(s) failed to create: [First]. Rollback requested by user.]"),
        "{ev}"
    );
    assert!(ev.contains("First DELETE_COMPLETE"), "{ev}");
    assert!(
        !ev.contains("Second"),
        "never-started resources get no events: {ev}"
    );
    assert!(ev.ends_with("bad ROLLBACK_COMPLETE"), "{ev}");
    assert_eq!(e.ssm_state(), "");
    let err = e
        .call(
            "UpdateStack",
            json!({"StackName": "bad", "TemplateBody": TEMPLATE}),
        )
        .await
        .unwrap_err();
    assert!(err
        .message
        .ends_with("is in ROLLBACK_COMPLETE state and can not be updated."));
}

#[tokio::test]
async fn update_in_place_and_no_op() {
    let e = env();
    e.call(
        "CreateStack",
        json!({"StackName": "up", "TemplateBody": TEMPLATE}),
    )
    .await
    .unwrap();
    assert_eq!(e.settle("up").await, "CREATE_COMPLETE");
    let err = e
        .call(
            "UpdateStack",
            json!({"StackName": "up", "UsePreviousTemplate": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.message, "No updates are to be performed.");
    e.call(
        "UpdateStack",
        json!({"StackName": "up", "UsePreviousTemplate": true, "Parameters": [{"ParameterKey": "Greeting", "ParameterValue": "bonjour"}]}),
    )
    .await
    .unwrap();
    assert_eq!(e.settle("up").await, "UPDATE_COMPLETE");
    assert_eq!(e.ssm_state(), "/up/first=bonjour,/up/second=bonjour-world");
    let ev = e.events("up").await;
    assert!(
        ev.contains("First UPDATE_IN_PROGRESS\nFirst UPDATE_COMPLETE"),
        "{ev}"
    );
    assert!(
        ev.contains("up UPDATE_COMPLETE_CLEANUP_IN_PROGRESS\nup UPDATE_COMPLETE"),
        "{ev}"
    );
    assert!(
        !ev.contains("Meta UPDATE"),
        "unchanged resources are untouched: {ev}"
    );

    // A failing update rolls back to the previous values.
    e.call(
        "UpdateStack",
        json!({"StackName": "up", "UsePreviousTemplate": true, "Parameters": [{"ParameterKey": "Greeting", "ParameterValue": "FAIL"}]}),
    )
    .await
    .unwrap();
    assert_eq!(e.settle("up").await, "UPDATE_ROLLBACK_COMPLETE");
    assert_eq!(e.ssm_state(), "/up/first=bonjour,/up/second=bonjour-world");
    let ev = e.events("up").await;
    assert!(ev.contains("up UPDATE_ROLLBACK_IN_PROGRESS [The following resource(s) failed to update: [First]. ]"), "{ev}");
}

#[tokio::test]
async fn change_sets_create_and_execute() {
    let e = env();
    let out = e
        .call(
            "CreateChangeSet",
            json!({"StackName": "cs", "ChangeSetName": "one", "ChangeSetType": "CREATE", "TemplateBody": TEMPLATE}),
        )
        .await
        .unwrap();
    let cs_id = out["Id"].as_str().unwrap().to_string();
    let d = e
        .call("DescribeStacks", json!({"StackName": "cs"}))
        .await
        .unwrap();
    assert_eq!(d["Stacks"][0]["StackStatus"], "REVIEW_IN_PROGRESS");
    let c = e
        .call("DescribeChangeSet", json!({"ChangeSetName": cs_id}))
        .await
        .unwrap();
    assert_eq!(c["Status"], "CREATE_COMPLETE");
    assert_eq!(c["ExecutionStatus"], "AVAILABLE");
    let actions: Vec<String> = c["Changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            format!(
                "{} {}",
                x["ResourceChange"]["Action"].as_str().unwrap(),
                x["ResourceChange"]["LogicalResourceId"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(actions, vec!["Add First", "Add Second", "Add Meta"]);
    e.call(
        "ExecuteChangeSet",
        json!({"ChangeSetName": "one", "StackName": "cs"}),
    )
    .await
    .unwrap();
    assert_eq!(e.settle("cs").await, "CREATE_COMPLETE");
    let c = e
        .call("DescribeChangeSet", json!({"ChangeSetName": cs_id}))
        .await
        .unwrap();
    assert_eq!(c["ExecutionStatus"], "EXECUTE_COMPLETE");
    let err = e
        .call("ExecuteChangeSet", json!({"ChangeSetName": cs_id}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidChangeSetStatus");
    // An update change set with nothing new fails with AWS's reason.
    e.call(
        "CreateChangeSet",
        json!({"StackName": "cs", "ChangeSetName": "two", "UsePreviousTemplate": true}),
    )
    .await
    .unwrap();
    let c = e
        .call(
            "DescribeChangeSet",
            json!({"ChangeSetName": "two", "StackName": "cs"}),
        )
        .await
        .unwrap();
    assert_eq!(c["Status"], "FAILED");
    assert_eq!(
        c["StatusReason"],
        "The submitted information didn't contain changes. Submit different information to create a change set."
    );
    let err = e
        .call(
            "DescribeChangeSet",
            json!({"ChangeSetName": "nope", "StackName": "cs"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code.as_ref(), err.status, err.message.as_str()),
        ("ChangeSetNotFound", 404, "ChangeSet [nope] does not exist")
    );
}

#[tokio::test]
async fn validation_errors_change_nothing() {
    let e = env();
    let cases = [
        (json!({"StackName": "1x", "TemplateBody": TEMPLATE}), "ValidationError", "1 validation error detected: Value '1x' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]*"),
        (json!({"StackName": "a"}), "ValidationError", "Either Template URL or Template Body must be specified."),
        (json!({"StackName": "a", "TemplateBody": "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument: {}\n"}), "InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_IAM]"),
        (json!({"StackName": "a", "TemplateBody": "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: x\n      AssumeRolePolicyDocument: {}\n", "Capabilities": ["CAPABILITY_IAM"]}), "InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_NAMED_IAM]"),
        (json!({"StackName": "a", "TemplateBody": TEMPLATE, "Parameters": [{"ParameterKey": "Greeting", "ParameterValue": "hi"}]}), "ValidationError", "Parameter 'Greeting' must be one of AllowedValues"),
        (json!({"StackName": "a", "TemplateBody": TEMPLATE, "Parameters": [{"ParameterKey": "Nope", "ParameterValue": "hi"}]}), "ValidationError", "Parameters: [Nope] do not exist in the template"),
        (json!({"StackName": "a", "TemplateBody": "Parameters:\n  P: {Type: String}\nResources:\n  R: {Type: AWS::CDK::Metadata}\n"}), "ValidationError", "Parameters: [P] must have values"),
        (json!({"StackName": "a", "TemplateBody": "Parameters:\n  P: {Type: 'AWS::SSM::Parameter::Value<String>', Default: /nope}\nResources:\n  R: {Type: AWS::CDK::Metadata}\n"}), "ValidationError", "Unable to fetch parameters [/nope] from parameter store for this account."),
        (json!({"StackName": "a", "TemplateBody": "Resources:\n  A: {Type: AWS::CDK::Metadata, DependsOn: B}\n  B: {Type: AWS::CDK::Metadata, DependsOn: A}\n"}), "ValidationError", "Template format error: Circular dependency between resources: [A, B]"),
        (json!({"StackName": "a", "TemplateBody": "Resources:\n  A: {Type: AWS::Lambda::Function}\n"}), "ValidationError", "Template format error: Unrecognized resource types: [AWS::Lambda::Function]"),
    ];
    for (input, code, msg) in cases {
        let err = e.call("CreateStack", input.clone()).await.unwrap_err();
        assert_eq!(
            (err.code.as_ref(), err.message.as_str()),
            (code, msg),
            "for {input}"
        );
    }
    let err = e
        .call("ValidateTemplate", json!({"TemplateBody": "Resources:\n  A: {Type: AWS::CDK::Metadata, Properties: {X: !Ref Nope}}\n"}))
        .await
        .unwrap_err();
    assert_eq!(err.message, "Template format error: Unresolved resource dependencies [Nope] in the Resources block of the template");
    let all = e.call("ListStacks", json!({})).await.unwrap();
    assert_eq!(all["StackSummaries"], json!([]));
    let v = e
        .call("ValidateTemplate", json!({"TemplateBody": "Description: d\nResources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument: {}\n"}))
        .await
        .unwrap();
    assert_eq!(v["Capabilities"], json!(["CAPABILITY_IAM"]));
    assert_eq!(
        v["CapabilitiesReason"],
        "The following resource(s) require capabilities: [AWS::IAM::Role]"
    );
    e.call(
        "CreateStack",
        json!({"StackName": "dup", "TemplateBody": TEMPLATE, "EnableTerminationProtection": true}),
    )
    .await
    .unwrap();
    let err = e
        .call(
            "CreateStack",
            json!({"StackName": "dup", "TemplateBody": TEMPLATE}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code.as_ref(), err.message.as_str()),
        ("AlreadyExistsException", "Stack [dup] already exists")
    );
    e.settle("dup").await;
    let err = e
        .call("DeleteStack", json!({"StackName": "dup"}))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "Stack [dup] cannot be deleted while TerminationProtection is enabled"
    );
    e.call("DeleteStack", json!({"StackName": "never-existed"}))
        .await
        .unwrap();
}

#[tokio::test]
async fn restart_mid_create_rolls_back() {
    let e = env();
    e.ssm
        .params
        .lock()
        .insert("/half/first".into(), "hello".into());
    let scope = Scope::new("000000000000", "us-east-1");
    let id = "arn:aws:cloudformation:us-east-1:000000000000:stack/half/0000";
    let mut resources = BTreeMap::new();
    resources.insert(
        "First".to_string(),
        ResRec {
            logical: "First".into(),
            type_name: "AWS::SSM::Parameter".into(),
            physical: Some("/half/first".into()),
            status: "CREATE_IN_PROGRESS".into(),
            ..Default::default()
        },
    );
    let s = Stack {
        stack_id: id.into(),
        stack_name: "half".into(),
        status: "CREATE_IN_PROGRESS".into(),
        status_reason: None,
        creation_ms: 0,
        last_updated_ms: None,
        deletion_ms: None,
        description: None,
        template_body: TEMPLATE.into(),
        params: vec![],
        previous: None,
        capabilities: vec![],
        tags: vec![],
        notification_arns: vec![],
        disable_rollback: false,
        on_failure: None,
        timeout_minutes: None,
        termination_protection: false,
        role_arn: None,
        outputs: vec![],
        resources,
        orphans: vec![],
        stack_policy: None,
        change_set_id: None,
        operation: Some(Operation::Create),
        client_request_token: None,
        retain_except_on_create: false,
        delete_requested: false,
    };
    e.control
        .store()
        .write(|tx| model::put_stack(tx, &scope, &s))
        .unwrap();
    // A new engine over the same store, as after a restart.
    CloudFormation::install(&e.control);
    assert_eq!(e.settle("half").await, "ROLLBACK_COMPLETE");
    assert_eq!(e.ssm_state(), "");
    let ev = e.events("half").await;
    assert_eq!(
        ev,
        "half ROLLBACK_IN_PROGRESS [Portico restarted while the operation was in progress. Rollback requested by user.]\nFirst DELETE_IN_PROGRESS\nFirst DELETE_COMPLETE\nhalf ROLLBACK_COMPLETE"
    );
}

#[tokio::test]
async fn dynamic_references_resolve_or_fail_clearly() {
    let e = env();
    e.ssm.params.lock().insert("/src".into(), "from-ssm".into());
    let t = "Resources:\n  A:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /copy\n      Type: String\n      Value: 'x-{{resolve:ssm:/src}}-y'\n";
    e.call(
        "CreateStack",
        json!({"StackName": "dyn", "TemplateBody": t}),
    )
    .await
    .unwrap();
    assert_eq!(e.settle("dyn").await, "CREATE_COMPLETE");
    assert_eq!(
        e.ssm.params.lock().get("/copy").cloned(),
        Some("x-from-ssm-y".into())
    );
    let t = t
        .replace(
            "resolve:ssm:/src",
            "resolve:secretsmanager:s:SecretString:k",
        )
        .replace("/copy", "/copy2");
    e.call(
        "CreateStack",
        json!({"StackName": "dyn2", "TemplateBody": t}),
    )
    .await
    .unwrap();
    assert_eq!(e.settle("dyn2").await, "ROLLBACK_COMPLETE");
    assert!(e.events("dyn2").await.contains(
        "A CREATE_FAILED [Dynamic references to secretsmanager ({{resolve:secretsmanager:s:SecretString:k}}) are not supported by Portico]"
    ));
}

#[tokio::test]
async fn delete_during_create_cancels_then_deletes() {
    let e = env();
    let t = "Resources:\n  A:\n    Type: AWS::SSM::Parameter\n    Properties: {Name: /a, Type: String, Value: SLOW}\n  B:\n    Type: AWS::SSM::Parameter\n    Properties: {Name: /b, Type: String, Value: !GetAtt A.Value}\n";
    e.call(
        "CreateStack",
        json!({"StackName": "cancel", "TemplateBody": t}),
    )
    .await
    .unwrap();
    let d = e
        .call("DescribeStacks", json!({"StackName": "cancel"}))
        .await
        .unwrap();
    assert_eq!(d["Stacks"][0]["StackStatus"], "CREATE_IN_PROGRESS");
    let id = d["Stacks"][0]["StackId"].as_str().unwrap().to_string();
    e.call("DeleteStack", json!({"StackName": "cancel"}))
        .await
        .unwrap();
    assert_eq!(e.settle(&id).await, "DELETE_COMPLETE");
    assert_eq!(e.ssm_state(), "");
    let ev = e.events(&id).await;
    assert!(!ev.contains("B "), "{ev}");
    assert!(ev.ends_with("cancel DELETE_IN_PROGRESS [User Initiated]\nA DELETE_IN_PROGRESS\nA DELETE_COMPLETE\ncancel DELETE_COMPLETE"), "{ev}");
}

#[tokio::test]
async fn json_templates_and_output_errors_at_deploy_time() {
    let e = env();
    let t = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"P": {"Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/j", "Type": "String", "Value": {"Fn::Base64": "hi"}}}},
        "Outputs": {"Bad": {"Value": {"Fn::GetAtt": ["P", "Invalid"]}}}
    });
    e.call(
        "CreateStack",
        json!({"StackName": "js", "TemplateBody": t.to_string()}),
    )
    .await
    .unwrap();
    assert_eq!(e.settle("js").await, "ROLLBACK_COMPLETE");
    let ev = e.events("js").await;
    assert!(ev.contains("P CREATE_COMPLETE"), "{ev}");
    assert!(ev.contains("js ROLLBACK_IN_PROGRESS [[Error] /Outputs/Bad/Value/Fn::GetAtt: Resource type AWS::SSM::Parameter does not support attribute {Invalid}. Rollback requested by user.]"), "{ev}");
    assert_eq!(e.ssm_state(), "");
    let got = e
        .call("GetTemplate", json!({"StackName": "js"}))
        .await
        .unwrap();
    assert_eq!(got["TemplateBody"], t.to_string());
}

#[tokio::test]
async fn no_echo_values_are_masked() {
    let e = env();
    let t = "Parameters:\n  Secret: {Type: String, NoEcho: true}\nResources:\n  A:\n    Type: AWS::SSM::Parameter\n    Properties: {Name: /s, Type: String, Value: !Sub 'pw=${Secret}'}\n";
    e.call("CreateStack", json!({"StackName": "ne", "TemplateBody": t, "Parameters": [{"ParameterKey": "Secret", "ParameterValue": "hunter2"}]})).await.unwrap();
    assert_eq!(e.settle("ne").await, "CREATE_COMPLETE");
    let d = e
        .call("DescribeStacks", json!({"StackName": "ne"}))
        .await
        .unwrap();
    assert_eq!(d["Stacks"][0]["Parameters"][0]["ParameterValue"], "****");
    let ev = e
        .call("DescribeStackEvents", json!({"StackName": "ne"}))
        .await
        .unwrap()
        .to_string();
    assert!(!ev.contains("hunter2") && ev.contains("pw=****"), "{ev}");
    assert_eq!(e.ssm_state(), "/s=pw=hunter2");
}

#[tokio::test]
async fn update_rollback_restores_a_replaced_resource() {
    let e = env();
    let t1 = "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties: {Name: /p1, Type: String, Value: one}\n";
    e.call(
        "CreateStack",
        json!({"StackName": "rep", "TemplateBody": t1}),
    )
    .await
    .unwrap();
    assert_eq!(e.settle("rep").await, "CREATE_COMPLETE");
    // The name is create-only: the update replaces P, then Q fails and the update rolls back.
    let t2 = "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties: {Name: /p2, Type: String, Value: one}\n  Q:\n    Type: AWS::SSM::Parameter\n    DependsOn: P\n    Properties: {Name: /q, Type: String, Value: FAIL}\n";
    e.call(
        "UpdateStack",
        json!({"StackName": "rep", "TemplateBody": t2}),
    )
    .await
    .unwrap();
    assert_eq!(e.settle("rep").await, "UPDATE_ROLLBACK_COMPLETE");
    assert_eq!(e.ssm_state(), "/p1=one");
    let r = e
        .call(
            "DescribeStackResource",
            json!({"StackName": "rep", "LogicalResourceId": "P"}),
        )
        .await
        .unwrap();
    assert_eq!(r["StackResourceDetail"]["PhysicalResourceId"], "/p1");
    let ev = e.events("rep").await;
    assert!(ev.contains("P UPDATE_IN_PROGRESS [Requested update requires the creation of a new physical resource; hence creating one.]"), "{ev}");
    let listed = e
        .call("ListStackResources", json!({"StackName": "rep"}))
        .await
        .unwrap();
    assert_eq!(
        listed["StackResourceSummaries"].as_array().map(Vec::len),
        Some(1)
    );
}
