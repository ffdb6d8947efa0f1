//! The per-message cost of admitting a message: the token permission check plus the
//! in-memory rate-limit decision, as a server pays it for every incoming message.
//!
//! Run with `cargo bench -p teleportal-auth --features server --bench admission`; figures go
//! to `docs/benchmarks.md`.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use teleportal_auth::{
    DocumentAccess, MemoryRateLimiter, Permission, RateLimitAlgorithm, RateLimitKey, RateLimitRule,
    TokenConfig, TokenPermissionChecker,
};
use teleportal_server::{Access, ClientContext};

/// A token like a real application's: a few inclusions and an exclusion, the match last.
fn client() -> ClientContext {
    let access = vec![
        DocumentAccess::new("!workspace/secret/*", &[]),
        DocumentAccess::new("drafts/*", &[Permission::Read]),
        DocumentAccess::new("shared/*/notes", &[Permission::Read, Permission::Comment]),
        DocumentAccess::new("archive/2024-*", &[Permission::Read]),
        DocumentAccess::new("workspace/*", &[Permission::Read, Permission::Write]),
    ];
    let claims = TokenConfig::new("bench").claims("user-42", "", Some(access), 0);
    ClientContext::new("user-42")
        .with_user("user-42")
        .with_identity(claims)
}

/// Every algorithm once, each key kind once: the most a configuration would hold.
fn limiter() -> MemoryRateLimiter {
    let huge = 1_000_000_000;
    MemoryRateLimiter::new(vec![
        RateLimitRule::new(
            RateLimitKey::User,
            RateLimitAlgorithm::TokenBucket {
                capacity: huge,
                per_second: f64::from(huge),
            },
        ),
        RateLimitRule::new(
            RateLimitKey::Document,
            RateLimitAlgorithm::SlidingWindow {
                limit: huge,
                window: Duration::from_secs(1),
            },
        ),
        RateLimitRule::new(
            RateLimitKey::UserDocument,
            RateLimitAlgorithm::FixedWindow {
                limit: huge,
                window: Duration::from_secs(1),
            },
        ),
        RateLimitRule::new(
            RateLimitKey::Connection,
            RateLimitAlgorithm::TokenBucket {
                capacity: huge,
                per_second: f64::from(huge),
            },
        ),
    ])
}

fn admission(c: &mut Criterion) {
    let client = client();
    let document = "workspace/project/document-42";
    let one_rule = MemoryRateLimiter::new(vec![RateLimitRule::per_user_per_second(1_000_000_000)]);
    let four_rules = limiter();

    let mut group = c.benchmark_group("admission");
    group.throughput(Throughput::Elements(1));
    group.bench_function("permission-check", |b| {
        b.iter(|| {
            TokenPermissionChecker::allows(black_box(&client), black_box(document), Access::Write)
        });
    });
    group.bench_function("rate-limit-1-rule", |b| {
        b.iter(|| one_rule.check(black_box("user-42"), 7, black_box(document), Instant::now()));
    });
    group.bench_function("permission+rate-limit-1-rule", |b| {
        b.iter(|| {
            TokenPermissionChecker::allows(black_box(&client), black_box(document), Access::Write)
                && one_rule
                    .check("user-42", 7, black_box(document), Instant::now())
                    .is_ok()
        });
    });
    group.bench_function("permission+rate-limit-4-rules", |b| {
        b.iter(|| {
            TokenPermissionChecker::allows(black_box(&client), black_box(document), Access::Write)
                && four_rules
                    .check("user-42", 7, black_box(document), Instant::now())
                    .is_ok()
        });
    });
    group.finish();
}

criterion_group!(benches, admission);
criterion_main!(benches);
