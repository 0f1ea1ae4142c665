//! What the per-event pass hands the baseline pass ([`crate::analyze::baseline`]): the uses of a
//! long-term key by a person, with the [`super::features`] the baseline remembers, compacted per
//! object as they arrive. Pure.
//!
//! Only the earliest and the latest use of each key and combination of feature values are kept.
//! The uses in between bring no new value (the earliest already did) and, lying between two uses
//! of the same object, cannot end a silence of `dormant_days` unless the object itself spans that
//! long, which delivered objects (minutes) never do. This keeps a run's memory proportional to
//! distinct behaviour, not to the number of events. A kept use is an owned copy of the event's
//! header in a reused buffer; its finding template is built once, when the object is done, not
//! for every use (building one per use was a tenth of a scan's time).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::event::time::Millis;
use crate::event::{Event, HeaderCopy};
use crate::finding::Finding;
use crate::hash::StableHasher;

use super::features;

/// The remembered features, in this order everywhere.
pub const FEATURES: [&str; 5] = ["network", "user_agent", "region", "service", "api"];

/// One use of a long-term key, as the baseline needs it.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Event time.
    pub time: Millis,
    /// `eventID` (observations with the same one are one event).
    pub event_id: Option<String>,
    /// The access key id.
    pub key: String,
    /// Feature values, in [`FEATURES`] order.
    pub features: [String; 5],
    /// A finding describing the event (principal, source, origin …), completed when a rule fires.
    pub template: Finding,
}

/// The uses of long-term keys in one object, compacted as they arrive: for each key and
/// combination of feature values, the earliest and the latest use (by event time, then
/// `eventID`; among equal ones the earliest and the latest in the object).
#[derive(Debug, Default)]
pub struct ObjectObservations {
    groups: Vec<Group>,
    /// Group index by the hash of its key and features. On a collision the later group is only
    /// found by the linear search.
    by_hash: HashMap<u64, usize, BuildHasherDefault<StableHasher>>,
    /// Scratch for the derived features, reused from event to event.
    network: String,
    agent: String,
}

#[derive(Debug)]
struct Group {
    key: String,
    features: [String; 5],
    first: Use,
    last: Option<Use>,
}

/// One kept use: the record's index in the object and a copy of its header.
#[derive(Debug)]
struct Use {
    index: u64,
    header: HeaderCopy,
}

impl Use {
    fn of(event: &Event<'_>, index: u64) -> Use {
        Use { index, header: HeaderCopy::of(event) }
    }

    fn set(&mut self, event: &Event<'_>, index: u64) {
        self.index = index;
        self.header.copy_from(event);
    }

    /// The order of uses: event time, then `eventID` (absent first).
    fn order(&self) -> (Option<Millis>, Option<&str>) {
        self.header.time_and_id()
    }
}

impl ObjectObservations {
    /// Adds a use of `key` by `event` (record `index` of the object); a use without a time
    /// tells the baseline nothing.
    pub fn add(&mut self, key: &str, event: &Event<'_>, index: u64) {
        if event.event_time.is_none() {
            return;
        }
        features::network_into(event.source_ip.unwrap_or(""), &mut self.network);
        features::user_agent_family_into(event.user_agent.unwrap_or(""), &mut self.agent);
        let values = [
            self.network.as_str(),
            self.agent.as_str(),
            event.region.unwrap_or(""),
            event.event_source.unwrap_or(""),
            event.event_name,
        ];
        let hash = group_hash(key, &values);
        let found = match self.by_hash.get(&hash) {
            Some(&i) if self.groups[i].is(key, &values) => Some(i),
            Some(_) => self.groups.iter().position(|group| group.is(key, &values)),
            None => None,
        };
        match found {
            Some(i) => self.groups[i].add(event, index),
            None => {
                self.by_hash.entry(hash).or_insert(self.groups.len());
                let features = values.map(str::to_owned);
                self.groups.push(Group { key: key.to_owned(), features, first: Use::of(event, index), last: None });
            }
        }
    }

    /// The kept uses, ordered by key, features, time and `eventID`, each made an
    /// [`Observation`] with the template `template` builds from the event and its index.
    pub fn finish(mut self, template: impl Fn(&Event<'_>, u64) -> Finding) -> Vec<Observation> {
        self.groups.sort_by(|a, b| (&a.key, &a.features).cmp(&(&b.key, &b.features)));
        let mut observations = Vec::with_capacity(self.groups.len() * 2);
        for group in self.groups {
            for kept in std::iter::once(group.first).chain(group.last) {
                let event = kept.header.event();
                // Always set: `add` keeps only uses with a time.
                let Some(time) = event.event_time else { continue };
                observations.push(Observation {
                    time,
                    event_id: event.event_id.map(str::to_owned),
                    key: group.key.clone(),
                    features: group.features.clone(),
                    template: template(&event, kept.index),
                });
            }
        }
        observations
    }
}

impl Group {
    fn is(&self, key: &str, values: &[&str; 5]) -> bool {
        self.key == key && self.features.iter().zip(values).all(|(kept, value)| kept == value)
    }

    /// Keeps `event` if it is now the earliest or the latest use.
    fn add(&mut self, event: &Event<'_>, index: u64) {
        let order = (event.event_time, event.event_id);
        if order < self.first.order() {
            match &mut self.last {
                // The displaced first lies between the new first and the last: dropped.
                Some(_) => self.first.set(event, index),
                None => self.last = Some(std::mem::replace(&mut self.first, Use::of(event, index))),
            }
            return;
        }
        match &mut self.last {
            Some(last) if order >= last.order() => last.set(event, index),
            Some(_) => {}
            None => self.last = Some(Use::of(event, index)),
        }
    }
}

fn group_hash(key: &str, values: &[&str; 5]) -> u64 {
    let mut hasher = StableHasher::default();
    for part in std::iter::once(&key).chain(values) {
        hasher.write(part.as_bytes());
        // A separator, so that ("ab", "c") and ("a", "bc") hash apart.
        hasher.write(&[0xff]);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{build_finding, rules, EventOrigin, Hit};
    use crate::finding::Mode;

    /// A minimal event: key, network, time and id vary.
    fn event<'a>(key: &'a str, ip: &'a str, time: Millis, id: Option<&'a str>) -> Event<'a> {
        let mut event = Event::empty();
        event.event_name = "ListBuckets";
        event.event_source = Some("s3.amazonaws.com");
        event.source_ip = Some(ip);
        event.event_time = Some(time);
        event.event_id = id;
        event.identity.access_key_id = Some(key);
        event
    }

    fn template(event: &Event<'_>, index: u64) -> Finding {
        let hit = Hit::new(format!("{} #{index}", event.event_id.unwrap_or("-")));
        let origin = EventOrigin { object: "o", index };
        build_finding(&rules::LONG_TERM_KEY_ANOMALY, hit, event, origin, None, Mode::Live)
    }

    /// What the baseline must get: sort every use by key, features, time and id (stably, so
    /// equal uses stay in object order) and keep the first and last of each run.
    fn sort_and_pick(uses: &[(String, String, Millis, Option<String>, u64)]) -> Vec<String> {
        let mut all: Vec<_> = uses.iter().collect();
        all.sort_by(|a, b| (&a.0, features::network(&a.1), a.2, &a.3).cmp(&(&b.0, features::network(&b.1), b.2, &b.3)));
        let mut kept: Vec<String> = Vec::new();
        let mut i = 0;
        while i < all.len() {
            let same = |u: &&(String, String, Millis, Option<String>, u64)| {
                u.0 == all[i].0 && features::network(&u.1) == features::network(&all[i].1)
            };
            let run = all[i..].iter().take_while(|u| same(u)).count();
            for u in std::iter::once(all[i]).chain((run > 1).then(|| all[i + run - 1])) {
                kept.push(format!("{} {} {}", u.0, u.2, u.4));
            }
            i += run;
        }
        kept
    }

    #[test]
    fn keeps_the_same_uses_as_sorting_every_use() {
        // A fixed pseudo-random sequence: keys, networks, times (with ties) and ids (some absent).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for round in 0..50 {
            let uses: Vec<(String, String, Millis, Option<String>, u64)> = (0..(round % 9) * 7 + 1)
                .map(|index| {
                    let key = format!("AKIA{}", next(3));
                    let ip = format!("10.0.{}.{}", next(2), next(200));
                    let id = (next(5) > 0).then(|| format!("e{}", next(4)));
                    (key, ip, next(6) as Millis, id, index)
                })
                .collect();
            let mut set = ObjectObservations::default();
            for (key, ip, time, id, index) in &uses {
                set.add(key, &event(key, ip, *time, id.as_deref()), *index);
            }
            let streamed: Vec<String> = set
                .finish(template)
                .iter()
                .map(|o| format!("{} {} {}", o.key, o.time, o.template.summary.rsplit('#').next().unwrap_or("")))
                .collect();
            assert_eq!(streamed, sort_and_pick(&uses), "round {round}: {uses:?}");
        }
    }

    #[test]
    fn the_template_sees_the_kept_event() {
        let mut set = ObjectObservations::default();
        set.add("AKIA1", &event("AKIA1", "192.0.2.7", 5, Some("late")), 0);
        set.add("AKIA1", &event("AKIA1", "192.0.2.9", 1, Some("early")), 1);
        set.add("AKIA1", &event("AKIA1", "192.0.2.8", 3, Some("between")), 2);
        let observations = set.finish(template);
        let summaries: Vec<&str> = observations.iter().map(|o| o.template.summary.as_str()).collect();
        assert_eq!(summaries, ["early #1", "late #0"]);
        assert_eq!(observations[0].features[0], "192.0.2.0/24");
        assert_eq!(observations[0].event_id.as_deref(), Some("early"));
    }
}
