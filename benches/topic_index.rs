//! Topic index micro-benchmarks: 10 000 subscriptions (exact, prefix and wildcard/MQTT-filter
//! patterns mixed), matching concrete topics. `cargo bench --bench topic_index`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use junction::router::index::{Level, Pattern, TopicIndex};

const SUBSCRIPTIONS: u32 = 10_000;

/// 60 % exact (`app.d{i}.s{j}.value`), 20 % prefix (`app.d{i}.`), 20 % level patterns
/// (`app..s{j}.value` WAMP wildcards and `app/d{i}/#`-style MQTT filters).
fn build() -> TopicIndex<u32> {
    let mut idx = TopicIndex::default();
    for n in 0..SUBSCRIPTIONS {
        let (i, j) = (n % 500, n / 500);
        let p = match n % 10 {
            0..=5 => Pattern::Exact(format!("app.d{i}.s{j}.value")),
            6 | 7 => Pattern::Prefix(format!("app.d{i}.s{j}")),
            8 => Pattern::wamp_wildcard(&format!("app..s{j}.value{i}")),
            _ => Pattern::Levels(vec![
                Level::Lit("app".into()),
                Level::Lit(format!("d{i}")),
                Level::Any,
                Level::Lit(format!("v{j}")),
                Level::Rest,
            ]),
        };
        idx.insert(&p, n);
    }
    assert_eq!(idx.len(), SUBSCRIPTIONS as usize);
    idx
}

fn matching(c: &mut Criterion) {
    let idx = build();
    let mut g = c.benchmark_group("topic_index_10k");
    // hits an exact and a prefix subscription
    g.bench_function("match_exact_and_prefix", |b| {
        b.iter(|| {
            let mut n = 0u32;
            idx.matches(black_box("app.d123.s4.value"), |_| n += 1);
            black_box(n)
        })
    });
    // hits a wildcard subscription
    g.bench_function("match_wildcard", |b| {
        b.iter(|| {
            let mut n = 0u32;
            idx.matches(black_box("app.d9.s8.value408"), |_| n += 1);
            black_box(n)
        })
    });
    // matches nothing
    g.bench_function("match_miss", |b| {
        b.iter(|| {
            let mut n = 0u32;
            idx.matches(black_box("other.topic.entirely"), |_| n += 1);
            black_box(n)
        })
    });
    // an MQTT topic given as levels (filters with + and #)
    g.bench_function("match_levels_mqtt", |b| {
        let levels = ["app", "d39", "x", "v7", "deep", "er"];
        b.iter(|| {
            let mut n = 0u32;
            idx.matches_levels(black_box(&levels), |_| n += 1);
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
