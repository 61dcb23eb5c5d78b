//! The client commands over the HTTP API: `pool`, `session`, `exec`, `files`, `key`.
//! Human tables by default, `--output json` for scripts; errors go to stderr with an
//! exit code from [`crate::client::exit`].

use crate::client::{exit, CliError, Client};
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Base URL of the sandpool server.
    #[arg(
        long,
        env = "SANDPOOL_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API key (admin for pool, session and key commands).
    #[arg(long, env = "SANDPOOL_API_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub output: Output,
}

/// Pool settings shared by `pool create` and `pool update` (unset ones are left alone).
#[derive(Debug, Args)]
pub struct PoolFlags {
    /// PythonLTS or Shell (create only).
    #[arg(long)]
    pub container_type: Option<String>,
    #[arg(long)]
    pub max_sessions: Option<u32>,
    #[arg(long)]
    pub ready_sessions: Option<u32>,
    /// Seconds of idleness before a session ends.
    #[arg(long)]
    pub cooldown_period: Option<u64>,
    /// Cores per sandbox, e.g. 0.5.
    #[arg(long)]
    pub cpu: Option<f64>,
    /// Memory per sandbox, e.g. 512Mi.
    #[arg(long)]
    pub memory: Option<String>,
    /// Isolation backend: gvisor or runc.
    #[arg(long)]
    pub isolation: Option<String>,
}

impl PoolFlags {
    fn properties(&self) -> Value {
        let mut p = json!({});
        if let Some(t) = &self.container_type {
            p["containerType"] = json!(t);
        }
        let mut scale = json!({});
        if let Some(n) = self.max_sessions {
            scale["maxConcurrentSessions"] = json!(n);
        }
        if let Some(n) = self.ready_sessions {
            scale["readySessionInstances"] = json!(n);
        }
        if scale != json!({}) {
            p["scaleConfiguration"] = scale;
        }
        if let Some(s) = self.cooldown_period {
            p["dynamicPoolConfiguration"] =
                json!({"lifecycleConfiguration": {"lifecycleType": "Timed", "cooldownPeriodInSeconds": s}});
        }
        let mut resources = json!({});
        if let Some(c) = self.cpu {
            resources["cpu"] = json!(c);
        }
        if let Some(m) = &self.memory {
            resources["memory"] = json!(m);
        }
        if resources != json!({}) {
            p["resources"] = resources;
        }
        if let Some(i) = &self.isolation {
            p["isolation"] = json!(i);
        }
        p
    }
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Create a pool (prepared in the background; see `pool show`).
    Create {
        name: String,
        #[command(flatten)]
        flags: PoolFlags,
    },
    /// Change a pool; scale changes apply at once, resource changes roll ready sandboxes.
    Update {
        name: String,
        #[command(flatten)]
        flags: PoolFlags,
    },
    Show {
        name: String,
    },
    List,
    /// Delete a pool; its sessions end with reason pool-deleted.
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Live and ended sessions of a pool, with end reasons.
    List {
        #[arg(long)]
        pool: String,
    },
    /// End a session (reason stopped).
    Stop {
        #[arg(long)]
        pool: String,
        identifier: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    Upload {
        #[arg(long)]
        pool: String,
        #[arg(long)]
        identifier: String,
        file: PathBuf,
        /// Name in /mnt/data (default: the file's name).
        #[arg(long)]
        name: Option<String>,
    },
    List {
        #[arg(long)]
        pool: String,
        #[arg(long)]
        identifier: String,
    },
    Download {
        #[arg(long)]
        pool: String,
        #[arg(long)]
        identifier: String,
        name: String,
        /// Where to write it (default: the file's name; `-` for stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; it is printed once and never shown again.
    Create {
        name: String,
        /// admin, executor or metrics
        #[arg(long, default_value = "executor")]
        role: String,
    },
    List,
    Revoke {
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[arg(long)]
    pub pool: String,
    #[arg(long)]
    pub identifier: String,
    /// Python code (or a shell command on a Shell pool); `-` reads standard input.
    pub code: String,
    /// Directory images in the result are saved to.
    #[arg(long, default_value = ".")]
    pub images_dir: PathBuf,
}

const OLD: &str = "api-version=2024-02-02-preview";

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows as an aligned table under `headers`.
fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn pool_row(p: &Value) -> Vec<String> {
    let pr = &p["properties"];
    vec![
        s(&p["name"]),
        s(&pr["containerType"]),
        s(&pr["provisioningState"]),
        s(&pr["sessionCounts"]["ready"]),
        s(&pr["sessionCounts"]["allocated"]),
        s(&pr["sessionCounts"]["pending"]),
        s(&pr["scaleConfiguration"]["maxConcurrentSessions"]),
        s(&pr["poolManagementEndpoint"]),
    ]
}

const POOL_HEADERS: &[&str] = &[
    "NAME",
    "TYPE",
    "STATE",
    "READY",
    "ALLOCATED",
    "PENDING",
    "MAX",
    "ENDPOINT",
];

fn show_pools(out: Output, v: &Value, list: bool) {
    match out {
        Output::Json => print_json(v),
        Output::Table => {
            let rows = if list {
                v["value"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(pool_row)
                    .collect()
            } else {
                vec![pool_row(v)]
            };
            table(POOL_HEADERS, rows);
            if !list {
                if let Some(e) = v["properties"]["provisioningError"].as_str() {
                    println!("error: {e}");
                }
            }
        }
    }
}

pub fn pool(r: &Remote, cmd: PoolCommand) -> Result<(), CliError> {
    let c = Client::new(&r.url, r.key.clone());
    match cmd {
        PoolCommand::Create { name, flags } => {
            let mut p = flags.properties();
            if p.get("containerType").is_none() {
                p["containerType"] = json!("PythonLTS");
            }
            let v = c.json(
                "PUT",
                &format!("/sessionPools/{}", enc(&name)),
                &json!({"properties": p}),
            )?;
            show_pools(r.output, &v, false);
        }
        PoolCommand::Update { name, flags } => {
            let v = c.json(
                "PATCH",
                &format!("/sessionPools/{}", enc(&name)),
                &json!({"properties": flags.properties()}),
            )?;
            show_pools(r.output, &v, false);
        }
        PoolCommand::Show { name } => {
            let v = c.get(&format!("/sessionPools/{}", enc(&name)))?;
            show_pools(r.output, &v, false);
        }
        PoolCommand::List => show_pools(r.output, &c.get("/sessionPools")?, true),
        PoolCommand::Delete { name } => {
            c.send("DELETE", &format!("/sessionPools/{}", enc(&name)), None, None)?;
            if r.output == Output::Json {
                print_json(&json!({"deleted": name}));
            } else {
                println!("pool {name} deleted");
            }
        }
    }
    Ok(())
}

pub fn session(r: &Remote, cmd: SessionCommand) -> Result<(), CliError> {
    let c = Client::new(&r.url, r.key.clone());
    match cmd {
        SessionCommand::List { pool } => {
            let v = c.get(&format!("/sessionPools/{}/sessions", enc(&pool)))?;
            match r.output {
                Output::Json => print_json(&v),
                Output::Table => table(
                    &[
                        "IDENTIFIER",
                        "STATE",
                        "CREATED",
                        "LAST ACCESS",
                        "EXPIRES/ENDED",
                        "END REASON",
                    ],
                    v["value"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|x| {
                            let until = if x["endedAt"].is_string() {
                                &x["endedAt"]
                            } else {
                                &x["expiresAt"]
                            };
                            vec![
                                s(&x["identifier"]),
                                s(&x["state"]),
                                s(&x["createdAt"]),
                                s(&x["lastAccessedAt"]),
                                s(until),
                                s(&x["endReason"]),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        SessionCommand::Stop { pool, identifier } => {
            let v = c.json(
                "POST",
                &format!("/sessionPools/{}/sessions/{}/stop", enc(&pool), enc(&identifier)),
                &json!({}),
            )?;
            match r.output {
                Output::Json => print_json(&v),
                Output::Table => println!("session {identifier} stopped"),
            }
        }
    }
    Ok(())
}

pub fn exec(r: &Remote, a: ExecArgs) -> Result<(), CliError> {
    let c = Client::new(&r.url, r.key.clone());
    let code = if a.code == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        a.code
    };
    let v = c.json(
        "POST",
        &format!(
            "/pools/{}/code/execute?identifier={}&{OLD}",
            enc(&a.pool),
            enc(&a.identifier)
        ),
        &json!({"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code}}),
    )?;
    let p = &v["properties"];
    let mut saved = Vec::new();
    if p["result"]["type"] == "image" {
        let format = p["result"]["format"].as_str().unwrap_or("png");
        let data = base64::engine::general_purpose::STANDARD
            .decode(p["result"]["base64_data"].as_str().unwrap_or(""))
            .map_err(|e| CliError::new(exit::UNAVAILABLE, format!("the image is not base64: {e}")))?;
        std::fs::create_dir_all(&a.images_dir)?;
        let mut n = 1;
        let path = loop {
            let candidate = a.images_dir.join(format!("image-{n}.{format}"));
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        std::fs::write(&path, data)?;
        saved.push(path.display().to_string());
    }
    match r.output {
        Output::Json => {
            let mut out = p.clone();
            out["savedImages"] = json!(saved);
            print_json(&out);
        }
        Output::Table => {
            print!("{}", p["stdout"].as_str().unwrap_or(""));
            eprint!("{}", p["stderr"].as_str().unwrap_or(""));
            match &p["result"] {
                Value::String(x) if x.is_empty() => {}
                Value::Object(_) => {}
                other => println!("{}", s(other)),
            }
            for path in &saved {
                println!("image saved to {path}");
            }
        }
    }
    if p["status"] != "Success" {
        return Err(CliError::new(exit::EXECUTION_FAILED, "the execution failed"));
    }
    Ok(())
}

pub fn files(r: &Remote, cmd: FilesCommand) -> Result<(), CliError> {
    let c = Client::new(&r.url, r.key.clone());
    match cmd {
        FilesCommand::Upload {
            pool,
            identifier,
            file,
            name,
        } => {
            let data = std::fs::read(&file)
                .map_err(|e| CliError::new(1, format!("reading {}: {e}", file.display())))?;
            let name = name.unwrap_or_else(|| {
                file.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "upload".into())
            });
            let boundary = format!("sandpool{}", hex::encode(rand::random::<[u8; 12]>()));
            let mut body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                name.replace('"', "")
            )
            .into_bytes();
            body.extend_from_slice(&data);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let v = c
                .send(
                    "POST",
                    &format!(
                        "/pools/{}/files/upload?identifier={}&{OLD}",
                        enc(&pool),
                        enc(&identifier)
                    ),
                    Some(&format!("multipart/form-data; boundary={boundary}")),
                    Some(&body),
                )?
                .json()?;
            match r.output {
                Output::Json => print_json(&v),
                Output::Table => println!("uploaded {name} ({} bytes)", data.len()),
            }
        }
        FilesCommand::List { pool, identifier } => {
            let v = c.get(&format!(
                "/pools/{}/files?identifier={}&{OLD}",
                enc(&pool),
                enc(&identifier)
            ))?;
            match r.output {
                Output::Json => print_json(&v),
                Output::Table => table(
                    &["NAME", "SIZE", "MODIFIED"],
                    v["value"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|f| {
                            let p = &f["properties"];
                            vec![s(&p["filename"]), s(&p["size"]), s(&p["lastModifiedTime"])]
                        })
                        .collect(),
                ),
            }
        }
        FilesCommand::Download {
            pool,
            identifier,
            name,
            out,
        } => {
            let path: String = name.split('/').map(enc).collect::<Vec<_>>().join("/");
            let a = c.send(
                "GET",
                &format!(
                    "/pools/{}/files/content/{path}?identifier={}&{OLD}",
                    enc(&pool),
                    enc(&identifier)
                ),
                None,
                None,
            )?;
            let out = out.unwrap_or_else(|| PathBuf::from(name.rsplit('/').next().unwrap_or("download")));
            if out.as_os_str() == "-" {
                use std::io::Write;
                std::io::stdout().write_all(&a.body)?;
            } else {
                std::fs::write(&out, &a.body)?;
                eprintln!("saved {} ({} bytes)", out.display(), a.body.len());
            }
        }
    }
    Ok(())
}

pub fn key(r: &Remote, cmd: KeyCommand) -> Result<(), CliError> {
    let c = Client::new(&r.url, r.key.clone());
    let key_row = |k: &Value| {
        vec![
            s(&k["id"]),
            s(&k["name"]),
            s(&k["role"]),
            s(&k["createdAt"]),
            s(&k["revokedAt"]),
        ]
    };
    let headers = ["ID", "NAME", "ROLE", "CREATED", "REVOKED"];
    match cmd {
        KeyCommand::Create { name, role } => {
            let v = c.json("POST", "/apiKeys", &json!({"name": name, "role": role}))?;
            match r.output {
                Output::Json => print_json(&v),
                Output::Table => {
                    table(&headers, vec![key_row(&v)]);
                    println!("key: {}", s(&v["key"]));
                    eprintln!("store the key now: it is not shown again");
                }
            }
        }
        KeyCommand::List => {
            let v = c.get("/apiKeys")?;
            match r.output {
                Output::Json => print_json(&v),
                Output::Table => table(
                    &headers,
                    v["value"].as_array().into_iter().flatten().map(key_row).collect(),
                ),
            }
        }
        KeyCommand::Revoke { id } => {
            c.send("DELETE", &format!("/apiKeys/{}", enc(&id)), None, None)?;
            match r.output {
                Output::Json => print_json(&json!({"revoked": id})),
                Output::Table => println!("key {id} revoked"),
            }
        }
    }
    Ok(())
}
