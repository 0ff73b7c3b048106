// The dashboard in the real browser at 1280×800: sign in, keyboard navigation, upload with
// a guessed source type and live progress, a failed upload's reason and mitigation, the
// CesiumJS preview with a clicked building's metadata, and a token created with an asset
// restriction and revoked.
//
// usage: node tests/js/dashboard.mjs SERVER_URL TOKEN SAMPLES_DIR
// Writes target/dashboard/*.png; exit 0 when every step passes, 1 otherwise.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { apiCall, launch, outDir } from "./lib.mjs";

const [server, token, samples] = process.argv.slice(2);
if (!server || !token || !samples) {
  console.error("usage: node tests/js/dashboard.mjs SERVER_URL TOKEN SAMPLES_DIR");
  process.exit(2);
}
const dir = outDir("dashboard");
const { browser, context, log } = await launch({ width: 1280, height: 800 });
const page = await context.newPage();
log.watch(page);
page.on("dialog", (d) => d.accept());
const steps = [];
let failed = 0;
let total = 0;

async function step(name, fn) {
  total++;
  const t0 = Date.now();
  let problem = null;
  try {
    const detail = await fn();
    const extra = log.take();
    if (extra.length) problem = extra.join("; ");
    steps.push({ name, detail });
    if (!problem) console.log(`DASHBOARD ${name}: PASS${detail ? ` - ${detail}` : ""} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    problem = `${e.message || e}${log.problems.length ? `; ${log.take().join("; ")}` : ""}`;
  }
  if (problem) {
    failed++;
    console.log(`DASHBOARD ${name}: FAIL - ${problem}`);
    await page.screenshot({ path: path.join(dir, `failed-${name.replace(/\W+/g, "-")}.png`) }).catch(() => {});
  }
  return !problem;
}

async function noOverflow() {
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  if (w > 1280) throw new Error(`the page is ${w} px wide at a 1280 px window`);
}

async function api(method, route, t = token) {
  const r = await fetch(new URL(route, server), { method, headers: { Authorization: `Bearer ${t}` } });
  return r.status;
}

await step("sign-in", async () => {
  await page.goto(`${server}/`);
  await page.waitForSelector("#signin");
  log.take(); // the 401 that asks for a token
  await page.fill("#signin-token", token);
  await page.click("#signin button[type=submit]");
  await page.waitForSelector("#assets tbody tr");
  await noOverflow();
  await page.screenshot({ path: path.join(dir, "01-assets.png") });
  return `${await page.locator("#assets tbody tr[data-id]").count()} assets listed`;
});

await step("keyboard", async () => {
  // A keyboard user starts at the top of a freshly loaded page.
  await page.goto(`${server}/#/`);
  await page.reload();
  await page.waitForSelector("#assets tbody tr");
  await page.keyboard.press("Tab");
  const first = await page.evaluate(() => document.activeElement.textContent.trim());
  if (first !== "Skip to content") throw new Error(`first Tab stop is "${first}", not the skip link`);
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press("Tab");
    if ((await page.evaluate(() => document.activeElement.textContent.trim())) === "Upload") break;
  }
  await page.keyboard.press("Enter");
  await page.waitForSelector("#upload-form");
  // The drop zone opens the file chooser from the keyboard.
  await page.evaluate(() => {
    const input = document.querySelector("#files");
    input.addEventListener("click", (e) => {
      window.__chooserOpened = true;
      e.preventDefault();
    });
  });
  await page.focus("#drop");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => window.__chooserOpened === true, null, { timeout: 5000 });
  return "skip link first, nav reached by Tab, drop zone opens the file chooser on Enter";
});

async function upload(files, expectType) {
  await page.goto(`${server}/#/upload`);
  await page.waitForSelector("#upload-form");
  await page.setInputFiles("#files", files);
  await page.waitForFunction(() => document.querySelector("#guess-note").textContent.length > 0);
  const guessed = await page.inputValue("#source-type");
  if (guessed !== expectType) throw new Error(`source type guessed ${guessed}, expected ${expectType}`);
  return guessed;
}

let cityId = null;
await step("upload-citygml", async () => {
  const guessed = await upload([path.join(samples, "citygml/plateau-yokosuka.zip")], "CITYGML");
  await page.fill("#asset-name", "Yokosuka from the dashboard");
  await noOverflow();
  await page.screenshot({ path: path.join(dir, "02-upload.png") });
  // Record every status the page shows while the job runs.
  await page.evaluate(() => {
    window.__seen = new Set();
    new MutationObserver(() => {
      for (const e of document.querySelectorAll("[data-status]")) window.__seen.add(e.dataset.status);
      if (document.querySelector("#asset-facts progress")) window.__seen.add("progress-bar");
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
  await page.click("#upload-form button[type=submit]");
  await page.waitForURL(/#\/assets\/\d+$/, { timeout: 60000 });
  cityId = Number(page.url().match(/(\d+)$/)[1]);
  await page.waitForSelector('#asset-facts [data-status="COMPLETE"]', { timeout: 120000 });
  const seen = await page.evaluate(() => [...window.__seen]);
  return `guessed ${guessed}; asset ${cityId}; statuses shown ${seen.join(" → ")}`;
});

await step("progress-in-list", async () => {
  // A job long enough to watch: twelve copies of a LAZ tile merged into one point cloud;
  // the list's progress bar must move before the job completes.
  const copies = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-copies-"));
  const files = [];
  for (let i = 1; i <= 12; i++) {
    const f = path.join(copies, `autzen_${String(i).padStart(2, "0")}.laz`);
    fs.copyFileSync(path.join(samples, "las/laspy/autzen_trim.laz"), f);
    files.push(f);
  }
  await upload(files, "POINT_CLOUD");
  await page.fill("#asset-name", "Twelve Autzen copies from the dashboard");
  await page.click("#upload-form button[type=submit]");
  await page.waitForURL(/#\/assets\/\d+$/, { timeout: 60000 });
  const id = Number(page.url().match(/(\d+)$/)[1]);
  await page.goto(`${server}/#/`);
  const values = new Set();
  const t0 = Date.now();
  let shot = false;
  for (;;) {
    // Status and bar are read in one step: the row is re-rendered as the job moves, and a
    // bar seen a moment ago may already be gone when the job completes.
    const [status, value] = await page.evaluate((rowId) => {
      const row = document.querySelector(`#assets tr[data-id="${rowId}"]`);
      const bar = row && row.querySelector("progress");
      return [row ? row.dataset.status : null, bar ? bar.getAttribute("value") : null];
    }, id);
    if (value !== null) {
      values.add(value);
      if (!shot) {
        await page.screenshot({ path: path.join(dir, "03-progress.png") });
        shot = true;
      }
    }
    if (status === "COMPLETE") break;
    if (status === "DATA_ERROR" || status === "ERROR") throw new Error(`point cloud upload ended ${status}`);
    if (Date.now() - t0 > 180000) throw new Error("point cloud upload not complete after 180 s");
    await page.waitForTimeout(100);
  }
  fs.rmSync(copies, { recursive: true, force: true });
  if (values.size < 2) throw new Error(`the progress bar did not move while the job ran (values ${[...values].join(", ") || "none"})`);
  return `progress values shown: ${[...values].join(", ")}%`;
});

await step("failed-upload", async () => {
  const bad = path.join(os.tmpdir(), "not-a-point-cloud.laz");
  fs.writeFileSync(bad, "this is not a LAS file\n".repeat(50));
  await upload([bad], "POINT_CLOUD");
  await page.click("#upload-form button[type=submit]");
  await page.waitForSelector("#processing-error", { timeout: 60000 });
  const text = await page.textContent("#processing-error");
  if (!/How to fix/.test(text) || !/not-a-point-cloud\.laz/.test(text)) throw new Error(`error card lacks the file or the mitigation: ${text}`);
  await page.screenshot({ path: path.join(dir, "04-error.png") });
  return text.replace(/\s+/g, " ").slice(0, 160);
});

await step("preview-and-pick", async () => {
  await page.goto(`${server}/#/assets/${cityId}`);
  await page.waitForFunction(
    () => document.querySelector("#viewer-status") && ["ready", "error"].includes(document.body.dataset.viewer),
    null,
    { timeout: 240000 }
  );
  const state = await page.evaluate(() => [document.body.dataset.viewer, document.querySelector("#viewer-status").textContent]);
  if (state[0] !== "ready") throw new Error(state[1]);
  await noOverflow();
  // The globe carries the offline basemap that ships with CesiumJS, not a bare colour.
  const base = await page.evaluate(() => {
    const layers = window.tesseraViewer.viewer.imageryLayers;
    const first = layers.length ? layers.get(0) : null;
    return first && first.ready ? String(first.imageryProvider.url || "") : "";
  });
  if (!base.includes("NaturalEarthII")) throw new Error(`no offline basemap under the data (first layer: "${base}")`);
  await page.screenshot({ path: path.join(dir, "05-preview.png") });
  // Find a pixel showing a building, then click it like a user.
  const spot = await page.evaluate(() => {
    const v = window.tesseraViewer.viewer;
    const C = window.Cesium;
    const r = v.canvas.getBoundingClientRect();
    for (let y = 0.3; y < 0.9; y += 0.03) {
      for (let x = 0.2; x < 0.8; x += 0.03) {
        const p = new C.Cartesian2(r.width * x, r.height * y);
        if (v.scene.pick(p) instanceof C.Cesium3DTileFeature) return { x: r.left + p.x, y: r.top + p.y };
      }
    }
    return null;
  });
  if (!spot) throw new Error("no building under any probed pixel");
  await page.mouse.click(spot.x, spot.y);
  await page.waitForSelector("#pick-table");
  const rows = await page.locator("#pick-table tr").allTextContents();
  if (!rows.some((r) => r.startsWith("gml_id"))) throw new Error(`picked metadata lacks gml_id: ${rows.join(" | ")}`);
  await page.screenshot({ path: path.join(dir, "06-metadata.png") });
  return `${state[1]} Clicked feature: ${rows.length} rows, ${rows.find((r) => r.startsWith("gml_id"))}`;
});

await step("point-metadata-and-combine", async () => {
  const list = await apiCall(server, token, "GET", "/v1/assets?type=3DTILES&status=COMPLETE&search=autzen");
  const autzen = list.items.find((a) => a.name === "Autzen (LAZ)") || list.items[0];
  if (!autzen) throw new Error("no completed Autzen point cloud to look at");
  await page.goto(`${server}/#/assets/${autzen.id}`);
  const ready = () =>
    page.waitForFunction(() => document.querySelector("#viewer-status") && ["ready", "error"].includes(document.body.dataset.viewer), null, { timeout: 240000 });
  await ready();
  const box = await page.locator("#cesium canvas").boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForFunction(() => document.querySelector("#pick h2") && document.querySelector("#pick h2").textContent === "Point", null, { timeout: 20000 });
  const rows = await page.locator("#pick-table tr").allTextContents();
  const dist = Number(await page.getAttribute("#pick", "data-point-distance-m"));
  if (!rows.some((r) => r.startsWith("classification")) || !rows.some((r) => r.startsWith("intensity"))) throw new Error(`point rows: ${rows.join(" | ")}`);
  if (!(dist < 1.5)) throw new Error(`nearest point ${dist} m from the picked position`);
  // GPS times are stored relative to each tile's offset; the panel shows the real time
  // (Autzen's lie between 245379 and 245386 s).
  const gps = rows.find((r) => r.startsWith("gps_time"));
  const t = gps && Number(gps.slice("gps_time".length));
  if (!(t > 245379 && t < 245386)) throw new Error(`gps_time row: ${gps}`);
  await page.screenshot({ path: path.join(dir, "08-point.png") });
  // Combine with the server's terrain and imagery assets.
  const pickFirst = async (sel) => {
    const v = await page.locator(`${sel} option`).nth(1).getAttribute("value").catch(() => null);
    if (!v) throw new Error(`no asset to choose in ${sel}`);
    await page.selectOption(sel, v);
    await ready();
  };
  await pickFirst("#with-imagery");
  await pickFirst("#with-terrain");
  const state = await page.evaluate(() => [document.body.dataset.viewer, document.querySelector("#viewer-status").textContent]);
  if (state[0] !== "ready") throw new Error(state[1]);
  await page.screenshot({ path: path.join(dir, "09-combined.png") });
  return `${rows.filter((r) => !/^(longitude|latitude|height)/.test(r)).join(", ")}; nearest point ${dist} m from the pick; combined with terrain and imagery: ${state[1]}`;
});

await step("tokens", async () => {
  await page.goto(`${server}/#/tokens`);
  await page.waitForSelector(`#tok-asset-${cityId}`);
  await page.fill("#token-name", "Yokosuka viewer");
  await page.check(`#tok-asset-${cityId}`);
  await page.click("#token-form button[type=submit]");
  await page.waitForSelector("#token-value");
  const t = (await page.textContent("#token-value")).trim();
  const own = await api("GET", `/v1/assets/${cityId}/endpoint`, t);
  const other = await api("GET", `/v1/assets/${cityId - 1}/endpoint`, t);
  if (own !== 200 || other !== 404) throw new Error(`restricted token: own asset ${own}, another ${other} (want 200, 404)`);
  await noOverflow();
  await page.screenshot({ path: path.join(dir, "07-tokens.png") });
  await page.click('button[aria-label="Revoke Yokosuka viewer"]');
  await page.waitForFunction(() => ![...document.querySelectorAll("#tokens td")].some((td) => td.textContent === "Yokosuka viewer"));
  const after = await api("GET", `/v1/assets/${cityId}/endpoint`, t);
  if (after !== 401) throw new Error(`revoked token still answers ${after}`);
  return `restricted token: own asset 200, other 404; revoked → 401`;
});

await browser.close();
console.log(`dashboard: ${total - failed} passed, ${failed} failed; screenshots in ${dir}`);
process.exit(failed ? 1 : 0);
