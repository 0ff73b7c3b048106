//! LAS extra-bytes dimensions: the Extra Bytes records (LASF_Spec / 4, in VLRs or EVLRs,
//! one or several, their descriptors taken in order) that say what the bytes after the
//! standard fields of each point mean.

use las::Header;
use tessera_model::ScalarKind;

/// Size of one descriptor in an Extra Bytes record.
const DESCRIPTOR_BYTES: usize = 192;

/// One scalar field inside each point's extra bytes (arrays are split into one field
/// per element, named `name[0]`, `name[1]`…).
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraField {
    pub name: String,
    pub description: String,
    /// Offset of the field from the start of the extra bytes.
    pub at: usize,
    pub kind: ScalarKind,
    /// `physical = raw * scale + offset`; `None` when the record sets neither.
    pub transform: Option<(f64, f64)>,
    /// The raw value that means "no data", as a physical value.
    pub no_data: Option<f64>,
}

impl ExtraField {
    pub fn value(&self, extra: &[u8]) -> f64 {
        let raw = self.kind.decode(&extra[self.at..]);
        match self.transform {
            Some((s, o)) => raw * s + o,
            None => raw,
        }
    }
}

/// What the extra-bytes records describe, and what could not be used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtraLayout {
    pub fields: Vec<ExtraField>,
    /// Problems to report as warnings (bytes left undescribed, unusable descriptors).
    pub problems: Vec<String>,
}

fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim().to_string()
}

fn base_kind(code: u8) -> Option<ScalarKind> {
    Some(match code {
        1 => ScalarKind::U8,
        2 => ScalarKind::I8,
        3 => ScalarKind::U16,
        4 => ScalarKind::I16,
        5 => ScalarKind::U32,
        6 => ScalarKind::I32,
        7 => ScalarKind::U64,
        8 => ScalarKind::I64,
        9 => ScalarKind::F32,
        10 => ScalarKind::F64,
        _ => return None,
    })
}

fn f64_at(b: &[u8], i: usize) -> f64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    f64::from_le_bytes(a)
}

/// An "anytype" no-data value: u64 for unsigned kinds, i64 for signed, f64 for floats.
fn any_value(kind: ScalarKind, b: &[u8], i: usize) -> f64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    match kind {
        ScalarKind::U8 | ScalarKind::U16 | ScalarKind::U32 | ScalarKind::U64 => {
            u64::from_le_bytes(a) as f64
        }
        ScalarKind::I8 | ScalarKind::I16 | ScalarKind::I32 | ScalarKind::I64 => {
            i64::from_le_bytes(a) as f64
        }
        ScalarKind::F32 | ScalarKind::F64 => f64::from_le_bytes(a),
    }
}

/// Read the descriptors of every Extra Bytes record against `extra_bytes` bytes per
/// point.
pub fn extra_layout(header: &Header, extra_bytes: usize) -> ExtraLayout {
    let records = header
        .all_vlrs()
        .filter(|v| v.user_id.trim_end_matches('\0') == "LASF_Spec" && v.record_id == 4);
    let descriptors: Vec<&[u8]> = records
        .flat_map(|v| v.data.chunks_exact(DESCRIPTOR_BYTES))
        .collect();
    describe(&descriptors, extra_bytes)
}

fn describe(descriptors: &[&[u8]], extra_bytes: usize) -> ExtraLayout {
    let mut out = ExtraLayout::default();
    let mut at = 0usize;
    for (i, d) in descriptors.iter().enumerate() {
        let code = d[2];
        let options = d[3];
        let mut name = text(&d[4..36]);
        if name.is_empty() {
            name = format!("extra_{i}");
        }
        let description = text(&d[160..192]);
        let (kind, count) = match code {
            0 => {
                // Undocumented bytes: `options` says how many; they carry no meaning
                // that could be written as a typed property.
                let n = usize::from(options.max(1));
                out.problems.push(format!(
                    "extra-bytes dimension '{name}' is {n} undocumented byte(s) and is not kept"
                ));
                at += n;
                continue;
            }
            1..=10 => (base_kind(code), 1),
            11..=20 => (base_kind(code - 10), 2),
            21..=30 => (base_kind(code - 20), 3),
            _ => (None, 0),
        };
        let Some(kind) = kind else {
            out.problems.push(format!(
                "extra-bytes dimension '{name}' has unknown data type {code}; it and the dimensions after it are not kept"
            ));
            return out;
        };
        if at + kind.bytes() * count > extra_bytes {
            out.problems.push(format!(
                "the Extra Bytes records describe more than the {extra_bytes} extra byte(s) each point has; '{name}' and the dimensions after it are not kept"
            ));
            return out;
        }
        for k in 0..count {
            let scale = (options & 8 != 0).then(|| f64_at(d, 112 + 8 * k));
            let offset = (options & 16 != 0).then(|| f64_at(d, 136 + 8 * k));
            let transform = match (scale, offset) {
                (None, None) => None,
                (s, o) => {
                    let s = s.filter(|s| s.is_finite() && *s != 0.0).unwrap_or(1.0);
                    let o = o.filter(|o| o.is_finite()).unwrap_or(0.0);
                    (s != 1.0 || o != 0.0).then_some((s, o))
                }
            };
            let no_data = (options & 1 != 0).then(|| {
                let raw = any_value(kind, d, 40 + 8 * k);
                transform.map_or(raw, |(s, o)| raw * s + o)
            });
            out.fields.push(ExtraField {
                name: if count == 1 {
                    name.clone()
                } else {
                    format!("{name}[{k}]")
                },
                description: description.clone(),
                at: at + k * kind.bytes(),
                kind,
                transform,
                no_data,
            });
        }
        at += kind.bytes() * count;
    }
    if at < extra_bytes {
        out.problems.push(format!(
            "{} of the {extra_bytes} extra byte(s) of each point have no Extra Bytes description and are not kept",
            extra_bytes - at
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(code: u8, options: u8, name: &str) -> Vec<u8> {
        let mut d = vec![0u8; DESCRIPTOR_BYTES];
        d[2] = code;
        d[3] = options;
        d[4..4 + name.len()].copy_from_slice(name.as_bytes());
        d
    }

    #[test]
    fn several_records_are_read_in_order() {
        let a = descriptor(3, 1, "Deviation");
        let b = descriptor(1, 0, "confidence");
        let got = describe(&[&a, &b], 3);
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        assert_eq!(got.fields.len(), 2);
        assert_eq!(got.fields[0].name, "Deviation");
        assert_eq!((got.fields[0].at, got.fields[0].kind), (0, ScalarKind::U16));
        assert_eq!(got.fields[0].no_data, Some(0.0));
        assert_eq!((got.fields[1].at, got.fields[1].kind), (2, ScalarKind::U8));
        assert_eq!(got.fields[1].value(&[1, 2, 7]), 7.0);
        assert_eq!(got.fields[0].value(&[1, 2, 7]), 513.0);
    }

    #[test]
    fn scale_offset_and_arrays() {
        let mut d = descriptor(24, 8 | 16, "normal");
        for k in 0..3 {
            d[112 + 8 * k..120 + 8 * k].copy_from_slice(&0.5f64.to_le_bytes());
            d[136 + 8 * k..144 + 8 * k].copy_from_slice(&(k as f64).to_le_bytes());
        }
        let got = describe(&[&d], 6);
        assert_eq!(got.fields.len(), 3);
        assert_eq!(got.fields[2].name, "normal[2]");
        assert_eq!(got.fields[2].at, 4);
        let bytes = [0, 0, 0, 0, 0xfe, 0xff];
        assert_eq!(got.fields[2].value(&bytes), -2.0 * 0.5 + 2.0);
    }

    #[test]
    fn bad_descriptors_are_reported_not_fatal() {
        let d = descriptor(10, 0, "big");
        let got = describe(&[&d], 4);
        assert!(got.fields.is_empty());
        assert!(got.problems[0].contains("more than the 4"));
        let u = descriptor(99, 0, "odd");
        let got = describe(&[&u], 4);
        assert!(got.problems[0].contains("unknown data type 99"));
        let got = describe(&[], 2);
        assert!(got.problems[0].contains("no Extra Bytes description"));
        let raw = descriptor(0, 2, "opaque");
        let ok = descriptor(1, 0, "after");
        let got = describe(&[&raw, &ok], 3);
        assert_eq!(got.fields[0].at, 2);
        assert!(got.problems[0].contains("undocumented"));
    }
}
