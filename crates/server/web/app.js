// Tessera dashboard: asset list, upload, asset page with a CesiumJS preview, tokens.
// Plain browser JavaScript, no build step; every call goes through the ion REST API of the
// server that serves this page, and the viewer streams through the same ion endpoints
// CesiumJS uses against ion (Ion.defaultServer = this server).
"use strict";

const state = {
  token: localStorage.getItem("tessera.token") || "",
  cleanup: null,
};

// A token passed in the address (#token=…) is remembered and removed from the address.
(() => {
  const m = location.hash.match(/[#&]token=([^&]+)/);
  if (m) {
    state.token = decodeURIComponent(m[1]);
    localStorage.setItem("tessera.token", state.token);
    history.replaceState(null, "", location.pathname + "#/");
  }
})();

// ---------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const $ = (sel, root = document) => root.querySelector(sel);

function announce(msg) {
  const a = $("#announce");
  a.textContent = "";
  setTimeout(() => (a.textContent = msg), 30);
}

function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KB", "MB", "GB", "TB"];
  const i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${u[i]}`;
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `${status} ${code}`);
    this.status = status;
    this.code = code;
  }
}

function authHeaders() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json", ...authHeaders() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "NetworkError", `the server did not answer (${e.message}); is tessera serve still running?`);
  }
  if (r.status === 204) return null;
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    /* not JSON */
  }
  if (!r.ok) {
    if (r.status === 401) signIn();
    throw new ApiError(r.status, (json && json.code) || r.statusText, (json && json.message) || text);
  }
  return json;
}

const FINAL = ["COMPLETE", "DATA_ERROR", "ERROR"];

const SOURCE_TYPES = [
  { id: "POINT_CLOUD", type: "3DTILES", label: "Point cloud (LAS/LAZ) → 3D Tiles", ext: ["las", "laz"] },
  { id: "CITYGML", type: "3DTILES", label: "City model (CityGML) → 3D Tiles", ext: ["gml", "citygml", "xml"] },
  { id: "3D_MODEL", type: "3DTILES", label: "3D model (glTF/GLB) → 3D Tiles", ext: ["glb", "gltf"] },
  { id: "RASTER_TERRAIN", type: "TERRAIN", label: "Elevation (GeoTIFF DEM) → terrain", ext: [] },
  { id: "RASTER_IMAGERY", type: "IMAGERY", label: "Imagery (GeoTIFF) → map tiles", ext: ["jpg", "jpeg", "png"] },
  { id: "3DTILES", type: "3DTILES", label: "Existing 3D Tiles (.3tz or zip with tileset.json)", ext: ["3tz"] },
  { id: "GEOJSON", type: "GEOJSON", label: "GeoJSON (served as uploaded)", ext: ["geojson"] },
  { id: "CZML", type: "CZML", label: "CZML (served as uploaded)", ext: ["czml"] },
  { id: "KML", type: "KML", label: "KML/KMZ (served as uploaded)", ext: ["kml", "kmz"] },
];

const TYPE_LABEL = { "3DTILES": "3D Tiles", TERRAIN: "Terrain", IMAGERY: "Imagery", GLTF: "glTF", GEOJSON: "GeoJSON", CZML: "CZML", KML: "KML" };

function statusBadge(a) {
  return h("span", { class: `status ${a.status}` }, a.status.replace("_", " "));
}

function progressCell(a) {
  const p = a.percentComplete || 0;
  if (a.status === "COMPLETE") return h("span", { class: "muted" }, "done");
  if (a.status === "DATA_ERROR" || a.status === "ERROR") return h("span", { class: "muted" }, "failed");
  if (a.status === "AWAITING_FILES") return h("span", { class: "muted" }, "waiting for files");
  return h(
    "span",
    { class: "progress" },
    h("progress", { max: "100", value: String(p), "aria-label": `${a.name}: ${p}% processed` }),
    `${p}%`
  );
}

// ---------------------------------------------------------------- routing

const routes = [
  [/^#?\/?$/, "assets", viewAssets],
  [/^#\/upload$/, "upload", viewUpload],
  [/^#\/assets\/(\d+)$/, "assets", viewAsset],
  [/^#\/tokens$/, "tokens", viewTokens],
];

function route() {
  if (state.cleanup) {
    try {
      state.cleanup();
    } catch (_) {
      /* a view's cleanup never blocks navigation */
    }
    state.cleanup = null;
  }
  const hash = location.hash || "#/";
  const main = $("#main");
  main.replaceChildren();
  for (const [re, nav, view] of routes) {
    const m = hash.match(re);
    if (m) {
      for (const a of document.querySelectorAll("[data-nav]")) {
        if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
        else a.removeAttribute("aria-current");
      }
      state.cleanup = view(main, ...m.slice(1)) || null;
      return;
    }
  }
  main.append(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the assets")));
}

function focusMain() {
  const h1 = $("#main h1");
  if (h1) {
    h1.setAttribute("tabindex", "-1");
    h1.focus({ preventScroll: true });
  }
}

window.addEventListener("hashchange", () => {
  route();
  focusMain();
});

function signIn() {
  if ($("#signin")) return;
  const main = $("#main");
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
  const input = h("input", { type: "text", id: "signin-token", autocomplete: "off", spellcheck: "false", required: true });
  main.replaceChildren(
    h("h1", {}, "Sign in"),
    h(
      "form",
      {
        id: "signin",
        class: "card",
        onsubmit: (e) => {
          e.preventDefault();
          state.token = input.value.trim();
          localStorage.setItem("tessera.token", state.token);
          $("#sign-out").hidden = false;
          route();
        },
      },
      h("p", {}, "This server needs an access token. Use the admin token printed when the server first started (also in admin-token.txt in its data folder), or a token with the assets:list scope."),
      h("label", { for: "signin-token" }, "Access token"),
      input,
      h("p", {}, h("button", { class: "primary", type: "submit" }, "Sign in"))
    )
  );
  input.focus();
}

// ---------------------------------------------------------------- asset list

function viewAssets(main) {
  const ui = { search: "", sortBy: "ID", order: "DESC" };
  const tbody = h("tbody", {});
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const cols = [
    ["ID", "ID", "num"],
    ["NAME", "Name"],
    ["TYPE", "Type"],
    ["STATUS", "Status"],
    [null, "Progress"],
    ["BYTES", "Size", "num"],
    ["DATE_ADDED", "Added"],
  ];
  const head = h(
    "tr",
    {},
    cols.map(([key, label, cls]) =>
      h(
        "th",
        { scope: "col", class: cls, "data-key": key },
        key ? h("button", { type: "button", onclick: () => sortBy(key) }, label) : label
      )
    )
  );
  function sortBy(key) {
    if (ui.sortBy === key) ui.order = ui.order === "ASC" ? "DESC" : "ASC";
    else {
      ui.sortBy = key;
      ui.order = key === "NAME" || key === "TYPE" || key === "STATUS" ? "ASC" : "DESC";
    }
    refresh();
  }
  const search = h("input", { type: "search", id: "asset-search", placeholder: "name or description" });
  let debounce;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      ui.search = search.value.trim();
      refresh();
    }, 200);
  });
  main.append(
    h("h1", {}, "Assets"),
    h(
      "div",
      { class: "toolbar" },
      h("div", {}, h("label", { for: "asset-search" }, "Search"), search),
      h("a", { class: "button", href: "#/upload" }, "Upload data")
    ),
    h("table", { id: "assets" }, h("caption", { class: "sr-only" }, "Assets; column buttons sort"), h("thead", {}, head), tbody),
    count
  );
  let timer = null;
  let alive = true;
  async function refresh() {
    clearTimeout(timer);
    const q = new URLSearchParams({ sortBy: ui.sortBy, sortOrder: ui.order, limit: "1000" });
    if (ui.search) q.set("search", ui.search);
    let list;
    try {
      list = await api("GET", `/v1/assets?${q}`);
    } catch (e) {
      if (e.status !== 401 && alive) count.textContent = `Could not list the assets: ${e.message}`;
      return;
    }
    if (!alive) return;
    for (const th of head.children) {
      if (th.dataset.key === ui.sortBy) th.setAttribute("aria-sort", ui.order === "ASC" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    const items = list.items || [];
    tbody.replaceChildren(
      ...items.map((a) =>
        h(
          "tr",
          { "data-id": a.id, "data-status": a.status },
          h("td", { class: "num" }, a.id),
          h("td", {}, h("a", { href: `#/assets/${a.id}` }, a.name)),
          h("td", {}, TYPE_LABEL[a.type] || a.type),
          h("td", {}, statusBadge(a)),
          h("td", {}, progressCell(a)),
          h("td", { class: "num" }, bytes(a.bytes)),
          h("td", {}, when(a.dateAdded))
        )
      )
    );
    if (!items.length) {
      tbody.append(
        h("tr", {}, h("td", { colspan: "7", class: "empty" }, ui.search ? "No asset matches the search." : h("span", {}, "No assets yet. ", h("a", { href: "#/upload" }, "Upload data"), " to make one.")))
      );
    }
    count.textContent = `${items.length} asset${items.length === 1 ? "" : "s"}`;
    const busy = items.some((a) => !FINAL.includes(a.status));
    timer = setTimeout(refresh, busy ? 500 : 5000);
  }
  refresh();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}

// ---------------------------------------------------------------- upload

// File names inside a zip, from its central directory (read from the end of the file).
async function zipNames(file) {
  const tail = new DataView(await file.slice(Math.max(0, file.size - 65557)).arrayBuffer());
  let eocd = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return [];
  let entries = tail.getUint16(eocd + 10, true);
  let size = tail.getUint32(eocd + 12, true);
  let offset = tail.getUint32(eocd + 16, true);
  if (offset === 0xffffffff || size > 16 << 20) return []; // zip64 or huge: no guess
  const cd = new DataView(await file.slice(offset, offset + size).arrayBuffer());
  const names = [];
  const dec = new TextDecoder();
  for (let p = 0; entries-- > 0 && p + 46 <= cd.byteLength; ) {
    if (cd.getUint32(p, true) !== 0x02014b50) break;
    const n = cd.getUint16(p + 28, true);
    const x = cd.getUint16(p + 30, true);
    const c = cd.getUint16(p + 32, true);
    names.push(dec.decode(new Uint8Array(cd.buffer, cd.byteOffset + p + 46, n)));
    p += 46 + n + x + c;
  }
  return names;
}

// Bands and sample type of a TIFF's first image: one band of 16-bit or float samples is
// elevation, anything else imagery.
async function tiffKind(file) {
  const head = new DataView(await file.slice(0, 16).arrayBuffer());
  if (head.byteLength < 8) return null;
  const le = head.getUint16(0) === 0x4949;
  const magic = head.getUint16(2, le);
  const big = magic === 43;
  if (magic !== 42 && !big) return null;
  const ifd = big ? Number(head.getBigUint64(8, le)) : head.getUint32(4, le);
  const buf = new DataView(await file.slice(ifd, ifd + 8 + 4096 * (big ? 20 : 12)).arrayBuffer());
  const n = big ? Number(buf.getBigUint64(0, le)) : buf.getUint16(0, le);
  const tags = {};
  for (let i = 0; i < Math.min(n, 400); i++) {
    const o = big ? 8 + i * 20 : 2 + i * 12;
    if (o + (big ? 20 : 12) > buf.byteLength) break;
    const tag = buf.getUint16(o, le);
    const type = buf.getUint16(o + 2, le);
    const v = big ? o + 12 : o + 8;
    tags[tag] = type === 3 ? buf.getUint16(v, le) : buf.getUint32(v, le);
  }
  const spp = tags[277] || 1;
  const bits = tags[258] || 1;
  const fmt = tags[339] || 1;
  const photometric = tags[262];
  if (spp === 1 && photometric !== 3 && (fmt === 3 || bits >= 16)) return "RASTER_TERRAIN";
  return "RASTER_IMAGERY";
}

// The source type files make: the most specific kind wins (textures and sidecars travel
// with models and city models, so they never decide on their own).
const GUESS_ORDER = ["3DTILES", "CITYGML", "POINT_CLOUD", "3D_MODEL", "RASTER_TERRAIN", "RASTER_IMAGERY", "CZML", "GEOJSON", "KML"];

async function guessSourceType(files) {
  const found = new Set();
  const byExt = (name) => {
    const ext = name.toLowerCase().split(".").pop();
    return SOURCE_TYPES.find((s) => s.ext.includes(ext));
  };
  for (const f of files) {
    const ext = f.name.toLowerCase().split(".").pop();
    if (ext === "tif" || ext === "tiff") {
      found.add((await tiffKind(f).catch(() => null)) || "RASTER_IMAGERY");
    } else if (ext === "zip") {
      const names = await zipNames(f).catch(() => []);
      if (names.some((n) => /(^|\/)tileset\.json$/i.test(n))) found.add("3DTILES");
      for (const n of names) {
        const s = byExt(n);
        if (s) found.add(s.id);
        else if (/\.tiff?$/i.test(n)) found.add(/(dem|dtm|dsm|elev|height|terrain)/i.test(n) ? "RASTER_TERRAIN" : "RASTER_IMAGERY");
      }
    } else {
      const s = byExt(f.name);
      if (s) found.add(s.id);
    }
  }
  return GUESS_ORDER.find((t) => found.has(t)) || null;
}

function viewUpload(main) {
  let files = [];
  const fileInput = h("input", { type: "file", id: "files", multiple: true, class: "sr-only", tabindex: "-1" });
  const fileList = h("ul", { id: "file-list" });
  const drop = h(
    "div",
    { class: "drop", id: "drop", role: "button", tabindex: "0", "aria-describedby": "drop-help" },
    h("strong", {}, "Drop files here"),
    " or press to choose them",
    h("div", { id: "drop-help", class: "hint" }, "LAS/LAZ, CityGML (.gml, .xml or a zip with textures), glTF/GLB, GeoTIFF DEMs and imagery, or a zip of them.")
  );
  const name = h("input", { type: "text", id: "asset-name", required: true });
  const description = h("textarea", { id: "asset-description" });
  const stype = h("select", { id: "source-type" }, SOURCE_TYPES.map((s) => h("option", { value: s.id }, s.label)));
  const guessNote = h("span", { class: "hint", id: "guess-note", "aria-live": "polite" });
  const lon = h("input", { type: "number", id: "pos-lon", step: "any", min: "-180", max: "180" });
  const lat = h("input", { type: "number", id: "pos-lat", step: "any", min: "-90", max: "90" });
  const height = h("input", { type: "number", id: "pos-height", step: "any" });
  const crs = h("input", { type: "text", id: "input-crs", placeholder: "EPSG:25832" });
  const clamp = h("input", { type: "checkbox", id: "clamp" });
  const terrain = h("select", { id: "clamp-terrain", disabled: true }, h("option", { value: "" }, "(no complete terrain asset)"));
  const water = h("input", { type: "checkbox", id: "water-mask" });
  const posSet = h(
    "fieldset",
    { id: "opt-position" },
    h("legend", {}, "Position (models and point clouds without georeference)"),
    h(
      "div",
      { class: "row" },
      h("div", {}, h("label", { for: "pos-lon" }, "Longitude °"), lon),
      h("div", {}, h("label", { for: "pos-lat" }, "Latitude °"), lat),
      h("div", {}, h("label", { for: "pos-height" }, "Height m"), height)
    )
  );
  const clampSet = h(
    "fieldset",
    { id: "opt-clamp" },
    h("legend", {}, "Terrain"),
    h("label", { class: "inline", for: "clamp" }, clamp, "Clamp buildings onto a terrain asset"),
    h("label", { for: "clamp-terrain" }, "Terrain asset"),
    terrain
  );
  const waterSet = h("fieldset", { id: "opt-water" }, h("legend", {}, "Terrain extensions"), h("label", { class: "inline", for: "water-mask" }, water, "Water mask"));
  const start = h("button", { class: "primary", type: "submit", disabled: true }, "Upload and process");
  const bar = h("progress", { max: "100", value: "0", id: "upload-progress", "aria-label": "Upload progress" });
  const barText = h("span", { id: "upload-progress-text" });
  const progressRow = h("div", { class: "progress", hidden: true }, bar, barText);
  const err = h("div", { id: "upload-error", role: "alert" });

  clamp.addEventListener("change", () => (terrain.disabled = !clamp.checked || !terrain.value));
  function showOptions() {
    const t = stype.value;
    posSet.hidden = !(t === "3D_MODEL" || t === "POINT_CLOUD");
    clampSet.hidden = t !== "CITYGML";
    waterSet.hidden = t !== "RASTER_TERRAIN";
    crsRow.hidden = !["POINT_CLOUD", "CITYGML", "3D_MODEL", "RASTER_TERRAIN", "RASTER_IMAGERY"].includes(t);
  }
  stype.addEventListener("change", () => {
    guessNote.textContent = "";
    showOptions();
  });
  const crsRow = h("div", {}, h("label", { for: "input-crs" }, "Input CRS ", h("span", { class: "hint" }, "only when the files carry none: EPSG code, WKT or PROJ string")), crs);

  async function setFiles(list) {
    files = [...list];
    fileList.replaceChildren(...files.map((f) => h("li", {}, `${f.name} `, h("span", { class: "muted" }, bytes(f.size)))));
    start.disabled = !files.length;
    if (!files.length) return;
    if (!name.value) name.value = files[0].name.replace(/\.[^.]+$/, "");
    const g = await guessSourceType(files);
    if (g) {
      stype.value = g;
      guessNote.textContent = `Guessed from the files: ${SOURCE_TYPES.find((s) => s.id === g).label}. Change it if that is wrong.`;
    } else {
      guessNote.textContent = "Could not tell the kind of data from the files; pick the source type.";
    }
    showOptions();
  }
  fileInput.addEventListener("change", () => setFiles(fileInput.files));
  drop.addEventListener("click", () => fileInput.click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      fileInput.click();
    }
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    setFiles(e.dataTransfer.files);
  });

  api("GET", "/v1/assets?type=TERRAIN&status=COMPLETE&limit=1000")
    .then((list) => {
      const items = (list && list.items) || [];
      if (items.length) terrain.replaceChildren(...items.map((a) => h("option", { value: a.id }, `${a.name} (#${a.id})`)));
    })
    .catch(() => {});

  let xhr = null;
  async function submit(e) {
    e.preventDefault();
    err.replaceChildren();
    const src = SOURCE_TYPES.find((s) => s.id === stype.value);
    const options = { sourceType: src.id };
    if (!crsRow.hidden && crs.value.trim()) options.inputCrs = crs.value.trim();
    if (!posSet.hidden && (lon.value || lat.value)) {
      if (!lon.value || !lat.value) {
        err.append(h("p", {}, "Give both longitude and latitude for the position (height is optional)."));
        return;
      }
      options.position = [Number(lon.value), Number(lat.value), Number(height.value || 0)];
    }
    if (!clampSet.hidden && clamp.checked) {
      if (!terrain.value) {
        err.append(h("p", {}, "Clamping needs a complete terrain asset; upload a DEM first."));
        return;
      }
      options.clampToTerrain = true;
      options.baseTerrainId = Number(terrain.value);
    }
    if (!waterSet.hidden && water.checked) options.waterMask = true;
    start.disabled = true;
    progressRow.hidden = false;
    let created;
    try {
      created = await api("POST", "/v1/assets", {
        name: name.value.trim() || files[0].name,
        description: description.value,
        type: src.type,
        options,
      });
    } catch (e2) {
      err.append(h("p", {}, h("strong", {}, "The asset could not be created: "), e2.message));
      start.disabled = false;
      progressRow.hidden = true;
      return;
    }
    const id = created.assetMetadata.id;
    const total = files.reduce((s, f) => s + f.size, 0) || 1;
    let done = 0;
    try {
      for (const f of files) {
        await new Promise((resolve, reject) => {
          xhr = new XMLHttpRequest();
          xhr.open("PUT", `/v1/assets/${id}/files/${encodeURIComponent(f.name)}`);
          for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
          xhr.upload.onprogress = (ev) => {
            const p = Math.floor(((done + ev.loaded) / total) * 100);
            bar.value = p;
            barText.textContent = `Uploading ${f.name}: ${p}%`;
          };
          xhr.onload = () => {
            if (xhr.status >= 200 && xhr.status < 300) resolve();
            else {
              let m = xhr.responseText;
              try {
                m = JSON.parse(m).message;
              } catch (_) {
                /* plain text */
              }
              reject(new Error(`${f.name}: ${m || xhr.status}`));
            }
          };
          xhr.onerror = () => reject(new Error(`${f.name}: the connection was lost during the upload`));
          xhr.onabort = () => reject(new Error("upload cancelled"));
          xhr.send(f);
        });
        done += f.size;
      }
      bar.value = 100;
      barText.textContent = "Uploaded; starting processing…";
      await api("POST", `/v1/assets/${id}/uploadComplete`, {});
    } catch (e3) {
      err.append(
        h("p", {}, h("strong", {}, "Upload failed: "), e3.message),
        h("p", {}, "The half-uploaded asset was removed; try again.")
      );
      api("DELETE", `/v1/assets/${id}`).catch(() => {});
      start.disabled = false;
      return;
    }
    announce("Upload finished; processing started.");
    location.hash = `#/assets/${id}`;
  }

  main.append(
    h("h1", {}, "Upload data"),
    h(
      "form",
      { class: "card", id: "upload-form", onsubmit: submit },
      drop,
      fileInput,
      fileList,
      h(
        "div",
        { class: "grid2" },
        h("div", {}, h("label", { for: "asset-name" }, "Name"), name),
        h("div", {}, h("label", { for: "source-type" }, "Source type"), stype, guessNote)
      ),
      h("div", {}, h("label", { for: "asset-description" }, "Description"), description),
      crsRow,
      posSet,
      clampSet,
      waterSet,
      h("p", {}, start),
      progressRow,
      err
    )
  );
  showOptions();
  return () => {
    if (xhr && xhr.readyState !== 4) xhr.abort();
  };
}

// ---------------------------------------------------------------- asset page

function viewAsset(main, idText) {
  const id = Number(idText);
  let alive = true;
  let timer = null;
  let viewer = null;
  const title = h("h1", {}, `Asset ${id}`);
  const facts = h("dl", { class: "facts", id: "asset-facts" });
  const problems = h("div", { id: "asset-problems" });
  const preview = h("section", { id: "preview", "aria-labelledby": "preview-title" });
  const actions = h(
    "p",
    {},
    h(
      "button",
      {
        class: "danger",
        type: "button",
        onclick: async () => {
          if (!confirm(`Delete asset ${id} and its tiles?`)) return;
          try {
            await api("DELETE", `/v1/assets/${id}`);
            announce(`Asset ${id} deleted.`);
            location.hash = "#/";
          } catch (e) {
            problems.append(h("p", { role: "alert" }, `Could not delete: ${e.message}`));
          }
        },
      },
      "Delete asset"
    )
  );
  const side = h("div", { class: "side" }, h("div", { class: "card" }, facts), problems, actions);
  main.append(title, h("div", { class: "asset-layout" }, side, preview));

  async function poll() {
    let a;
    try {
      a = await api("GET", `/v1/assets/${id}`);
    } catch (e) {
      if (!alive || e.status === 401) return;
      facts.replaceChildren(h("dt", {}, "Error"), h("dd", {}, e.status === 404 ? "No such asset." : e.message));
      return;
    }
    if (!alive) return;
    title.textContent = a.name;
    document.title = `${a.name} · Tessera`;
    const p = a.processing || {};
    const opts = a.options || {};
    facts.replaceChildren(
      ...[
      h("dt", {}, "Id"),
      h("dd", {}, a.id),
      h("dt", {}, "Type"),
      h("dd", {}, `${TYPE_LABEL[a.type] || a.type}${opts.sourceType ? ` from ${opts.sourceType}` : ""}`),
      h("dt", {}, "Status"),
      h("dd", { "data-status": a.status }, statusBadge(a)),
      h("dt", {}, "Progress"),
      h("dd", {}, progressCell(a), p.stage && !FINAL.includes(a.status) ? h("span", { class: "muted" }, ` ${p.stage.toLowerCase()}`) : null),
      p.tilesWritten ? [h("dt", {}, "Tiles written"), h("dd", {}, p.tilesWritten)] : null,
      h("dt", {}, "Size"),
      h("dd", {}, bytes(a.bytes)),
      h("dt", {}, "Added"),
      h("dd", {}, when(a.dateAdded)),
      p.finishedAt ? [h("dt", {}, "Finished"), h("dd", {}, when(p.finishedAt))] : null,
      a.description ? [h("dt", {}, "Description"), h("dd", {}, a.description)] : null,
      ]
        .flat()
        .filter(Boolean)
    );
    problems.replaceChildren();
    if (a.processingError) {
      const pe = a.processingError;
      problems.append(
        h(
          "div",
          { class: "card error", role: "alert", id: "processing-error" },
          h("h2", {}, `Processing failed: ${pe.code}`),
          h("p", {}, pe.message),
          pe.file ? h("p", {}, h("strong", {}, "File: "), pe.file) : null,
          h("p", {}, h("strong", {}, "How to fix: "), pe.mitigation),
          h("p", { class: "muted" }, `Stage: ${pe.stage}`)
        )
      );
    }
    if (a.processingWarnings && a.processingWarnings.length) {
      problems.append(
        h(
          "details",
          { class: "card" },
          h("summary", {}, `${a.processingWarnings.length} warning${a.processingWarnings.length === 1 ? "" : "s"}`),
          h("ul", { class: "warnings" }, a.processingWarnings.map((w) => h("li", {}, h("code", {}, w.code), " ", w.message, w.count > 1 ? ` (×${w.count})` : "")))
        )
      );
    }
    if (a.status === "COMPLETE") {
      if (!viewer) viewer = startPreview(preview, a);
    } else if (!FINAL.includes(a.status)) {
      timer = setTimeout(poll, 500);
    }
  }
  poll();
  return () => {
    alive = false;
    clearTimeout(timer);
    if (viewer) viewer.destroy();
  };
}

// CesiumJS comes from the npm package the server serves under /cesium/.
let cesiumLoading = null;
function loadCesium() {
  if (window.Cesium) return Promise.resolve(window.Cesium);
  if (cesiumLoading) return cesiumLoading;
  window.CESIUM_BASE_URL = "/cesium/";
  cesiumLoading = new Promise((resolve, reject) => {
    document.head.append(h("link", { rel: "stylesheet", href: "/cesium/Widgets/widgets.css" }));
    const s = h("script", { src: "/cesium/Cesium.js" });
    s.onload = () => resolve(window.Cesium);
    s.onerror = () => {
      cesiumLoading = null;
      reject(new Error("CesiumJS is not installed on this server: run `npm ci` in the Tessera checkout (scripts/demo does) or start tessera serve with --cesium-dir node_modules/cesium/Build/Cesium"));
    };
    document.head.append(s);
  });
  return cesiumLoading;
}

const VIEWABLE = ["3DTILES", "TERRAIN", "IMAGERY", "GEOJSON", "CZML", "KML"];

function startPreview(section, asset) {
  if (!VIEWABLE.includes(asset.type)) {
    section.append(h("p", { class: "muted" }, `${TYPE_LABEL[asset.type] || asset.type} assets are served as uploaded; load them with IonResource.fromAssetId(${asset.id}).`));
    return null;
  }
  const box = h("div", { class: "viewer", id: "cesium", role: "application", "aria-label": "3D view; drag to move the camera, click a feature for its metadata" });
  const pick = h("aside", { id: "pick", class: "card", "aria-live": "polite" }, h("h2", {}, "Metadata"), h("p", { class: "muted" }, "Click a building, a point or the ground to see what is there."));
  const status = h("p", { id: "viewer-status", class: "muted", "aria-live": "polite" }, "Loading CesiumJS…");
  const sel = { terrain: h("select", { id: "with-terrain" }), imagery: h("select", { id: "with-imagery" }), tiles: h("select", { id: "with-tiles" }) };
  const combine = h(
    "div",
    { class: "toolbar", id: "combine" },
    h("div", {}, h("label", { for: "with-terrain" }, "Terrain"), sel.terrain),
    h("div", {}, h("label", { for: "with-imagery" }, "Imagery"), sel.imagery),
    h("div", {}, h("label", { for: "with-tiles" }, "3D Tiles"), sel.tiles)
  );
  section.append(h("h2", { id: "preview-title", class: "sr-only" }, "Preview"), combine, box, status);
  section.closest(".asset-layout").classList.add("has-preview");
  section.closest(".asset-layout").querySelector(".side").append(pick);
  document.body.dataset.viewer = "loading";

  const chosen = { terrain: "", imagery: "", tiles: "" };
  const slot = { TERRAIN: "terrain", IMAGERY: "imagery", "3DTILES": "tiles" }[asset.type];
  if (slot) chosen[slot] = String(asset.id);
  const live = { viewer: null, tileset: null, imagery: null, other: null, destroyed: false, generation: 0 };

  api("GET", "/v1/assets?status=COMPLETE&limit=1000").then((list) => {
    const items = (list && list.items) || [];
    const fill = (s, type, none) => {
      s.replaceChildren(h("option", { value: "" }, none), ...items.filter((a) => a.type === type).map((a) => h("option", { value: a.id }, `${a.name} (#${a.id})`)));
      s.value = chosen[Object.keys(sel).find((k) => sel[k] === s)];
    };
    fill(sel.terrain, "TERRAIN", "Ellipsoid (no terrain)");
    fill(sel.imagery, "IMAGERY", "None");
    fill(sel.tiles, "3DTILES", "None");
  });
  for (const [k, s] of Object.entries(sel)) {
    s.addEventListener("change", () => {
      chosen[k] = s.value;
      show(k);
    });
  }

  async function show(changed) {
    const C = window.Cesium;
    const v = live.viewer;
    const gen = ++live.generation;
    document.body.dataset.viewer = "loading";
    status.textContent = "Loading tiles…";
    // Renders are on demand; keep them coming while the view is being set up.
    const kick = setInterval(() => {
      if (live.destroyed || v.isDestroyed()) clearInterval(kick);
      else v.scene.requestRender();
    }, 200);
    setTimeout(() => clearInterval(kick), 30000);
    try {
      if (!changed || changed === "terrain") {
        v.scene.terrainProvider = chosen.terrain
          ? await C.CesiumTerrainProvider.fromIonAssetId(Number(chosen.terrain), { requestVertexNormals: true, requestWaterMask: true })
          : new C.EllipsoidTerrainProvider();
      }
      if (!changed || changed === "imagery") {
        if (live.imagery) v.imageryLayers.remove(live.imagery, true);
        live.imagery = null;
        if (chosen.imagery) live.imagery = v.imageryLayers.addImageryProvider(await C.IonImageryProvider.fromAssetId(Number(chosen.imagery)));
      }
      if (!changed || changed === "tiles") {
        if (live.tileset) v.scene.primitives.remove(live.tileset);
        live.tileset = null;
        if (chosen.tiles) {
          live.tileset = await C.Cesium3DTileset.fromIonAssetId(Number(chosen.tiles));
          live.tileset.tileFailed.addEventListener((e) => fail(`a tile failed to load: ${e.url}: ${e.message}`));
          v.scene.primitives.add(live.tileset);
        }
      }
      if (!changed && !live.other && ["GEOJSON", "CZML", "KML"].includes(asset.type)) {
        const res = await C.IonResource.fromAssetId(asset.id);
        const load = { GEOJSON: C.GeoJsonDataSource, CZML: C.CzmlDataSource, KML: C.KmlDataSource }[asset.type];
        live.other = await v.dataSources.add(load.load(res, asset.type === "KML" ? { camera: v.scene.camera, canvas: v.scene.canvas } : undefined));
      }
      if (gen !== live.generation || live.destroyed) return;
      await frame(changed);
      watchLoaded(gen);
    } catch (e) {
      fail(e.message || String(e));
    }
  }

  async function frame(changed) {
    const C = window.Cesium;
    const v = live.viewer;
    if (changed && changed !== slot) return;
    if (live.tileset && (slot === "tiles" || !slot)) {
      const sphere = live.tileset.boundingSphere;
      v.camera.viewBoundingSphere(sphere, new C.HeadingPitchRange(0, -0.6, Math.max(sphere.radius * 2.6, 2)));
      v.camera.lookAtTransform(C.Matrix4.IDENTITY);
    } else if (live.imagery && slot === "imagery") {
      v.camera.setView({ destination: live.imagery.imageryProvider.rectangle });
    } else if (slot === "terrain") {
      const res = await C.IonResource.fromAssetId(asset.id);
      const layer = await res.getDerivedResource({ url: "layer.json" }).fetchJson();
      const b = layer.valid_bounds || layer.bounds;
      const rect = C.Rectangle.fromDegrees(b[0], b[1], b[2], b[3]);
      const center = C.Rectangle.center(rect);
      const span = Math.max(C.Rectangle.computeWidth(rect), C.Rectangle.computeHeight(rect)) * 6378137;
      const h0 = await heightAt(center);
      const target = C.Cartesian3.fromRadians(center.longitude, center.latitude, h0);
      v.camera.lookAt(target, new C.HeadingPitchRange(0.4, -0.55, Math.max(span * 1.3, 300)));
      v.camera.lookAtTransform(C.Matrix4.IDENTITY);
    } else if (live.other) {
      await v.zoomTo(live.other);
    }
  }

  async function heightAt(carto) {
    const C = window.Cesium;
    try {
      const [p] = await C.sampleTerrainMostDetailed(live.viewer.terrainProvider, [carto.clone()]);
      return p.height || 0;
    } catch (_) {
      return 0;
    }
  }

  function watchLoaded(gen) {
    const v = live.viewer;
    let stable = 0;
    const tick = () => {
      if (live.destroyed || gen !== live.generation) return;
      const globeDone = v.scene.globe.tilesLoaded;
      const tilesDone = !live.tileset || live.tileset.tilesLoaded;
      // Loaded for several frames in a row: a fresh camera position has been rendered.
      stable = globeDone && tilesDone ? stable + 1 : 0;
      if (stable >= 4) {
        document.body.dataset.viewer = "ready";
        const n = live.tileset ? ` · ${countLoaded(live.tileset)} tiles with content` : "";
        status.textContent = `All tiles loaded${n}.`;
        return;
      }
      v.scene.requestRender();
      setTimeout(tick, 250);
    };
    tick();
  }

  function countLoaded(tileset) {
    let n = 0;
    const walk = (t) => {
      if (t.contentReady && !t.hasEmptyContent) n++;
      for (const c of t.children) walk(c);
    };
    walk(tileset.root);
    return n;
  }

  function fail(message) {
    // A view left while it was loading may still reject; that is no failure of the new page.
    if (live.destroyed) return;
    document.body.dataset.viewer = "error";
    status.textContent = `Preview failed: ${message}`;
    status.setAttribute("role", "alert");
  }

  function showPick(position) {
    const C = window.Cesium;
    const v = live.viewer;
    const rows = [];
    const picked = v.scene.pick(position);
    if (picked instanceof C.Cesium3DTileFeature) {
      // Property names as the schema spells them (ids of non-ASCII names are attribute_N).
      const names = {};
      const schema = picked.tileset && picked.tileset.schema;
      for (const cls of Object.values((schema && schema.classes) || {})) {
        for (const [pid, prop] of Object.entries(cls.properties || {})) if (prop.name && prop.name !== pid) names[pid] = prop.name;
      }
      const first = ["gml_id", "class", "parent_id"];
      const rank = (k) => (first.includes(k) ? first.indexOf(k) : first.length);
      const ids = picked.getPropertyIds().sort((a, b) => rank(a) - rank(b));
      for (const k of ids) {
        const val = picked.getProperty(k);
        if (val === undefined || val === null || val === "") continue;
        rows.push([names[k] ? `${names[k]} (${k})` : k, typeof val === "object" ? JSON.stringify(val) : String(val)]);
      }
    }
    let where = null;
    let world = null;
    if (v.scene.pickPositionSupported) {
      world = v.scene.pickPosition(position);
      if (C.defined(world)) {
        const c = C.Cartographic.fromCartesian(world);
        if (c) where = c;
      }
    }
    const token = ++pickGeneration;
    if (picked && picked.content && picked.content.tile && world && !(picked instanceof C.Cesium3DTileFeature)) {
      // A point of a point cloud: its attributes (intensity, classification, returns…) are
      // per-point property attributes, which CesiumJS does not pick; read them from the tile.
      pointProperties(picked.content, world)
        .then((props) => {
          if (!props || token !== pickGeneration) return;
          render("Point", [...props, ...rows]);
        })
        .catch(() => {});
    }
    if (where) {
      rows.push(["longitude", `${C.Math.toDegrees(where.longitude).toFixed(7)}°`]);
      rows.push(["latitude", `${C.Math.toDegrees(where.latitude).toFixed(7)}°`]);
      rows.push(["height", `${where.height.toFixed(2)} m (ellipsoid)`]);
    }
    render(picked instanceof C.Cesium3DTileFeature ? "Feature" : "Picked", rows);
  }

  function render(title, rows) {
    pick.replaceChildren(
      h("h2", {}, title),
      rows.length
        ? h("table", { id: "pick-table" }, h("tbody", {}, rows.map(([k, val]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, val)))))
        : h("p", { class: "muted" }, "Nothing there.")
    );
  }

  let pickGeneration = 0;
  const glbCache = new Map();

  // The property-attribute values of the point of a point-cloud tile nearest to `world`.
  async function pointProperties(content, world) {
    const C = window.Cesium;
    const url = content.url;
    if (!glbCache.has(url)) {
      const res = content.tileset.resource.getDerivedResource({ url });
      glbCache.set(url, res.fetchArrayBuffer().then(parseGlb));
    }
    const glb = await glbCache.get(url);
    if (!glb) return null;
    const prim = glb.json.meshes && glb.json.meshes[0].primitives[0];
    const ext = prim && prim.extensions && prim.extensions.EXT_structural_metadata;
    const meta = glb.json.extensions && glb.json.extensions.EXT_structural_metadata;
    if (!prim || prim.mode !== 0 || !ext || !meta) return null;
    const posAcc = glb.json.accessors[prim.attributes.POSITION];
    const pos = await accessorView(glb, posAcc);
    if (!pos || ![5126, 5123].includes(posAcc.componentType)) return null;
    // Into the glTF's own frame: the tile transform undone, z-up back to y-up, node offset
    // and scale (16-bit quantized positions) off.
    const inv = C.Matrix4.inverse(content.tile.computedTransform, new C.Matrix4());
    const l = C.Matrix4.multiplyByPoint(inv, world, new C.Cartesian3());
    const node = (glb.json.nodes || []).find((n) => n.mesh === 0) || {};
    const t = node.translation || [0, 0, 0];
    const s = node.scale || [1, 1, 1];
    const q = [l.x - t[0], l.z - t[1], -l.y - t[2]];
    const posStride = glb.json.bufferViews[posAcc.bufferView].byteStride || 12;
    const comp = posAcc.componentType === 5126 ? (o) => pos.getFloat32(o, true) : (o) => pos.getUint16(o, true);
    const size = posAcc.componentType === 5126 ? 4 : 2;
    let best = -1;
    let bestD = Infinity;
    for (let i = 0; i < posAcc.count; i++) {
      const o = i * posStride;
      const dx = comp(o) * s[0] - q[0];
      const dy = comp(o + size) * s[1] - q[1];
      const dz = comp(o + 2 * size) * s[2] - q[2];
      const d = dx * dx + dy * dy + dz * dz;
      if (d < bestD) {
        bestD = d;
        best = i;
      }
    }
    if (best < 0 || bestD > 4) return null; // more than 2 m away: not this tile's point
    pick.dataset.pointDistanceM = Math.sqrt(bestD).toFixed(3);
    const table = meta.propertyAttributes[ext.propertyAttributes[0]];
    const rows = [];
    for (const [name, prop] of Object.entries(table.properties || {})) {
      const acc = glb.json.accessors[prim.attributes[prop.attribute]];
      const view = acc && (await accessorView(glb, acc));
      if (!view) continue;
      const size = { 5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4 }[acc.componentType];
      const stride = glb.json.bufferViews[acc.bufferView].byteStride || size;
      const o = best * stride + (acc.byteOffset || 0);
      const val = {
        5120: () => view.getInt8(o), 5121: () => view.getUint8(o),
        5122: () => view.getInt16(o, true), 5123: () => view.getUint16(o, true),
        5125: () => view.getUint32(o, true), 5126: () => view.getFloat32(o, true),
      }[acc.componentType];
      // Float properties (GPS time, scaled extra bytes) are stored relative to the
      // tile's offset: show the real value.
      if (val) rows.push([name, String(val() * (prop.scale ?? 1) + (prop.offset ?? 0))]);
    }
    return rows;
  }

  function parseGlb(buf) {
    const dv = new DataView(buf);
    if (buf.byteLength < 20 || dv.getUint32(0, true) !== 0x46546c67) return null;
    const jsonLen = dv.getUint32(12, true);
    const json = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 20, jsonLen)));
    const binStart = 20 + jsonLen + 8;
    return { json, bin: new DataView(buf, binStart, Math.max(0, buf.byteLength - binStart)) };
  }

  // The plain bytes of an accessor's view: as stored, or decoded with meshoptimizer's
  // decoder (served by Tessera from the CesiumJS install) for EXT_meshopt_compression.
  async function accessorView(glb, acc) {
    const bv = glb.json.bufferViews[acc.bufferView];
    if (!bv) return null;
    const mo = bv.extensions && bv.extensions.EXT_meshopt_compression;
    if (!mo) {
      const off = (bv.byteOffset || 0) + (acc.byteOffset || 0);
      return new DataView(glb.bin.buffer, glb.bin.byteOffset + off, bv.byteLength - (acc.byteOffset || 0));
    }
    if (!glb.views) glb.views = new Map();
    if (!glb.views.has(acc.bufferView)) {
      glb.views.set(
        acc.bufferView,
        (async () => {
          const { MeshoptDecoder } = await import("/vendor/meshopt_decoder.mjs");
          await MeshoptDecoder.ready;
          const out = new Uint8Array(mo.count * mo.byteStride);
          const src = new Uint8Array(glb.bin.buffer, glb.bin.byteOffset + (mo.byteOffset || 0), mo.byteLength);
          MeshoptDecoder.decodeGltfBuffer(out, mo.count, mo.byteStride, src, mo.mode, mo.filter);
          return out;
        })()
      );
    }
    const bytes = await glb.views.get(acc.bufferView);
    const off = acc.byteOffset || 0;
    return new DataView(bytes.buffer, bytes.byteOffset + off, bytes.byteLength - off);
  }

  loadCesium()
    .then((C) => {
      if (live.destroyed) return;
      C.Ion.defaultServer = `${location.origin}/`;
      C.Ion.defaultAccessToken = state.token || "local";
      const v = new C.Viewer(box, {
        // Natural Earth II ships inside the CesiumJS package: a basemap with no network.
        baseLayer: C.ImageryLayer.fromProviderAsync(
          C.TileMapServiceImageryProvider.fromUrl(C.buildModuleUrl("Assets/Textures/NaturalEarthII"))
        ),
        baseLayerPicker: false,
        geocoder: false,
        timeline: false,
        animation: false,
        sceneModePicker: false,
        navigationHelpButton: false,
        fullscreenButton: false,
        infoBox: false,
        selectionIndicator: false,
        requestRenderMode: true,
        maximumRenderTimeChange: Infinity,
      });
      live.viewer = v;
      window.tesseraViewer = live;
      v.scene.globe.baseColor = C.Color.fromCssColorString("#56606b");
      // A head-light from the camera: terrain relief shows through its normals at any time of day.
      v.scene.globe.enableLighting = true;
      v.scene.light = new C.DirectionalLight({ direction: v.scene.camera.directionWC });
      v.scene.preRender.addEventListener(() => {
        const d = v.scene.camera.directionWC;
        const r = v.scene.camera.rightWC;
        v.scene.light.direction = C.Cartesian3.normalize(C.Cartesian3.add(d, C.Cartesian3.multiplyByScalar(r, 0.6, new C.Cartesian3()), new C.Cartesian3()), new C.Cartesian3());
      });
      v.scene.renderError.addEventListener((_, e) => fail(`render error: ${e}`));
      new C.ScreenSpaceEventHandler(v.scene.canvas).setInputAction((e) => showPick(e.position), C.ScreenSpaceEventType.LEFT_CLICK);
      return show(null);
    })
    .catch((e) => fail(e.message || String(e)));

  return {
    destroy() {
      live.destroyed = true;
      if (live.viewer && !live.viewer.isDestroyed()) live.viewer.destroy();
      delete document.body.dataset.viewer;
    },
  };
}

// ---------------------------------------------------------------- tokens

const SCOPE_HELP = {
  "assets:list": "list all assets",
  "assets:limited-list": "list only the assets below",
  "assets:read": "read assets and stream their tiles",
  "assets:write": "create, change and delete assets",
  geocode: "geocoder",
  "profile:read": "account details",
  "tokens:read": "list tokens",
  "tokens:write": "create and revoke tokens",
  "archives:read": "download archives",
  "archives:write": "create archives",
  "exports:read": "read exports",
  "exports:write": "create exports",
};

function viewTokens(main) {
  const tbody = h("tbody", {});
  const created = h("div", { id: "new-token", "aria-live": "polite" });
  const err = h("div", { role: "alert", id: "token-error" });
  const name = h("input", { type: "text", id: "token-name", required: true, value: "Viewer token" });
  const scopes = Object.keys(SCOPE_HELP).map((s) => {
    const box = h("input", { type: "checkbox", value: s, id: `scope-${s}`, checked: s === "assets:read" || s === "assets:list" });
    return h("label", { class: "inline", for: `scope-${s}` }, box, h("span", {}, s, " ", h("span", { class: "hint" }, SCOPE_HELP[s])));
  });
  const assetsBox = h("div", { class: "scopes", id: "token-assets" }, h("span", { class: "muted" }, "Loading assets…"));
  const urls = h("textarea", { id: "token-urls", placeholder: "https://example.com/app/" });
  async function create(e) {
    e.preventDefault();
    err.replaceChildren();
    const body = {
      name: name.value.trim(),
      scopes: [...main.querySelectorAll("#token-scopes input:checked")].map((i) => i.value),
    };
    const ids = [...main.querySelectorAll("#token-assets input:checked")].map((i) => Number(i.value));
    if (ids.length) body.assetIds = ids;
    const u = urls.value.split(/\s+/).filter(Boolean);
    if (u.length) body.allowedUrls = u;
    try {
      const t = await api("POST", "/v2/tokens", body);
      created.replaceChildren(
        h("div", { class: "card" }, h("h2", {}, `Token “${t.name}” created`), h("p", {}, "Use it as Cesium.Ion.defaultAccessToken with Cesium.Ion.defaultServer set to this server."), h("div", { class: "token-value", id: "token-value" }, t.token))
      );
      announce(`Token ${t.name} created.`);
      refresh();
    } catch (e2) {
      err.append(h("p", {}, h("strong", {}, "Could not create the token: "), e2.message));
    }
  }
  main.append(
    h("h1", {}, "Access tokens"),
    h(
      "table",
      { id: "tokens" },
      h("caption", { class: "sr-only" }, "Access tokens"),
      h("thead", {}, h("tr", {}, ["Name", "Scopes", "Assets", "Allowed URLs", "Created", "Last used", ""].map((c) => h("th", { scope: "col" }, c)))),
      tbody
    ),
    h(
      "form",
      { class: "card", id: "token-form", onsubmit: create },
      h("h2", {}, "New token"),
      h("label", { for: "token-name" }, "Name"),
      name,
      h("fieldset", { id: "token-scopes" }, h("legend", {}, "Scopes"), h("div", { class: "scopes" }, scopes)),
      h("fieldset", {}, h("legend", {}, "Restrict to assets (none ticked: every asset)"), assetsBox),
      h("label", { for: "token-urls" }, "Allowed URLs ", h("span", { class: "hint" }, "one per line; empty: any page may use it")),
      urls,
      h("p", {}, h("button", { class: "primary", type: "submit" }, "Create token")),
      err
    ),
    created
  );
  let alive = true;
  async function refresh() {
    let list;
    try {
      list = await api("GET", "/v2/tokens?limit=1000");
    } catch (e) {
      if (e.status !== 401 && alive) err.replaceChildren(h("p", {}, `Could not list tokens: ${e.message}`));
      return;
    }
    if (!alive) return;
    tbody.replaceChildren(
      ...(list.items || []).map((t) =>
        h(
          "tr",
          { "data-token": t.id },
          h("td", {}, t.name, t.isDefault ? h("span", { class: "pill" }, "default") : null),
          h("td", {}, t.scopes.map((s) => h("span", { class: "pill" }, s))),
          h("td", {}, t.assetIds ? t.assetIds.join(", ") : "all"),
          h("td", {}, t.allowedUrls ? t.allowedUrls.join(" ") : "any"),
          h("td", {}, when(t.dateAdded)),
          h("td", {}, when(t.dateLastUsed) || "never"),
          h(
            "td",
            {},
            t.isDefault
              ? null
              : h(
                  "button",
                  {
                    class: "danger",
                    type: "button",
                    "aria-label": `Revoke ${t.name}`,
                    onclick: async () => {
                      if (!confirm(`Revoke the token “${t.name}”? Apps using it stop working.`)) return;
                      try {
                        await api("DELETE", `/v2/tokens/${t.id}`);
                        announce(`Token ${t.name} revoked.`);
                        refresh();
                      } catch (e) {
                        err.replaceChildren(h("p", {}, `Could not revoke: ${e.message}`));
                      }
                    },
                  },
                  "Revoke"
                )
          )
        )
      )
    );
  }
  refresh();
  api("GET", "/v1/assets?limit=1000")
    .then((list) => {
      const items = (list && list.items) || [];
      assetsBox.replaceChildren(
        ...(items.length
          ? items.map((a) => h("label", { class: "inline", for: `tok-asset-${a.id}` }, h("input", { type: "checkbox", value: a.id, id: `tok-asset-${a.id}` }), `${a.name} (#${a.id})`))
          : [h("span", { class: "muted" }, "No assets yet.")])
      );
    })
    .catch(() => {});
  return () => {
    alive = false;
  };
}

// ---------------------------------------------------------------- start

async function header() {
  $("#sign-out").hidden = !state.token;
  $("#sign-out").addEventListener("click", () => {
    localStorage.removeItem("tessera.token");
    state.token = "";
    location.reload();
  });
  try {
    const app = await api("GET", "/appData");
    $("#server-info").textContent = `${app.serverName} ${app.serverVersion}`;
  } catch (_) {
    /* the header stays empty */
  }
}

header();
route();
