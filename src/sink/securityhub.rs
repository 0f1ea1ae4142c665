//! The AWS Security Hub sink: findings in the AWS Security Finding Format (ASFF) through
//! `BatchImportFindings`, beside GuardDuty's.
//!
//! - `Id` is the finding id, so a finding that grew replaces its earlier version; `GeneratorId`
//!   is the rule id; `ProductArn` is the account's default product,
//!   `arn:aws:securityhub:REGION:ACCOUNT:product/ACCOUNT/default`, where ACCOUNT is the
//!   configured importing account or, when none is configured, the finding's own account.
//! - Severity labels: info → INFORMATIONAL, low → LOW, medium → MEDIUM, high → HIGH, critical →
//!   CRITICAL (the same words).
//! - A rule with Security Hub control ids (ECS.1 …) gets `Compliance` (status FAILED, the first
//!   control as `SecurityControlId`, every control in `RelatedRequirements`).
//! - Resources keep their CloudFormation type spelled the ASFF way (`AWS::EC2::SecurityGroup` →
//!   `AwsEc2SecurityGroup`); a finding without one names the account (`AwsAccount`).
//! - Size: a finding carries its summary (Description, cut at 1,024 characters), the
//!   remediation (cut at 512) and at most 20 eventIDs in `ProductFields`, so it stays far below
//!   the 240 KB ASFF limit whatever its evidence; 100 findings per call.
//! - `FailedFindings` are retried (three rounds); what still fails makes the delivery fail, so
//!   the caller keeps its message and retries, never dropping a finding.

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Compliance, ComplianceStatus, Recommendation, Remediation, Resource, Severity as AsffSeverity,
    SeverityLabel,
};

use super::{Delivery, Sink, SinkError};
use crate::finding::{Family, Finding, Severity};

/// Findings per `BatchImportFindings` call (the API's maximum).
pub const IMPORT_BATCH: usize = 100;
/// Attempts for findings Security Hub reports as failed.
const ROUNDS: usize = 3;
/// EventIDs kept in `ProductFields`.
const EVENT_IDS: usize = 20;

/// Security Hub in one region as a [`Sink`].
#[derive(Debug, Clone)]
pub struct SecurityHubSink {
    client: aws_sdk_securityhub::Client,
    region: String,
    account: Option<String>,
}

impl SecurityHubSink {
    /// Imports into `region`, as `account` when given (else each finding's own account).
    pub fn new(client: aws_sdk_securityhub::Client, region: impl Into<String>, account: Option<String>) -> Self {
        SecurityHubSink { client, region: region.into(), account }
    }

    /// The ASFF form of a finding.
    pub fn asff(&self, finding: &Finding) -> AwsSecurityFinding {
        asff(finding, &self.region, self.account.as_deref())
    }

    async fn import(&self, findings: &[&Finding]) -> Result<(), SinkError> {
        let mut pending: Vec<AwsSecurityFinding> = findings.iter().map(|f| self.asff(f)).collect();
        for round in 1..=ROUNDS {
            let output =
                self.client.batch_import_findings().set_findings(Some(pending.clone())).send().await.map_err(|e| {
                    SinkError::Call { sink: "securityhub", target: self.region.clone(), source: e.into() }
                })?;
            let failed = output.failed_findings();
            if failed.is_empty() {
                return Ok(());
            }
            if round == ROUNDS {
                return Err(SinkError::Refused {
                    sink: "securityhub",
                    target: self.region.clone(),
                    refused: failed.len(),
                    sent: pending.len(),
                    code: failed[0].error_code().unwrap_or("").to_owned(),
                    message: failed[0].error_message().unwrap_or("").to_owned(),
                });
            }
            // Only the findings Security Hub refused go again.
            let refused: Vec<&str> = failed.iter().filter_map(|f| f.id()).collect();
            pending.retain(|f| f.id().is_some_and(|id| refused.contains(&id)));
            tokio::time::sleep(std::time::Duration::from_millis(200 << round)).await;
        }
        Ok(())
    }
}

impl Sink for SecurityHubSink {
    fn name(&self) -> &'static str {
        "securityhub"
    }

    fn batch_size(&self) -> usize {
        IMPORT_BATCH
    }

    fn deliver<'a>(&'a self, findings: &'a [&'a Finding]) -> Delivery<'a> {
        Box::pin(self.import(findings))
    }
}

fn label(severity: Severity) -> SeverityLabel {
    match severity {
        Severity::Info => SeverityLabel::Informational,
        Severity::Low => SeverityLabel::Low,
        Severity::Medium => SeverityLabel::Medium,
        Severity::High => SeverityLabel::High,
        Severity::Critical => SeverityLabel::Critical,
    }
}

/// The ASFF finding type (`namespace/category/classifier`) of a family.
fn asff_type(family: Family) -> &'static str {
    match family {
        Family::S3Ransomware => "TTPs/Impact/Data Encrypted for Impact",
        Family::InteractiveAccess => "TTPs/Initial Access/Remote Services",
        Family::AccessKeys => "Unusual Behaviors/User/Long-term access key",
        Family::Exposure => "Software and Configuration Checks/AWS Security Best Practices",
        Family::LogIntegrity => "TTPs/Defense Evasion/Log tampering",
    }
}

fn resources(finding: &Finding) -> Vec<Resource> {
    let region = finding.region.clone();
    let mut resources: Vec<Resource> = finding
        .resources
        .iter()
        .filter(|r| !r.id.is_empty())
        .take(32)
        .map(|r| Resource::builder().r#type(asff_resource_type(&r.kind)).id(&r.id).set_region(region.clone()).build())
        .collect();
    if resources.is_empty() {
        let account = finding.account.as_deref().unwrap_or("unknown");
        resources.push(Resource::builder().r#type("AwsAccount").id(format!("AWS::::Account:{account}")).build());
    }
    resources
}

/// `AWS::EC2::SecurityGroup` → `AwsEc2SecurityGroup`, ASFF's spelling of CloudFormation types;
/// anything else is `Other`.
fn asff_resource_type(kind: &str) -> String {
    let mut parts = kind.split("::");
    let (Some("AWS"), Some(service), Some(name), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return "Other".into();
    };
    let service = if service.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        let mut chars = service.chars();
        chars.next().map(|c| c.to_string()).unwrap_or_default() + &chars.as_str().to_ascii_lowercase()
    } else {
        service.to_owned()
    };
    format!("Aws{service}{name}")
}

/// At most `max` characters.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The ASFF form of a finding, imported into `region` as `account` (else the finding's own).
pub fn asff(finding: &Finding, region: &str, account: Option<&str>) -> AwsSecurityFinding {
    let finding_account = finding.account.clone().unwrap_or_else(|| "unknown".into());
    let importer = account.map_or_else(|| finding_account.clone(), str::to_owned);
    let product = format!("arn:aws:securityhub:{region}:{importer}:product/{importer}/default");
    let first = finding.first_seen.clone().or_else(|| finding.last_seen.clone());
    let last = finding.last_seen.clone().or_else(|| first.clone());
    let mut asff = AwsSecurityFinding::builder()
        .schema_version("2018-10-08")
        .id(&finding.id)
        .product_arn(product)
        .product_name("trailhound")
        .company_name("trailhound")
        .generator_id(finding.rule)
        .aws_account_id(finding_account)
        .region(finding.region.clone().unwrap_or_else(|| region.to_owned()))
        .types(asff_type(finding.family))
        .severity(AsffSeverity::builder().label(label(finding.severity)).original(finding.severity.as_str()).build())
        .title(cut(finding.title, 256))
        .description(cut(&finding.summary, 1024))
        .remediation(
            Remediation::builder()
                .recommendation(Recommendation::builder().text(cut(finding.remediation, 512)).build())
                .build(),
        )
        .set_resources(Some(resources(finding)))
        .product_fields("trailhound/rule", finding.rule)
        .product_fields("trailhound/family", finding.family.as_str())
        .product_fields("trailhound/mode", finding.mode.as_str())
        .product_fields("trailhound/origin", cut(&finding.origin, 2048))
        .product_fields("trailhound/event_count", finding.evidence.count.to_string())
        .product_fields(
            "trailhound/event_ids",
            finding.evidence.event_ids.iter().take(EVENT_IDS).cloned().collect::<Vec<_>>().join(","),
        );
    if let (Some(first), Some(last)) = (first, last) {
        asff = asff.first_observed_at(&first).last_observed_at(&last).created_at(first).updated_at(last);
    }
    if let Some(ip) = &finding.source_ip {
        asff = asff.product_fields("trailhound/source_ip", ip);
    }
    if let Some(arn) = &finding.principal.arn {
        asff = asff.product_fields("trailhound/principal", arn);
    }
    if let Some((first, _)) = finding.controls.split_first() {
        let controls = finding.controls.iter().map(|c| format!("Security Hub {c}")).collect();
        let compliance = Compliance::builder()
            .status(ComplianceStatus::Failed)
            .security_control_id(*first)
            .set_related_requirements(Some(controls))
            .build();
        asff = asff.compliance(compliance);
    }
    asff.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_are_spelled_the_asff_way() {
        assert_eq!(asff_resource_type("AWS::EC2::SecurityGroup"), "AwsEc2SecurityGroup");
        assert_eq!(asff_resource_type("AWS::S3::Object"), "AwsS3Object");
        assert_eq!(asff_resource_type("AWS::IAM::Role"), "AwsIamRole");
        assert_eq!(asff_resource_type("AWS::CloudTrail::Trail"), "AwsCloudTrailTrail");
        assert_eq!(asff_resource_type("bucket"), "Other");
    }
}
