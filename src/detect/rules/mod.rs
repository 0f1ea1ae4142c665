//! The per-event rule catalogue: one file per rule (SPEC §2), plus shared helpers.
//!
//! Rules that count (SSE-C write aggregation, failed `GetPasswordData` bursts, key error bursts)
//! are per-event rules here whose hits the aggregation pass ([`crate::analyze::aggregate`])
//! merges in event-time order. The rules concluded across events are described here and
//! computed in [`crate::analyze`]: the per-key baseline rules by [`crate::analyze::baseline`],
//! `iam.created_key_used` by [`crate::analyze::created_keys`],
//! `s3.ransomware_chain` and the instance-role upgrade by [`crate::analyze::correlate`].
//! Passes name rules through the statics exported here, never by string.

mod access_key_created;
mod admin_policy_attached;
mod created_key_used;
mod dormant_key_used;
mod ecs_cluster_no_container_insights;
mod ecs_common;
mod ecs_execute_command;
mod ecs_fargate_old_platform;
mod ecs_service_public_ip;
mod ecs_task_host_network_root;
mod ecs_task_host_pid;
mod ecs_task_no_logging;
mod ecs_task_privileged;
mod ecs_task_secrets_in_env;
mod ecs_task_writable_root;
mod imdsv1_enabled;
mod instance_connect_ssh;
mod instance_connect_tunnel;
mod key_error_burst;
mod lifecycle_short_expiration;
mod long_term_key_anomaly;
mod long_term_key_sensitive_api;
mod public_ip_assigned;
mod ransomware_chain;
mod rdp_password_retrieved;
mod remote_admin_port_open;
mod root_access_key_used;
mod root_console_login;
mod s3_common;
mod security_group_open_world;
mod serial_console_enabled;
mod ssec_copy_overwrite;
mod ssec_unblocked;
mod ssec_write;
mod ssm_port_forward_remote_admin;
mod trail_tampering;
mod unreadable_log_file;
mod versioning_suspended;

pub use admin_policy_attached::ADMIN_POLICY_ATTACHED;
pub use created_key_used::{CREATED_KEY_USED, CREATED_KEY_WINDOW};
pub use dormant_key_used::DORMANT_KEY_USED;
pub use lifecycle_short_expiration::LIFECYCLE_SHORT_EXPIRATION;
pub use long_term_key_anomaly::LONG_TERM_KEY_ANOMALY;
pub use ransomware_chain::RANSOMWARE_CHAIN;
pub use ssec_copy_overwrite::SSEC_COPY_OVERWRITE;
pub use ssec_write::SSEC_WRITE;
pub use unreadable_log_file::{unreadable_log_file, UNREADABLE_LOG_FILE};
pub use versioning_suspended::VERSIONING_SUSPENDED;

use super::Detector;
use crate::finding::RuleInfo;

/// Every rule's description: per-event rules first, then the baseline rules, then the ones the
/// pipeline raises.
pub fn catalogue() -> Vec<&'static RuleInfo> {
    let mut infos: Vec<&'static RuleInfo> = all().iter().map(|d| d.info()).collect();
    infos.extend([
        &RANSOMWARE_CHAIN,
        &LONG_TERM_KEY_ANOMALY,
        &DORMANT_KEY_USED,
        &CREATED_KEY_USED,
        &UNREADABLE_LOG_FILE,
    ]);
    infos
}

/// Every per-event detector, in catalogue order (SPEC §2.1 → §2.4).
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(ssec_copy_overwrite::SsecCopyOverwrite),
        Box::new(ssec_write::SsecWrite),
        Box::new(ssec_unblocked::SsecUnblocked),
        Box::new(lifecycle_short_expiration::LifecycleShortExpiration),
        Box::new(versioning_suspended::VersioningSuspended),
        Box::new(trail_tampering::TrailTampering),
        Box::new(instance_connect_ssh::InstanceConnectSsh),
        Box::new(instance_connect_tunnel::InstanceConnectTunnel),
        Box::new(serial_console_enabled::SerialConsoleEnabled),
        Box::new(remote_admin_port_open::RemoteAdminPortOpen),
        Box::new(rdp_password_retrieved::RdpPasswordRetrieved),
        Box::new(ssm_port_forward_remote_admin::SsmPortForwardRemoteAdmin),
        Box::new(ecs_execute_command::EcsExecuteCommand),
        Box::new(root_access_key_used::RootAccessKeyUsed),
        Box::new(root_console_login::RootConsoleLogin),
        Box::new(long_term_key_sensitive_api::LongTermKeySensitiveApi),
        Box::new(access_key_created::AccessKeyCreated),
        Box::new(key_error_burst::KeyErrorBurst),
        Box::new(imdsv1_enabled::Imdsv1Enabled),
        Box::new(public_ip_assigned::PublicIpAssigned),
        Box::new(security_group_open_world::SecurityGroupOpenWorld),
        Box::new(admin_policy_attached::AdminPolicyAttached),
        Box::new(ecs_task_host_network_root::EcsTaskHostNetworkRoot),
        Box::new(ecs_service_public_ip::EcsServicePublicIp),
        Box::new(ecs_task_host_pid::EcsTaskHostPid),
        Box::new(ecs_task_privileged::EcsTaskPrivileged),
        Box::new(ecs_task_writable_root::EcsTaskWritableRoot),
        Box::new(ecs_task_secrets_in_env::EcsTaskSecretsInEnv),
        Box::new(ecs_task_no_logging::EcsTaskNoLogging),
        Box::new(ecs_fargate_old_platform::EcsFargateOldPlatform),
        Box::new(ecs_cluster_no_container_insights::EcsClusterNoContainerInsights),
    ]
}

/// The catalogue entry of rule `id`.
pub fn info(id: &str) -> Option<&'static RuleInfo> {
    catalogue().into_iter().find(|info| info.id == id)
}
