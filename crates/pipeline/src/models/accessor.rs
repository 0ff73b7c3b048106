//! Accessor reading with every offset, stride and count checked against the bytes that
//! are really there (a malformed accessor is an error, never a panic or a huge allocation).

use super::container::{view_bytes, Asset};
use gltf::json::accessor::{ComponentType, Type};
use gltf::json::validation::Checked;

/// Most elements one accessor may declare; far above any real mesh and small enough
/// that a lying count cannot exhaust memory before the byte checks catch it.
pub const MAX_COUNT: u64 = 1 << 28;

/// Most elements an accessor without a bufferView (all zeros, perhaps with sparse
/// substitutions) may declare: nothing in the file backs its size, so it stays small.
const MAX_UNBACKED_COUNT: usize = 1 << 20;

/// `Err` when an accessor without data behind it claims more elements than that.
fn check_unbacked(what: &str, count: usize) -> Result<(), String> {
    if count > MAX_UNBACKED_COUNT {
        return Err(format!(
            "{what} declares {count} elements but no bufferView (all zeros); at most {MAX_UNBACKED_COUNT} are accepted without data behind them"
        ));
    }
    Ok(())
}

fn component_size(c: ComponentType) -> usize {
    match c {
        ComponentType::I8 | ComponentType::U8 => 1,
        ComponentType::I16 | ComponentType::U16 => 2,
        ComponentType::U32 | ComponentType::F32 => 4,
    }
}

/// One component as a float; normalised integers map to [0, 1] or [-1, 1].
fn component(c: ComponentType, normalized: bool, b: &[u8]) -> f32 {
    match (c, normalized) {
        (ComponentType::F32, _) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        (ComponentType::U8, false) => b[0] as f32,
        (ComponentType::U8, true) => b[0] as f32 / 255.0,
        (ComponentType::I8, false) => b[0] as i8 as f32,
        (ComponentType::I8, true) => (b[0] as i8 as f32 / 127.0).max(-1.0),
        (ComponentType::U16, false) => u16::from_le_bytes([b[0], b[1]]) as f32,
        (ComponentType::U16, true) => u16::from_le_bytes([b[0], b[1]]) as f32 / 65535.0,
        (ComponentType::I16, false) => i16::from_le_bytes([b[0], b[1]]) as f32,
        (ComponentType::I16, true) => (i16::from_le_bytes([b[0], b[1]]) as f32 / 32767.0).max(-1.0),
        (ComponentType::U32, _) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
    }
}

fn index_value(c: ComponentType, b: &[u8]) -> Option<u32> {
    match c {
        ComponentType::U8 => Some(b[0] as u32),
        ComponentType::U16 => Some(u16::from_le_bytes([b[0], b[1]]) as u32),
        ComponentType::U32 => Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        _ => None,
    }
}

/// Shape of an accessor, checked.
pub struct Layout {
    pub count: usize,
    pub components: usize,
    pub component: ComponentType,
    pub normalized: bool,
}

pub fn layout(asset: &Asset, index: usize) -> Result<Layout, String> {
    let a = asset
        .root
        .accessors
        .get(index)
        .ok_or_else(|| format!("accessor {index} does not exist"))?;
    let Checked::Valid(ct) = a.component_type else {
        return Err(format!("accessor {index} has an invalid componentType"));
    };
    let Checked::Valid(ty) = a.type_ else {
        return Err(format!("accessor {index} has an invalid type"));
    };
    let components = match ty {
        Type::Scalar => 1,
        Type::Vec2 => 2,
        Type::Vec3 => 3,
        Type::Vec4 => 4,
        Type::Mat2 | Type::Mat3 | Type::Mat4 => {
            return Err(format!("accessor {index} is a matrix, not vertex data"))
        }
    };
    if a.count.0 > MAX_COUNT {
        return Err(format!(
            "accessor {index} declares {} elements, more than the {MAX_COUNT} this reader accepts",
            a.count.0
        ));
    }
    Ok(Layout {
        count: a.count.0 as usize,
        components,
        component: ct.0,
        normalized: a.normalized,
    })
}

/// Where `count` elements of `elem` bytes start in a buffer view and how far apart they
/// are, once every offset, stride and count is checked (with checked arithmetic) to fit the
/// view's real bytes.
struct Fit<'a> {
    bytes: &'a [u8],
    offset: usize,
    stride: usize,
    count: usize,
    elem: usize,
}

impl Fit<'_> {
    /// Call `each(element, bytes)` for every element.
    fn each(&self, what: &str, mut each: impl FnMut(usize, &[u8])) -> Result<(), String> {
        for i in 0..self.count {
            let b = i
                .checked_mul(self.stride)
                .and_then(|d| self.offset.checked_add(d))
                .and_then(|at| self.bytes.get(at..at.checked_add(self.elem)?))
                .ok_or_else(|| format!("{what}: element {i} lies outside its bufferView"))?;
            each(i, b);
        }
        Ok(())
    }
}

fn fit<'a>(
    asset: &'a Asset,
    what: &str,
    view: usize,
    offset: u64,
    count: usize,
    elem: usize,
) -> Result<Fit<'a>, String> {
    let bytes = view_bytes(asset, view).map_err(|e| format!("{what}: {e}"))?;
    let stride = asset
        .root
        .buffer_views
        .get(view)
        .and_then(|v| v.byte_stride)
        .map(|s| s.0)
        .unwrap_or(elem);
    if stride < elem {
        return Err(format!(
            "{what}: bufferView {view} has byteStride {stride}, less than one element ({elem} bytes)"
        ));
    }
    let needed = match count.checked_sub(1) {
        None => Some(0),
        Some(last) => u64::try_from(last)
            .ok()
            .and_then(|l| l.checked_mul(u64::try_from(stride).ok()?))
            .and_then(|v| v.checked_add(offset))
            .and_then(|v| v.checked_add(u64::try_from(elem).ok()?)),
    };
    match (needed, usize::try_from(offset)) {
        (Some(n), Ok(offset)) if n <= bytes.len() as u64 => Ok(Fit {
            bytes,
            offset,
            stride,
            count,
            elem,
        }),
        _ => Err(format!(
            "{what}: {count} elements of {elem} bytes (stride {stride}, offset {offset}) do not fit bufferView {view} of {} bytes",
            bytes.len()
        )),
    }
}

/// `a * b` elements, or an error naming `what` when that overflows.
fn elements(what: &str, a: usize, b: usize) -> Result<usize, String> {
    a.checked_mul(b)
        .ok_or_else(|| format!("{what}: {a} x {b} values overflow"))
}

/// All elements as floats, `components` per element, sparse substitution applied.
pub fn read_floats(asset: &Asset, index: usize) -> Result<(Vec<f32>, usize), String> {
    let l = layout(asset, index)?;
    let what = format!("accessor {index}");
    let a = &asset.root.accessors[index];
    let csize = component_size(l.component);
    let elem = csize * l.components;
    // Offsets and counts are checked against the bytes before anything is allocated.
    let dense = match a.buffer_view {
        Some(view) => {
            let offset = a.byte_offset.map(|o| o.0).unwrap_or(0);
            Some(fit(asset, &what, view.value(), offset, l.count, elem)?)
        }
        None => {
            check_unbacked(&what, l.count)?;
            None
        }
    };
    let sparse = match &a.sparse {
        Some(s) => Some(sparse_fits(asset, &what, s, &l, elem)?),
        None => None,
    };
    let mut out = vec![0.0f32; elements(&what, l.count, l.components)?];
    if let Some(f) = dense {
        f.each(&what, |i, b| {
            for c in 0..l.components {
                out[i * l.components + c] = component(l.component, l.normalized, &b[c * csize..]);
            }
        })?;
    }
    if let Some((indices, ic, values)) = sparse {
        let mut targets = Vec::with_capacity(indices.count);
        let mut bad = false;
        indices.each(&what, |_, b| match index_value(ic, b) {
            Some(t) if (t as usize) < l.count => targets.push(t as usize),
            _ => bad = true,
        })?;
        if bad {
            return Err(format!("{what}: a sparse index is outside the accessor"));
        }
        values.each(&what, |i, b| {
            let t = targets[i];
            for c in 0..l.components {
                out[t * l.components + c] = component(l.component, l.normalized, &b[c * csize..]);
            }
        })?;
    }
    if out.iter().any(|v| !v.is_finite()) {
        return Err(format!("{what}: holds NaN or infinite values"));
    }
    Ok((out, l.components))
}

/// The checked places of a sparse accessor's indices and values.
fn sparse_fits<'a>(
    asset: &'a Asset,
    what: &str,
    sparse: &gltf::json::accessor::sparse::Sparse,
    l: &Layout,
    elem: usize,
) -> Result<(Fit<'a>, ComponentType, Fit<'a>), String> {
    let n = sparse.count.0;
    if n > l.count as u64 {
        return Err(format!(
            "{what}: sparse count {n} exceeds the accessor's count {}",
            l.count
        ));
    }
    let n = n as usize; // at most the accessor's count, which is a usize
    let Checked::Valid(ic) = sparse.indices.component_type else {
        return Err(format!(
            "{what}: sparse indices have an invalid componentType"
        ));
    };
    if !matches!(
        ic.0,
        ComponentType::U8 | ComponentType::U16 | ComponentType::U32
    ) {
        return Err(format!("{what}: sparse indices must be unsigned integers"));
    }
    let indices = fit(
        asset,
        &format!("{what} sparse indices"),
        sparse.indices.buffer_view.value(),
        sparse.indices.byte_offset.0,
        n,
        component_size(ic.0),
    )?;
    let values = fit(
        asset,
        &format!("{what} sparse values"),
        sparse.values.buffer_view.value(),
        sparse.values.byte_offset.0,
        n,
        elem,
    )?;
    Ok((indices, ic.0, values))
}

/// Index data as u32, each below `vertices`.
pub fn read_indices(asset: &Asset, index: usize, vertices: usize) -> Result<Vec<u32>, String> {
    let l = layout(asset, index)?;
    let what = format!("index accessor {index}");
    if l.components != 1
        || !matches!(
            l.component,
            ComponentType::U8 | ComponentType::U16 | ComponentType::U32
        )
    {
        return Err(format!("{what}: indices must be unsigned scalars"));
    }
    let a = &asset.root.accessors[index];
    if a.sparse.is_some() {
        // Sparse index buffers are legal but unheard of; read them through the float path
        // would lose precision above 2^24, so do the substitution here.
        let (v, _) = read_floats(asset, index)?;
        return v
            .into_iter()
            .map(|x| {
                let i = x as u32;
                if (i as usize) < vertices {
                    Ok(i)
                } else {
                    Err(format!(
                        "{what}: index {i} names a vertex past the {vertices} there are"
                    ))
                }
            })
            .collect();
    }
    let Some(view) = a.buffer_view else {
        check_unbacked(&what, l.count)?;
        return Ok(vec![0; l.count]);
    };
    let csize = component_size(l.component);
    let f = fit(
        asset,
        &what,
        view.value(),
        a.byte_offset.map(|o| o.0).unwrap_or(0),
        l.count,
        csize,
    )?;
    let mut out = Vec::with_capacity(l.count);
    let mut worst = None;
    f.each(&what, |_, b| {
        let i = index_value(l.component, b).unwrap_or(u32::MAX);
        if i as usize >= vertices {
            worst = Some(i);
        }
        out.push(i);
    })?;
    if let Some(i) = worst {
        return Err(format!(
            "{what}: index {i} names a vertex past the {vertices} there are"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbacked_accessors_stay_small() {
        assert!(check_unbacked("accessor 0", MAX_UNBACKED_COUNT).is_ok());
        let e = check_unbacked("accessor 0", 1 << 28).unwrap_err();
        assert!(e.contains("no bufferView"), "{e}");
    }

    #[test]
    fn normalised_components_map_to_unit_range() {
        assert_eq!(component(ComponentType::U8, true, &[255]), 1.0);
        assert_eq!(component(ComponentType::I8, true, &[0x80]), -1.0);
        assert_eq!(component(ComponentType::U16, false, &[1, 1]), 257.0);
        assert_eq!(component(ComponentType::I16, true, &[0xff, 0x7f]), 1.0);
        assert_eq!(index_value(ComponentType::F32, &[0, 0, 0, 0]), None);
    }
}
