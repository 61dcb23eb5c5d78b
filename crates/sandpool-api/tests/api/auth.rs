//! Keys, roles, request ids, api-version and identifier validation at the boundary.

use super::*;
use axum::routing::get;
use sandpool_api::{guard, Access};

#[tokio::test]
async fn healthz_needs_no_key() {
    let h = Harness::new();
    let r = h
        .send(
            Harness::request(Method::GET, "/healthz", None)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "ok");
}

#[tokio::test]
async fn missing_or_unknown_keys_get_401_with_a_challenge() {
    let h = Harness::new();
    let uri = format!("/pools/demo/files?identifier={ID}&{OLD}");
    for key in [None, Some("wrong-key")] {
        let r = h
            .send(
                Harness::request(Method::GET, &uri, key)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        r.assert_error(401, "Unauthorized");
        assert_eq!(r.header("www-authenticate"), "Bearer");
    }
    let r = h
        .send(
            Request::get(&uri)
                .header("authorization", "Basic abc")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_error(401, "Unauthorized");
    let r = h
        .send(
            Request::get(&uri)
                .header("AUTHORIZATION", format!("bearer {EXEC_KEY}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_keys_may_not_use_the_data_plane() {
    let h = Harness::new();
    let uri = format!("/pools/demo/files?identifier={ID}&{NEW}");
    let r = h
        .send(
            Harness::request(Method::GET, &uri, Some(METRICS_KEY))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_error(403, "Forbidden");
    let r = h
        .send(
            Harness::request(Method::GET, &uri, Some(ADMIN_KEY))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn openapi_json_needs_any_valid_key() {
    let h = Harness::new();
    let r = h
        .send(
            Harness::request(Method::GET, "/openapi.json", None)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_error(401, "Unauthorized");
    let r = h
        .send(
            Harness::request(Method::GET, "/openapi.json", Some(METRICS_KEY))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.json(), schema::document());
}

#[tokio::test]
async fn admin_only_routes_refuse_executor_keys() {
    let admin = guard(
        Router::new().route("/admin/ping", get(|| async { "pong" })),
        Arc::new(authenticator()),
        Access::Role(Role::Admin),
    );
    let error_schema = serde_json::json!({"$ref": "#/components/schemas/ErrorResponse"});
    for (key, status) in [
        (EXEC_KEY, 403),
        (METRICS_KEY, 403),
        ("nope", 401),
        (ADMIN_KEY, 200),
    ] {
        let request = Harness::request(Method::GET, "/admin/ping", Some(key))
            .body(Body::empty())
            .unwrap();
        let response = admin.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "key {key}");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        if status != 200 {
            schema::validate(
                &error_schema,
                &serde_json::from_slice(&body).unwrap(),
                "admin route",
            );
        } else {
            assert_eq!(&body[..], b"pong");
        }
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let h = Harness::new();
    let r = h
        .send(
            Request::get("/healthz")
                .header("x-request-id", "client-id-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.header("x-request-id"), "client-id-1");
    let a = h.get("/healthz").await;
    let b = h.get("/healthz").await;
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
    let r = h
        .send(
            Request::get("/healthz")
                .header("x-request-id", "bad id\t")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_ne!(r.header("x-request-id"), "bad id\t");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_azure_errors() {
    let h = Harness::new();
    h.get("/nowhere").await.assert_error(404, "NotFound");
    let r = h
        .get(&format!("/pools/demo/code/execute?identifier={ID}&{OLD}"))
        .await;
    r.assert_error(405, "MethodNotAllowed");
}

#[tokio::test]
async fn api_version_is_required_and_must_be_a_date() {
    let h = Harness::new();
    h.get(&format!("/pools/demo/files?identifier={ID}"))
        .await
        .assert_error(400, "MissingApiVersion");
    h.get(&format!("/pools/demo/files?identifier={ID}&api-version="))
        .await
        .assert_error(400, "MissingApiVersion");
    h.get(&format!("/pools/demo/files?identifier={ID}&api-version=latest"))
        .await
        .assert_error(400, "InvalidApiVersion");
    let r = h
        .get(&format!(
            "/pools/demo/files?identifier={ID}&api-version=2030-01-01-preview"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["value"].is_array());
}

#[tokio::test]
async fn bad_identifiers_are_refused_on_every_session_route() {
    let h = Harness::new();
    let long = "x".repeat(129);
    let bad = [
        "identifier=abc".to_owned(),
        format!("identifier={long}"),
        "identifier=ab%20cd".to_owned(),
        "identifier=abcd%5C".to_owned(),
        "identifier=abc%C3%A9".to_owned(),
        "identifier=".to_owned(),
        "other=1".to_owned(),
    ];
    for q in &bad {
        h.post_json(
            &format!("/pools/demo/code/execute?{q}&{OLD}"),
            serde_json::json!({"properties": {"code": "1"}}),
        )
        .await
        .assert_error(400, "InvalidIdentifier");
        h.post_json(
            &format!("/pools/demo/executions?{NEW}&{q}"),
            serde_json::json!({"code": "1"}),
        )
        .await
        .assert_error(400, "InvalidIdentifier");
        h.get(&format!("/pools/demo/files?{q}&{OLD}"))
            .await
            .assert_error(400, "InvalidIdentifier");
        h.get(&format!("/pools/demo/files/a.txt/content?{q}&{NEW}"))
            .await
            .assert_error(400, "InvalidIdentifier");
        h.get(&format!("/pools/demo/session?{q}&{NEW}"))
            .await
            .assert_error(400, "InvalidIdentifier");
        h.delete(&format!("/pools/demo/session?{q}&{NEW}"))
            .await
            .assert_error(400, "InvalidIdentifier");
        h.upload(&format!("/pools/demo/files/upload?{q}&{OLD}"), "a.txt", b"abc")
            .await
            .assert_error(400, "InvalidIdentifier");
    }
}

#[tokio::test]
async fn identifiers_work_encoded_raw_and_in_any_position() {
    let h = Harness::new();
    for (query, expected) in [
        (format!("{OLD}&identifier=a%7Cb%26c%5Ed"), "a|b&c^d"),
        (format!("identifier=a|b-c(d)$&{OLD}"), "a|b-c(d)$"),
        (format!("identifier=user+1@x.io&{OLD}"), "user+1@x.io"),
    ] {
        let r = h
            .post_json(
                &format!("/pools/demo/code/execute?{query}"),
                serde_json::json!({"properties": {"code": "1"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
        let r = h
            .get(&format!(
                "/pools/demo/session?{NEW}&identifier={}",
                encode(expected)
            ))
            .await;
        assert_eq!(r.json()["identifier"], expected);
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
