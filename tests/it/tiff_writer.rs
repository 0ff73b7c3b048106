//! Writes small classic little-endian TIFFs with exactly the tags a test wants, so odd and
//! hostile rasters (palettes, impossible sizes, missing georeferencing) need no fixture files.

/// A tag value: shorts, longs, doubles or ASCII.
pub enum Val {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Double(Vec<f64>),
    Ascii(String),
}

/// Builds a one-image TIFF; strip data go right after the header and the strip offsets /
/// byte counts are filled in from `strips`.
pub struct TiffBuilder {
    pub width: u32,
    pub height: u32,
    pub tags: Vec<(u16, Val)>,
    pub strips: Vec<Vec<u8>>,
    /// Extra offset added to every strip offset (to point past the end on purpose).
    pub offset_bias: u32,
}

impl TiffBuilder {
    pub fn new(width: u32, height: u32) -> TiffBuilder {
        TiffBuilder {
            width,
            height,
            tags: Vec::new(),
            strips: Vec::new(),
            offset_bias: 0,
        }
    }

    pub fn tag(mut self, id: u16, v: Val) -> TiffBuilder {
        self.tags.push((id, v));
        self
    }

    /// GeoKeys for `EPSG:code` (geographic when `geographic`), a tie point at (x, y) and
    /// square pixels of `size`.
    pub fn georef(self, code: u16, geographic: bool, x: f64, y: f64, size: f64) -> TiffBuilder {
        let (model, key) = if geographic { (2, 2048) } else { (1, 3072) };
        self.tag(33550, Val::Double(vec![size, size, 0.0]))
            .tag(33922, Val::Double(vec![0.0, 0.0, 0.0, x, y, 0.0]))
            .tag(
                34735,
                Val::Short(vec![
                    1, 1, 0, 3, 1024, 0, 1, model, 1025, 0, 1, 1, key, 0, 1, code,
                ]),
            )
    }

    pub fn build(mut self) -> Vec<u8> {
        let data_len: usize = self.strips.iter().map(Vec::len).sum();
        let mut out = vec![b'I', b'I', 42, 0];
        let ifd_at = 8 + data_len as u32;
        out.extend_from_slice(&ifd_at.to_le_bytes());
        let mut offsets = Vec::new();
        let mut counts = Vec::new();
        for s in &self.strips {
            offsets.push(out.len() as u32 + self.offset_bias);
            counts.push(s.len() as u32);
            out.extend_from_slice(s);
        }
        self.tags.push((256, Val::Long(vec![self.width])));
        self.tags.push((257, Val::Long(vec![self.height])));
        if !self.strips.is_empty() && !self.tags.iter().any(|(t, _)| *t == 273 || *t == 324) {
            self.tags.push((273, Val::Long(offsets)));
            self.tags.push((279, Val::Long(counts)));
        }
        self.tags.sort_by_key(|(t, _)| *t);
        // IFD: count, 12-byte entries, next IFD offset; values that do not fit follow it.
        let n = self.tags.len();
        let mut extra_at = ifd_at as usize + 2 + n * 12 + 4;
        let mut entries = Vec::new();
        let mut extra = Vec::new();
        for (tag, v) in &self.tags {
            let (ty, count, bytes): (u16, u32, Vec<u8>) = match v {
                Val::Short(s) => (
                    3,
                    s.len() as u32,
                    s.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
                Val::Long(s) => (
                    4,
                    s.len() as u32,
                    s.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
                Val::Double(s) => (
                    12,
                    s.len() as u32,
                    s.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
                Val::Ascii(s) => {
                    let mut b = s.as_bytes().to_vec();
                    b.push(0);
                    (2, b.len() as u32, b)
                }
            };
            entries.extend_from_slice(&tag.to_le_bytes());
            entries.extend_from_slice(&ty.to_le_bytes());
            entries.extend_from_slice(&count.to_le_bytes());
            if bytes.len() <= 4 {
                let mut b = bytes.clone();
                b.resize(4, 0);
                entries.extend_from_slice(&b);
            } else {
                entries.extend_from_slice(&(extra_at as u32).to_le_bytes());
                extra_at += bytes.len();
                extra.extend_from_slice(&bytes);
            }
        }
        out.extend_from_slice(&(n as u16).to_le_bytes());
        out.extend_from_slice(&entries);
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&extra);
        out
    }
}
