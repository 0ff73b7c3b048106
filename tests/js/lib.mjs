// Helpers the browser tests share: the system chromium through playwright-core with the
// network closed to everything but loopback, a request log that turns failures into test
// failures, asset creation through the ion REST API, and screenshot statistics.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export async function launch({ width = 1024, height = 640 } = {}) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--use-angle=swiftshader",
      "--enable-unsafe-swiftshader",
      "--ignore-gpu-blocklist",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  const log = new RequestLog();
  // Offline: only loopback is reachable; anything else is a failure of its own.
  await context.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (["data:", "blob:"].includes(u.protocol) || ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) return route.fallback();
    log.problems.push(`blocked request to a non-local host: ${u.href}`);
    return route.abort("blockedbyclient");
  });
  log.attach(context);
  return { browser, context, log };
}

export class RequestLog {
  constructor() {
    this.problems = [];
    this.responses = [];
  }
  attach(context) {
    context.on("response", (r) => {
      this.responses.push({ url: r.url(), status: r.status(), headers: r.headers() });
      if (r.status() >= 400) this.problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
    });
    context.on("requestfailed", (r) => {
      const why = (r.failure() && r.failure().errorText) || "";
      // CesiumJS cancels requests for tiles that left the view; that is not a failure.
      if (why.includes("ERR_ABORTED") || why.includes("blockedbyclient")) return;
      this.problems.push(`request failed: ${r.url()}: ${why}`);
    });
  }
  watch(page) {
    page.on("console", (m) => {
      if (m.type() === "error") this.problems.push(`console error: ${m.text()}`);
    });
    page.on("pageerror", (e) => this.problems.push(`page error: ${e.message}`));
  }
  take() {
    const p = this.problems;
    this.problems = [];
    return p;
  }
}

export async function apiCall(server, token, method, route, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(new URL(route, server), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${route}: HTTP ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// Create an asset, upload its files through the direct-upload route, start processing and
// wait until it is COMPLETE (a DATA_ERROR or ERROR fails with the server's reason).
export async function createAsset(server, token, { name, type, options, files }, timeoutS = 600) {
  const created = await apiCall(server, token, "POST", "/v1/assets", { name, type, options });
  const id = created.assetMetadata.id;
  for (const f of files) {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const r = await fetch(new URL(`/v1/assets/${id}/files/${encodeURIComponent(path.basename(f))}`, server), {
      method: "PUT",
      headers,
      body: fs.readFileSync(f),
    });
    if (!r.ok) throw new Error(`upload of ${f}: HTTP ${r.status} ${await r.text()}`);
  }
  await apiCall(server, token, "POST", `/v1/assets/${id}/uploadComplete`, {});
  const t0 = Date.now();
  for (;;) {
    const a = await apiCall(server, token, "GET", `/v1/assets/${id}`);
    if (a.status === "COMPLETE") return { id, asset: a, seconds: (Date.now() - t0) / 1000 };
    if (a.status === "DATA_ERROR" || a.status === "ERROR") {
      throw new Error(`asset ${id} (${name}) ended ${a.status}: ${JSON.stringify(a.processingError)}`);
    }
    if (Date.now() - t0 > timeoutS * 1000) throw new Error(`asset ${id} (${name}) still ${a.status} after ${timeoutS} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// Luminance standard deviation of a PNG and the share of pixels that differ from a
// baseline PNG by more than 24 in any channel, computed by the browser's own decoder.
export async function pixelStats(page, png, baselinePng) {
  return page.evaluate(
    async ([a, b]) => {
      const decode = async (b64) => {
        const blob = await (await fetch(`data:image/png;base64,${b64}`)).blob();
        const bmp = await createImageBitmap(blob);
        const c = new OffscreenCanvas(bmp.width, bmp.height);
        const g = c.getContext("2d");
        g.drawImage(bmp, 0, 0);
        return g.getImageData(0, 0, bmp.width, bmp.height).data;
      };
      const x = await decode(a);
      const y = b ? await decode(b) : null;
      let sum = 0;
      let sum2 = 0;
      let changed = 0;
      const n = x.length / 4;
      for (let i = 0; i < x.length; i += 4) {
        const l = 0.2126 * x[i] + 0.7152 * x[i + 1] + 0.0722 * x[i + 2];
        sum += l;
        sum2 += l * l;
        if (y && (Math.abs(x[i] - y[i]) > 24 || Math.abs(x[i + 1] - y[i + 1]) > 24 || Math.abs(x[i + 2] - y[i + 2]) > 24)) changed++;
      }
      const mean = sum / n;
      return { stddev: Math.sqrt(Math.max(0, sum2 / n - mean * mean)), changedPct: y ? (100 * changed) / n : null };
    },
    [png.toString("base64"), baselinePng ? baselinePng.toString("base64") : null]
  );
}

export function outDir(name) {
  const d = path.resolve(process.env.TESSERA_SHOTS || "target", name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}
