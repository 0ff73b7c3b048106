//! The unsafe boundary with PROJ's C API. Every PJ and context created here is owned by a
//! Rust value and destroyed exactly once in its Drop.
#![allow(unsafe_code)]

use crate::ProjError;
use proj_sys as sys;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;

/// Owns a PROJ context; PROJ objects created in it must be dropped before it.
struct Context(*mut sys::PJ_CONTEXT);

impl Context {
    fn new() -> Context {
        // SAFETY: proj_context_create has no preconditions; a null result is handled by
        // PROJ itself (it falls back to the default context when given null).
        let ctx = unsafe { sys::proj_context_create() };
        // SAFETY: ctx is valid (or null = default context). Log level NONE stops PROJ from
        // printing to stderr: a library never prints; errors come back through errno.
        unsafe { sys::proj_log_level(ctx, sys::PJ_LOG_LEVEL_PJ_LOG_NONE) };
        Context(ctx)
    }

    fn last_error(&self) -> String {
        // SAFETY: ctx is valid for the life of self; the returned string is static or owned
        // by the context and copied before any other PROJ call.
        unsafe {
            let code = sys::proj_context_errno(self.0);
            let s = sys::proj_context_errno_string(self.0, code);
            if s.is_null() || code == 0 {
                "unknown PROJ error".to_string()
            } else {
                CStr::from_ptr(s).to_string_lossy().into_owned()
            }
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: created by proj_context_create, destroyed once, after the PJs that use it
        // (fields of structs holding a Context are declared after their PJ fields).
        unsafe { sys::proj_context_destroy(self.0) };
    }
}

/// An owned PJ. Declared before the Context in structs so it drops first.
struct Pj(*mut sys::PJ);

impl Drop for Pj {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a non-null PJ returned by PROJ, destroyed once.
            unsafe { sys::proj_destroy(self.0) };
        }
    }
}

fn cstring(s: &str) -> Result<CString, ProjError> {
    CString::new(s).map_err(|_| ProjError::Nul)
}

/// A transformation between two CRSs, or a PROJ pipeline, with axis order normalised
/// to longitude/latitude, easting/northing. Not `Send` (PROJ objects belong to one
/// thread's context).
pub struct Transformer {
    pj: Pj,
    _ctx: Context,
}

impl Transformer {
    /// `from` → `to`, with PROJ choosing the best available operation.
    pub fn new(from: &str, to: &str) -> Result<Transformer, ProjError> {
        let ctx = Context::new();
        let (f, t) = (cstring(from)?, cstring(to)?);
        // SAFETY: ctx valid; f and t are NUL-terminated and outlive the call; area may be null.
        let raw =
            unsafe { sys::proj_create_crs_to_crs(ctx.0, f.as_ptr(), t.as_ptr(), ptr::null_mut()) };
        if raw.is_null() {
            return Err(ProjError::NoOperation {
                from: from.into(),
                to: to.into(),
                reason: ctx.last_error(),
            });
        }
        let op = Pj(raw);
        // SAFETY: ctx and op.0 are valid; the result is a new object we own.
        let norm = unsafe { sys::proj_normalize_for_visualization(ctx.0, op.0) };
        if norm.is_null() {
            return Err(ProjError::NoOperation {
                from: from.into(),
                to: to.into(),
                reason: ctx.last_error(),
            });
        }
        drop(op);
        Ok(Transformer {
            pj: Pj(norm),
            _ctx: ctx,
        })
    }

    /// A PROJ pipeline or operation string such as `+proj=pipeline +step …`.
    pub fn from_pipeline(definition: &str) -> Result<Transformer, ProjError> {
        let ctx = Context::new();
        let d = cstring(definition)?;
        // SAFETY: ctx valid, d NUL-terminated and alive for the call.
        let raw = unsafe { sys::proj_create(ctx.0, d.as_ptr()) };
        if raw.is_null() {
            return Err(ProjError::BadCrs {
                definition: definition.into(),
                reason: ctx.last_error(),
            });
        }
        Ok(Transformer {
            pj: Pj(raw),
            _ctx: ctx,
        })
    }

    /// Transform `xyz` in place (forward). Any coordinate PROJ cannot transform makes the
    /// whole call fail; the caller decides what that means for its input.
    pub fn transform(&self, xyz: &mut [[f64; 3]]) -> Result<(), ProjError> {
        self.trans_in_place(xyz);
        match xyz.iter().position(|p| !p.iter().all(|v| v.is_finite())) {
            None => Ok(()),
            Some(i) => Err(ProjError::Transform {
                failed: xyz
                    .iter()
                    .filter(|p| !p.iter().all(|v| v.is_finite()))
                    .count(),
                total: xyz.len(),
                first: xyz[i],
            }),
        }
    }

    /// Transform `xyz` in place, marking every coordinate PROJ cannot transform with NaN
    /// (all three values) instead of failing; returns how many failed. For warping, where
    /// points outside a projection's domain are expected.
    pub fn transform_partial(&self, xyz: &mut [[f64; 3]]) -> usize {
        self.trans_in_place(xyz);
        let mut failed = 0;
        for p in xyz.iter_mut() {
            if !p.iter().all(|v| v.is_finite()) {
                *p = [f64::NAN; 3];
                failed += 1;
            }
        }
        failed
    }

    fn trans_in_place(&self, xyz: &mut [[f64; 3]]) {
        if xyz.is_empty() {
            return;
        }
        let n = xyz.len();
        let stride = std::mem::size_of::<[f64; 3]>();
        let base = xyz.as_mut_ptr().cast::<f64>();
        // SAFETY: base points at n contiguous [f64; 3]; x, y, z start at offsets 0, 1, 2
        // and advance by `stride` bytes, so every access stays inside the slice. pj is valid.
        unsafe {
            sys::proj_errno_reset(self.pj.0);
            sys::proj_trans_generic(
                self.pj.0,
                sys::PJ_DIRECTION_PJ_FWD,
                base,
                stride,
                n,
                base.add(1),
                stride,
                n,
                base.add(2),
                stride,
                n,
                ptr::null_mut(),
                0,
                0,
            );
        }
    }

    /// PROJ's description of the operation it chose (for reports).
    pub fn description(&self) -> String {
        // SAFETY: pj valid; the name is owned by the PJ and copied immediately.
        unsafe {
            let s = sys::proj_get_name(self.pj.0);
            if s.is_null() {
                String::new()
            } else {
                CStr::from_ptr(s).to_string_lossy().into_owned()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrsKind {
    Geographic2D,
    Geographic3D,
    Geocentric,
    Projected,
    Compound,
    Vertical,
    Other,
}

/// What Tessera needs to know about a CRS before transforming with it.
#[derive(Debug, Clone, PartialEq)]
pub struct CrsInfo {
    pub name: String,
    pub kind: CrsKind,
    /// Name of the gravity-related vertical CRS of a compound CRS (heights are orthometric).
    pub vertical_name: Option<String>,
    /// Metres per unit of the first horizontal axis (1 for metres, 0.3048006… for US feet;
    /// for geographic CRSs the factor to radians).
    pub horizontal_unit_m: f64,
    /// Metres per unit of the vertical axis, when the CRS has one.
    pub vertical_unit_m: Option<f64>,
    /// Where the CRS is meant to be used, as PROJ's database gives it: west, south, east,
    /// north in degrees (west > east where the area crosses the antimeridian).
    pub area_of_use_deg: Option<[f64; 4]>,
}

fn area_of_use(ctx: &Context, crs: &Pj) -> Option<[f64; 4]> {
    let mut a = [0.0f64; 4];
    // SAFETY: ctx, crs valid; out pointers are to locals; the area name is not asked for.
    let ok = unsafe {
        sys::proj_get_area_of_use(
            ctx.0,
            crs.0,
            &mut a[0],
            &mut a[1],
            &mut a[2],
            &mut a[3],
            ptr::null_mut(),
        )
    };
    // PROJ reports -1000 for an unknown bound.
    (ok != 0 && a.iter().all(|v| v.is_finite() && *v > -999.0)).then_some(a)
}

fn pj_name(p: &Pj) -> String {
    // SAFETY: p valid; string copied before p is dropped.
    unsafe {
        let s = sys::proj_get_name(p.0);
        if s.is_null() {
            String::new()
        } else {
            CStr::from_ptr(s).to_string_lossy().into_owned()
        }
    }
}

fn pj_kind(p: &Pj) -> CrsKind {
    // SAFETY: p valid.
    match unsafe { sys::proj_get_type(p.0) } {
        sys::PJ_TYPE_PJ_TYPE_GEOGRAPHIC_2D_CRS => CrsKind::Geographic2D,
        sys::PJ_TYPE_PJ_TYPE_GEOGRAPHIC_3D_CRS => CrsKind::Geographic3D,
        sys::PJ_TYPE_PJ_TYPE_GEOCENTRIC_CRS => CrsKind::Geocentric,
        sys::PJ_TYPE_PJ_TYPE_PROJECTED_CRS => CrsKind::Projected,
        sys::PJ_TYPE_PJ_TYPE_COMPOUND_CRS => CrsKind::Compound,
        sys::PJ_TYPE_PJ_TYPE_VERTICAL_CRS => CrsKind::Vertical,
        _ => CrsKind::Other,
    }
}

/// Unit factor of axis `index` of a CRS's coordinate system.
fn axis_unit(ctx: &Context, crs: &Pj, index: i32) -> Option<f64> {
    // SAFETY: ctx, crs valid; cs is owned by the Pj wrapper; out pointers are to locals or null.
    unsafe {
        let cs = Pj(sys::proj_crs_get_coordinate_system(ctx.0, crs.0));
        if cs.0.is_null() || sys::proj_cs_get_axis_count(ctx.0, cs.0) <= index {
            return None;
        }
        let mut factor = 0.0f64;
        let null = ptr::null_mut::<*const c_char>();
        let ok = sys::proj_cs_get_axis_info(
            ctx.0,
            cs.0,
            index,
            null,
            null,
            null,
            &mut factor,
            null,
            null,
            null,
        );
        (ok != 0).then_some(factor)
    }
}

/// Inspect a CRS definition.
pub fn crs_info(definition: &str) -> Result<CrsInfo, ProjError> {
    let ctx = Context::new();
    let d = cstring(definition)?;
    // SAFETY: ctx valid, d alive for the call.
    let crs = Pj(unsafe { sys::proj_create(ctx.0, d.as_ptr()) });
    if crs.0.is_null() {
        return Err(ProjError::BadCrs {
            definition: definition.into(),
            reason: ctx.last_error(),
        });
    }
    let kind = pj_kind(&crs);
    if kind == CrsKind::Other {
        return Err(ProjError::BadCrs {
            definition: definition.into(),
            reason: "it is not a coordinate reference system".into(),
        });
    }
    let name = pj_name(&crs);
    let mut info = CrsInfo {
        name,
        kind,
        vertical_name: None,
        horizontal_unit_m: 1.0,
        vertical_unit_m: None,
        area_of_use_deg: area_of_use(&ctx, &crs),
    };
    if kind == CrsKind::Compound {
        // SAFETY: ctx and crs valid; sub-CRS objects are owned by Pj wrappers.
        let (h, v) = unsafe {
            (
                Pj(sys::proj_crs_get_sub_crs(ctx.0, crs.0, 0)),
                Pj(sys::proj_crs_get_sub_crs(ctx.0, crs.0, 1)),
            )
        };
        if !h.0.is_null() {
            info.horizontal_unit_m = axis_unit(&ctx, &h, 0).unwrap_or(1.0);
        }
        if !v.0.is_null() && pj_kind(&v) == CrsKind::Vertical {
            info.vertical_name = Some(pj_name(&v));
            info.vertical_unit_m = axis_unit(&ctx, &v, 0);
        }
    } else {
        info.horizontal_unit_m = axis_unit(&ctx, &crs, 0).unwrap_or(1.0);
        if kind == CrsKind::Vertical {
            info.vertical_name = Some(info.name.clone());
            info.vertical_unit_m = Some(info.horizontal_unit_m);
        } else if matches!(kind, CrsKind::Geographic3D | CrsKind::Geocentric) {
            info.vertical_unit_m = axis_unit(&ctx, &crs, 2);
        }
    }
    Ok(info)
}

/// The PROJ release linked into this build.
pub fn version() -> String {
    // SAFETY: proj_info returns a struct of static strings.
    unsafe {
        let info = sys::proj_info();
        if info.release.is_null() {
            String::new()
        } else {
            CStr::from_ptr(info.release).to_string_lossy().into_owned()
        }
    }
}
