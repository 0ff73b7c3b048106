//! Tokens: HS256 JWTs signed with the server secret (`jti` names the token row, so scopes
//! and restrictions are looked up live), endpoint tokens for tile access, scopes,
//! `assetIds` and `allowedUrls` checks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub const SCOPES: &[&str] = &[
    "assets:list",
    "assets:limited-list",
    "assets:read",
    "assets:write",
    "geocode",
    "profile:read",
    "tokens:read",
    "tokens:write",
    "archives:read",
    "archives:write",
    "exports:read",
    "exports:write",
];

/// Who is asking.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// Auth disabled: the single local account with every scope.
    Local,
    /// An API token.
    Token {
        id: String,
        scopes: Vec<String>,
        asset_ids: Option<Vec<i64>>,
        allowed_urls: Option<Vec<String>>,
    },
}

impl Principal {
    pub fn has(&self, scope: &str) -> bool {
        match self {
            Principal::Local => true,
            Principal::Token { scopes, .. } => scopes.iter().any(|s| s == scope),
        }
    }

    pub fn scopes(&self) -> Vec<String> {
        match self {
            Principal::Local => SCOPES.iter().map(|s| s.to_string()).collect(),
            Principal::Token { scopes, .. } => scopes.clone(),
        }
    }

    /// Whether the token may see asset `id` at all.
    pub fn sees(&self, id: i64) -> bool {
        match self {
            Principal::Token {
                asset_ids: Some(ids),
                ..
            } => ids.contains(&id),
            _ => true,
        }
    }

    pub fn token_id(&self) -> Option<&str> {
        match self {
            Principal::Local => None,
            Principal::Token { id, .. } => Some(id),
        }
    }
}

fn sign(secret: &[u8], data: &str) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(data.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// A signed HS256 JWT carrying `claims`.
pub fn jwt(secret: &[u8], claims: &Value) -> String {
    let head = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = B64.encode(claims.to_string());
    let data = format!("{head}.{body}");
    let sig = sign(secret, &data);
    format!("{data}.{sig}")
}

/// The claims of a JWT whose signature checks out.
pub fn verify(secret: &[u8], token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (h, b, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let expected = sign(secret, &format!("{h}.{b}"));
    // Constant-time comparison of the signatures.
    if expected.len() != s.len()
        || expected
            .bytes()
            .zip(s.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            != 0
    {
        return None;
    }
    let header: Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
    if header["alg"] != "HS256" {
        return None;
    }
    serde_json::from_slice(&B64.decode(b).ok()?).ok()
}

/// Claims of an API token.
pub fn api_claims(id: &str, iat: i64) -> Value {
    json!({"jti": id, "id": 1, "iat": iat})
}

/// Claims of an endpoint token for one asset.
pub fn endpoint_claims(asset_id: i64, type_: &str, src: &str, iat: i64, ttl_s: i64) -> Value {
    let mut assets = serde_json::Map::new();
    assets.insert(asset_id.to_string(), json!({"type": type_}));
    json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "id": 1,
        "assetId": asset_id,
        "assets": assets,
        "src": src,
        "iat": iat,
        "exp": iat + ttl_s,
    })
}

/// Scheme + host (lower-case, default port dropped) + path of a URL, for prefix checks.
pub fn normalize_url(u: &str) -> Option<String> {
    let (scheme, rest) = u.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut host = authority.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    if !default.is_empty() && host.ends_with(default) {
        host.truncate(host.len() - default.len());
    }
    Some(format!("{scheme}://{host}{path}"))
}

/// Whether a request with these Referer/Origin headers may use a token restricted to
/// `allowed`.
pub fn url_allowed(allowed: &[String], referer: Option<&str>, origin: Option<&str>) -> bool {
    let from = referer
        .map(str::to_string)
        .or_else(|| origin.map(|o| format!("{}/", o.trim_end_matches('/'))));
    let Some(from) = from.and_then(|f| normalize_url(&f)) else {
        return false;
    };
    allowed
        .iter()
        .filter_map(|a| normalize_url(a))
        .any(|a| from.starts_with(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_round_trip_and_tamper() {
        let s = b"secret";
        let t = jwt(s, &api_claims("abc", 5));
        assert_eq!(verify(s, &t).unwrap()["jti"], "abc");
        assert!(verify(b"other", &t).is_none());
        let mut bad = t.clone();
        bad.pop();
        assert!(verify(s, &bad).is_none());
        assert!(verify(s, "a.b").is_none());
    }

    #[test]
    fn allowed_urls_compare_normalised_prefixes() {
        let allowed = vec!["http://localhost:5173".to_string()];
        assert!(url_allowed(&allowed, None, Some("http://localhost:5173")));
        assert!(url_allowed(
            &allowed,
            Some("http://LOCALHOST:5173/app/x.html"),
            None
        ));
        assert!(!url_allowed(&allowed, None, None));
        assert!(!url_allowed(&allowed, None, Some("http://localhost:5174")));
        let a = vec!["https://example.com/app/".to_string()];
        assert!(url_allowed(
            &a,
            Some("https://example.com:443/app/index.html"),
            None
        ));
        assert!(!url_allowed(&a, Some("https://example.com/other"), None));
    }
}
