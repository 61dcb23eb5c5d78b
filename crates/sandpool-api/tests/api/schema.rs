//! Checks responses against the checked-in OpenAPI document: finds the operation a
//! request matched, its declared response for the status, and validates the body with
//! `jsonschema` (OpenAPI 3.1 schemas are JSON Schema 2020-12).

use jsonschema::Draft;
use serde_json::{json, Value};
use std::sync::OnceLock;

pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(sandpool_api::OPENAPI_JSON).expect("openapi.json is not JSON"))
}

/// Does `template` (e.g. `/pools/{pool}/files/{filename}/content`) match `segments`?
/// A `{filename}` may span several segments (sub-paths); other parameters span one.
/// Returns the number of literal segments matched, to prefer the most specific.
fn match_template(template: &[&str], segments: &[&str]) -> Option<usize> {
    match (template.first(), segments.first()) {
        (None, None) => Some(0),
        (None, _) | (_, None) => None,
        (Some(t), Some(_)) if t.starts_with('{') => {
            let max_span = if *t == "{filename}" { segments.len() } else { 1 };
            (1..=max_span).find_map(|span| match_template(&template[1..], &segments[span..]))
        }
        (Some(t), Some(s)) => {
            (t == s).then(|| match_template(&template[1..], &segments[1..]).map(|n| n + 1))?
        }
    }
}

/// The OpenAPI path template a request path matches (most literal segments wins).
pub fn template_for(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let paths = document()["paths"].as_object().unwrap();
    paths
        .keys()
        .filter_map(|t| {
            let tsegs: Vec<&str> = t.split('/').skip(1).collect();
            match_template(&tsegs, &segments).map(|score| (score, t))
        })
        .max_by_key(|(score, _)| *score)
        .map(|(_, t)| t.clone())
        .unwrap_or_else(|| panic!("no OpenAPI path matches {path}"))
}

/// Compiles `schema`, resolving `#/components/...` in the document.
fn compile(schema: &Value, what: &str) -> jsonschema::Validator {
    let mut root = schema.clone();
    if let Value::Object(map) = &mut root {
        map.insert("components".into(), document()["components"].clone());
    } else {
        root = json!({ "allOf": [schema], "components": document()["components"] });
    }
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("bad schema for {what}: {e}"))
}

/// Validates `instance` against `schema`.
pub fn validate(schema: &Value, instance: &Value, what: &str) {
    let validator = compile(schema, what);
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: response does not match openapi.json: {errors:?}\nbody: {instance}"
    );
}

/// Validates a response to `method path` against the matched operation.
pub fn check_response(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    let template = template_for(path);
    let operation = &document()["paths"][&template][method.to_ascii_lowercase()];
    if !operation.is_object() {
        // e.g. 405 for a method the path does not have: still an Azure-shaped error.
        assert!(status >= 400, "{method} {template} is not in openapi.json");
        let value: Value = serde_json::from_slice(body).expect("error body is not JSON");
        return validate(
            &json!({"$ref": "#/components/schemas/ErrorResponse"}),
            &value,
            &template,
        );
    }
    let responses = &operation["responses"];
    let declared = &responses[status.to_string()];
    let response = if declared.is_object() {
        declared
    } else {
        assert!(
            status >= 400,
            "{method} {template}: success status {status} is not declared"
        );
        &responses["default"]
    };
    let what = format!("{method} {template} -> {status}");
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        assert!(body.is_empty(), "{what}: declared without content but has a body");
        return;
    };
    let mime = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let (declared_mime, media) = content
        .get_key_value(&mime)
        .or_else(|| content.get_key_value("*/*"))
        .unwrap_or_else(|| panic!("{what}: content type {mime:?} not declared"));
    let schema = &media["schema"];
    match declared_mime.as_str() {
        "application/json" => {
            let value: Value =
                serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: body is not JSON: {e}"));
            validate(schema, &value, &what);
        }
        "text/plain" => validate(
            schema,
            &Value::String(String::from_utf8(body.to_vec()).unwrap()),
            &what,
        ),
        _ => {} // file contents, any type
    }
}

#[test]
fn the_document_is_valid_openapi_shaped_json_with_resolvable_schemas() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        compile(&json!({"$ref": format!("#/components/schemas/{name}")}), name);
    }
    // The validator really rejects: an error body missing its message.
    let error_schema = json!({"$ref": "#/components/schemas/ErrorResponse"});
    assert!(!compile(&error_schema, "probe").is_valid(&json!({"error": {"code": "X"}})));
}

#[test]
fn templates_match_sub_paths_and_prefer_literals() {
    assert_eq!(
        template_for("/pools/p/files/content/a/b.txt"),
        "/pools/{pool}/files/content/{filename}"
    );
    assert_eq!(
        template_for("/pools/p/files/a/b.txt/content"),
        "/pools/{pool}/files/{filename}/content"
    );
    assert_eq!(
        template_for("/pools/p/files/upload"),
        "/pools/{pool}/files/upload"
    );
    assert_eq!(
        template_for("/pools/p/files/x.txt"),
        "/pools/{pool}/files/{filename}"
    );
}
