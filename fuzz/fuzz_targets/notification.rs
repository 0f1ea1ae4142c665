//! The SQS message parser: any body gives a notification or a typed error, never a panic, and
//! nothing from the body reaches an error message or a key unescaped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailhound::finding::is_unsafe_char;
use trailhound::source::notify::{self, Notification, Target};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else { return };
    match notify::parse(body) {
        Ok(Notification::Objects(targets)) => {
            for target in targets {
                if let Target::Unreadable { reason, .. } = target {
                    assert!(!reason.chars().any(is_unsafe_char), "{reason:?}");
                }
            }
        }
        Ok(Notification::Ignore(_)) => {}
        Err(error) => {
            let text = error.to_string();
            assert!(!text.chars().any(is_unsafe_char), "{text:?}");
        }
    }
});
