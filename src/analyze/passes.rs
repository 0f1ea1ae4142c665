//! The stateful passes over a stream of batches: aggregation, correlation and baselines, with
//! the state that links one batch (a group of files, an SQS message, a run) to the next.
//!
//! Decoding and per-event detection run in parallel; a [`Batch`] is what a group of objects
//! produced. [`Stateful::advance`] folds it into the state and returns the findings that are new:
//!
//! - **Carry.** Findings that later events may still aggregate or correlate with (every pending
//!   finding of a merge or burst rule, and the chain's inputs: SSE-C writes, short expirations,
//!   suspended versioning) and the mass-delete and ransom-note facts are kept until the
//!   **watermark** — the latest event time seen — has passed them by their horizon (the rule's
//!   window, or the chain's 24 h). Each batch re-runs the passes over carried ∪ new, in event
//!   time, and reports only conclusions that rest on at least one new event: a merge window
//!   that grows across batches yields an update with the cumulative count, a first alert is
//!   never repeated. Events that arrive late are placed by event time among what is still
//!   carried; an event older than the watermark minus the horizon aggregates only with its own
//!   batch. At most [`CARRY_PER_GROUP`] findings per group are carried (the latest), which
//!   bounds memory during a burst of any length.
//! - **Known SSE-C writers** ([`crate::analyze::writers`]): a pair's first SSE-C write alerts,
//!   the later ones are `info`.
//! - **Instance roles** learned from `CreateRole`/`AddRoleToInstanceProfile` are kept for good.
//! - **Baselines** ([`crate::analyze::baseline`]) are updated with the batch's observations in event time.
//!
//! Nothing here reads a clock or does I/O: [`crate::store::session`] loads and saves this state
//! through a [`crate::store::StateStore`]. Re-running the same input with the same state gives
//! the same findings with the same ids, whatever the thread count.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::aggregate::aggregate;
use super::baseline::{self, Baselines};
use super::correlate::{self, CHAIN_WINDOW};
use super::created_keys;
use super::writers::KnownWriters;
use crate::detect::facts::{self, Fact};
use crate::detect::observe::Observation;
use crate::detect::rules::{LIFECYCLE_SHORT_EXPIRATION, SSEC_COPY_OVERWRITE, SSEC_WRITE, VERSIONING_SUSPENDED};
use crate::event::time::Millis;
use crate::finding::RuleInfo;
use crate::finding::{Finding, PendingKind};
use crate::settings::Settings;

/// Findings carried per aggregation group (principal and bucket …) at most.
pub const CARRY_PER_GROUP: usize = 10_000;

/// Rules whose findings the ransomware chain correlates, so they are carried for its window.
static CHAIN_INPUTS: [&RuleInfo; 4] =
    [&SSEC_COPY_OVERWRITE, &SSEC_WRITE, &LIFECYCLE_SHORT_EXPIRATION, &VERSIONING_SUSPENDED];

/// Whether findings of `rule` feed the ransomware chain.
fn is_chain_input(rule: &str) -> bool {
    CHAIN_INPUTS.iter().any(|input| input.id == rule)
}

/// Whether a per-event finding is final as it stands: neither aggregated (pending) nor an input
/// of the chain. The stateful passes only hand it on (an instance role's admin policy may still
/// be raised to critical), so a big object may hand such findings on before it is fully read.
pub fn is_direct(finding: &Finding) -> bool {
    finding.pending.is_none() && !is_chain_input(finding.rule)
}

/// What a group of objects produced for the stateful passes.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Per-event findings (pending ones included).
    pub findings: Vec<Finding>,
    /// Uses of long-term keys.
    pub observations: Vec<Observation>,
    /// Facts for correlation.
    pub facts: Vec<Fact>,
    /// The latest event time in the batch.
    pub latest: Option<Millis>,
}

/// The state between batches.
#[derive(Debug)]
pub struct Stateful {
    settings: Settings,
    /// Per-key baselines (a cache over the store; see [`crate::store::session`]).
    pub baselines: Baselines,
    /// Known SSE-C writers (a cache over the store, like the baselines).
    pub writers: KnownWriters,
    carry: Vec<Finding>,
    carried_facts: Vec<Fact>,
    roles: HashMap<String, Millis>,
    new_roles: Vec<(String, Millis)>,
    watermark: Option<Millis>,
}

impl Stateful {
    /// Empty state.
    pub fn new(settings: Settings) -> Stateful {
        Stateful {
            baselines: Baselines::new(settings.baseline),
            writers: KnownWriters::default(),
            settings,
            carry: Vec::new(),
            carried_facts: Vec::new(),
            roles: HashMap::new(),
            new_roles: Vec::new(),
            watermark: None,
        }
    }

    /// The detection settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The latest event time seen.
    pub fn watermark(&self) -> Option<Millis> {
        self.watermark
    }

    /// Restores state read from a store.
    pub fn restore(
        &mut self,
        watermark: Option<Millis>,
        carry: Vec<Finding>,
        facts: Vec<Fact>,
        roles: Vec<(String, Millis)>,
    ) {
        self.watermark = watermark.max(self.watermark);
        self.carry = carry.into_iter().map(|f| Finding { carried: true, ..f }).collect();
        self.carried_facts = facts
            .into_iter()
            .map(|mut fact| {
                fact.mark_carried();
                fact
            })
            .collect();
        for (role, time) in roles {
            let entry = self.roles.entry(role).or_insert(time);
            *entry = (*entry).min(time);
        }
    }

    /// The carried findings and facts, to save.
    pub fn carried(&self) -> (&[Finding], &[Fact]) {
        (&self.carry, &self.carried_facts)
    }

    /// Instance roles learned (or learned earlier) since the last call, to save.
    pub fn take_new_roles(&mut self) -> Vec<(String, Millis)> {
        std::mem::take(&mut self.new_roles)
    }

    /// Folds a batch into the state; returns the findings it newly concludes, in no order.
    pub fn advance(&mut self, batch: Batch) -> Vec<Finding> {
        self.watermark = self.watermark.max(batch.latest);
        let mut facts = Vec::with_capacity(batch.facts.len() + self.carried_facts.len());
        for fact in batch.facts {
            match fact {
                Fact::InstanceRole { role, time } => self.learn_role(role, time),
                Fact::KeyMinted(mut minted) => {
                    created_keys::enrich(&mut minted, &self.baselines);
                    facts.push(Fact::KeyMinted(minted));
                }
                other => facts.push(other),
            }
        }
        facts.extend(self.carried_facts.iter().cloned());
        created_keys::merge_duplicates(&mut facts);
        // One fact per slot, the same object delivered twice counted once.
        let mut facts = facts::fold_slots(facts);
        facts.extend(self.roles.iter().map(|(role, time)| Fact::InstanceRole { role: role.clone(), time: *time }));

        // New findings first, so a finding seen again (the same event in another file or run)
        // counts as new: re-running input reports the same ids.
        let (stateful_inputs, direct): (Vec<Finding>, Vec<Finding>) =
            batch.findings.into_iter().partition(|f| !is_direct(f));
        let mut seen = HashSet::new();
        let inputs: Vec<Finding> = stateful_inputs
            .into_iter()
            .chain(std::mem::take(&mut self.carry))
            .filter(|f| seen.insert(f.id.clone()))
            .collect();
        self.carry = self.next_carry(&inputs);
        let mut new_key_uses = created_keys::run(&mut facts, &batch.observations, &self.settings);
        self.carried_facts = self.next_facts(&facts);

        let mut findings = aggregate(inputs.into_iter().chain(direct).collect());
        self.writers.apply(&mut findings);
        correlate::correlate(&mut findings, &facts, &self.settings);
        findings.retain(|f| !f.carried);
        findings.append(&mut new_key_uses);
        findings.extend(baseline::run(&mut self.baselines, batch.observations, &self.settings));
        findings
    }

    fn learn_role(&mut self, role: String, time: Millis) {
        match self.roles.get_mut(&role) {
            Some(known) if *known <= time => {}
            Some(known) => {
                *known = time;
                self.new_roles.push((role, time));
            }
            None => {
                self.roles.insert(role.clone(), time);
                self.new_roles.push((role, time));
            }
        }
    }

    /// What to carry: inputs still within their horizon of the watermark, the latest
    /// [`CARRY_PER_GROUP`] per group.
    fn next_carry(&self, inputs: &[Finding]) -> Vec<Finding> {
        let Some(watermark) = self.watermark else { return Vec::new() };
        let mut groups: BTreeMap<(&str, &str), Vec<&Finding>> = BTreeMap::new();
        for finding in inputs.iter().filter(|f| f.sort_time >= watermark.saturating_sub(horizon(f))) {
            let group = finding.pending.as_ref().map_or("", |p| p.group.as_str());
            groups.entry((finding.rule, group)).or_default().push(finding);
        }
        let mut carry = Vec::new();
        for (_, mut members) in groups {
            members.sort_by(|a, b| (b.sort_time, &b.id).cmp(&(a.sort_time, &a.id)));
            members.truncate(CARRY_PER_GROUP);
            carry.extend(members.into_iter().map(|f| Finding { carried: true, ..f.clone() }));
        }
        carry
    }

    /// The facts to carry: those of the batch (new and carried, folded into their slots; mint
    /// facts as `judged` left them, marked used once their first use was reported) within the
    /// chain window of the watermark. Instance roles are kept apart.
    fn next_facts(&self, judged: &[Fact]) -> Vec<Fact> {
        let Some(watermark) = self.watermark else { return Vec::new() };
        judged
            .iter()
            .filter(|f| !matches!(f, Fact::InstanceRole { .. }) && f.time() >= watermark.saturating_sub(CHAIN_WINDOW))
            .map(|f| {
                let mut fact = f.clone();
                fact.mark_carried();
                fact
            })
            .collect()
    }
}

/// How long after its event time a finding may still aggregate or correlate with a new one.
fn horizon(finding: &Finding) -> Millis {
    let window = match finding.pending.as_ref().map(|p| p.kind) {
        Some(PendingKind::Merge { window_minutes } | PendingKind::Burst { window_minutes, .. }) => {
            window_minutes * 60_000
        }
        None => 0,
    };
    if is_chain_input(finding.rule) {
        window.max(CHAIN_WINDOW)
    } else {
        window
    }
}
