//! File routes in both contracts: upload, list, download, metadata, delete, limits.

use super::*;
use sandpool_engine::EngineError;

fn q(version: &str) -> String {
    format!("identifier={ID}&{version}")
}

#[tokio::test]
async fn old_contract_upload_strips_mnt_data_and_lists_properties() {
    let h = Harness::new();
    let r = h
        .upload(
            &format!("/pools/demo/files/upload?{}", q(OLD)),
            "/mnt/data/a.txt",
            b"abc",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let p = &r.json()["value"][0]["properties"];
    assert_eq!(p["filename"], "a.txt");
    assert_eq!(p["size"], 3);
    assert_eq!(h.fake.file("demo", ID, "a.txt").unwrap(), b"abc");

    h.upload(&format!("/pools/demo/files/upload?{}", q(OLD)), "b.csv", b"a,b\n")
        .await;
    let r = h.get(&format!("/pools/demo/files?{}", q(OLD))).await;
    let names: Vec<_> = r.json()["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["properties"]["filename"].clone())
        .collect();
    assert_eq!(names, vec!["a.txt", "b.csv"]);

    h.upload(
        &format!("/pools/demo/files/upload?{}", q(OLD)),
        "/mnt/data/sub/c.txt",
        b"c",
    )
    .await;
    let r = h.get(&format!("/pools/demo/files?{}", q(OLD))).await;
    let names: Vec<_> = r.json()["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["properties"]["filename"].clone())
        .collect();
    assert_eq!(names, vec!["a.txt", "b.csv", "sub/c.txt"]);
    let r = h
        .get(&format!("/pools/demo/files?{}&recursive=false", q(OLD)))
        .await;
    assert_eq!(r.json()["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn old_contract_download_metadata_and_delete() {
    let h = Harness::new();
    h.upload(
        &format!("/pools/demo/files/upload?{}", q(OLD)),
        "/mnt/data/sub/my file.txt",
        b"hello",
    )
    .await;
    for path in ["sub/my%20file.txt", "sub%2Fmy%20file.txt"] {
        let r = h
            .get(&format!("/pools/demo/files/content/{path}?{}", q(OLD)))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(&r.body[..], b"hello");
        assert_eq!(r.header("content-type"), "text/plain");
        assert_eq!(r.header("x-content-type-options"), "nosniff");
    }
    let r = h
        .get(&format!("/pools/demo/files/sub%2Fmy%20file.txt?{}", q(OLD)))
        .await;
    assert_eq!(r.json()["value"][0]["properties"]["size"], 5);
    let r = h
        .delete(&format!("/pools/demo/files/sub%2Fmy%20file.txt?{}", q(OLD)))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["message"], "file deleted successfully");
    h.get(&format!("/pools/demo/files/content/sub/my%20file.txt?{}", q(OLD)))
        .await
        .assert_error(404, "FileNotFound");
}

#[tokio::test]
async fn new_contract_upload_with_path_and_list_resources() {
    let h = Harness::new();
    let r = h
        .upload(
            &format!("/pools/demo/files?{}&path=/mnt/data", q(NEW)),
            "t.yaml",
            b"a: 1",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["name"], "t.yaml");
    assert_eq!(v["sizeInBytes"], 4);
    assert_eq!(v["type"], "File");
    assert_eq!(v["contentType"], "application/yaml");
    h.upload(
        &format!("/pools/demo/files?{}&path=/mnt/data/level1", q(NEW)),
        "x.bin",
        b"1",
    )
    .await;
    assert!(h.fake.file("demo", ID, "level1/x.bin").is_some());

    let r = h.get(&format!("/pools/demo/files?{}", q(NEW))).await;
    let v = r.json();
    assert!(v["nextLink"].is_null());
    let items = v["value"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .any(|i| i["name"] == "level1" && i["type"] == "Directory"));

    let r = h
        .get(&format!(
            "/pools/demo/files?{}&api-version=2025-10-02-preview&recursive=true",
            q(NEW)
        ))
        .await;
    let items = r.json()["value"].as_array().unwrap().clone();
    assert!(items
        .iter()
        .any(|i| i["name"] == "x.bin" && i["directory"] == "level1"));

    let r = h.get(&format!("/pools/demo/files?{}&path=level1", q(NEW))).await;
    assert_eq!(r.json()["value"][0]["name"], "x.bin");
}

#[tokio::test]
async fn new_contract_content_metadata_and_delete() {
    let h = Harness::new();
    h.upload(&format!("/pools/demo/files?{}", q(NEW)), "data.json", b"{}")
        .await;
    let r = h
        .get(&format!("/pools/demo/files/data.json/content?{}", q(NEW)))
        .await;
    assert_eq!(&r.body[..], b"{}");
    assert_eq!(r.header("content-type"), "application/json");
    let r = h.get(&format!("/pools/demo/files/data.json?{}", q(NEW))).await;
    assert_eq!(r.json()["name"], "data.json");
    let r = h.delete(&format!("/pools/demo/files/data.json?{}", q(NEW))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    h.get(&format!("/pools/demo/files/data.json?{}", q(NEW)))
        .await
        .assert_error(404, "FileNotFound");
    h.delete(&format!("/pools/demo/files/data.json?{}", q(NEW)))
        .await
        .assert_error(404, "FileNotFound");
}

#[tokio::test]
async fn paths_cannot_escape_mnt_data() {
    let h = Harness::new();
    h.get(&format!(
        "/pools/demo/files/content/..%2F..%2Fetc%2Fpasswd?{}",
        q(OLD)
    ))
    .await
    .assert_error(400, "InvalidPath");
    h.get(&format!("/pools/demo/files/..%2Fx/content?{}", q(NEW)))
        .await
        .assert_error(400, "InvalidPath");
    h.upload(&format!("/pools/demo/files/upload?{}", q(OLD)), "../x", b"1")
        .await
        .assert_error(400, "InvalidPath");
    h.upload(&format!("/pools/demo/files/upload?{}", q(OLD)), "/etc/x", b"1")
        .await
        .assert_error(400, "InvalidPath");
    h.get(&format!("/pools/demo/files?{}&path=/tmp", q(NEW)))
        .await
        .assert_error(400, "InvalidPath");
}

#[tokio::test]
async fn uploads_over_the_pool_limit_are_413() {
    let h = Harness::new();
    let at_limit = vec![b'x'; fake::MAX_UPLOAD as usize];
    let r = h
        .upload(
            &format!("/pools/demo/files/upload?{}", q(OLD)),
            "ok.bin",
            &at_limit,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let over = vec![b'x'; fake::MAX_UPLOAD as usize + 1];
    h.upload(&format!("/pools/demo/files/upload?{}", q(OLD)), "big.bin", &over)
        .await
        .assert_error(413, "PayloadTooLarge");
    // A large body with no Content-Length is cut off while it is read.
    let (content_type, body) = multipart("huge.bin", &vec![b'x'; 8 << 20]);
    let request = Harness::request(
        Method::POST,
        &format!("/pools/demo/files?{}", q(NEW)),
        Some(EXEC_KEY),
    )
    .header(header::CONTENT_TYPE, &content_type)
    .body(Body::from(body))
    .unwrap();
    h.send(request).await.assert_error(413, "PayloadTooLarge");
    // A declared length over the limit is refused up front.
    let request = Harness::request(
        Method::POST,
        &format!("/pools/demo/files?{}", q(NEW)),
        Some(EXEC_KEY),
    )
    .header(header::CONTENT_TYPE, &content_type)
    .header(header::CONTENT_LENGTH, "999999999")
    .body(Body::empty())
    .unwrap();
    h.send(request).await.assert_error(413, "PayloadTooLarge");
    assert!(h.fake.file("demo", ID, "big.bin").is_none());
    assert!(h.fake.file("demo", ID, "huge.bin").is_none());
}

#[tokio::test]
async fn malformed_uploads_are_400_and_engine_errors_pass_through() {
    let h = Harness::new();
    let request = Harness::request(
        Method::POST,
        &format!("/pools/demo/files/upload?{}", q(OLD)),
        Some(EXEC_KEY),
    )
    .header(header::CONTENT_TYPE, "application/json")
    .body(Body::from("{}"))
    .unwrap();
    h.send(request).await.assert_error(400, "InvalidRequest");
    let body = "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n";
    let request = Harness::request(
        Method::POST,
        &format!("/pools/demo/files/upload?{}", q(OLD)),
        Some(EXEC_KEY),
    )
    .header(header::CONTENT_TYPE, "multipart/form-data; boundary=b")
    .body(Body::from(body))
    .unwrap();
    h.send(request).await.assert_error(400, "InvalidRequest");
    h.fake.fail_next(EngineError::NoSpace);
    h.upload(&format!("/pools/demo/files/upload?{}", q(OLD)), "a.txt", b"1")
        .await
        .assert_error(507, "InsufficientStorage");
}
