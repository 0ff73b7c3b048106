//! srsName strings as CityGML files write them, turned into CRSs PROJ knows, and the
//! axis order their coordinates are in.

use tessera_model::CrsSpec;
use tessera_proj::{CrsInfo, CrsKind};

/// AdV (German surveying) CRS names: horizontal EPSG codes.
const ADV_HORIZONTAL: &[(&str, u32)] = &[
    ("ETRS89_UTM32", 25832),
    ("ETRS89_UTM33", 25833),
    ("DE_DHDN_3GK2", 31466),
    ("DE_DHDN_3GK3", 31467),
    ("DE_DHDN_3GK4", 31468),
    ("DE_DHDN_3GK5", 31469),
];

/// AdV height systems: vertical EPSG codes.
const ADV_VERTICAL: &[(&str, u32)] = &[("DE_DHHN92_NH", 5783), ("DE_DHHN2016_NH", 7837)];

fn code(s: &str) -> Option<u32> {
    s.trim().parse().ok()
}

/// The CRS an srsName names; the error quotes what could not be understood.
pub fn crs_from_srs_name(name: &str) -> Result<CrsSpec, String> {
    let n = name.trim();
    let lower = n.to_ascii_lowercase();
    let unknown = || format!("unknown srsName \"{n}\"");
    // urn:adv:crs:ETRS89_UTM32*DE_DHHN92_NH
    if let Some(rest) = lower.strip_prefix("urn:adv:crs:") {
        let orig = &n[n.len() - rest.len()..];
        let (h, v) = match orig.split_once('*') {
            Some((h, v)) => (h, Some(v)),
            None => (orig, None),
        };
        let h = ADV_HORIZONTAL
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(h))
            .map(|(_, c)| *c)
            .ok_or_else(unknown)?;
        return match v {
            None => Ok(CrsSpec::epsg(h)),
            Some(v) => {
                let v = ADV_VERTICAL
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(v))
                    .map(|(_, c)| *c)
                    .ok_or_else(unknown)?;
                Ok(CrsSpec::epsg_compound(h, v))
            }
        };
    }
    // urn:ogc:def:crs,crs:EPSG::h,crs:EPSG::v (compound URN)
    if lower.starts_with("urn:ogc:def:crs,") {
        let codes: Vec<u32> = lower
            .split(',')
            .skip(1)
            .map(|part| part.rsplit(':').next().and_then(code).ok_or_else(unknown))
            .collect::<Result<_, _>>()?;
        return match codes.as_slice() {
            [h, v] => Ok(CrsSpec::epsg_compound(*h, *v)),
            [h] => Ok(CrsSpec::epsg(*h)),
            _ => Err(unknown()),
        };
    }
    // urn:ogc:def:crs:EPSG::n, urn:ogc:def:crs:EPSG:6.3:n
    if let Some(rest) = lower.strip_prefix("urn:ogc:def:crs:epsg:") {
        return rest
            .rsplit(':')
            .next()
            .and_then(code)
            .map(CrsSpec::epsg)
            .ok_or_else(unknown);
    }
    // http(s)://www.opengis.net/def/crs/EPSG/0/n
    if let Some(i) = lower.find("opengis.net/def/crs/epsg/") {
        return lower[i..]
            .rsplit('/')
            .next()
            .and_then(code)
            .map(CrsSpec::epsg)
            .ok_or_else(unknown);
    }
    // EPSG:n, EPSG:h+v
    if lower.starts_with("epsg:") {
        return CrsSpec::parse(n).map_err(|_| unknown());
    }
    Err(unknown())
}

/// Whether the CRS's horizontal axes are angles (a geographic CRS, or a compound one
/// built on one).
pub fn is_geographic(info: &CrsInfo) -> bool {
    match info.kind {
        CrsKind::Geographic2D | CrsKind::Geographic3D => true,
        // horizontal_unit_m is the factor to radians for angular units.
        CrsKind::Compound => info.horizontal_unit_m < 0.1,
        _ => false,
    }
}

/// Whether coordinates under this srsName come latitude first. URN and URI names follow
/// the EPSG axis order (latitude first for geographic CRSs); a bare `EPSG:n` is taken
/// the same way unless the first coordinate of `sample` cannot be a latitude.
pub fn latitude_first(name: &str, info: &CrsInfo, sample: Option<[f64; 3]>) -> bool {
    if !is_geographic(info) {
        return false;
    }
    let authority = {
        let l = name.trim().to_ascii_lowercase();
        l.starts_with("urn:") || l.starts_with("http")
    };
    match sample {
        Some(s) if !authority => s[0].abs() <= 90.0,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_srs_name_form_in_the_samples() {
        let cases = [
            ("urn:adv:crs:ETRS89_UTM32", "EPSG:25832"),
            ("urn:adv:crs:ETRS89_UTM32*DE_DHHN92_NH", "EPSG:25832+5783"),
            ("urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH", "EPSG:25832+7837"),
            ("http://www.opengis.net/def/crs/EPSG/0/6697", "EPSG:6697"),
            ("urn:ogc:def:crs:EPSG::7415", "EPSG:7415"),
            ("urn:ogc:def:crs:EPSG:6.12:25833", "EPSG:25833"),
            (
                "urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783",
                "EPSG:25832+5783",
            ),
            ("EPSG:25833", "EPSG:25833"),
        ];
        for (name, want) in cases {
            assert_eq!(
                crs_from_srs_name(name).unwrap().definition(),
                want,
                "{name}"
            );
        }
        for bad in [
            "urn:adv:crs:MARS_UTM1",
            "local",
            "urn:ogc:def:crs:EPSG::abc",
        ] {
            let e = crs_from_srs_name(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn latitude_first_for_geographic_authority_names() {
        let jgd = tessera_proj::crs_info("EPSG:6697").unwrap();
        assert!(is_geographic(&jgd));
        assert!(latitude_first(
            "http://www.opengis.net/def/crs/EPSG/0/6697",
            &jgd,
            Some([35.0, 139.0, 0.0])
        ));
        assert!(!latitude_first("EPSG:6697", &jgd, Some([139.0, 35.0, 0.0])));
        let utm = tessera_proj::crs_info("EPSG:25832").unwrap();
        assert!(!latitude_first("urn:adv:crs:ETRS89_UTM32", &utm, None));
    }
}
