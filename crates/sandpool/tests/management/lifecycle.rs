//! A pool's whole life over the API: created live, used, scaled up and down, its
//! template changed while a session survives, deleted with its sessions ending.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;

fn starts(pool: &str) -> f64 {
    let m = metrics();
    ["restore", "cold"]
        .iter()
        .filter_map(|k| {
            sample(
                &m,
                &format!("sandpool_sandbox_starts_total{{pool=\"{pool}\",kind=\"{k}\"}}"),
            )
        })
        .sum()
}

fn session_etag(pool: &str, id: &str) -> String {
    let r = admin(
        "GET",
        &format!("/pools/{pool}/session?identifier={id}&{OLD}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["etag"].as_str().unwrap().to_owned()
}

#[test]
fn a_pool_is_created_scaled_rolled_and_deleted_live() {
    let pool = "lifecycle";
    let created = admin(
        "PUT",
        &format!("/sessionPools/{pool}"),
        Some(&json!({"location": "local", "properties": {
            "containerType": "Shell",
            "scaleConfiguration": {"maxConcurrentSessions": 4, "readySessionInstances": 1},
            "dynamicPoolConfiguration": {"lifecycleConfiguration": {"lifecycleType": "Timed", "cooldownPeriodInSeconds": 600}},
            "resources": {"cpu": 0.5, "memory": "512Mi"},
            "secrets": [{"name": "token", "value": "write-only-secret"}]
        }})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let v = created.json();
    assert!(!created.text().contains("write-only-secret"));
    assert!(v["properties"]["poolManagementEndpoint"]
        .as_str()
        .unwrap()
        .ends_with("/pools/lifecycle"));
    wait_ready(pool, 1);
    let listed = admin("GET", "/sessionPools", None).json();
    assert!(listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == pool));

    // Use it: a session with state in /mnt/data.
    let keeper = format!("keeper-{}", std::process::id());
    let p = execute(pool, &keeper, "echo kept > /mnt/data/state.txt && echo ok");
    assert_eq!(p["stdout"], "ok\n", "{p}");
    let keeper_sandbox = session_etag(pool, &keeper);

    // Scale up, then down: the ready count follows.
    let patch = |body: serde_json::Value| {
        let r = admin(
            "PATCH",
            &format!("/sessionPools/{pool}"),
            Some(&json!({"properties": body})),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    let v = patch(json!({"scaleConfiguration": {"readySessionInstances": 3}}));
    assert_eq!(v["properties"]["scaleConfiguration"]["readySessionInstances"], 3);
    assert_eq!(v["properties"]["scaleConfiguration"]["maxConcurrentSessions"], 4);
    wait_ready(pool, 3);
    patch(json!({"scaleConfiguration": {"readySessionInstances": 1}}));
    wait_ready(pool, 1);

    // New limits: ready sandboxes roll to the new template; the session keeps running.
    let starts_before = starts(pool);
    let v = patch(json!({"resources": {"memory": "768Mi"}}));
    assert_eq!(v["properties"]["resources"]["memory"], "768Mi");
    wait_for(
        "the ready sandbox to be replaced",
        Duration::from_secs(600),
        || {
            let v = admin("GET", &format!("/sessionPools/{pool}"), None).json();
            let p = &v["properties"];
            (p["provisioningState"] == "Succeeded"
                && p["sessionCounts"]["ready"] == 1
                && starts(pool) >= starts_before + 1.0)
                .then_some(())
        },
    );
    let p = execute(pool, &keeper, "cat /mnt/data/state.txt");
    assert_eq!(p["stdout"], "kept\n", "{p}");
    assert_eq!(session_etag(pool, &keeper), keeper_sandbox);
    let fresh = format!("fresh-{}", std::process::id());
    assert_eq!(execute(pool, &fresh, "echo new")["stdout"], "new\n");

    // Stop one session; delete the pool: the rest end with pool-deleted.
    let r = admin(
        "POST",
        &format!("/sessionPools/{pool}/sessions/{fresh}/stop"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = admin(
        "POST",
        &format!("/sessionPools/{pool}/sessions/{fresh}/stop"),
        None,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let live = admin("GET", &format!("/sessionPools/{pool}/sessions"), None).json();
    let keeper_row = live["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["identifier"] == keeper.as_str() && s["state"] == "Allocated")
        .unwrap_or_else(|| panic!("{live}"))
        .clone();
    assert!(keeper_row["expiresAt"].is_string());
    assert_eq!(
        admin("DELETE", &format!("/sessionPools/{pool}"), None).status,
        204
    );
    assert_eq!(admin("GET", &format!("/sessionPools/{pool}"), None).status, 404);
    let r = admin(
        "POST",
        &format!("/pools/{pool}/code/execute?identifier={keeper}&{OLD}"),
        Some(&json!({"properties": {"code": "echo"}})),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let ended = wait_for("ended sessions in the history", Duration::from_secs(20), || {
        let v = admin("GET", &format!("/sessionPools/{pool}/sessions"), None).json();
        let rows = v["value"].as_array().cloned().unwrap_or_default();
        let reason = |id: &str| {
            rows.iter()
                .find(|s| s["identifier"] == id)
                .map(|s| s["endReason"].clone())
        };
        (reason(&keeper) == Some(json!("pool-deleted")) && reason(&fresh) == Some(json!("stopped")))
            .then_some(rows)
    });
    assert!(ended
        .iter()
        .all(|s| s["state"] == "Ended" && s["endedAt"].is_string()));

    let log = admin("GET", "/auditLog?limit=100", None).json();
    for action in ["pool.create", "pool.update", "session.stop", "pool.delete"] {
        assert!(
            log["value"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == action && e["target"].as_str().unwrap().starts_with(pool)),
            "no {action} in {log}"
        );
    }
}
