//! The alert renderers: whatever events an object holds, the findings they make render as SNS
//! alerts (a one-line printable subject, JSON within the size limit), OCSF (JSON) and ASFF, with
//! no control or invisible character from the input left raw.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use trailhound::decode::Limits;
use trailhound::detect::Engine;
use trailhound::finding::{is_unsafe_char, Mode};
use trailhound::pipeline::unit::{inspect_input, Input, Inspection};
use trailhound::settings::Settings;
use trailhound::sink::{ocsf, securityhub, sns};

fn assert_clean(what: &str, text: &str) {
    assert!(!text.chars().any(is_unsafe_char), "{what}: {text:?}");
}

fuzz_target!(|data: &[u8]| {
    let engine = Arc::new(Engine::new(Settings::default(), Mode::Live));
    let limits =
        Limits { max_object_bytes: 1 << 20, max_record_bytes: 64 << 10, max_depth: 64, max_rejected_records: 256 };
    let inspection = Inspection::new(engine, Mode::Live, limits);
    let outcome =
        inspect_input(Input::Bytes { origin: "s3://fuzz/object.json.gz".into(), bytes: data.to_vec() }, &inspection);
    for finding in &outcome.findings {
        let alert = sns::render(finding);
        assert!(alert.subject.chars().all(|c| c.is_ascii_graphic() || c == ' ') && alert.subject.len() < 100);
        assert!(alert.message.len() <= sns::MAX_MESSAGE_BYTES);
        serde_json::from_str::<serde_json::Value>(&alert.message).expect("the SNS message is JSON");
        assert_clean("sns", &alert.message);
        let rendered = ocsf::render(finding, 1_700_000_000_000).to_string();
        assert_clean("ocsf", &rendered);
        let asff = securityhub::asff(finding, "us-east-1", None);
        assert_clean("asff title", asff.title().unwrap_or_default());
        assert_clean("asff description", asff.description().unwrap_or_default());
    }
});
