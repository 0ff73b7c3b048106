// Real-client conformance: every asset kind made by `tessera serve` from a real sample,
// loaded the ion way by CesiumJS (npm `cesium`, served by the server itself under
// /cesium/) in headless chromium, offline.
//
// usage: node tests/js/cesium-conformance.mjs SERVER_URL TOKEN SAMPLES_DIR
// Writes target/cesium-conformance/<kind>.png and summary.json; exit 0 when every kind
// passes, 1 otherwise.
import fs from "node:fs";
import path from "node:path";
import { apiCall, createAsset, launch, outDir, pixelStats } from "./lib.mjs";

const [server, token, samples] = process.argv.slice(2);
if (!server || !token || !samples) {
  console.error("usage: node tests/js/cesium-conformance.mjs SERVER_URL TOKEN SAMPLES_DIR");
  process.exit(2);
}
const S = (p) => path.join(samples, p);

const CASES = [
  {
    kind: "pointcloud",
    load: "3dtiles",
    // An implicit octree (subtree files) of compressed tiles.
    asset: { name: "Autzen (LAZ)", type: "3DTILES", options: { sourceType: "POINT_CLOUD", tiling: "IMPLICIT" }, files: [S("las/laspy/autzen_trim.laz")] },
    // Compact point tiles by default: every tile must need these glTF extensions.
    requiredExtensions: ["EXT_meshopt_compression"],
  },
  {
    kind: "citygml",
    load: "3dtiles",
    asset: { name: "PLATEAU Yokosuka (CityGML zip)", type: "3DTILES", options: { sourceType: "CITYGML" }, files: [S("citygml/plateau-yokosuka.zip")] },
  },
  {
    kind: "gltf",
    load: "3dtiles",
    asset: {
      name: "Milk truck (glTF)",
      type: "3DTILES",
      options: { sourceType: "3D_MODEL", position: [13.3777, 52.5163, 40] },
      files: ["CesiumMilkTruck.gltf", "CesiumMilkTruck0.bin", "CesiumMilkTruck.png"].map((f) => S(`gltf/CesiumMilkTruck/${f}`)),
    },
  },
  {
    kind: "terrain",
    load: "terrain",
    asset: { name: "DOM1 (DEM)", type: "TERRAIN", options: { sourceType: "RASTER_TERRAIN", waterMask: true }, files: [S("geotiff/dem/dom1_32_356_5699_1_nw_2020.tif")] },
  },
  {
    kind: "imagery",
    load: "imagery",
    asset: { name: "Landsat RGB (GeoTIFF)", type: "IMAGERY", options: { sourceType: "RASTER_IMAGERY" }, files: [S("geotiff/imagery/RGB.byte.tif")] },
  },
];

const PAGE = `<!doctype html><html><head><meta charset="utf-8">
<script>window.CESIUM_BASE_URL = "/cesium/";</script>
<script src="/cesium/Cesium.js"></script>
<link rel="stylesheet" href="/cesium/Widgets/widgets.css">
<style>html, body, #c { margin: 0; width: 100%; height: 100%; overflow: hidden; }</style>
</head><body><div id="c"></div></body></html>`;

// Runs in the page: load one asset through Ion.defaultServer, frame it, wait for every tile.
async function loadInPage({ load, id, token }) {
  const C = window.Cesium;
  C.Ion.defaultServer = `${location.origin}/`;
  C.Ion.defaultAccessToken = token;
  const errors = [];
  const v = new C.Viewer("c", {
    baseLayer: false,
    baseLayerPicker: false,
    geocoder: false,
    timeline: false,
    animation: false,
    sceneModePicker: false,
    navigationHelpButton: false,
    fullscreenButton: false,
    homeButton: false,
    infoBox: false,
    selectionIndicator: false,
    requestRenderMode: true,
    maximumRenderTimeChange: Infinity,
  });
  v.scene.renderError.addEventListener((_, e) => errors.push(`render error: ${e}`));
  v.scene.globe.baseColor = C.Color.fromCssColorString("#3d4650");
  window.__viewer = v;
  window.__errors = errors;
  const settle = async (tileset) => {
    const t0 = performance.now();
    for (let stable = 0; stable < 4; ) {
      v.scene.requestRender();
      await new Promise((r) => setTimeout(r, 200));
      const done = v.scene.globe.tilesLoaded && (!tileset || tileset.tilesLoaded);
      stable = done ? stable + 1 : 0;
      if (performance.now() - t0 > 240000) throw new Error("tiles still loading after 240 s");
    }
  };
  const out = { errors };
  if (load === "3dtiles") {
    const ts = await C.Cesium3DTileset.fromIonAssetId(id, { maximumScreenSpaceError: 1 });
    ts.tileFailed.addEventListener((e) => errors.push(`tile failed: ${e.url}: ${e.message}`));
    v.scene.primitives.add(ts);
    v.camera.viewBoundingSphere(ts.boundingSphere, new C.HeadingPitchRange(0.5, -0.5, Math.max(ts.boundingSphere.radius * 2.4, 2)));
    v.camera.lookAtTransform(C.Matrix4.IDENTITY);
    await settle(ts);
    let loaded = 0;
    const walk = (t) => {
      if (t.contentReady && !t.hasEmptyContent && !t.hasImplicitContent) loaded++;
      t.children.forEach(walk);
    };
    walk(ts.root);
    out.tilesLoaded = loaded;
    window.__hide = async () => {
      ts.show = false;
      await settle();
    };
  } else if (load === "terrain") {
    const tp = await C.CesiumTerrainProvider.fromIonAssetId(id, { requestVertexNormals: true, requestWaterMask: true });
    tp.errorEvent.addEventListener((e) => errors.push(`terrain error: ${e.message}`));
    v.scene.terrainProvider = tp;
    out.hasVertexNormals = tp.hasVertexNormals;
    out.hasWaterMask = tp.hasWaterMask;
    v.scene.globe.enableLighting = true;
    v.scene.light = new C.DirectionalLight({ direction: new C.Cartesian3(1, 0, 0) });
    v.scene.preRender.addEventListener(() => {
      const cam = v.scene.camera;
      v.scene.light.direction = C.Cartesian3.normalize(
        C.Cartesian3.add(cam.directionWC, C.Cartesian3.multiplyByScalar(cam.rightWC, 0.7, new C.Cartesian3()), new C.Cartesian3()),
        new C.Cartesian3()
      );
    });
    const res = await C.IonResource.fromAssetId(id);
    const layer = await res.getDerivedResource({ url: "layer.json" }).fetchJson();
    const b = layer.valid_bounds || layer.bounds;
    const rect = C.Rectangle.fromDegrees(b[0], b[1], b[2], b[3]);
    const centre = C.Rectangle.center(rect);
    const [p] = await C.sampleTerrainMostDetailed(tp, [centre.clone()]);
    const span = Math.max(C.Rectangle.computeWidth(rect), C.Rectangle.computeHeight(rect)) * 6378137;
    v.camera.lookAt(C.Cartesian3.fromRadians(centre.longitude, centre.latitude, p.height || 0), new C.HeadingPitchRange(0.4, -0.5, Math.max(span * 1.3, 300)));
    v.camera.lookAtTransform(C.Matrix4.IDENTITY);
    out.centreHeight = p.height;
    await settle();
    window.__hide = async () => {
      v.scene.terrainProvider = new C.EllipsoidTerrainProvider();
      await settle();
    };
  } else {
    const ip = await C.IonImageryProvider.fromAssetId(id);
    ip.errorEvent.addEventListener((e) => errors.push(`imagery error: ${e.message}`));
    const layer = v.imageryLayers.addImageryProvider(ip);
    v.camera.setView({ destination: ip.rectangle });
    await settle();
    window.__hide = async () => {
      layer.show = false;
      await settle();
    };
  }
  return out;
}

// Tiles with content in a tileset (external tilesets followed), fetched the ion way;
// `glbRequired` collects each .glb content's extensionsRequired.
async function countContentTiles(id, glbRequired = null) {
  const ep = await apiCall(server, token, "GET", `/v1/assets/${id}/endpoint`);
  const get = async (url) => {
    const r = await fetch(url, { headers: { Authorization: `Bearer ${ep.accessToken}` } });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  };
  const getBytes = async (url) => {
    const r = await fetch(url, { headers: { Authorization: `Bearer ${ep.accessToken}` } });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.arrayBuffer();
  };
  let n = 0;
  const content = async (u) => {
    n++;
    if (glbRequired && u.pathname.endsWith(".glb")) {
      const buf = await getBytes(u.href);
      const len = new DataView(buf).getUint32(12, true);
      const doc = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 20, len)));
      glbRequired.push(doc.extensionsRequired || []);
    }
  };
  // Implicit octree: content tiles are those the subtrees mark available.
  const walkImplicit = async (tile, base) => {
    const it = tile.implicitTiling;
    const S = it.subtreeLevels;
    const fill = (t, l, c) => t.replace("{level}", l).replace("{x}", c[0]).replace("{y}", c[1]).replace("{z}", c[2]);
    const demorton = (m, levels) => {
      const c = [0, 0, 0];
      for (let b = 0; b < levels; b++) for (let k = 0; k < 3; k++) c[k] |= ((m >> (3 * b + k)) & 1) << b;
      return c;
    };
    const stack = [[0, [0, 0, 0]]];
    while (stack.length) {
      const [sl, sc] = stack.pop();
      const buf = await getBytes(new URL(fill(it.subtrees.uri, sl, sc), base).href);
      const dv = new DataView(buf);
      const jlen = Number(dv.getBigUint64(8, true));
      const j = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 24, jlen)));
      const bin = new Uint8Array(buf, 24 + jlen);
      const avail = (a) => {
        if ("constant" in a) return () => a.constant === 1;
        const v = j.bufferViews[a.bitstream];
        const bits = bin.subarray(v.byteOffset || 0, (v.byteOffset || 0) + v.byteLength);
        return (i) => ((bits[i >> 3] >> (i & 7)) & 1) === 1;
      };
      const has = avail(j.contentAvailability[0]);
      const child = avail(j.childSubtreeAvailability);
      let start = 0;
      for (let l = 0; l < S; l++) {
        const count = 1 << (3 * l);
        for (let i = 0; i < count; i++) {
          if (!has(start + i)) continue;
          const c = demorton(i, l).map((v, k) => (sc[k] << l) + v);
          await content(new URL(fill(tile.content.uri, sl + l, c), base));
        }
        start += count;
      }
      for (let i = 0; i < 1 << (3 * S); i++) {
        if (child(i)) stack.push([sl + S, demorton(i, S).map((v, k) => (sc[k] << S) + v)]);
      }
    }
  };
  const walkTileset = async (url) => {
    const ts = await get(url);
    const walk = async (tile) => {
      if (tile.implicitTiling) return walkImplicit(tile, url);
      const contents = tile.contents || (tile.content ? [tile.content] : []);
      for (const c of contents) {
        const u = new URL(c.uri || c.url, url);
        if (u.pathname.endsWith(".json")) await walkTileset(u.href);
        else await content(u);
      }
      for (const child of tile.children || []) await walk(child);
    };
    await walk(ts.root);
  };
  await walkTileset(ep.url);
  return n;
}

const dir = outDir("cesium-conformance");
const { browser, context, log } = await launch();
const summary = [];
let failed = 0;
try {
  for (const c of CASES) {
    const t0 = Date.now();
    const r = { kind: c.kind, ok: false, problems: [] };
    summary.push(r);
    try {
      const made = await createAsset(server, token, c.asset);
      r.asset = made.id;
      r.processingS = made.seconds;
      const glbRequired = c.requiredExtensions ? [] : null;
      if (c.load === "3dtiles") r.tilesExpected = await countContentTiles(made.id, glbRequired);
      for (const ext of c.requiredExtensions || []) {
        const missing = glbRequired.filter((req) => !req.includes(ext)).length;
        if (missing || !glbRequired.length) r.problems.push(`${missing} of ${glbRequired.length} glb tiles do not require ${ext}`);
        else r.compressedTiles = `${glbRequired.length} tiles with ${ext}`;
      }
      const page = await context.newPage();
      log.watch(page);
      log.take();
      await page.route(`${server}/__conformance.html`, (route) => route.fulfill({ contentType: "text/html", body: PAGE }));
      await page.goto(`${server}/__conformance.html`);
      const got = await page.evaluate(loadInPage, { load: c.load, id: made.id, token });
      Object.assign(r, { tilesLoaded: got.tilesLoaded, hasVertexNormals: got.hasVertexNormals, hasWaterMask: got.hasWaterMask });
      const shot = await page.screenshot({ path: path.join(dir, `${c.kind}.png`) });
      await page.evaluate(() => window.__hide());
      const baseline = await page.screenshot({ path: path.join(dir, `${c.kind}-without.png`) });
      const stats = await pixelStats(page, shot, baseline);
      r.stddev = Number(stats.stddev.toFixed(1));
      r.changedPct = Number(stats.changedPct.toFixed(1));
      const served = log.responses.filter((x) => x.url.includes(`/assets/${made.id}/`) && x.status === 200);
      if (c.load === "terrain") {
        const tiles = served.filter((x) => /\.terrain(\?|$)/.test(x.url));
        r.terrainTiles = tiles.length;
        r.extensionsServed = [...new Set(tiles.map((x) => (x.headers["content-type"] || "").split("extensions=")[1] || ""))];
        if (!tiles.length) r.problems.push("no terrain tile was requested");
        if (!got.hasVertexNormals || !got.hasWaterMask) r.problems.push(`terrain provider: vertex normals ${got.hasVertexNormals}, water mask ${got.hasWaterMask}`);
        if (!tiles.every((x) => /octvertexnormals/.test(x.headers["content-type"] || "") && /watermask/.test(x.headers["content-type"] || ""))) {
          r.problems.push(`terrain tiles served without the requested extensions: ${r.extensionsServed.join(", ")}`);
        }
      }
      if (c.load === "imagery") {
        r.imageryTiles = served.filter((x) => /\.(png|jpg|jpeg|webp)(\?|$)/.test(x.url)).length;
        if (!r.imageryTiles) r.problems.push("no imagery tile was requested");
      }
      if (c.load === "3dtiles" && r.tilesLoaded !== r.tilesExpected) {
        r.problems.push(`${r.tilesLoaded} of ${r.tilesExpected} tiles with content loaded`);
      }
      if (r.stddev < 4) r.problems.push(`screenshot is blank (luminance std dev ${r.stddev})`);
      if (r.changedPct < 1) r.problems.push(`the asset changes only ${r.changedPct}% of the pixels`);
      r.problems.push(...got.errors, ...(await page.evaluate(() => window.__errors)), ...log.take());
      await page.close();
    } catch (e) {
      r.problems.push(String(e.message || e));
      r.problems.push(...log.take());
    }
    r.seconds = Number(((Date.now() - t0) / 1000).toFixed(1));
    r.ok = r.problems.length === 0;
    if (!r.ok) failed++;
    const detail = [
      r.tilesExpected !== undefined ? `${r.tilesLoaded}/${r.tilesExpected} tiles loaded` : null,
      r.compressedTiles || null,
      r.terrainTiles !== undefined ? `${r.terrainTiles} terrain tiles (extensions ${r.extensionsServed})` : null,
      r.imageryTiles !== undefined ? `${r.imageryTiles} imagery tiles` : null,
      r.stddev !== undefined ? `std dev ${r.stddev}, ${r.changedPct}% of pixels from the asset` : null,
      `${r.seconds} s`,
    ].filter(Boolean);
    console.log(`CESIUM ${c.kind} (asset ${r.asset}): ${r.ok ? "PASS" : "FAIL"} - ${detail.join(", ")}`);
    for (const p of r.problems) console.log(`  ${p}`);
  }
} finally {
  await browser.close();
  fs.writeFileSync(path.join(dir, "summary.json"), JSON.stringify(summary, null, 2));
}
console.log(`cesium conformance: ${summary.length - failed} passed, ${failed} failed; screenshots in ${dir}`);
process.exit(failed ? 1 : 0);
