//! The CRS a LAS/LAZ header declares: the WKT VLR wins over GeoTIFF keys.

use las::Header;
use tessera_model::CrsSpec;

/// Codes 1024..=32766 are EPSG codes; 0 means omitted, 32767 user-defined.
fn epsg_code(v: Option<u16>) -> Option<u32> {
    v.filter(|c| (1024..=32766).contains(c)).map(u32::from)
}

/// `Ok(Some((crs, "WKT VLR" | "GeoTIFF keys")))`, `Ok(None)` when the file declares
/// nothing usable, `Err` when the CRS records are damaged.
pub fn declared_crs(header: &Header) -> Result<Option<(CrsSpec, &'static str)>, String> {
    if let Some(bytes) = header.get_wkt_crs_bytes() {
        let text = String::from_utf8_lossy(bytes);
        if let Ok(spec) = CrsSpec::parse(&text) {
            return Ok(Some((spec, "WKT VLR")));
        }
    }
    let keys = match header.get_geotiff_crs() {
        Ok(Some(k)) => k,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("damaged GeoTIFF key VLR: {e}")),
    };
    let horizontal = epsg_code(keys.get_projected_crs_geo_key_value())
        .or_else(|| epsg_code(keys.get_geodetic_crs_geo_key_value()));
    let vertical = epsg_code(keys.get_vertical_crs_geo_key_value());
    Ok(match (horizontal, vertical) {
        (Some(h), Some(v)) => Some((CrsSpec::epsg_compound(h, v), "GeoTIFF keys")),
        (Some(h), None) => Some((CrsSpec::epsg(h), "GeoTIFF keys")),
        _ => None,
    })
}
