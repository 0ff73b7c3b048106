//! The documents beside the tiles: tilemapresource.xml in the shape gdal2tiles writes (what
//! CesiumJS's TileMapServiceImageryProvider reads) and an optional WMTS capabilities file.

use super::encode::ImageFormat;
use tessera_model::{TilingScheme, MERCATOR_HALF_WORLD_M};

pub struct TmsDoc<'a> {
    pub title: &'a str,
    pub scheme: TilingScheme,
    /// West, south, east, north in degrees.
    pub extent_deg: [f64; 4],
    pub min_zoom: u8,
    pub max_zoom: u8,
    pub tile_px: u32,
    pub format: ImageFormat,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Units per pixel at `z` as gdal2tiles prints them (its rounded constants, so tools that
/// compare the two files agree).
fn units_per_pixel(scheme: TilingScheme, z: u8, tile_px: u32) -> f64 {
    let base = match scheme {
        TilingScheme::WebMercatorQuad => 156_543.033_9,
        TilingScheme::GeographicQuad => 0.703_125,
    };
    base * 256.0 / f64::from(tile_px) / f64::from(1u32 << z)
}

pub fn tilemapresource(d: &TmsDoc) -> String {
    let [w, s, e, n] = d.extent_deg;
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    x.push_str("<TileMap version=\"1.0.0\" tilemapservice=\"http://tms.osgeo.org/1.0.0\">\n");
    x.push_str(&format!(
        "  <Title>{}</Title>\n  <Abstract></Abstract>\n",
        xml_escape(d.title)
    ));
    x.push_str(&format!("  <SRS>{}</SRS>\n", d.scheme.crs_code()));
    x.push_str(&format!(
        "  <BoundingBox minx=\"{w:.14}\" miny=\"{s:.14}\" maxx=\"{e:.14}\" maxy=\"{n:.14}\"/>\n"
    ));
    x.push_str(&format!("  <Origin x=\"{w:.14}\" y=\"{s:.14}\"/>\n"));
    let ext = d.format.extension();
    x.push_str(&format!(
        "  <TileFormat width=\"{p}\" height=\"{p}\" mime-type=\"{}\" extension=\"{ext}\"/>\n",
        d.format.mime(),
        p = d.tile_px
    ));
    x.push_str(&format!("  <TileSets profile=\"{}\">\n", d.scheme));
    for z in d.min_zoom..=d.max_zoom {
        x.push_str(&format!(
            "    <TileSet href=\"{z}\" units-per-pixel=\"{:.14}\" order=\"{z}\"/>\n",
            units_per_pixel(d.scheme, z, d.tile_px)
        ));
    }
    x.push_str("  </TileSets>\n</TileMap>\n");
    x
}

/// WMTS 1.0.0 capabilities for an XYZ-ordered pyramid (`{z}/{x}/{y}` rows from the north,
/// which is what WMTS TileRow means).
pub fn wmts_capabilities(d: &TmsDoc) -> String {
    let [w, s, e, n] = d.extent_deg;
    let (set, crs, top_left, span0) = match d.scheme {
        TilingScheme::WebMercatorQuad => (
            "GoogleMapsCompatible",
            "urn:ogc:def:crs:EPSG::3857",
            format!(
                "{:.10} {:.10}",
                -MERCATOR_HALF_WORLD_M, MERCATOR_HALF_WORLD_M
            ),
            2.0 * MERCATOR_HALF_WORLD_M,
        ),
        // EPSG:4326 axis order is latitude first.
        TilingScheme::GeographicQuad => (
            "WorldCRS84Quad2x1",
            "urn:ogc:def:crs:EPSG::4326",
            "90 -180".to_string(),
            180.0,
        ),
    };
    // Scale denominators use the OGC 0.28 mm pixel; degrees convert with the WGS 84
    // equatorial metres per degree.
    let metres_per_unit = match d.scheme {
        TilingScheme::WebMercatorQuad => 1.0,
        TilingScheme::GeographicQuad => 6_378_137.0 * std::f64::consts::PI / 180.0,
    };
    let mut m = String::new();
    for z in 0..=d.max_zoom {
        let upp = span0 / f64::from(1u32 << z) / f64::from(d.tile_px);
        m.push_str(&format!(
            "      <TileMatrix><ows:Identifier>{z}</ows:Identifier><ScaleDenominator>{:.10}</ScaleDenominator>\
<TopLeftCorner>{top_left}</TopLeftCorner><TileWidth>{p}</TileWidth><TileHeight>{p}</TileHeight>\
<MatrixWidth>{}</MatrixWidth><MatrixHeight>{}</MatrixHeight></TileMatrix>\n",
            upp * metres_per_unit / 0.000_28,
            d.scheme.tiles_x(z),
            d.scheme.tiles_y(z),
            p = d.tile_px
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.0.0">
  <ows:ServiceIdentification><ows:Title>{title}</ows:Title><ows:ServiceType>OGC WMTS</ows:ServiceType><ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion></ows:ServiceIdentification>
  <Contents>
    <Layer>
      <ows:Title>{title}</ows:Title>
      <ows:Identifier>{ident}</ows:Identifier>
      <ows:WGS84BoundingBox><ows:LowerCorner>{w:.10} {s:.10}</ows:LowerCorner><ows:UpperCorner>{e:.10} {n:.10}</ows:UpperCorner></ows:WGS84BoundingBox>
      <Style isDefault="true"><ows:Identifier>default</ows:Identifier></Style>
      <Format>{mime}</Format>
      <TileMatrixSetLink><TileMatrixSet>{set}</TileMatrixSet></TileMatrixSetLink>
      <ResourceURL format="{mime}" resourceType="tile" template="{{TileMatrix}}/{{TileCol}}/{{TileRow}}.{ext}"/>
    </Layer>
    <TileMatrixSet>
      <ows:Identifier>{set}</ows:Identifier>
      <ows:SupportedCRS>{crs}</ows:SupportedCRS>
{m}    </TileMatrixSet>
  </Contents>
</Capabilities>
"#,
        title = xml_escape(d.title),
        ident = xml_escape(&d.title.replace(' ', "_")),
        mime = d.format.mime(),
        ext = d.format.extension(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> TmsDoc<'static> {
        TmsDoc {
            title: "RGB & co",
            scheme: TilingScheme::WebMercatorQuad,
            extent_deg: [-78.9, 23.5, -76.5, 25.5],
            min_zoom: 7,
            max_zoom: 8,
            tile_px: 256,
            format: ImageFormat::Png,
        }
    }

    #[test]
    fn tilemapresource_has_gdal2tiles_shape() {
        let x = tilemapresource(&doc());
        assert!(x.contains("<SRS>EPSG:3857</SRS>"));
        assert!(x.contains("<Title>RGB &amp; co</Title>"));
        assert!(
            x.contains(r#"<TileSet href="7" units-per-pixel="1222.99245234375007" order="7"/>"#),
            "{x}"
        );
        assert!(x.contains(r#"<TileSets profile="mercator">"#));
        assert!(x.contains(r#"extension="png""#));
    }

    #[test]
    fn wmts_lists_every_matrix() {
        let x = wmts_capabilities(&doc());
        assert_eq!(x.matches("<TileMatrix>").count(), 9);
        assert!(x.contains("{TileMatrix}/{TileCol}/{TileRow}.png"));
    }
}
