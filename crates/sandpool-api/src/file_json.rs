//! JSON shapes of files in both contracts: `{"value":[{"properties":{filename,…}}]}`
//! up to 2024-08-02-preview, `SessionResourceFile` objects afterwards.

use sandpool_engine::FileEntry;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RFC 3339 UTC timestamp with milliseconds, as Azure writes them.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn modified(entry: &FileEntry) -> String {
    let ms = u64::try_from(entry.modified_ms).unwrap_or(0);
    timestamp(UNIX_EPOCH + Duration::from_millis(ms))
}

/// The `value` envelope of the properties contract, with `$id`s numbered as Azure does.
pub fn properties_list<'a>(entries: impl IntoIterator<Item = &'a FileEntry>) -> Value {
    let mut next_id = 2;
    let value: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let item = json!({
                "$id": next_id.to_string(),
                "properties": {
                    "$id": (next_id + 1).to_string(),
                    "filename": e.path,
                    "size": e.size,
                    "lastModifiedTime": modified(e),
                }
            });
            next_id += 2;
            item
        })
        .collect();
    json!({ "$id": "1", "value": value })
}

/// A `SessionResourceFile`.
pub fn resource_file(e: &FileEntry) -> Value {
    let (directory, name) = match e.path.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", e.path.as_str()),
    };
    let mut v = json!({
        "name": name,
        "type": if e.is_dir { "Directory" } else { "File" },
        "sizeInBytes": e.size,
        "lastModifiedAt": modified(e),
        "directory": directory,
    });
    if !e.is_dir {
        v["contentType"] = json!(content_type(name));
    }
    v
}

/// The MIME type a file's name suggests.
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "md" | "py" | "sh" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, is_dir: bool) -> FileEntry {
        FileEntry {
            path: path.into(),
            is_dir,
            size: 4,
            modified_ms: 1_714_634_467_992,
        }
    }

    #[test]
    fn properties_entries_number_their_ids() {
        let v = properties_list(&[entry("a.txt", false), entry("b.csv", false)]);
        assert_eq!(v["value"][1]["$id"], "4");
        assert_eq!(v["value"][1]["properties"]["$id"], "5");
        assert_eq!(v["value"][0]["properties"]["filename"], "a.txt");
        assert_eq!(
            v["value"][0]["properties"]["lastModifiedTime"],
            "2024-05-02T07:21:07.992Z"
        );
    }

    #[test]
    fn resource_files_split_name_and_directory() {
        let v = resource_file(&entry("level1/level2/t.yaml", false));
        assert_eq!(v["name"], "t.yaml");
        assert_eq!(v["directory"], "level1/level2");
        assert_eq!(v["contentType"], "application/yaml");
        let d = resource_file(&entry("sub", true));
        assert_eq!(d["type"], "Directory");
        assert!(d.get("contentType").is_none());
    }
}
