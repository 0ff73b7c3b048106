//! CityGML appearances: which image and texture coordinates, or which X3D colour, each
//! surface is drawn with. Appearances may sit anywhere in the document (inside a city
//! object, or as `appearanceMember`s after all objects, as PLATEAU writes them), so they
//! are read in a pass of their own before the geometry.
//!
//! Both encodings are understood: 1.0/2.0 (`app:target uri="#poly"` holding
//! `app:textureCoordinates ring="#ring"`) and 3.0 (`app:TextureAssociation` with a
//! `app:target` text and `app:textureCoordinates` followed by `app:ring`). Only one theme
//! is drawn: the one asked for, else the first that has textures, else the first.

use super::reader::{append_text, entity_char, local_str as local, ReadError, XmlEvents};
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;
use std::io::BufRead;

/// How texture coordinates outside 0..1 are treated (CityGML `wrapMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Wrap {
    Repeat,
    Mirror,
    Clamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextureSpec {
    /// `imageURI` as written (relative to the CityGML file, usually).
    pub image_uri: String,
    pub wrap: Wrap,
}

/// An X3DMaterial as glTF needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Material {
    pub diffuse: [f32; 3],
    /// 1 − transparency.
    pub alpha: f32,
    pub emissive: [f32; 3],
}

/// One theme's surface data.
#[derive(Debug, Default, Clone)]
pub struct Theme {
    pub name: String,
    pub textures: Vec<TextureSpec>,
    pub materials: Vec<Material>,
    /// Polygon gml:id → texture index.
    pub target_texture: HashMap<String, u32>,
    /// Ring gml:id → texture coordinates as written (closing pair included when written).
    pub ring_uvs: HashMap<String, Vec<[f32; 2]>>,
    /// Surface gml:id (polygon or any enclosing geometry) → material index.
    pub target_material: HashMap<String, u32>,
}

/// Every theme of a document and which one is drawn.
#[derive(Debug, Default, Clone)]
pub struct Appearances {
    pub themes: Vec<Theme>,
    /// Targets of GeoreferencedTexture or TexCoordGen, which are not drawn.
    pub unsupported_targets: u64,
}

impl Appearances {
    /// The theme to draw: `wanted` when present, else the first with textures, else the
    /// first.
    pub fn pick(mut self, wanted: Option<&str>) -> Option<Theme> {
        let i = match wanted {
            Some(w) => self.themes.iter().position(|t| t.name == w)?,
            None => self
                .themes
                .iter()
                .position(|t| !t.textures.is_empty())
                .unwrap_or(0),
        };
        (i < self.themes.len()).then(|| self.themes.swap_remove(i))
    }

    pub fn theme_names(&self) -> Vec<String> {
        self.themes.iter().map(|t| t.name.clone()).collect()
    }
}

fn attr(e: &BytesStart, wanted: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find_map(|a| (local(a.key.as_ref()) == wanted).then(|| a.value.to_string()))
}

fn reference(s: &str) -> String {
    s.trim().trim_start_matches('#').to_string()
}

fn floats(text: &str) -> Vec<f32> {
    text.split_ascii_whitespace()
        .map(|t| t.parse::<f32>().unwrap_or(f32::NAN))
        .collect()
}

fn color(text: &str) -> Option<[f32; 3]> {
    let v = floats(text);
    (v.len() == 3 && v.iter().all(|c| c.is_finite())).then(|| {
        [
            v[0].clamp(0.0, 1.0),
            v[1].clamp(0.0, 1.0),
            v[2].clamp(0.0, 1.0),
        ]
    })
}

/// Texture coordinates of one target polygon: (ring id, coordinates) per ring.
type RingCoords = Vec<(String, Vec<[f32; 2]>)>;

#[derive(Default)]
struct TextureFrame {
    uri: Option<String>,
    wrap: Option<Wrap>,
    georeferenced: bool,
    /// (polygon id, [(ring id, uvs)])
    targets: Vec<(String, RingCoords)>,
}

#[derive(Default)]
struct MaterialFrame {
    diffuse: Option<[f32; 3]>,
    transparency: Option<f32>,
    emissive: Option<[f32; 3]>,
    targets: Vec<String>,
}

/// Read every appearance of a CityGML document.
pub fn read_appearances<R: BufRead>(input: R) -> Result<Appearances, ReadError> {
    let mut events = XmlEvents::new(input);
    let mut buf = Vec::new();
    let mut out = Appearances::default();
    // Theme name → index in `out.themes` (documents may hold many themes).
    let mut theme_index: HashMap<String, usize> = HashMap::new();
    let mut depth_in_appearance = 0usize;
    let mut theme_name = String::new();
    let mut text = String::new();
    let mut texture: Option<TextureFrame> = None;
    let mut material: Option<MaterialFrame> = None;
    // Current target polygon (2.0: attribute; 3.0: text of app:target).
    let mut target: Option<String> = None;
    // Inside a TexCoordList: ring ids from attributes or app:ring, and coordinates.
    let mut list_rings: Vec<Option<String>> = Vec::new();
    let mut list_coords: Vec<Vec<[f32; 2]>> = Vec::new();
    let mut list_ring_texts: Vec<String> = Vec::new();
    let mut pending: Vec<(String, Vec<[f32; 2]>)> = Vec::new();
    // 3.0: the target of the current TextureAssociation (its coordinates follow it).
    let mut association: Option<Option<String>> = None;
    loop {
        let ev = events.next(&mut buf)?;
        let position = events.position();
        match ev {
            Event::Start(ref e) => {
                let name = local(e.name().as_ref()).to_string();
                text.clear();
                if name == "Appearance" {
                    depth_in_appearance += 1;
                    theme_name.clear();
                    continue;
                }
                if depth_in_appearance == 0 {
                    buf.clear();
                    continue;
                }
                match name.as_str() {
                    "ParameterizedTexture" => texture = Some(TextureFrame::default()),
                    "GeoreferencedTexture" => {
                        texture = Some(TextureFrame {
                            georeferenced: true,
                            ..Default::default()
                        })
                    }
                    "X3DMaterial" => material = Some(MaterialFrame::default()),
                    "target" => {
                        target = attr(e, "uri").map(|u| reference(&u));
                        pending.clear();
                    }
                    "TexCoordList" => {
                        list_rings.clear();
                        list_coords.clear();
                        list_ring_texts.clear();
                    }
                    "textureCoordinates" => {
                        list_rings.push(attr(e, "ring").map(|r| reference(&r)));
                    }
                    "TexCoordGen" => out.unsupported_targets += 1,
                    "TextureAssociation" => {
                        association = Some(None);
                        pending.clear();
                    }
                    _ => {}
                }
            }
            Event::Empty(ref e)
                if depth_in_appearance > 0 && local(e.name().as_ref()) == "TexCoordGen" =>
            {
                out.unsupported_targets += 1;
            }
            Event::Text(t) if depth_in_appearance > 0 => append_text(&mut text, &t, position)?,
            Event::CData(t) if depth_in_appearance > 0 => append_text(&mut text, &t, position)?,
            Event::GeneralRef(r) if depth_in_appearance > 0 => {
                if let Some(c) = entity_char(&r) {
                    append_text(&mut text, c.encode_utf8(&mut [0; 4]), position)?;
                }
            }
            Event::End(ref e) if depth_in_appearance > 0 => {
                let name = local(e.name().as_ref()).to_string();
                match name.as_str() {
                    "Appearance" => depth_in_appearance -= 1,
                    "theme" => theme_name = text.trim().to_string(),
                    "imageURI" => {
                        if let Some(t) = texture.as_mut() {
                            t.uri = Some(text.trim().to_string());
                        }
                    }
                    "wrapMode" => {
                        if let Some(t) = texture.as_mut() {
                            t.wrap = Some(match text.trim() {
                                "mirror" => Wrap::Mirror,
                                "clamp" | "border" => Wrap::Clamp,
                                _ => Wrap::Repeat,
                            });
                        }
                    }
                    "diffuseColor" => {
                        if let Some(m) = material.as_mut() {
                            m.diffuse = color(&text);
                        }
                    }
                    "emissiveColor" => {
                        if let Some(m) = material.as_mut() {
                            m.emissive = color(&text);
                        }
                    }
                    "transparency" => {
                        if let Some(m) = material.as_mut() {
                            m.transparency =
                                text.trim().parse::<f32>().ok().filter(|t| t.is_finite());
                        }
                    }
                    "textureCoordinates" => {
                        let v = floats(&text);
                        let ok = v.len().is_multiple_of(2) && v.iter().all(|c| c.is_finite());
                        list_coords.push(if ok {
                            v.chunks_exact(2).map(|c| [c[0], 1.0 - c[1]]).collect()
                        } else {
                            Vec::new()
                        });
                    }
                    "ring" => list_ring_texts.push(reference(&text)),
                    "TexCoordList" => {
                        let mut texts = list_ring_texts.drain(..);
                        for (ring, coords) in list_rings.drain(..).zip(list_coords.drain(..)) {
                            let ring = ring.or_else(|| texts.next());
                            if let Some(r) = ring {
                                if !coords.is_empty() {
                                    pending.push((r, coords));
                                }
                            }
                        }
                    }
                    "target" => {
                        let id = target.take().or_else(|| {
                            let t = reference(&text);
                            (!t.is_empty()).then_some(t)
                        });
                        if let Some(slot) = association.as_mut() {
                            *slot = id;
                            buf.clear();
                            text.clear();
                            continue;
                        }
                        if let Some(id) = id {
                            if let Some(m) = material.as_mut() {
                                m.targets.push(id);
                            } else if let Some(t) = texture.as_mut() {
                                t.targets.push((id, std::mem::take(&mut pending)));
                            }
                        }
                        pending.clear();
                    }
                    "TextureAssociation" => {
                        if let (Some(Some(id)), Some(t)) = (association.take(), texture.as_mut()) {
                            t.targets.push((id, std::mem::take(&mut pending)));
                        }
                        pending.clear();
                    }
                    "ParameterizedTexture" | "GeoreferencedTexture" => {
                        if let Some(t) = texture.take() {
                            let theme = theme_of(&mut out, &mut theme_index, &theme_name);
                            if t.georeferenced {
                                out.unsupported_targets += t.targets.len().max(1) as u64;
                            } else if let Some(uri) = t.uri.filter(|u| !u.is_empty()) {
                                let th = &mut out.themes[theme];
                                let index = th.textures.len() as u32;
                                th.textures.push(TextureSpec {
                                    image_uri: uri,
                                    wrap: t.wrap.unwrap_or(Wrap::Repeat),
                                });
                                for (poly, rings) in t.targets {
                                    th.target_texture.insert(poly, index);
                                    for (ring, uvs) in rings {
                                        th.ring_uvs.insert(ring, uvs);
                                    }
                                }
                            }
                        }
                    }
                    "X3DMaterial" => {
                        if let Some(m) = material.take() {
                            let theme = theme_of(&mut out, &mut theme_index, &theme_name);
                            let th = &mut out.themes[theme];
                            let index = th.materials.len() as u32;
                            th.materials.push(Material {
                                diffuse: m.diffuse.unwrap_or([0.8, 0.8, 0.8]),
                                alpha: 1.0 - m.transparency.unwrap_or(0.0).clamp(0.0, 1.0),
                                emissive: m.emissive.unwrap_or([0.0; 3]),
                            });
                            for t in m.targets {
                                th.target_material.insert(t, index);
                            }
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

fn theme_of(out: &mut Appearances, index: &mut HashMap<String, usize>, name: &str) -> usize {
    if let Some(&i) = index.get(name) {
        return i;
    }
    out.themes.push(Theme {
        name: name.to_string(),
        ..Default::default()
    });
    index.insert(name.to_string(), out.themes.len() - 1);
    out.themes.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citygml2_and_3_texture_forms_and_materials() {
        let doc = r##"<CityModel xmlns:app="a">
<app:appearanceMember><app:Appearance><app:theme>rgbTexture</app:theme>
 <app:surfaceDataMember><app:ParameterizedTexture><app:imageURI>tex/a.jpg</app:imageURI><app:wrapMode>clamp</app:wrapMode>
  <app:target uri="#P1"><app:TexCoordList><app:textureCoordinates ring="#R1">0 0 1 0 1 1 0 0</app:textureCoordinates></app:TexCoordList></app:target>
 </app:ParameterizedTexture></app:surfaceDataMember>
 <app:surfaceDataMember><app:ParameterizedTexture><app:imageURI>tex/b.jpg</app:imageURI>
  <app:textureParameterization><app:TextureAssociation><app:target>#P2</app:target><app:textureParameterization><app:TexCoordList>
   <app:textureCoordinates>0 0 0.5 0 0.5 0.5</app:textureCoordinates><app:ring>#R2</app:ring>
   <app:textureCoordinates>0.1 0.1 0.2 0.1 0.2 0.2</app:textureCoordinates><app:ring>#R3</app:ring>
  </app:TexCoordList></app:textureParameterization></app:TextureAssociation></app:textureParameterization>
 </app:ParameterizedTexture></app:surfaceDataMember>
 <app:surfaceDataMember><app:X3DMaterial><app:diffuseColor>1 0 0</app:diffuseColor><app:transparency>0.25</app:transparency><app:target>#MS1</app:target></app:X3DMaterial></app:surfaceDataMember>
</app:Appearance></app:appearanceMember>
<app:appearanceMember><app:Appearance><app:theme>winter</app:theme>
 <app:surfaceDataMember><app:X3DMaterial><app:diffuseColor>1 1 1</app:diffuseColor><app:target>#MS1</app:target></app:X3DMaterial></app:surfaceDataMember>
 <app:surfaceDataMember><app:GeoreferencedTexture><app:imageURI>g.png</app:imageURI><app:target>#P9</app:target></app:GeoreferencedTexture></app:surfaceDataMember>
</app:Appearance></app:appearanceMember>
</CityModel>"##;
        let all = read_appearances(doc.as_bytes()).unwrap();
        assert_eq!(all.theme_names(), vec!["rgbTexture", "winter"]);
        assert_eq!(all.unsupported_targets, 1);
        let t = all.clone().pick(None).unwrap();
        assert_eq!(t.name, "rgbTexture");
        assert_eq!(t.textures.len(), 2);
        assert_eq!(t.textures[0].wrap, Wrap::Clamp);
        assert_eq!(t.target_texture["P1"], 0);
        assert_eq!(t.target_texture["P2"], 1);
        // v flipped for glTF.
        assert_eq!(
            t.ring_uvs["R1"],
            vec![[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
        );
        assert_eq!(t.ring_uvs["R3"][2], [0.2, 0.8]);
        assert_eq!(t.materials[0].alpha, 0.75);
        assert_eq!(t.target_material["MS1"], 0);
        let w = all.pick(Some("winter")).unwrap();
        assert_eq!(w.materials[0].diffuse, [1.0, 1.0, 1.0]);
        assert!(w.textures.is_empty());
    }
}
