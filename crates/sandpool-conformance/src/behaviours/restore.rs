//! Starting sandboxes: cold boot, restore from a template, and what restored copies
//! must not share.

use crate::ops::{assert_answers_one_plus_one, execute_ok};
use crate::TestEnv;
use sandpool_sandbox::{Backend, Limits, SandboxError, SandboxKind};

/// A cold-booted python sandbox answers `1+1` and is not marked restored.
pub async fn cold_boot_answers(backend: &dyn Backend, env: &TestEnv) {
    let sb = env
        .boot(backend, "cold", SandboxKind::Python, Limits::default())
        .await;
    assert!(!sb.sandbox().restored());
    assert_answers_one_plus_one(sb.agent(), "a cold-booted sandbox").await;
    sb.destroy().await;
}

/// Two sandboxes restored from one template get different `random.random()` and
/// `numpy.random.rand()`.
pub async fn restored_copies_have_distinct_prng(backend: &dyn Backend, env: &TestEnv) {
    let a = env.restore(backend, "prng-a").await;
    let b = env.restore(backend, "prng-b").await;
    let code = "import random, numpy\nprint(repr(random.random()), repr(float(numpy.random.rand())))";
    let from_a = execute_ok(a.agent(), code).await;
    let from_b = execute_ok(b.agent(), code).await;
    let (ra, na) = from_a.trim().split_once(' ').expect("two numbers");
    let (rb, nb) = from_b.trim().split_once(' ').expect("two numbers");
    assert_ne!(ra, rb, "random.random() identical in two restored copies");
    assert_ne!(na, nb, "numpy.random.rand() identical in two restored copies");
    // The heavy modules were imported before the checkpoint.
    let warm = execute_ok(
        a.agent(),
        "import sys\nprint(all(m in sys.modules for m in ('numpy', 'pandas', 'matplotlib')))",
    )
    .await;
    assert_eq!(warm.trim(), "True");
    a.destroy().await;
    b.destroy().await;
}

/// A backend without checkpointing says so and refuses to build a template (the
/// reason runc skips the restore behaviours: CRIU does not work on our hosts).
pub async fn checkpoint_is_refused(backend: &dyn Backend, env: &TestEnv) {
    assert!(!backend.supports_checkpoint());
    let spec = env.spec("no-template", SandboxKind::Python, Limits::default());
    match backend.build_template(&spec, &[]).await {
        Err(SandboxError::Unsupported { .. }) => {}
        other => panic!(
            "build_template on {}: expected Unsupported, got {other:?}",
            backend.name()
        ),
    }
    assert!(
        backend
            .leftovers()
            .await
            .expect("leftovers")
            .iter()
            .all(|id| id != &spec.id),
        "a refused template left a sandbox behind"
    );
}
