//! `code/execute`, `executions` and `executions/{id}` on Python and Shell pools.

use super::*;
use fake::python_ok;
use sandpool_engine::{EngineError, ExecutionError, ExecutionInput, ExecutionStatus};
use serde_json::json;

fn old_uri(pool: &str) -> String {
    format!("/pools/{pool}/code/execute?identifier={ID}&{OLD}")
}

fn new_uri(pool: &str) -> String {
    format!("/pools/{pool}/executions?{NEW}&identifier={ID}")
}

#[tokio::test]
async fn code_execute_returns_properties_with_result_and_execution_result() {
    let h = Harness::new();
    h.fake
        .set_next_python(python_ok("hi\n", Some(&[("text/plain", "42")])));
    let r = h
        .post_json(
            &old_uri("demo"),
            json!({"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": "print('hi'); 6*7"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let p = &r.json()["properties"];
    assert_eq!(p["status"], "Success");
    assert_eq!(p["stdout"], "hi\n");
    assert_eq!(p["result"], 42);
    assert_eq!(p["executionResult"], 42);
    assert_eq!(p["executionTimeInMilliseconds"], 7);
    assert_eq!(
        h.fake.last_call().0,
        ExecutionInput::Python {
            code: "print('hi'); 6*7".into()
        }
    );
}

#[tokio::test]
async fn code_execute_accepts_a_trailing_slash_and_any_enum_case() {
    let h = Harness::new();
    for (input, exec) in [
        ("Inline", "Synchronous"),
        ("INLINE", "SYNCHRONOUS"),
        ("InlineText", "synchronous"),
    ] {
        let uri = format!("/pools/demo/code/execute/?identifier={ID}&{OLD}");
        let body =
            json!({"properties": {"codeInputType": input, "executionType": exec, "code": "1", "extra": [1]}});
        let r = h.post_json(&uri, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = h
        .post_json(
            &format!("/pools//demo//code/execute?identifier={ID}&{OLD}"),
            json!({"properties": {"code": "1"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn timeouts_default_to_120_seconds_and_are_capped_at_the_pool_maximum() {
    let h = Harness::new();
    h.post_json(&old_uri("demo"), json!({"properties": {"code": "1"}}))
        .await;
    assert_eq!(h.fake.last_call().1, Duration::from_secs(120));
    h.post_json(
        &old_uri("demo"),
        json!({"properties": {"code": "1", "timeoutInSeconds": 100}}),
    )
    .await;
    assert_eq!(h.fake.last_call().1, Duration::from_secs(100));
    h.post_json(&new_uri("demo"), json!({"code": "1", "timeoutInSeconds": 100000}))
        .await;
    assert_eq!(h.fake.last_call().1, fake::MAX_TIMEOUT);
    h.post_json(&new_uri("demo"), json!({"code": "1", "timeoutInSeconds": -1}))
        .await
        .assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn base64_code_is_decoded() {
    let h = Harness::new();
    let r = h
        .post_json(
            &new_uri("demo"),
            json!({"codeInputType": "inlinebase64", "code": "cHJpbnQoMSk="}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        h.fake.last_call().0,
        ExecutionInput::Python {
            code: "print(1)".into()
        }
    );
    h.post_json(
        &new_uri("demo"),
        json!({"codeInputType": "InlineBase64", "code": "***"}),
    )
    .await
    .assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn exceptions_are_200_failure_with_the_traceback_in_stderr() {
    let h = Harness::new();
    let mut failed = python_ok("before\n", None);
    failed.status = ExecutionStatus::Error;
    failed.error = Some(ExecutionError {
        ename: "ZeroDivisionError".into(),
        evalue: "division by zero".into(),
        traceback: vec![
            "Traceback (most recent call last):".into(),
            "ZeroDivisionError: division by zero".into(),
        ],
    });
    h.fake.set_next_python(failed.clone());
    let r = h
        .post_json(&old_uri("demo"), json!({"properties": {"code": "1/0"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let p = &r.json()["properties"];
    assert_eq!(p["status"], "Failure");
    assert_eq!(p["result"], "");
    assert!(p["stderr"]
        .as_str()
        .unwrap()
        .contains("ZeroDivisionError: division by zero"));

    h.fake.set_next_python(failed);
    let r = h.post_json(&new_uri("demo"), json!({"code": "1/0"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "Failed");
    assert!(r.json()["result"]["stderr"]
        .as_str()
        .unwrap()
        .contains("Traceback"));
    assert_eq!(r.json()["error"]["error"]["code"], "ExecutionFailed");
}

#[tokio::test]
async fn timeouts_are_failures_that_say_whether_state_was_lost() {
    let h = Harness::new();
    let mut timed_out = python_ok("", None);
    timed_out.status = ExecutionStatus::Timeout;
    timed_out.state_lost = true;
    h.fake.set_next_python(timed_out);
    let r = h
        .post_json(
            &old_uri("demo"),
            json!({"properties": {"code": "while True: pass"}}),
        )
        .await;
    let p = &r.json()["properties"];
    assert_eq!(p["status"], "Failure");
    assert!(p["stderr"].as_str().unwrap().contains("timed out"));
    assert!(p["stderr"].as_str().unwrap().contains("lost"));
}

#[tokio::test]
async fn images_are_returned_as_image_objects() {
    let h = Harness::new();
    let mut r = python_ok("", None);
    r.displays = vec![[("image/png".to_string(), "iVBORw0KGgo=".to_string())]
        .into_iter()
        .collect()];
    h.fake.set_next_python(r);
    let reply = h
        .post_json(&old_uri("demo"), json!({"properties": {"code": "plt.show()"}}))
        .await;
    let result = &reply.json()["properties"]["result"];
    assert_eq!(
        result,
        &json!({"type": "image", "format": "png", "base64_data": "iVBORw0KGgo="})
    );
}

#[tokio::test]
async fn shell_pools_run_shell_commands_in_both_contracts() {
    let h = Harness::new();
    let r = h
        .post_json(&new_uri("sh"), json!({"shellCommand": "echo hello"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["status"], "0");
    assert_eq!(v["exitCode"], 0);
    assert_eq!(v["identifier"], ID);
    assert_eq!(v["result"]["stdout"], "echo hello\n");
    assert_eq!(
        h.fake.last_call().0,
        ExecutionInput::Shell {
            command: "echo hello".into()
        }
    );

    let r = h
        .post_json(
            &new_uri("sh"),
            json!({"shellCommand": "exit 3", "codeInputType": "Inline", "executionType": "Synchronous"}),
        )
        .await;
    assert_eq!(r.json()["status"], "3");

    let r = h
        .post_json(&old_uri("sh"), json!({"properties": {"shellCommand": "exit 2"}}))
        .await;
    assert_eq!(r.json()["properties"]["status"], "Failure");
    assert_eq!(r.json()["properties"]["exitCode"], 2);
    let r = h
        .post_json(&old_uri("sh"), json!({"properties": {"code": "true"}}))
        .await;
    assert_eq!(r.json()["properties"]["status"], "Success");

    h.post_json(&new_uri("demo"), json!({"shellCommand": "ls"}))
        .await
        .assert_error(400, "InvalidRequest");
    h.post_json(&new_uri("sh"), json!({}))
        .await
        .assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn synchronous_executions_return_200_with_the_operation_id() {
    let h = Harness::new();
    let request = Harness::request(Method::POST, &new_uri("demo"), Some(EXEC_KEY))
        .header("operation-id", "my-op-1")
        .body(Body::from(json!({"code": "print(7*9)"}).to_string()))
        .unwrap();
    let r = h.send(request).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("operation-id"), "my-op-1");
    let v = r.json();
    assert_eq!(v["id"], "my-op-1");
    assert_eq!(v["status"], "Succeeded");
    assert_eq!(v["executionType"], "Synchronous");
    assert_eq!(v["result"]["stdout"], "ran print(7*9)");
    assert_eq!(v["result"]["executionResult"], "");

    let bad = Harness::request(Method::POST, &new_uri("demo"), Some(EXEC_KEY))
        .header("operation-id", "no spaces please")
        .body(Body::from(json!({"code": "1"}).to_string()))
        .unwrap();
    h.send(bad).await.assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn asynchronous_executions_return_202_and_can_be_polled() {
    let h = Harness::new();
    let r = h
        .post_json(
            &new_uri("demo"),
            json!({"code": "1+1", "executionType": "asynchronous"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()["status"], "Running");
    let id = r.header("operation-id").to_owned();
    let location = r.header("operation-location").to_owned();
    assert!(
        location.starts_with(&format!("/pools/demo/executions/{id}?")),
        "{location}"
    );
    let polled = h.get(&location).await;
    assert_eq!(polled.status, StatusCode::OK);
    assert_eq!(polled.json()["status"], "Succeeded");
    assert_eq!(polled.json()["id"], id.as_str());

    h.get(&format!(
        "/pools/demo/executions/unknown-id?{NEW}&identifier={ID}"
    ))
    .await
    .assert_error(404, "ExecutionNotFound");
    h.post_json(
        &old_uri("demo"),
        json!({"properties": {"code": "1", "executionType": "Asynchronous"}}),
    )
    .await
    .assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let h = Harness::new();
    let request = Harness::request(Method::POST, &old_uri("demo"), Some(EXEC_KEY))
        .body(Body::from("{not json"))
        .unwrap();
    h.send(request).await.assert_error(400, "InvalidRequest");
    h.post_json(
        &old_uri("demo"),
        json!({"properties": {"code": "1", "executionType": "eventually"}}),
    )
    .await
    .assert_error(400, "InvalidRequest");
    h.post_json(&old_uri("demo"), json!({"properties": {"code": 5}}))
        .await
        .assert_error(400, "InvalidRequest");
    h.post_json(&old_uri("demo"), json!([1]))
        .await
        .assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn engine_errors_map_to_azure_statuses() {
    let h = Harness::new();
    h.post_json(&old_uri("nope"), json!({"properties": {"code": "1"}}))
        .await
        .assert_error(404, "PoolNotFound");
    h.fake.fail_next(EngineError::AtCapacity {
        pool: "demo".into(),
        max: 2,
        retry_after: std::time::Duration::from_millis(2500),
    });
    let r = h
        .post_json(&old_uri("demo"), json!({"properties": {"code": "1"}}))
        .await;
    r.assert_error(404, "SessionPoolAtCapacity");
    assert_eq!(
        r.header("retry-after"),
        "3",
        "retry_after is rounded up to whole seconds"
    );
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("capacity"));
    h.fake.fail_next(EngineError::AllocationTimeout {
        pool: "demo".into(),
        waited: Duration::from_secs(30),
    });
    let r = h.post_json(&new_uri("demo"), json!({"code": "1"})).await;
    r.assert_error(503, "AllocationTimeout");
    assert!(r.headers.contains_key("retry-after"));
    h.fake.fail_next(EngineError::SessionLost("out of memory".into()));
    let r = h.post_json(&new_uri("demo"), json!({"code": "1"})).await;
    r.assert_error(500, "SessionLost");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("out of memory"));
    h.fake.fail_next(EngineError::Internal("db is on fire".into()));
    let r = h.post_json(&new_uri("demo"), json!({"code": "1"})).await;
    r.assert_error(500, "InternalError");
    assert!(!r.text().contains("on fire"));
}
