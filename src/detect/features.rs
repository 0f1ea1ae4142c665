//! The features a per-key baseline remembers, derived from one event (SPEC §2.3): the source
//! network (/24 for IPv4, /48 for IPv6), the user-agent family (first product token and major
//! version), region, service and API.

use std::net::IpAddr;

/// The network of a source address: `a.b.c.0/24`, the /48 of an IPv6 address, or the text itself
/// when it is not an address (`ec2.amazonaws.com`, `AWS Internal`).
pub fn network(source: &str) -> String {
    let mut out = String::new();
    network_into(source, &mut out);
    out
}

/// [`network`] written into `out` (cleared first): the per-event path reuses one buffer.
pub fn network_into(source: &str, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    // Writing to a String cannot fail.
    match source.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            _ = write!(out, "{a}.{b}.{c}.0/24");
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            _ = write!(out, "{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]);
        }
        Err(_) => out.extend(source.chars().take(64)),
    }
}

/// The user-agent family: the first product token with its major version (`aws-cli/2`,
/// `Boto3/1`, `Terraform/1`), or the bare token (`S3Console`). Brackets are dropped, and a
/// trailing `_<id>` on the name (`stratus-red-team_<uuid>`) is cut so one tool is one family.
pub fn user_agent_family(user_agent: &str) -> String {
    let mut out = String::new();
    user_agent_family_into(user_agent, &mut out);
    out
}

/// [`user_agent_family`] written into `out` (cleared first).
pub fn user_agent_family_into(user_agent: &str, out: &mut String) {
    out.clear();
    let token = user_agent.split_whitespace().next().unwrap_or("").trim_matches(|c| matches!(c, '[' | ']' | '(' | ')'));
    let (name, version) = match token.split_once('/') {
        Some((name, version)) => (name, Some(version)),
        None => (token, None),
    };
    let name = match name.rsplit_once('_') {
        Some((stem, id)) if id.len() >= 8 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') => stem,
        _ => name,
    };
    out.extend(name.chars().take(40));
    let major = version.unwrap_or("");
    let digits = major.len() - major.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits > 0 {
        out.push('/');
        out.push_str(&major[..digits]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_networks() {
        let cases = [
            ("aws-cli/2.15.30 Python/3.11.8 Linux/6.1", "aws-cli/2"),
            ("Boto3/1.34.69 md/Botocore#1.34.69", "Boto3/1"),
            ("Terraform/1.7.5 (+https://www.terraform.io)", "Terraform/1"),
            ("S3Console/0.4", "S3Console/0"),
            ("console.amazonaws.com", "console.amazonaws.com"),
            ("[stratus-red-team_4990da05-9399-449e-b49f-82996a764ec9]", "stratus-red-team"),
            ("", ""),
        ];
        for (agent, family) in cases {
            assert_eq!(user_agent_family(agent), family, "{agent}");
        }
        assert_eq!(network("192.168.10.20"), "192.168.10.0/24");
        assert_eq!(network("2001:db8:abcd:12::1"), "2001:db8:abcd::/48");
        assert_eq!(network("ec2.amazonaws.com"), "ec2.amazonaws.com");
    }
}
