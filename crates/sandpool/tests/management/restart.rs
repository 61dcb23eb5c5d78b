//! Pools created through the API persist in the store and come back after a restart;
//! sessions open at shutdown are recorded as ended with `server-restart`.

use crate::harness::*;
use serde_json::json;

const CONFIG: &str = r#"
[[pools]]
name = "seed"
[pools.properties]
containerType = "Shell"
scaleConfiguration = { maxConcurrentSessions = 1, readySessionInstances = 0 }
"#;

#[test]
fn api_pools_survive_a_restart() {
    let dir = fresh_dir("mgmt-restart");
    let first = start(&dir, CONFIG);
    let call = |base: &str, method: &str, path: &str, body: Option<&serde_json::Value>| {
        send_to(base, method, path, Some(ADMIN_KEY), body)
    };
    let ready = |base: &str| wait_ready_at(base, "kept", 1);
    let body = json!({"properties": {
        "containerType": "Shell",
        "scaleConfiguration": {"maxConcurrentSessions": 2, "readySessionInstances": 1},
        "dynamicPoolConfiguration": {"lifecycleConfiguration": {"cooldownPeriodInSeconds": 900}}
    }});
    assert_eq!(
        call(&first.base, "PUT", "/sessionPools/kept", Some(&body)).status,
        201
    );
    ready(&first.base);
    let r = call(
        &first.base,
        "POST",
        &format!("/pools/kept/code/execute?identifier=before-restart&{OLD}"),
        Some(&json!({"properties": {"code": "echo hi"}})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    first.stop();

    let second = start(&dir, CONFIG);
    let v = ready(&second.base);
    assert_eq!(
        v["properties"]["dynamicPoolConfiguration"]["lifecycleConfiguration"]["cooldownPeriodInSeconds"],
        900
    );
    let names: Vec<String> = call(&second.base, "GET", "/sessionPools", None).json()["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["kept", "seed"]);
    let sessions = call(&second.base, "GET", "/sessionPools/kept/sessions", None).json();
    let row = sessions["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["identifier"] == "before-restart")
        .unwrap_or_else(|| panic!("{sessions}"))
        .clone();
    assert_eq!(
        (row["state"].as_str(), row["endReason"].as_str()),
        (Some("Ended"), Some("server-restart"))
    );
    second.stop();
}
