//! Quadtree tile ids and the two global tiling schemes (web mercator and geographic).
//! Ids count rows from the north in memory; the TMS flip (rows from the south) happens only
//! where paths are built.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Half the circumference of the WGS 84 sphere web mercator uses, in metres.
pub const MERCATOR_HALF_WORLD_M: f64 = 20_037_508.342_789_244;

/// A tile of a [`TilingScheme`]; `y` counts rows from the north.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuadTileId {
    pub level: u8,
    pub x: u32,
    pub y: u32,
}

impl QuadTileId {
    pub fn new(level: u8, x: u32, y: u32) -> QuadTileId {
        QuadTileId { level, x, y }
    }

    /// The four children, in the order north-west, north-east, south-west, south-east.
    pub fn children(&self) -> [QuadTileId; 4] {
        let (l, x, y) = (self.level + 1, self.x * 2, self.y * 2);
        [
            QuadTileId::new(l, x, y),
            QuadTileId::new(l, x + 1, y),
            QuadTileId::new(l, x, y + 1),
            QuadTileId::new(l, x + 1, y + 1),
        ]
    }

    pub fn parent(&self) -> Option<QuadTileId> {
        (self.level > 0).then(|| QuadTileId::new(self.level - 1, self.x / 2, self.y / 2))
    }
}

impl fmt::Display for QuadTileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.level, self.x, self.y)
    }
}

/// A rectangle in a scheme's own CRS units (metres for mercator, degrees for geographic).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl Rect {
    pub fn width(&self) -> f64 {
        self.max_x - self.min_x
    }
    pub fn height(&self) -> f64 {
        self.max_y - self.min_y
    }
    pub fn intersects(&self, o: &Rect) -> bool {
        self.min_x < o.max_x && o.min_x < self.max_x && self.min_y < o.max_y && o.min_y < self.max_y
    }
    /// The smallest rectangle holding both.
    pub fn union(&self, o: &Rect) -> Rect {
        Rect {
            min_x: self.min_x.min(o.min_x),
            min_y: self.min_y.min(o.min_y),
            max_x: self.max_x.max(o.max_x),
            max_y: self.max_y.max(o.max_y),
        }
    }

    pub fn intersection(&self, o: &Rect) -> Option<Rect> {
        self.intersects(o).then(|| Rect {
            min_x: self.min_x.max(o.min_x),
            min_y: self.min_y.max(o.min_y),
            max_x: self.max_x.min(o.max_x),
            max_y: self.max_y.min(o.max_y),
        })
    }
}

/// The global quadtree grids CesiumJS and TMS clients know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TilingScheme {
    /// EPSG:3857, one tile at level 0 (OGC WebMercatorQuad, gdal2tiles `mercator`).
    WebMercatorQuad,
    /// EPSG:4326, two tiles at level 0 (Cesium's geographic scheme, gdal2tiles
    /// `geodetic --tmscompatible`).
    GeographicQuad,
}

impl TilingScheme {
    /// The scheme's CRS as `EPSG:n`.
    pub fn crs_code(&self) -> &'static str {
        match self {
            TilingScheme::WebMercatorQuad => "EPSG:3857",
            TilingScheme::GeographicQuad => "EPSG:4326",
        }
    }

    /// The whole grid in scheme units.
    pub fn extent(&self) -> Rect {
        match self {
            TilingScheme::WebMercatorQuad => Rect {
                min_x: -MERCATOR_HALF_WORLD_M,
                min_y: -MERCATOR_HALF_WORLD_M,
                max_x: MERCATOR_HALF_WORLD_M,
                max_y: MERCATOR_HALF_WORLD_M,
            },
            TilingScheme::GeographicQuad => Rect {
                min_x: -180.0,
                min_y: -90.0,
                max_x: 180.0,
                max_y: 90.0,
            },
        }
    }

    pub fn tiles_x(&self, level: u8) -> u32 {
        match self {
            TilingScheme::WebMercatorQuad => 1 << level,
            TilingScheme::GeographicQuad => 2 << level,
        }
    }

    pub fn tiles_y(&self, level: u8) -> u32 {
        1 << level
    }

    /// Edge of one tile in scheme units at `level` (tiles are square in both schemes).
    pub fn tile_span(&self, level: u8) -> f64 {
        self.extent().height() / f64::from(self.tiles_y(level))
    }

    /// Scheme units per pixel at `level` for tiles of `tile_px` pixels.
    pub fn units_per_pixel(&self, level: u8, tile_px: u32) -> f64 {
        self.tile_span(level) / f64::from(tile_px)
    }

    pub fn tile_rect(&self, id: QuadTileId) -> Rect {
        let e = self.extent();
        let s = self.tile_span(id.level);
        let min_x = e.min_x + f64::from(id.x) * s;
        let max_y = e.max_y - f64::from(id.y) * s;
        Rect {
            min_x,
            min_y: max_y - s,
            max_x: min_x + s,
            max_y,
        }
    }

    /// Row counted from the south, as TMS paths and quantized-mesh want it.
    pub fn tms_y(&self, id: QuadTileId) -> u32 {
        self.tiles_y(id.level) - 1 - id.y
    }

    /// Tiles at `level` touching `r` (an open intersection: tiles that only share an edge
    /// with `r` are left out), clamped to the grid, as (x0, y0, x1, y1) inclusive.
    pub fn tile_range(&self, level: u8, r: &Rect) -> Option<(u32, u32, u32, u32)> {
        let e = self.extent();
        let r = r.intersection(&e)?;
        let s = self.tile_span(level);
        let nx = self.tiles_x(level);
        let ny = self.tiles_y(level);
        let col = |v: f64| ((v - e.min_x) / s).floor();
        let row = |v: f64| ((e.max_y - v) / s).floor();
        let x0 = col(r.min_x).max(0.0) as u32;
        let x1 = ((col(r.max_x)
            - if is_edge(r.max_x - e.min_x, s) {
                1.0
            } else {
                0.0
            })
        .max(0.0) as u32)
            .min(nx - 1);
        let y0 = row(r.max_y).max(0.0) as u32;
        let y1 = ((row(r.min_y)
            - if is_edge(e.max_y - r.min_y, s) {
                1.0
            } else {
                0.0
            })
        .max(0.0) as u32)
            .min(ny - 1);
        (x0 <= x1 && y0 <= y1).then_some((x0, y0, x1, y1))
    }

    /// The finest level whose pixels are still no smaller than `units_per_pixel`, so the
    /// raster is never scaled up (gdal2tiles' rule for its default zooms), capped at
    /// `max_level`.
    pub fn level_for_resolution(&self, units_per_pixel: f64, tile_px: u32, max_level: u8) -> u8 {
        for level in 0..=max_level {
            if units_per_pixel > self.units_per_pixel(level, tile_px) {
                return level.saturating_sub(1);
            }
        }
        max_level
    }
}

/// True when `dist` falls on a multiple of `step` (within rounding).
fn is_edge(dist: f64, step: f64) -> bool {
    let k = (dist / step).round();
    k > 0.0 && (dist - k * step).abs() <= step * 1e-9
}

impl fmt::Display for TilingScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TilingScheme::WebMercatorQuad => "mercator",
            TilingScheme::GeographicQuad => "geodetic",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mercator_level0_is_the_world() {
        let s = TilingScheme::WebMercatorQuad;
        let r = s.tile_rect(QuadTileId::new(0, 0, 0));
        assert_eq!(r, s.extent());
        assert!((s.units_per_pixel(0, 256) - 156_543.033_928).abs() < 1e-3);
    }

    #[test]
    fn geographic_has_two_roots() {
        let s = TilingScheme::GeographicQuad;
        assert_eq!(s.tiles_x(0), 2);
        let east = s.tile_rect(QuadTileId::new(0, 1, 0));
        assert_eq!(
            (east.min_x, east.max_x, east.min_y, east.max_y),
            (0.0, 180.0, -90.0, 90.0)
        );
        assert!((s.units_per_pixel(0, 256) - 0.703_125).abs() < 1e-12);
    }

    #[test]
    fn tms_rows_count_from_the_south() {
        let s = TilingScheme::WebMercatorQuad;
        assert_eq!(s.tms_y(QuadTileId::new(3, 0, 0)), 7);
        assert_eq!(s.tms_y(QuadTileId::new(3, 0, 7)), 0);
    }

    #[test]
    fn tile_range_excludes_tiles_that_only_touch() {
        let s = TilingScheme::GeographicQuad;
        // Exactly the eastern hemisphere at level 0.
        let r = Rect {
            min_x: 0.0,
            min_y: -90.0,
            max_x: 180.0,
            max_y: 90.0,
        };
        assert_eq!(s.tile_range(0, &r), Some((1, 0, 1, 0)));
        // A sliver in the western hemisphere's north-east corner at level 1.
        let r = Rect {
            min_x: -10.0,
            min_y: 10.0,
            max_x: -1.0,
            max_y: 20.0,
        };
        assert_eq!(s.tile_range(1, &r), Some((1, 0, 1, 0)));
        let outside = Rect {
            min_x: 200.0,
            min_y: 0.0,
            max_x: 210.0,
            max_y: 1.0,
        };
        assert_eq!(s.tile_range(1, &outside), None);
    }

    #[test]
    fn children_and_parent_agree() {
        let t = QuadTileId::new(5, 10, 7);
        for c in t.children() {
            assert_eq!(c.parent(), Some(t));
        }
        assert_eq!(QuadTileId::new(0, 0, 0).parent(), None);
    }

    #[test]
    fn level_for_resolution_matches_gdal2tiles() {
        // A 400 m mercator pixel: level 8 (611 m) is the finest not scaling it up.
        assert_eq!(
            TilingScheme::WebMercatorQuad.level_for_resolution(400.0, 256, 24),
            8
        );
    }
}
