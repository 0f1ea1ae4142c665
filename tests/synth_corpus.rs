//! The seeded generator: deterministic, laid out like a trail bucket, and its planted attacks are
//! all found while its look-alikes stay silent.

use std::collections::HashMap;

use trailhound::decode::Limits;
use trailhound::detect::{Engine, Mode, Settings};
use trailhound::scan::{scan, ScanPlan};
use trailhound::synth::{generate, SynthObject, SynthSpec};

fn spec() -> SynthSpec {
    SynthSpec { files: 16, events_per_file: 200, attack_every: 1, ..SynthSpec::default() }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let collect = |spec: &SynthSpec| {
        let mut objects: Vec<SynthObject> = Vec::new();
        let truth = generate(spec, |o| objects.push(o));
        (objects.into_iter().map(|o| (o.key, o.gzip)).collect::<Vec<_>>(), truth)
    };
    let (a, truth_a) = collect(&spec());
    let (b, truth_b) = collect(&spec());
    assert_eq!(a, b);
    assert_eq!(truth_a, truth_b);
    let (c, _) = collect(&SynthSpec { seed: 7, ..spec() });
    assert_ne!(a, c);
}

#[test]
fn objects_follow_the_cloudtrail_key_layout_and_event_size() {
    let mut objects = Vec::new();
    generate(&spec(), |o| objects.push(o));
    for object in &objects {
        let parts: Vec<&str> = object.key.split('/').collect();
        assert_eq!(parts[0], "AWSLogs");
        assert_eq!(parts[2], "CloudTrail");
        assert!(parts[4].len() == 4 && parts[5].len() == 2 && parts[6].len() == 2, "{}", object.key);
        assert!(parts[7].starts_with(&format!("{}_CloudTrail_{}_", parts[1], parts[3])), "{}", object.key);
        assert!(object.key.ends_with(".json.gz"));
        let per_event = object.json_bytes / object.events;
        assert!((1_200..=2_200).contains(&per_event), "{per_event} bytes per event");
    }
}

#[test]
fn planted_attacks_are_found_and_look_alikes_are_silent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let truth = generate(&spec(), |object| {
        let path = dir.path().join(&object.key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, &object.gzip).expect("write");
    });
    assert!(truth.attacks.len() >= 8, "every scenario is planted: {:?}", truth.attacks.keys());
    let plan = ScanPlan { paths: vec![dir.path().to_path_buf()], since: None, until: None, limits: Limits::default() };
    let result = scan(&plan, &Engine::new(Settings::default(), Mode::Scan), Mode::Scan);
    assert!(result.quarantined.is_empty() && result.totals.rejected_records == 0);
    let mut rules_by_event: HashMap<&str, Vec<&str>> = HashMap::new();
    for finding in &result.findings {
        for id in &finding.evidence.event_ids {
            rules_by_event.entry(id.as_str()).or_default().push(finding.rule);
        }
    }
    for (rule, ids) in &truth.attacks {
        for id in ids {
            let found = rules_by_event.get(id.as_str()).cloned().unwrap_or_default();
            assert!(found.contains(&rule.as_str()), "{rule} missed {id}: {found:?}");
        }
    }
    for id in &truth.look_alikes {
        assert!(!rules_by_event.contains_key(id.as_str()), "look-alike {id} reported");
    }
    assert!(result.totals.s3_data_events > 0);
}
