//! Starting sandboxes: cold boot, restore from a template, and what restored copies
//! must not share.

use crate::ops::{assert_answers_one_plus_one, call, execute_ok};
use crate::TestEnv;
use sandpool_proto::Request;
use sandpool_sandbox::ExitReason;
use sandpool_sandbox::{Backend, Limits, SandboxError, SandboxKind};
use std::time::Duration;

/// A cold-booted python sandbox answers `1+1` and is not marked restored.
pub async fn cold_boot_answers(backend: &dyn Backend, env: &TestEnv) {
    let sb = env
        .boot(backend, "cold", SandboxKind::Python, Limits::default())
        .await;
    assert!(!sb.sandbox().restored());
    assert_answers_one_plus_one(sb.agent(), "a cold-booted sandbox").await;
    sb.destroy().await;
}

/// Two sandboxes restored from one template get different `random.random()`,
/// `numpy.random.rand()` and `tempfile` names (the agent's `Reseed` contract).
pub async fn restored_copies_have_distinct_prng(backend: &dyn Backend, env: &TestEnv) {
    let a = env.restore(backend, "prng-a").await;
    let b = env.restore(backend, "prng-b").await;
    let code = "import random, numpy, tempfile\n\
                print(repr(random.random()), repr(float(numpy.random.rand())), next(tempfile._get_candidate_names()))";
    let from_a = execute_ok(a.agent(), code).await;
    let from_b = execute_ok(b.agent(), code).await;
    let a_values: Vec<&str> = from_a.split_whitespace().collect();
    let b_values: Vec<&str> = from_b.split_whitespace().collect();
    assert_eq!((a_values.len(), b_values.len()), (3, 3), "{from_a:?} {from_b:?}");
    for (i, what) in ["random.random()", "numpy.random.rand()", "tempfile names"]
        .iter()
        .enumerate()
    {
        assert_ne!(
            a_values[i], b_values[i],
            "{what} identical in two restored copies"
        );
    }
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

/// A destroyed sandbox is gone: its exit reason is `Destroyed`, its channel is closed,
/// and the backend reports nothing left behind for it.
pub async fn destroy_leaves_nothing(backend: &dyn Backend, env: &TestEnv) {
    let spec = env.spec("destroy", SandboxKind::Shell, Limits::default());
    let sb = env.create(backend, &spec, None).await;
    let sandbox = sb.sandbox();
    tokio::time::timeout(Duration::from_secs(60), sandbox.destroy())
        .await
        .expect("destroy within a minute")
        .expect("destroy");
    let reason = tokio::time::timeout(Duration::from_secs(30), sandbox.wait_exit())
        .await
        .expect("exit reason within 30 s");
    assert_eq!(reason, ExitReason::Destroyed);
    match call(sandbox.agent(), Request::Health, Duration::from_secs(10)).await {
        Err(SandboxError::AgentGone) => {}
        other => panic!("a destroyed sandbox answered: {other:?}"),
    }
    sandbox.destroy().await.expect("destroy is idempotent");
    let leftovers = backend.leftovers().await.expect("leftovers");
    assert!(
        !leftovers.contains(&spec.id),
        "{} still listed after destroy",
        spec.id
    );
    sb.destroy().await;
}
