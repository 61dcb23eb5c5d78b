//! How execution results become JSON: the Python result value (`result` /
//! `executionResult`), error and timeout text in `stderr`, and the response bodies of
//! both contracts for Python and Shell pools.

use base64::Engine as _;
use sandpool_engine::{
    ExecutionOutput, ExecutionRecord, ExecutionResult, ExecutionState, ExecutionStatus, MimeBundle,
    ShellResult,
};
use serde_json::{json, Value};

/// Image MIME types in order of preference, with the `format` Azure reports.
const IMAGE_TYPES: [(&str, &str); 3] = [
    ("image/png", "png"),
    ("image/jpeg", "jpeg"),
    ("image/svg+xml", "svg"),
];

/// The `result` value of a Python execution: an image object when the result bundle
/// (or else the last display bundle) has an image; otherwise the `text/plain` repr,
/// parsed as JSON when it is valid JSON; `""` when the cell had no value.
pub fn python_result_value(r: &ExecutionResult) -> Value {
    let image = r
        .result
        .as_ref()
        .and_then(image_of)
        .or_else(|| r.displays.iter().rev().find_map(image_of));
    if let Some(image) = image {
        return image;
    }
    match r.result.as_ref().and_then(|b| b.get("text/plain")) {
        Some(text) => serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.clone())),
        None => Value::String(String::new()),
    }
}

fn image_of(bundle: &MimeBundle) -> Option<Value> {
    IMAGE_TYPES.iter().find_map(|(mime, format)| {
        let data = bundle.get(*mime)?;
        // PNG and JPEG are already base64 in Jupyter bundles; SVG is text.
        let base64_data = if *format == "svg" {
            base64::engine::general_purpose::STANDARD.encode(data)
        } else {
            data.split_whitespace().collect::<String>()
        };
        Some(json!({ "type": "image", "format": format, "base64_data": base64_data }))
    })
}

/// The cell's stderr, followed by the traceback of an exception or a timeout notice.
pub fn python_stderr(r: &ExecutionResult) -> String {
    let mut stderr = r.stderr.clone();
    let mut push = |text: &str| {
        if !stderr.is_empty() && !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        stderr.push_str(text);
    };
    if let Some(error) = &r.error {
        if error.traceback.is_empty() {
            push(&format!("{}: {}", error.ename, error.evalue));
        } else {
            push(&error.traceback.join("\n"));
        }
    }
    if r.status == ExecutionStatus::Timeout {
        push(if r.state_lost {
            "Execution timed out and the Python process had to be restarted: \
             all variables and imports from earlier executions are lost."
        } else {
            "Execution timed out and was interrupted; the session's variables are kept."
        });
    }
    stderr
}

fn shell_stderr(s: &ShellResult) -> String {
    let mut stderr = s.stderr.clone();
    if s.timed_out {
        if !stderr.is_empty() && !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        stderr.push_str("Command timed out and was killed.");
    }
    stderr
}

fn azure_status(success: bool) -> &'static str {
    if success {
        "Success"
    } else {
        "Failure"
    }
}

/// The `properties` body of `POST code/execute` (contract up to 2024-08-02-preview).
pub fn properties_body(record: &ExecutionRecord) -> Value {
    let properties = match &record.output {
        Some(ExecutionOutput::Python(r)) => {
            let value = python_result_value(r);
            json!({
                "$id": "2",
                "status": azure_status(r.status == ExecutionStatus::Ok),
                "stdout": r.stdout,
                "stderr": python_stderr(r),
                "result": value,
                "executionResult": value,
                "executionTimeInMilliseconds": r.duration_ms,
            })
        }
        Some(ExecutionOutput::Shell(s)) => json!({
            "$id": "2",
            "status": azure_status(s.exit_code == 0 && !s.timed_out),
            "stdout": s.stdout,
            "stderr": shell_stderr(s),
            "result": "",
            "executionResult": "",
            "exitCode": s.exit_code,
            "executionTimeInMilliseconds": s.duration_ms,
        }),
        None => json!({
            "$id": "2",
            "status": azure_status(record.state == ExecutionState::Succeeded),
            "stdout": "",
            "stderr": record.error.clone().unwrap_or_default(),
            "result": "",
            "executionResult": "",
            "executionTimeInMilliseconds": 0,
        }),
    };
    json!({ "$id": "1", "properties": properties })
}

fn operation_state(state: ExecutionState) -> &'static str {
    match state {
        ExecutionState::Running => "Running",
        ExecutionState::Succeeded => "Succeeded",
        ExecutionState::Failed => "Failed",
    }
}

/// A Python pool's execution resource (2024-10-02-preview and later).
pub fn python_execution_body(record: &ExecutionRecord, execution_type: &str) -> Value {
    let mut body = json!({
        "id": record.id,
        "identifier": record.identifier.as_str(),
        "executionType": execution_type,
        "status": operation_state(record.state),
    });
    match &record.output {
        Some(ExecutionOutput::Python(r)) => {
            let value = python_result_value(r);
            body["status"] = json!(if r.status == ExecutionStatus::Ok {
                "Succeeded"
            } else {
                "Failed"
            });
            body["result"] = json!({
                "stdout": r.stdout,
                "stderr": python_stderr(r),
                "executionResult": value,
                "result": value,
                "executionTimeInMilliseconds": r.duration_ms,
            });
            if let Some(e) = &r.error {
                body["error"] = error_object("ExecutionFailed", &format!("{}: {}", e.ename, e.evalue));
            } else if r.status == ExecutionStatus::Timeout {
                body["error"] = error_object("ExecutionTimedOut", &python_stderr(r));
            }
        }
        Some(ExecutionOutput::Shell(_)) | None => {}
    }
    if let Some(message) = &record.error {
        body["error"] = error_object("ExecutionFailed", message);
    }
    body
}

fn error_object(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

/// A Shell pool's execution (LangChain's `SessionsBashTool` shape: `status` is the exit
/// code as a string once the command has finished).
pub fn shell_execution_body(record: &ExecutionRecord, execution_type: &str) -> Value {
    let mut body = json!({
        "id": record.id,
        "identifier": record.identifier.as_str(),
        "executionType": execution_type,
        "status": operation_state(record.state),
    });
    if let Some(ExecutionOutput::Shell(s)) = &record.output {
        body["status"] = json!(s.exit_code.to_string());
        body["exitCode"] = json!(s.exit_code);
        body["result"] = json!({
            "stdout": s.stdout,
            "stderr": shell_stderr(s),
            "executionTimeInMilliseconds": s.duration_ms,
        });
    }
    if let Some(message) = &record.error {
        body["error"] = error_object("ExecutionFailed", message);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandpool_engine::ExecutionError;

    fn ok(result: Option<&[(&str, &str)]>, displays: &[&[(&str, &str)]]) -> ExecutionResult {
        let bundle = |items: &[(&str, &str)]| -> MimeBundle {
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ExecutionResult {
            status: ExecutionStatus::Ok,
            stdout: String::new(),
            stderr: String::new(),
            result: result.map(bundle),
            displays: displays.iter().map(|d| bundle(d)).collect(),
            error: None,
            duration_ms: 3,
            state_lost: false,
        }
    }

    #[test]
    fn json_reprs_become_json_values() {
        assert_eq!(
            python_result_value(&ok(Some(&[("text/plain", "42")]), &[])),
            json!(42)
        );
        assert_eq!(
            python_result_value(&ok(Some(&[("text/plain", "-1.5")]), &[])),
            json!(-1.5)
        );
        assert_eq!(
            python_result_value(&ok(Some(&[("text/plain", "[1, 2]")]), &[])),
            json!([1, 2])
        );
    }

    #[test]
    fn other_reprs_stay_strings() {
        for repr in [
            "'abc'",
            "True",
            "None",
            "{'a': 1}",
            "['a',\n 'b']",
            "array([1, 2])",
        ] {
            assert_eq!(
                python_result_value(&ok(Some(&[("text/plain", repr)]), &[])),
                json!(repr)
            );
        }
    }

    #[test]
    fn no_value_is_an_empty_string() {
        assert_eq!(python_result_value(&ok(None, &[])), json!(""));
        assert_eq!(
            python_result_value(&ok(Some(&[("text/html", "<b>")]), &[])),
            json!("")
        );
    }

    #[test]
    fn images_win_from_the_result_or_the_last_display() {
        let v = python_result_value(&ok(
            Some(&[("text/plain", "<Figure>"), ("image/png", "iVBO\nRw0K")]),
            &[],
        ));
        assert_eq!(
            v,
            json!({"type": "image", "format": "png", "base64_data": "iVBORw0K"})
        );
        let v = python_result_value(&ok(
            Some(&[("text/plain", "[<Line2D>]")]),
            &[
                &[("image/png", "first")],
                &[("text/plain", "x")],
                &[("image/jpeg", "second")],
            ],
        ));
        assert_eq!(
            v,
            json!({"type": "image", "format": "jpeg", "base64_data": "second"})
        );
        let v = python_result_value(&ok(None, &[&[("image/svg+xml", "<svg/>")]]));
        assert_eq!(v["format"], "svg");
        assert_eq!(v["base64_data"], "PHN2Zy8+");
    }

    #[test]
    fn exceptions_put_the_traceback_in_stderr() {
        let mut r = ok(None, &[]);
        r.status = ExecutionStatus::Error;
        r.stderr = "warning".into();
        r.error = Some(ExecutionError {
            ename: "ZeroDivisionError".into(),
            evalue: "division by zero".into(),
            traceback: vec![
                "Traceback (most recent call last):".into(),
                "ZeroDivisionError: division by zero".into(),
            ],
        });
        let stderr = python_stderr(&r);
        assert!(stderr.starts_with("warning\nTraceback"), "{stderr}");
        assert!(stderr.ends_with("ZeroDivisionError: division by zero"));
    }

    #[test]
    fn timeouts_say_whether_state_was_lost() {
        let mut r = ok(None, &[]);
        r.status = ExecutionStatus::Timeout;
        assert!(python_stderr(&r).contains("variables are kept"));
        r.state_lost = true;
        assert!(python_stderr(&r).contains("lost"));
    }
}
