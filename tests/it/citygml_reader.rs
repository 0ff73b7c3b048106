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
