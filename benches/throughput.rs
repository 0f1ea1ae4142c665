#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Throughput of the hot path on the seeded synthetic corpus, in uncompressed MB/s and events/s:
//! inflate alone, decode (inflate + header walk), decode with a full simd-json parse of every
//! record (for comparison), and decode + every per-event rule (bodies parsed where rules need
//! them).
//!
//! `cargo bench --bench throughput`. The corpus is generated in memory (16 objects of ~2,000
//! events, ~52 MB of JSON). For the end-to-end figure over a ~1 GB corpus on disk, see the README
//! ("Performance").

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trailhound::decode::{gzip, Decoder, Limits};
use trailhound::detect::{Engine, EventOrigin};
use trailhound::finding::Mode;
use trailhound::settings::Settings;
use trailhound::synth::{generate, SynthObject, SynthSpec};

fn corpus() -> Vec<SynthObject> {
    let spec = SynthSpec { files: 16, events_per_file: 2_000, attack_every: 4, ..SynthSpec::default() };
    let mut objects = Vec::new();
    generate(&spec, |object| objects.push(object));
    objects
}

fn throughput(c: &mut Criterion) {
    let objects = corpus();
    let json_bytes: usize = objects.iter().map(|o| o.json_bytes).sum();
    let events: usize = objects.iter().map(|o| o.events).sum();
    let engine = Engine::new(Settings::default(), Mode::Scan);

    let mut bytes = c.benchmark_group("uncompressed_bytes");
    bytes.throughput(Throughput::Bytes(json_bytes as u64));
    bytes.sample_size(10);
    let mut buffer = Vec::new();
    bytes.bench_function("inflate", |b| {
        b.iter(|| {
            for object in &objects {
                gzip::inflate_capped(&object.gzip, 1 << 30, &mut buffer).expect("valid gzip");
                black_box(buffer.len());
            }
        })
    });
    let mut decoder = Decoder::new(Limits::default());
    // Header fields only: what an event costs when no rule needs its bodies.
    bytes.bench_function("decode", |b| {
        b.iter(|| {
            let mut seen = 0u64;
            for object in &objects {
                decoder.decode_with(&object.gzip, &|_| false, &mut |_, event| seen += event.event_name.len() as u64);
            }
            black_box(seen)
        })
    });
    // Every record parsed completely with simd-json, for comparison.
    bytes.bench_function("decode_full_parse", |b| {
        b.iter(|| {
            let mut seen = 0u64;
            for object in &objects {
                decoder.decode(&object.gzip, &mut |_, event| seen += event.event_name.len() as u64);
            }
            black_box(seen)
        })
    });
    bytes.bench_function("decode_detect", |b| b.iter(|| black_box(decode_detect(&objects, &mut decoder, &engine))));
    bytes.finish();

    let mut per_event = c.benchmark_group("events");
    per_event.throughput(Throughput::Elements(events as u64));
    per_event.sample_size(10);
    per_event.bench_function("decode_detect", |b| b.iter(|| black_box(decode_detect(&objects, &mut decoder, &engine))));
    per_event.finish();
}

fn decode_detect(objects: &[SynthObject], decoder: &mut Decoder, engine: &Engine) -> usize {
    let mut findings = Vec::new();
    for object in objects {
        decoder.decode_with(&object.gzip, &|event| engine.needs_bodies(event), &mut |index, event| {
            engine.inspect(event, EventOrigin { object: &object.key, index }, &mut findings);
        });
    }
    findings.len()
}

criterion_group!(benches, throughput);
criterion_main!(benches);
