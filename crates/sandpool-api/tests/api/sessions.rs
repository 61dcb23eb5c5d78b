//! Session routes: get, delete, list, metadata and stopSession.

use super::*;
use sandpool_engine::EndReason;
use serde_json::json;

async fn allocate(h: &Harness, id: &str) {
    let r = h
        .post_json(
            &format!("/pools/demo/executions?identifier={id}&{NEW}"),
            json!({"code": "1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn get_session_reports_live_sessions_only() {
    let h = Harness::new();
    h.get(&format!("/pools/demo/session?identifier={ID}&{NEW}"))
        .await
        .assert_error(404, "SessionNotFound");
    allocate(&h, ID).await;
    let r = h.get(&format!("/pools/demo/session?identifier={ID}&{NEW}")).await;
    let v = r.json();
    assert_eq!(v["identifier"], ID);
    assert_eq!(v["createdAt"], "2023-11-14T22:13:20.000Z");
    assert!(v["etag"].as_str().unwrap().starts_with("sandbox-"));
}

#[tokio::test]
async fn delete_session_is_204_even_for_unknown_identifiers() {
    let h = Harness::new();
    allocate(&h, ID).await;
    let uri = format!("/pools/demo/session?identifier={ID}&api-version=2025-10-02-preview");
    let r = h.delete(&uri).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(h.fake.ended(), vec![(ID.to_owned(), EndReason::Deleted)]);
    assert_eq!(h.delete(&uri).await.status, StatusCode::NO_CONTENT);
    h.delete(&format!("/pools/nope/session?identifier={ID}&{NEW}"))
        .await
        .assert_error(404, "PoolNotFound");
}

#[tokio::test]
async fn list_sessions_pages_with_skip() {
    let h = Harness::new();
    for id in ["aaaa", "bbbb", "cccc"] {
        allocate(&h, id).await;
    }
    let r = h.get(&format!("/pools/demo/listSessions?{NEW}")).await;
    assert_eq!(r.json()["sessions"].as_array().unwrap().len(), 3);
    assert!(r.json()["nextLink"].is_null());
    let r = h.get(&format!("/pools/demo/listSessions?{NEW}&skip=2")).await;
    assert_eq!(r.json()["sessions"][0]["identifier"], "cccc");
    h.get(&format!("/pools/demo/listSessions?{NEW}&skip=-1"))
        .await
        .assert_error(400, "InvalidRequest");
    h.get("/pools/demo/listSessions")
        .await
        .assert_error(400, "MissingApiVersion");
}

#[tokio::test]
async fn metadata_lists_runtimes_and_packages() {
    let h = Harness::new();
    let r = h.get(&format!("/pools/demo/metadata?{NEW}")).await;
    let v = r.json();
    assert_eq!(v["runtimes"][0], json!({"name": "python", "version": "3.11.2"}));
    assert_eq!(v["preInstalledPackages"][0]["name"], "numpy");
    h.get(&format!("/pools/nope/metadata?{NEW}"))
        .await
        .assert_error(404, "PoolNotFound");
}

#[tokio::test]
async fn stop_session_answers_in_plain_text() {
    let h = Harness::new();
    allocate(&h, ID).await;
    let uri = format!("/pools/demo/.management/stopSession?api-version=2025-02-02-preview&identifier={ID}");
    let r = h
        .send(
            Harness::request(Method::POST, &uri, Some(EXEC_KEY))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/plain"));
    assert_eq!(r.text(), format!("Session {ID} in session pool demo stopped."));
    assert_eq!(h.fake.ended(), vec![(ID.to_owned(), EndReason::Stopped)]);
    let r = h
        .send(
            Harness::request(Method::POST, &uri, Some(EXEC_KEY))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_error(404, "SessionNotFound");
}
