//! CRS identity: the definition string handed to PROJ, normalised from what users type.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A coordinate reference system as PROJ understands it: `EPSG:n`, WKT (1 or 2),
/// PROJJSON or a PROJ string. Parsing only normalises the spelling; PROJ decides
/// whether the CRS exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CrsSpec {
    definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrsError {
    #[error("empty CRS definition")]
    Empty,
    #[error("`{0}` is not an EPSG code (expected EPSG:<number>)")]
    BadEpsg(String),
}

impl CrsSpec {
    /// Parse what a user or a file header gives: `EPSG:2154`, `epsg:2154+5720`, a bare
    /// `2154`, `urn:ogc:def:crs:EPSG::2154`, WKT, PROJJSON, or `+proj=…`.
    pub fn parse(text: &str) -> Result<CrsSpec, CrsError> {
        let t = text.trim().trim_end_matches('\0').trim();
        if t.is_empty() {
            return Err(CrsError::Empty);
        }
        if t.chars().all(|c| c.is_ascii_digit()) {
            return Ok(CrsSpec::epsg(
                t.parse().map_err(|_| CrsError::BadEpsg(t.into()))?,
            ));
        }
        let lower = t.to_ascii_lowercase();
        if let Some(code) = lower.strip_prefix("epsg:") {
            let ok = !code.is_empty()
                && code
                    .split('+')
                    .all(|c| !c.is_empty() && c.chars().all(|d| d.is_ascii_digit()));
            if !ok {
                return Err(CrsError::BadEpsg(t.into()));
            }
            return Ok(CrsSpec {
                definition: format!("EPSG:{code}"),
            });
        }
        if t.starts_with('+') && !lower.contains("+type=crs") {
            return Ok(CrsSpec {
                definition: format!("{t} +type=crs"),
            });
        }
        Ok(CrsSpec {
            definition: t.to_string(),
        })
    }

    pub fn epsg(code: u32) -> CrsSpec {
        CrsSpec {
            definition: format!("EPSG:{code}"),
        }
    }

    /// A horizontal EPSG CRS combined with a vertical one (`EPSG:h+v`).
    pub fn epsg_compound(horizontal: u32, vertical: u32) -> CrsSpec {
        CrsSpec {
            definition: format!("EPSG:{horizontal}+{vertical}"),
        }
    }

    /// The string to hand to PROJ.
    pub fn definition(&self) -> &str {
        &self.definition
    }

    /// A one-line label for messages: the EPSG code, or the name in a WKT, or a prefix.
    pub fn label(&self) -> String {
        let d = &self.definition;
        if d.starts_with("EPSG:") {
            return d.clone();
        }
        if let Some(start) = d.find('"') {
            if let Some(len) = d[start + 1..].find('"') {
                return d[start + 1..start + 1 + len].to_string();
            }
        }
        d.chars().take(60).collect()
    }
}

impl fmt::Display for CrsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_user_forms() {
        assert_eq!(
            CrsSpec::parse("epsg:28992").unwrap().definition(),
            "EPSG:28992"
        );
        assert_eq!(CrsSpec::parse(" 2154 ").unwrap().definition(), "EPSG:2154");
        assert_eq!(
            CrsSpec::parse("EPSG:28992+5709").unwrap().definition(),
            "EPSG:28992+5709"
        );
        assert!(CrsSpec::parse("EPSG:abc").is_err());
        assert!(CrsSpec::parse("EPSG:").is_err());
        assert!(CrsSpec::parse("  ").is_err());
        assert_eq!(
            CrsSpec::parse("+proj=utm +zone=32 +ellps=GRS80")
                .unwrap()
                .definition(),
            "+proj=utm +zone=32 +ellps=GRS80 +type=crs"
        );
        let wkt = "PROJCS[\"RGF93 / Lambert-93\",GEOGCS[...]]\0";
        let c = CrsSpec::parse(wkt).unwrap();
        assert!(!c.definition().ends_with('\0'));
        assert_eq!(c.label(), "RGF93 / Lambert-93");
    }
}
