#!/usr/bin/env python3
"""The terrain peer pipeline: rasterio (GDAL warp, bilinear) samples each tile's 129 x 129
vertex grid in EPSG:4326, pydelatin meshes it within the tile's max error, and
quantized-mesh-encoder writes the tile (with oct-encoded normals), gzipped; tiles are spread
over a process pool. Same tiles, grid and per-zoom errors as `tessera convert --to terrain`
(error at the finest zoom, doubling per coarser zoom).

usage: terrain_peer.py DEM OUT_DIR --max-zoom Z --max-error M [--processes 2]
"""
import argparse
import gzip
import io
import math
import os
from multiprocessing import Pool

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.transform import from_origin
from pydelatin import Delatin
from quantized_mesh_encoder import encode
from quantized_mesh_encoder.extensions import VertexNormalsExtension

GRID = 129
ARGS = None
SRC = None


def tile_rect(z, x, y_north):
    span = 180.0 / (1 << z)
    w = -180.0 + x * span
    n = 90.0 - y_north * span
    return w, n - span, w + span, n


def tiles(bounds, max_zoom):
    w, s, e, n = bounds
    out = [(0, 0, 0), (0, 1, 0)]
    for z in range(1, max_zoom + 1):
        span = 180.0 / (1 << z)
        x0, x1 = int((w + 180) // span), int(math.ceil((e + 180) / span)) - 1
        y0, y1 = int((90 - n) // span), int(math.ceil((90 - s) / span)) - 1
        out += [(z, x, y) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]
    return out


def init(path, args):
    global SRC, ARGS
    SRC = rasterio.open(path)
    ARGS = args


def work(t):
    z, x, y = t
    w, s, e, n = tile_rect(z, x, y)
    step = (e - w) / (GRID - 1)
    dst = np.zeros((GRID, GRID), dtype=np.float32)
    # pixel centres on the vertices
    reproject(rasterio.band(SRC, 1), dst, dst_transform=from_origin(w - step / 2, n + step / 2, step, step),
              dst_crs="EPSG:4326", resampling=Resampling.bilinear, dst_nodata=0)
    err = ARGS.max_error * 2 ** (ARGS.max_zoom - z)
    tin = Delatin(dst, width=GRID, height=GRID, max_error=err)
    verts, tris = tin.vertices.astype(np.float64), tin.triangles.astype(np.uint32)
    pos = np.empty((len(verts), 3))
    pos[:, 0] = w + verts[:, 0] / (GRID - 1) * (e - w)
    pos[:, 1] = s + verts[:, 1] / (GRID - 1) * (n - s)
    pos[:, 2] = verts[:, 2]
    a, b, c = pos[tris[:, 0]], pos[tris[:, 1]], pos[tris[:, 2]]
    cw = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]) < 0
    tris[cw] = tris[cw][:, [0, 2, 1]]
    flat = tris.ravel()
    _, first = np.unique(flat, return_index=True)
    order = flat[np.sort(first)]
    remap = np.empty(len(pos), dtype=np.uint32)
    remap[order] = np.arange(len(order), dtype=np.uint32)
    pos, tris = pos[order], remap[tris]
    buf = io.BytesIO()
    encode(buf, pos, tris, bounds=(w, s, e, n),
           extensions=[VertexNormalsExtension(indices=tris, positions=pos.astype(np.float32))])
    tms_y = (1 << z) - 1 - y
    d = os.path.join(ARGS.out, str(z), str(x))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{tms_y}.terrain"), "wb") as f:
        f.write(gzip.compress(buf.getvalue(), 6))
    return len(tris)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dem")
    ap.add_argument("out")
    ap.add_argument("--max-zoom", type=int, required=True)
    ap.add_argument("--max-error", type=float, required=True)
    ap.add_argument("--processes", type=int, default=2)
    a = ap.parse_args()
    with rasterio.open(a.dem) as src:
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    todo = tiles(bounds, a.max_zoom)
    with Pool(a.processes, initializer=init, initargs=(a.dem, a)) as p:
        tris = p.map(work, todo, chunksize=8)
    print(f"{len(todo)} tiles, {sum(tris) / len(todo):.0f} triangles per tile")


if __name__ == "__main__":
    main()
