//! Request parameters read at the boundary: the raw query string (identifiers may come
//! percent-encoded or raw, in any position), `api-version` and its contract, and
//! paths under `/mnt/data`.

use crate::error::ApiError;
use axum::http::request::Parts;
use percent_encoding::percent_decode_str;
use sandpool_pool::{Identifier, IdentifierError};

/// The two wire contracts, chosen by `api-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `2024-08-02-preview` and earlier: `{"properties": …}` envelopes.
    Properties,
    /// Later versions (including unknown later ones): executions, files and sessions.
    Resources,
}

/// Newest version of the `properties` contract.
const LAST_PROPERTIES_VERSION: &str = "2024-08-02";

/// The decoded query string.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn from_parts(parts: &Parts) -> Self {
        Self::parse(parts.uri.query().unwrap_or(""))
    }

    /// Splits on `&` and `=`, percent-decoding each side. `+` stays `+` (clients send
    /// identifiers unencoded, and `+` is a legal identifier character).
    pub fn parse(raw: &str) -> Self {
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key` (keys are case-sensitive, as Azure documents them).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn identifier(&self) -> Result<Identifier, ApiError> {
        let raw = self.get("identifier").ok_or(IdentifierError::Missing)?;
        Ok(Identifier::parse(raw)?)
    }

    pub fn contract(&self) -> Result<Contract, ApiError> {
        let version = self
            .get("api-version")
            .filter(|v| !v.is_empty())
            .ok_or(ApiError::MissingApiVersion)?;
        contract_of(version)
    }

    /// A boolean flag such as `recursive=true`.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" || v.is_empty() => Ok(false),
            Some(v) => Err(ApiError::InvalidRequest(format!(
                "{key} must be true or false, got {v:?}"
            ))),
        }
    }
}

/// Percent-decodes; falls back to the raw text when the result is not UTF-8.
pub fn decode(raw: &str) -> String {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .unwrap_or_else(|_| raw.to_owned())
}

/// Picks the contract for an `api-version` value.
pub fn contract_of(version: &str) -> Result<Contract, ApiError> {
    let invalid = || ApiError::InvalidApiVersion(version.to_owned());
    let date = version.get(..10).ok_or_else(invalid)?;
    let suffix = &version[10..];
    let well_formed = date.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        _ => b.is_ascii_digit(),
    });
    if !well_formed || !(suffix.is_empty() || suffix.starts_with('-')) {
        return Err(invalid());
    }
    Ok(if date <= LAST_PROPERTIES_VERSION {
        Contract::Properties
    } else {
        Contract::Resources
    })
}

/// Turns a client path into one relative to `/mnt/data`: strips a leading
/// `/mnt/data/` (or `/`), and refuses `..`, NUL and absolute paths elsewhere.
pub fn data_path(raw: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::InvalidPath(raw.to_owned());
    let rest = if raw == "/mnt/data" {
        ""
    } else if let Some(rest) = raw.strip_prefix("/mnt/data/") {
        rest
    } else if raw.starts_with('/') {
        return Err(invalid());
    } else {
        raw
    };
    if rest.contains('\0') || rest.contains('\\') {
        return Err(invalid());
    }
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        return Err(invalid());
    }
    Ok(parts.join("/"))
}

/// `dir` and `name` joined, both relative to `/mnt/data`.
pub fn join(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_owned(),
        (_, true) => dir.to_owned(),
        _ => format!("{dir}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_pick_the_contract() {
        assert_eq!(contract_of("2024-02-02-preview").unwrap(), Contract::Properties);
        assert_eq!(contract_of("2024-08-02-preview").unwrap(), Contract::Properties);
        assert_eq!(contract_of("2024-10-02-preview").unwrap(), Contract::Resources);
        assert_eq!(contract_of("2025-10-02-preview").unwrap(), Contract::Resources);
        assert_eq!(contract_of("2031-01-01").unwrap(), Contract::Resources);
        assert!(contract_of("latest").is_err());
        assert!(contract_of("2024-02-02preview").is_err());
        assert!(contract_of("2024/02/02").is_err());
    }

    #[test]
    fn identifiers_are_found_encoded_or_raw_anywhere() {
        let q = Query::parse("api-version=2024-02-02-preview&identifier=a%7Cb%20c");
        assert!(q.identifier().is_err()); // decoded space is refused
        let q = Query::parse("identifier=a%7Cb-c&api-version=x");
        assert_eq!(q.identifier().unwrap().as_str(), "a|b-c");
        let q = Query::parse("x=1&identifier=a|b+c{d}");
        assert_eq!(q.identifier().unwrap().as_str(), "a|b+c{d}");
        assert!(Query::parse("api-version=1").identifier().is_err());
    }

    #[test]
    fn data_paths_stay_inside_mnt_data() {
        assert_eq!(data_path("/mnt/data/a.txt").unwrap(), "a.txt");
        assert_eq!(data_path("/mnt/data").unwrap(), "");
        assert_eq!(data_path("sub//b.txt").unwrap(), "sub/b.txt");
        assert_eq!(data_path("./a").unwrap(), "a");
        assert!(data_path("../etc/passwd").is_err());
        assert!(data_path("/etc/passwd").is_err());
        assert!(data_path("a/../../b").is_err());
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("d", "a"), "d/a");
    }
}
