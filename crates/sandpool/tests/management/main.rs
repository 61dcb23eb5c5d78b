//! The management API, metrics and CLI over real HTTP against the real binary and real
//! sandboxes: pools created, scaled, rolled and deleted live; validation; roles.

mod cli;
mod egress;
mod harness;
mod lifecycle;
mod restart;
#[path = "../../../sandpool-api/tests/api/schema.rs"]
mod schema;

use harness::*;
use serde_json::json;

#[test]
fn every_validation_error_names_the_field() {
    let cases = [
        (
            json!({"properties": {"scaleConfiguration": {"maxConcurrentSessions": 0}}}),
            "properties.scaleConfiguration.maxConcurrentSessions: must be between 1 and 600",
        ),
        (
            json!({"properties": {"scaleConfiguration": {"maxConcurrentSessions": 601}}}),
            "properties.scaleConfiguration.maxConcurrentSessions: must be between 1 and 600",
        ),
        (
            json!({"properties": {"scaleConfiguration": {"maxConcurrentSessions": 2, "readySessionInstances": 5}}}),
            "properties.scaleConfiguration.readySessionInstances:",
        ),
        (
            json!({"properties": {"scaleConfiguration": {"maxConcurrentSessions": "many"}}}),
            "properties.scaleConfiguration.maxConcurrentSessions:",
        ),
        (
            json!({"properties": {"containerType": "NodeLTS"}}),
            "properties.containerType:",
        ),
        (json!({"properties": {"colour": "blue"}}), "properties.colour:"),
        (
            json!({"properties": {"dynamicPoolConfiguration": {"lifecycleConfiguration": {"lifecycleType": "OnContainerExit"}}}}),
            "properties.dynamicPoolConfiguration.lifecycleConfiguration.lifecycleType:",
        ),
        (
            json!({"properties": {"dynamicPoolConfiguration": {"lifecycleConfiguration": {"cooldownPeriodInSeconds": 0}}}}),
            "properties.dynamicPoolConfiguration.lifecycleConfiguration.cooldownPeriodInSeconds:",
        ),
        (
            json!({"properties": {"sessionNetworkConfiguration": {"status": "Sometimes"}}}),
            "properties.sessionNetworkConfiguration.status:",
        ),
        (
            json!({"properties": {"resources": {"memory": "12 parsecs"}}}),
            "properties.resources.memory:",
        ),
        (
            json!({"properties": {"resources": {"cpu": 1000}}}),
            "properties.resources.cpu:",
        ),
        (
            json!({"properties": {"isolation": "vmware"}}),
            "properties.isolation:",
        ),
        (
            json!({"properties": {"customContainerTemplate": {"containers": []}}}),
            "properties.customContainerTemplate:",
        ),
        (json!({"name": "other", "properties": {}}), "name:"),
        (json!({"propertys": {}}), "propertys:"),
    ];
    for (body, want) in cases {
        let r = admin("PUT", "/sessionPools/invalid", Some(&body));
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(want), "{body}: {message}");
    }
    let r = admin("PUT", "/sessionPools/Bad_Name", Some(&json!({"properties": {}})));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("name:"));
    // PATCH validates the merged result the same way.
    let r = admin(
        "PATCH",
        "/sessionPools/metered",
        Some(&json!({"properties": {"scaleConfiguration": {"maxConcurrentSessions": 0}}})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("properties.scaleConfiguration.maxConcurrentSessions"));
    assert_eq!(admin("GET", "/sessionPools/invalid", None).status, 404);
}

#[test]
fn keys_have_roles_and_executor_keys_get_403_on_every_management_route() {
    let r = admin(
        "POST",
        "/apiKeys",
        Some(&json!({"name": "ci-runner", "role": "executor"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let (id, key) = (created["id"].as_str().unwrap(), created["key"].as_str().unwrap());
    let listed = admin("GET", "/apiKeys", None).json();
    let entry = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert_eq!(entry["role"], "executor");
    assert!(
        !listed.to_string().contains(key),
        "a listing must never show a key"
    );

    let body = json!({"properties": {}});
    let routes = [
        ("GET", "/sessionPools"),
        ("GET", "/sessionPools/metered"),
        ("PUT", "/sessionPools/metered"),
        ("PATCH", "/sessionPools/metered"),
        ("DELETE", "/sessionPools/metered"),
        ("GET", "/sessionPools/metered/sessions"),
        ("POST", "/sessionPools/metered/sessions/someone-1/stop"),
        ("GET", "/apiKeys"),
        ("POST", "/apiKeys"),
        ("DELETE", "/apiKeys/key-0"),
        ("GET", "/auditLog"),
        ("GET", "/metrics"),
    ];
    for (method, path) in routes {
        let b = matches!(method, "PUT" | "PATCH" | "POST").then_some(&body);
        assert_eq!(
            send(method, path, Some(key), b).status,
            403,
            "executor: {method} {path}"
        );
        if path != "/metrics" {
            assert_eq!(
                send(method, path, Some(METRICS_KEY), b).status,
                403,
                "metrics: {method} {path}"
            );
        }
        assert_eq!(send(method, path, None, b).status, 401, "no key: {method} {path}");
    }
    // The stored key works on the data plane, until it is revoked.
    let files = format!("/pools/metered/files?identifier=key-probe-1&{OLD}");
    assert_eq!(send("GET", &files, Some(key), None).status, 200);
    assert_eq!(admin("DELETE", &format!("/apiKeys/{id}"), None).status, 204);
    assert_eq!(send("GET", &files, Some(key), None).status, 401);
    assert_eq!(admin("DELETE", &format!("/apiKeys/{id}"), None).status, 404);
    let r = admin("POST", "/apiKeys", Some(&json!({"name": "x", "role": "root"})));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("role:"));

    // Every change is in the audit log, with who did it.
    let log = admin("GET", "/auditLog?limit=50", None).json();
    let entries = log["value"].as_array().unwrap();
    for action in ["key.create", "key.revoke"] {
        let e = entries
            .iter()
            .find(|e| e["action"] == action && e["target"] == id)
            .unwrap_or_else(|| panic!("no {action} in {log}"));
        assert_eq!(e["actor"], "config:env", "{e}");
    }
}

#[test]
fn metrics_count_known_activity() {
    wait_ready("metered", 1);
    let before = metrics();
    let count = |m: &str, s: &str| sample(m, s).unwrap_or(0.0);
    let ok = "sandpool_executions_total{pool=\"metered\",status=\"succeeded\"}";
    let failed = "sandpool_executions_total{pool=\"metered\",status=\"failed\"}";
    let warm = "sandpool_allocation_seconds_count{pool=\"metered\",kind=\"warm_hit\"}";
    let durations = "sandpool_execution_seconds_count{pool=\"metered\"}";
    let id = format!("metrics-{}", std::process::id());
    assert_eq!(execute("metered", &id, "echo one")["status"], "Success");
    assert_eq!(execute("metered", &id, "echo two")["status"], "Success");
    assert_eq!(execute("metered", &id, "exit 3")["status"], "Failure");
    let after = metrics();
    assert_eq!(count(&after, ok) - count(&before, ok), 2.0, "{after}");
    assert_eq!(count(&after, failed) - count(&before, failed), 1.0, "{after}");
    assert_eq!(
        count(&after, durations) - count(&before, durations),
        3.0,
        "{after}"
    );
    assert!(count(&after, warm) - count(&before, warm) >= 1.0, "{after}");
    assert!(sample(&after, "sandpool_pool_allocated{pool=\"metered\"}").unwrap() >= 1.0);
    assert!(sample(&after, "sandpool_pool_hit_ratio{pool=\"metered\"}").unwrap() > 0.0);
    // The session took the ready sandbox; the pool refills (start and refill time counted).
    let kinds = |m: &str, family: &str| {
        ["restore", "cold"]
            .iter()
            .map(|k| count(m, &format!("{family}{{pool=\"metered\",kind=\"{k}\"}}")))
            .sum::<f64>()
    };
    let after = wait_for("the refill", std::time::Duration::from_secs(120), || {
        let m = metrics();
        (kinds(&m, "sandpool_sandbox_starts_total") >= 2.0).then_some(m)
    });
    assert!(kinds(&after, "sandpool_refill_seconds_count") >= 2.0, "{after}");
    assert!(after.contains("sandpool_refill_seconds_bucket{le=\"0.005\",pool=\"metered\""));
    assert!(after.contains("sandpool_http_requests_total{method=\"POST\",status=\"200\"}"));
    assert!(after.contains("# TYPE sandpool_allocation_seconds histogram"));
}
