//! The streaming CityGML reader over every CityGML sample: city objects by class as
//! SOURCES.md counts them, polygons with finite coordinates, srsName as declared.

use crate::helpers::samples;
use std::collections::BTreeMap;
use tessera_pipeline::citygml::{crs_from_srs_name, read_city_objects, triangulate};

/// (file under citygml/, expected objects per class, srsName).
type Case<'a> = (&'a str, &'a [(&'a str, usize)], &'a str);

#[test]
fn every_citygml_sample_reads_with_its_object_counts() {
    let Some(s) = samples() else { return };
    let g = s.join("citygml");
    let cases: &[Case] = &[
        (
            "fzk-haus-citygml1/FZK-House-LoD1-KIT-IAI-KHH-V2.gml",
            &[("Building", 1)],
            "urn:adv:crs:ETRS89_UTM32",
        ),
        (
            "fzk-haus-citygml1/FZK-House-LoD2-KIT-IAI-KHH-V2.gml",
            &[("Building", 1)],
            "urn:adv:crs:ETRS89_UTM32",
        ),
        (
            "fzk-haus-citygml1/FZK-House-LoD3-KIT-IAI-KHH-V2.gml",
            &[("Building", 1)],
            "urn:adv:crs:ETRS89_UTM32",
        ),
        (
            "fzk-haus-citygml3/FZK-Haus-LoD2-KIT-IAI-KHH-B36-V1__v3.gml",
            &[("Building", 1)],
            "urn:adv:crs:ETRS89_UTM32*DE_DHHN92_NH",
        ),
        (
            "fzk-haus-citygml3/FZK-Haus-LoD3-KIT-IAI-KHH-B36-V1__v3.gml",
            &[("Building", 1)],
            "urn:adv:crs:ETRS89_UTM32*DE_DHHN92_NH",
        ),
        (
            "plateau-meiji-gallery/53394517_bldg_6697_2_op_CityGML2.gml",
            &[("Building", 1)],
            "http://www.opengis.net/def/crs/EPSG/0/6697",
        ),
        (
            "plateau-meiji-gallery/53394517_bldg_6697_2_op_CityGML3.gml",
            &[("Building", 1)],
            "http://www.opengis.net/def/crs/EPSG/0/6697",
        ),
        (
            "plateau-yokosuka/udx/bldg/52397519_bldg_6697_op.gml",
            &[("Building", 13), ("BuildingPart", 2)],
            "http://www.opengis.net/def/crs/EPSG/0/6697",
        ),
        (
            "plateau-tokyo-53395404_bldg_6697_op.gml",
            &[("Building", 657)],
            "http://www.opengis.net/def/crs/EPSG/0/6697",
        ),
        (
            "berlin-3890_5819-lod2-citygml1.gml",
            &[("Building", 40)],
            "EPSG:25833",
        ),
        (
            "delft-lod1-citygml2.xml",
            &[("Building", 3)],
            "urn:ogc:def:crs:EPSG::7415",
        ),
    ];
    for (file, counts, srs) in cases {
        let path = g.join(file);
        let f = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        let mut by_class: BTreeMap<String, usize> = BTreeMap::new();
        let mut polygons = 0;
        let mut triangles = 0;
        let mut flat = 0;
        let mut ec = earcut::Earcut::new();
        let stats = read_city_objects(f, |o| {
            *by_class.entry(o.class.clone()).or_default() += 1;
            for p in &o.polygons {
                assert!(p.exterior.len() >= 3);
                assert!(p
                    .exterior
                    .iter()
                    .chain(p.interiors.iter().flatten())
                    .all(|c| c.iter().all(|v| v.is_finite())));
            }
            polygons += o.polygons.len();
            for p in &o.polygons {
                match triangulate(p, &mut ec) {
                    Some(t) => triangles += t.indices.len() / 3,
                    None => flat += 1,
                }
            }
        })
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let expected: BTreeMap<String, usize> =
            counts.iter().map(|(c, n)| (c.to_string(), *n)).collect();
        let main: BTreeMap<String, usize> = by_class
            .iter()
            .filter(|(c, _)| expected.contains_key(*c))
            .map(|(c, n)| (c.clone(), *n))
            .collect();
        assert_eq!(main, expected, "{file}: all classes {by_class:?}");
        assert!(polygons > 0, "{file}: no polygons");
        assert_eq!(stats.srs_name.as_deref(), Some(*srs), "{file}");
        let crs = crs_from_srs_name(srs).unwrap();
        tessera_proj::crs_info(crs.definition())
            .unwrap_or_else(|e| panic!("{file}: {srs} → {}: {e}", crs.definition()));
        assert!(triangles >= polygons - flat, "{file}");
        assert!(
            flat * 100 <= polygons,
            "{file}: {flat} of {polygons} polygons have no area"
        );
    }
    // The Lyon house declares no CRS at all.
    let f = std::io::BufReader::new(
        std::fs::File::open(g.join("lyon/LYON_2EME_BATI_2015_small_house.gml")).unwrap(),
    );
    let stats = read_city_objects(f, |_| {}).unwrap();
    assert_eq!(stats.srs_name, None);
    assert_eq!(stats.objects, 2);
}

/// City objects become meshes where PROJ puts them: every vertex of the chosen LoD
/// within 1 cm of PROJ's own transform of the source coordinates (axis order included),
/// one feature per city object.
#[test]
fn city_meshes_land_where_proj_puts_the_source() {
    let Some(s) = samples() else { return };
    use tessera_pipeline::citygml::city_meshes;
    let cases = [
        // (file, source axis order is latitude first, objects)
        ("plateau-tokyo-53395404_bldg_6697_op.gml", true, 657),
        (
            "plateau-yokosuka/udx/bldg/52397519_bldg_6697_op.gml",
            true,
            15,
        ),
        (
            "fzk-haus-citygml1/FZK-House-LoD2-KIT-IAI-KHH-V2.gml",
            false,
            1,
        ),
        ("delft-lod1-citygml2.xml", false, 3),
    ];
    for (file, lat_first, count) in cases {
        let path = s.join("citygml").join(file);
        let mut objects = Vec::new();
        let stats = read_city_objects(
            std::io::BufReader::new(std::fs::File::open(&path).unwrap()),
            |o| objects.push(o),
        )
        .unwrap();
        let srs = stats.srs_name.clone().unwrap();
        let crs = crs_from_srs_name(&srs).unwrap();
        let first = objects
            .iter()
            .find(|o| !o.polygons.is_empty())
            .unwrap()
            .clone();
        let top = first.polygons.iter().filter_map(|p| p.lod).max();
        let mut src: Vec<[f64; 3]> = first
            .polygons
            .iter()
            .filter(|p| p.lod.is_none() || p.lod == top)
            .flat_map(|p| {
                p.exterior
                    .iter()
                    .chain(p.interiors.iter().flatten())
                    .copied()
            })
            .map(|p| if lat_first { [p[1], p[0], p[2]] } else { p })
            .collect();
        if lat_first {
            assert!(
                (120.0..150.0).contains(&src[0][0]) && (30.0..40.0).contains(&src[0][1]),
                "{file}: {:?}",
                src[0]
            );
        }
        let warnings = tessera_pipeline::Warnings::default();
        let city = city_meshes(&path, objects, &crs, &srs, None, None, &warnings).unwrap();
        assert_eq!(city.features.len(), count, "{file}");
        tessera_proj::Transformer::new(crs.definition(), "EPSG:4978")
            .unwrap()
            .transform(&mut src)
            .unwrap();
        let fid = city
            .features
            .iter()
            .position(|f| f.gml_id == first.gml_id)
            .unwrap() as f32;
        let mesh = city
            .meshes
            .iter()
            .find(|m| m.columns[0].values[0] == fid)
            .unwrap();
        let ecef: Vec<[f64; 3]> = mesh
            .positions
            .iter()
            .map(|p| city.frame.to_ecef(*p))
            .collect();
        for e in &src {
            let d = ecef
                .iter()
                .map(|p| {
                    ((p[0] - e[0]).powi(2) + (p[1] - e[1]).powi(2) + (p[2] - e[2]).powi(2)).sqrt()
                })
                .fold(f64::MAX, f64::min);
            assert!(d < 0.01, "{file}: a vertex is {d} m from PROJ's position");
        }
        assert!(mesh.is_consistent());
    }
}
