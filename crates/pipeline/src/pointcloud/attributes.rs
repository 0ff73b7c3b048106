//! Which per-point attributes a job keeps: the standard LAS fields, the GPS time and the
//! extra-bytes dimensions of every input, all by default or as `--attributes` lists.

use crate::error::{InputError, PipelineError};
use crate::las::{Column, LasSource};
use crate::report::Warnings;
use tessera_model::{ExtraDimension, PointAttributes, ScalarKind};

/// Most extra values (GPS time and extra-bytes dimensions) one job carries per point.
pub const MAX_EXTRAS: usize = 16;

/// The attributes every tile of the job is written with.
#[derive(Debug, Clone, PartialEq)]
pub struct PointSchema {
    pub standard: PointAttributes,
    pub extras: Vec<ExtraDimension>,
    /// Per input, where each of `extras` comes from.
    pub columns: Vec<Vec<Column>>,
}

impl PointSchema {
    /// The extra column that holds the GPS times, where they are kept.
    pub fn gps_time_column(&self) -> Option<usize> {
        (0..self.extras.len()).find(|&k| {
            self.columns
                .iter()
                .any(|c| matches!(c.get(k), Some(Column::GpsTime)))
        })
    }
}

const STANDARD_IDS: [&str; 5] = [
    "intensity",
    "classification",
    "return_number",
    "number_of_returns",
    "gps_time",
];

/// Letters, digits and `_`, not starting with a digit (metadata property ids).
fn identifier(name: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    id = id.trim_matches('_').to_string();
    if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
        id.insert(0, '_');
    }
    id
}

/// A candidate extra column: its name and the first input's description of it.
struct Candidate {
    name: String,
    gps: bool,
    dim: ExtraDimension,
}

fn candidates(sources: &[LasSource]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    if sources.iter().any(|s| s.gps_time) {
        out.push(Candidate {
            name: "gps_time".into(),
            gps: true,
            dim: ExtraDimension {
                name: "gps_time".into(),
                id: "gps_time".into(),
                kind: ScalarKind::F64,
                scaled: false,
                no_data: None,
                description: "GPS time of the pulse (seconds)".into(),
            },
        });
    }
    for s in sources {
        for f in &s.extra.fields {
            let dim = ExtraDimension {
                name: f.name.clone(),
                id: String::new(),
                kind: f.kind,
                scaled: f.transform.is_some(),
                no_data: f.no_data,
                description: f.description.clone(),
            };
            match out.iter_mut().find(|c| !c.gps && c.name == f.name) {
                // Inputs disagreeing on a dimension's type keep its values as floats.
                Some(c) if c.dim.kind != dim.kind || c.dim.scaled != dim.scaled => {
                    c.dim.kind = ScalarKind::F64;
                    c.dim.scaled = true;
                }
                Some(_) => {}
                None => out.push(Candidate {
                    name: f.name.clone(),
                    gps: false,
                    dim,
                }),
            }
        }
    }
    out
}

fn matches(asked: &str, name: &str) -> bool {
    asked.eq_ignore_ascii_case(name) || asked.eq_ignore_ascii_case(&identifier(name))
}

/// Decide the job's attributes from `asked` (`None`: everything the inputs have).
pub fn choose(
    asked: Option<&[String]>,
    sources: &[LasSource],
    warnings: &Warnings,
) -> Result<PointSchema, PipelineError> {
    let present = sources
        .iter()
        .fold(PointAttributes::default(), |a, s| a.union(s.attributes));
    let all = candidates(sources);
    let (standard, picked): (PointAttributes, Vec<usize>) = match asked {
        None => {
            let keep: Vec<usize> = (0..all.len().min(MAX_EXTRAS)).collect();
            if all.len() > MAX_EXTRAS {
                let dropped: Vec<&str> =
                    all[MAX_EXTRAS..].iter().map(|c| c.name.as_str()).collect();
                warnings.push(
                    "attributes-dropped",
                    format!(
                        "the inputs have {} extra per-point values; the first {MAX_EXTRAS} are kept and {} are not: choose which with --attributes",
                        all.len(),
                        dropped.join(", ")
                    ),
                );
            }
            (present, keep)
        }
        Some(list) => {
            let mut std = PointAttributes::default();
            let mut keep = Vec::new();
            for a in list.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
                let lower = a.to_ascii_lowercase();
                match lower.as_str() {
                    "all" => {
                        std = present;
                        keep = (0..all.len()).collect();
                        continue;
                    }
                    "none" => continue,
                    // Standard fields the inputs lack are simply not written.
                    "rgb" | "color" | "colour" => {
                        std.rgb = present.rgb;
                        std.rgb16 = present.rgb16;
                        continue;
                    }
                    "gps_time" | "gpstime" if !all.iter().any(|c| c.gps) => continue,
                    "intensity" => {
                        std.intensity = present.intensity;
                        continue;
                    }
                    "classification" => {
                        std.classification = present.classification;
                        continue;
                    }
                    "returns" | "return_number" | "number_of_returns" => {
                        std.returns = present.returns;
                        continue;
                    }
                    _ => {}
                }
                match all.iter().position(|c| matches(a, &c.name)) {
                    Some(i) if !keep.contains(&i) => keep.push(i),
                    _ if lower == "gpstime" && all.first().is_some_and(|c| c.gps) => {
                        if !keep.contains(&0) {
                            keep.push(0);
                        }
                    }
                    Some(_) => {}
                    None => {
                        let mut known: Vec<String> = Vec::new();
                        if present.rgb {
                            known.push("rgb".into());
                        }
                        known.extend(["intensity", "classification", "returns"].map(String::from));
                        known.extend(all.iter().map(|c| c.name.clone()));
                        return Err(InputError::Attributes {
                            reason: format!(
                                "the inputs have no attribute '{a}'; they have {} (or all, none)",
                                known.join(", ")
                            ),
                        }
                        .into());
                    }
                }
            }
            if keep.len() > MAX_EXTRAS {
                return Err(InputError::Attributes {
                    reason: format!(
                        "{} extra per-point values asked for; at most {MAX_EXTRAS} can be kept in one conversion: list fewer",
                        keep.len()
                    ),
                }
                .into());
            }
            keep.sort_unstable();
            (std, keep)
        }
    };
    let mut taken: Vec<String> = STANDARD_IDS.iter().map(|s| s.to_string()).collect();
    let mut extras = Vec::with_capacity(picked.len());
    for &i in &picked {
        let mut dim = all[i].dim.clone();
        if !all[i].gps {
            let base = identifier(&dim.name);
            let mut id = base.clone();
            let mut k = 2;
            while taken.iter().any(|t| t.eq_ignore_ascii_case(&id)) {
                id = format!("{base}_{k}");
                k += 1;
            }
            taken.push(id.clone());
            dim.id = id;
        }
        extras.push(dim);
    }
    let columns = sources
        .iter()
        .map(|s| {
            extras
                .iter()
                .zip(&picked)
                .map(|(dim, &i)| {
                    if all[i].gps {
                        if s.gps_time {
                            return Column::GpsTime;
                        }
                    } else if let Some(k) = s.extra.fields.iter().position(|f| f.name == dim.name) {
                        return Column::Extra(k);
                    }
                    let fill = dim.no_data.unwrap_or(0.0);
                    warnings.push(
                        "attribute-missing",
                        format!(
                            "{}: has no {}; its points get {fill}",
                            s.path.display(),
                            dim.name
                        ),
                    );
                    Column::Fill(fill)
                })
                .collect()
        })
        .collect();
    Ok(PointSchema {
        standard,
        extras,
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_valid_property_ids() {
        assert_eq!(identifier("Deviation"), "Deviation");
        assert_eq!(identifier("normal[2]"), "normal_2");
        assert_eq!(identifier("3d score"), "_3d_score");
        assert_eq!(identifier("***"), "_");
    }

    #[test]
    fn the_gps_column_is_found_in_any_input() {
        let dim = |name: &str| ExtraDimension {
            name: name.into(),
            id: name.into(),
            kind: ScalarKind::F64,
            scaled: false,
            no_data: None,
            description: String::new(),
        };
        let mut schema = PointSchema {
            standard: PointAttributes::default(),
            extras: vec![dim("Deviation"), dim("gps_time")],
            columns: vec![
                vec![Column::Extra(0), Column::Fill(0.0)],
                vec![Column::Fill(0.0), Column::GpsTime],
            ],
        };
        assert_eq!(schema.gps_time_column(), Some(1));
        schema.columns.pop();
        assert_eq!(schema.gps_time_column(), None);
    }
}
