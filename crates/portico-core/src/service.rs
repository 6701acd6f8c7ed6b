//! The services Portico emulates and the wire facts about each: protocol, SigV4 signing name,
//! awsJson target prefix, query API version and XML namespace.

use crate::AwsError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    RestJson1,
    AwsJson10,
    AwsJson11,
    Query,
    Ec2Query,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    ApiGatewayV2,
    Ec2,
    Elbv2,
    Ecs,
    Iam,
    Sts,
    Ssm,
    Logs,
    CloudFormation,
}

impl Service {
    pub const ALL: [Service; 9] = [
        Service::ApiGatewayV2,
        Service::Ec2,
        Service::Elbv2,
        Service::Ecs,
        Service::Iam,
        Service::Sts,
        Service::Ssm,
        Service::Logs,
        Service::CloudFormation,
    ];

    pub fn protocol(self) -> Protocol {
        match self {
            Service::ApiGatewayV2 => Protocol::RestJson1,
            Service::Ec2 => Protocol::Ec2Query,
            Service::Elbv2 | Service::Iam | Service::Sts | Service::CloudFormation => {
                Protocol::Query
            }
            Service::Ecs | Service::Ssm | Service::Logs => Protocol::AwsJson11,
        }
    }

    /// The SigV4 signing name (credential scope service).
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::ApiGatewayV2 => "apigateway",
            Service::Ec2 => "ec2",
            Service::Elbv2 => "elasticloadbalancing",
            Service::Ecs => "ecs",
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::Ssm => "ssm",
            Service::Logs => "logs",
            Service::CloudFormation => "cloudformation",
        }
    }

    /// The botocore model directory name.
    pub fn model_name(self) -> &'static str {
        match self {
            Service::ApiGatewayV2 => "apigatewayv2",
            Service::Elbv2 => "elbv2",
            other => other.signing_name(),
        }
    }

    /// awsJson `X-Amz-Target` prefix (before the `.`).
    pub fn json_target_prefix(self) -> Option<&'static str> {
        match self {
            Service::Ecs => Some("AmazonEC2ContainerServiceV20141113"),
            Service::Ssm => Some("AmazonSSM"),
            Service::Logs => Some("Logs_20140328"),
            _ => None,
        }
    }

    /// Query-protocol `Version=` value.
    pub fn query_version(self) -> Option<&'static str> {
        match self {
            Service::Ec2 => Some("2016-11-15"),
            Service::Elbv2 => Some("2015-12-01"),
            Service::Iam => Some("2010-05-08"),
            Service::Sts => Some("2011-06-15"),
            Service::CloudFormation => Some("2010-05-15"),
            _ => None,
        }
    }

    /// XML namespace of query-protocol responses.
    pub fn xml_namespace(self) -> &'static str {
        match self {
            Service::Ec2 => "http://ec2.amazonaws.com/doc/2016-11-15/",
            Service::Elbv2 => "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
            Service::Iam => "https://iam.amazonaws.com/doc/2010-05-08/",
            Service::Sts => "https://sts.amazonaws.com/doc/2011-06-15/",
            Service::CloudFormation => "http://cloudformation.amazonaws.com/doc/2010-05-15/",
            _ => "",
        }
    }

    pub fn from_signing_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.signing_name() == name)
    }

    pub fn from_json_target_prefix(prefix: &str) -> Option<Service> {
        Service::ALL
            .into_iter()
            .find(|s| s.json_target_prefix() == Some(prefix))
    }

    pub fn from_query_version(version: &str) -> Option<Service> {
        Service::ALL
            .into_iter()
            .find(|s| s.query_version() == Some(version))
    }

    /// The error each protocol gives for an operation the service does not have (or Portico
    /// does not implement): never a fake success.
    pub fn unknown_operation(self, op: &str) -> AwsError {
        match self.protocol() {
            Protocol::Query | Protocol::Ec2Query => AwsError::bad(
                "InvalidAction",
                format!("The action {op} is not valid for this web service."),
            ),
            Protocol::AwsJson10 | Protocol::AwsJson11 => AwsError::bad(
                "UnknownOperationException",
                format!("Unknown operation {op}"),
            ),
            Protocol::RestJson1 => AwsError::new(
                404,
                "UnknownOperationException",
                format!("Unknown operation {op}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_round_trip() {
        for s in Service::ALL {
            assert_eq!(Service::from_signing_name(s.signing_name()), Some(s));
            if let Some(p) = s.json_target_prefix() {
                assert_eq!(Service::from_json_target_prefix(p), Some(s));
            }
            if let Some(v) = s.query_version() {
                assert_eq!(Service::from_query_version(v), Some(s));
            }
        }
    }
}
