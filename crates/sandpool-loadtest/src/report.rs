//! Printing figures: percentiles, throughput phases, refills, and the targets.

use crate::phases::concurrent::{Throughput, COLD_THRESHOLD};
use crate::phases::refill::Refill;
use sandpool_conformance::bench::stats::{ms, Samples};
use std::time::Duration;

pub fn percentiles(what: &str, s: &Samples) {
    println!(
        "{what}: p50 {}, p99 {}, max {} (n={})",
        ms(s.percentile(50.0)),
        ms(s.percentile(99.0)),
        ms(s.percentile(100.0)),
        s.len()
    );
}

pub fn throughput(what: &str, clients: usize, t: &Throughput) {
    let s = &t.summary;
    println!(
        "{what}: {clients} clients, {clients} identifiers, {:.1} s",
        t.wall.as_secs_f64()
    );
    println!(
        "  executions/s: {:.1} overall, {:.1} after the last session was allocated ({} ok, {} errors)",
        s.overall_per_s, s.steady_per_s, t.ok, t.errors
    );
    match s.all_allocated_at {
        Some(at) => println!("  all sessions allocated after {}", ms(at)),
        None => println!("  NOT all sessions were allocated"),
    }
    println!(
        "  ready before: {}; sandboxes started during the phase: {} ({} restored from the template)",
        t.before.ready(),
        t.after.started - t.before.started,
        t.after.restored - t.before.restored
    );
    println!(
        "  cold starts (first request > {}): {} of {}",
        ms(COLD_THRESHOLD),
        s.cold_by_latency,
        s.first.len()
    );
    percentiles("  first request per identifier (allocation + print(1))", &s.first);
    percentiles("  print(1) after all were allocated", &s.steady_latency);
    for e in &t.first_errors {
        println!("  error: {e}");
    }
}

pub fn refill(what: &str, r: &Refill, ready: i64) {
    if r.ready_before >= ready && r.started == 0 {
        println!(
            "{what}: the ready set was already full ({} ready; the pool refilled while sessions were live); next new identifier {}",
            r.ready_before,
            ms(r.probe)
        );
        return;
    }
    println!(
        "{what}: ready set full again after {} (trigger took {}; ready before {}; {} sandboxes started, {} restored); next new identifier {}",
        ms(r.refilled),
        ms(r.trigger),
        r.ready_before,
        r.started,
        r.restored,
        ms(r.probe)
    );
}

/// One target line: `figure ≤ limit`, met or missed.
pub fn target(what: &str, figure: Duration, limit: Duration) {
    let verdict = if figure <= limit { "met" } else { "MISSED" };
    println!("target {what}: {} (≤ {}) — {verdict}", ms(figure), ms(limit));
}
