//! ion's JSON shapes. The only file that knows the field names of the HTTP contract
//! (../shared/design/ion-api.md); everything else works with the types here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `{"code", "message"}`, the body of every API error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// A processing error of a failed asset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessingError {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub stage: String,
    pub mitigation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessingWarning {
    pub code: String,
    pub message: String,
    pub count: u64,
}

/// Display-only job progress.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Processing {
    pub stage: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub tiles_written: u64,
}

/// The asset metadata object (list items leave out the extension fields).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    pub id: i64,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    pub description: String,
    pub attribution: String,
    pub bytes: u64,
    pub date_added: String,
    pub status: String,
    pub percent_complete: u8,
    pub archivable: bool,
    pub exportable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing: Option<Option<Processing>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_error: Option<Option<ProcessingError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_warnings: Option<Vec<ProcessingWarning>>,
}

impl Asset {
    /// The list form: the eleven ion fields only.
    pub fn list_item(mut self) -> Asset {
        self.options = None;
        self.processing = None;
        self.processing_error = None;
        self.processing_warnings = None;
        self
    }
}

#[derive(Debug, Serialize)]
pub struct Items<T: Serialize> {
    pub items: Vec<T>,
}

/// `POST /v1/assets` body.
#[derive(Debug, Deserialize)]
pub struct CreateAsset {
    pub name: Option<Value>,
    pub description: Option<Value>,
    pub attribution: Option<Value>,
    #[serde(rename = "type")]
    pub type_: Option<Value>,
    pub options: Option<Value>,
    pub from: Option<Value>,
}

/// `PATCH /v1/assets/{id}` body: absent fields stay, `null` description/attribution → "".
#[derive(Debug, Deserialize, Default)]
pub struct PatchAsset {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub attribution: Option<Value>,
}

/// Keep explicit `null` distinct from absent: absent → None, null → Some(Null).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadLocation {
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub access_key: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: String,
}

#[derive(Debug, Serialize)]
pub struct OnComplete {
    pub method: &'static str,
    pub url: String,
    pub fields: Map<String, Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub asset_metadata: Asset,
    pub upload_location: UploadLocation,
    pub on_complete: OnComplete,
}

#[derive(Debug, Serialize)]
pub struct Attribution {
    pub html: String,
    pub collapsible: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(rename = "type")]
    pub type_: String,
    pub url: String,
    pub access_token: String,
    pub attributions: Vec<Attribution>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppData {
    pub application_mode: &'static str,
    pub data_store_type: &'static str,
    pub attribution: &'static str,
    pub server_name: &'static str,
    pub server_version: &'static str,
    pub extensions: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct Storage {
    pub used: u64,
    pub available: u64,
    pub total: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: i64,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Defaults {
    pub default_assets: Map<String, Value>,
    pub quick_add_assets: Vec<Value>,
}

/// A token as the tokens API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub id: String,
    pub name: String,
    pub token: String,
    pub date_added: String,
    pub date_modified: String,
    pub date_last_used: Option<String>,
    pub scopes: Vec<String>,
    pub asset_ids: Option<Vec<i64>>,
    pub allowed_urls: Option<Vec<String>>,
    pub is_default: bool,
}

/// `POST /v2/tokens` and `PATCH /v2/tokens/{id}` bodies (PATCH: absent = unchanged).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TokenBody {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub scopes: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub asset_ids: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub allowed_urls: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub new_allowed_urls: Option<Value>,
}

/// The file list of the direct upload extension.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_added: Option<String>,
}

/// Field names inside `options` that the server reads.
pub mod option {
    pub const SOURCE_TYPE: &str = "sourceType";
    pub const INPUT_CRS: &str = "inputCrs";
    pub const POSITION: &str = "position";
    pub const WATER_MASK: &str = "waterMask";
    pub const CLAMP_TO_TERRAIN: &str = "clampToTerrain";
    pub const BASE_TERRAIN_ID: &str = "baseTerrainId";
    pub const TILESET_JSON: &str = "tilesetJson";
    pub const GEOMETRY_COMPRESSION: &str = "geometryCompression";
    /// Tessera's own: `AUTO` | `IMPLICIT` | `EXPLICIT` tile tree for point clouds.
    pub const TILING: &str = "tiling";
    /// Tessera's own: per-point attributes to keep, as a list of names (the CLI's
    /// `--attributes`).
    pub const ATTRIBUTES: &str = "attributes";
}

/// `[ext]` analysis: what a job will produce, answered before it runs.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub asset_id: i64,
    pub source_bytes: u64,
    pub source_files: u64,
    pub expected_tiles: u64,
    pub expected_output_bytes: u64,
    pub expected_seconds: f64,
    pub basis: String,
}

/// `[ext]` iTwin-style graphics discovery.
#[derive(Debug, Serialize)]
pub struct Graphics {
    pub graphics: Vec<GraphicsItem>,
}

#[derive(Debug, Serialize)]
pub struct GraphicsItem {
    #[serde(rename = "type")]
    pub type_: String,
    pub uri: String,
    pub authentication: GraphicsAuth,
}

#[derive(Debug, Serialize)]
pub struct GraphicsAuth {
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub key: &'static str,
    pub value: String,
}

/// An archive (export) of an asset.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    pub id: i64,
    pub asset_id: i64,
    pub format: String,
    pub status: String,
    pub bytes_archived: u64,
}

/// `POST /v1/assets/{id}/archives` body.
#[derive(Debug, Deserialize)]
pub struct CreateArchive {
    pub format: Option<Value>,
}

/// `POST /v1/assets/{id}/uploadLocation` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUploadLocation {
    pub upload_location: UploadLocation,
}

/// The geocoder's empty answer.
#[derive(Debug, Serialize)]
pub struct FeatureCollection {
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub features: Vec<Value>,
    pub attributions: Vec<Value>,
}

/// `options.position`: `[lon, lat, h]` or `{longitude, latitude, height}`.
pub fn position(v: &Value) -> Option<[f64; 3]> {
    match v {
        Value::Array(a) if a.len() == 3 => {
            let n: Vec<f64> = a.iter().filter_map(Value::as_f64).collect();
            (n.len() == 3).then(|| [n[0], n[1], n[2]])
        }
        Value::Object(o) => Some([
            o.get("longitude")?.as_f64()?,
            o.get("latitude")?.as_f64()?,
            o.get("height").and_then(Value::as_f64).unwrap_or(0.0),
        ]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_in_both_shapes() {
        assert_eq!(
            position(&serde_json::json!([1.0, 2.0, 3.0])),
            Some([1.0, 2.0, 3.0])
        );
        assert_eq!(
            position(&serde_json::json!({"longitude": 1, "latitude": 2})),
            Some([1.0, 2.0, 0.0])
        );
        assert_eq!(position(&serde_json::json!("x")), None);
    }
}
