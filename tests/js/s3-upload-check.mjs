// The ion upload tutorial's S3 step with the AWS SDK for JavaScript v3, against a running
// `tessera serve`: lib-storage Upload of a 12 MiB file (three parts, default CRC32
// checksums) and a PutObjectCommand with a stream body (aws-chunked with a trailer);
// both must arrive byte-identical. Usage: node s3-upload-check.mjs BASE_URL TOKEN DATA_DIR
import { S3Client, PutObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync, createReadStream, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, token, dataDir] = process.argv.slice(2);
const auth = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
const sha = (b) => createHash("sha256").update(b).digest("hex");

const created = await (await fetch(`${base}/v1/assets`, {
  method: "POST", headers: auth,
  body: JSON.stringify({ name: "js sdk", type: "3DTILES", options: { sourceType: "POINT_CLOUD" } }),
})).json();
const loc = created.uploadLocation;
const id = created.assetMetadata.id;
const s3 = new S3Client({
  region: "us-east-1", endpoint: loc.endpoint, forcePathStyle: true,
  credentials: { accessKeyId: loc.accessKey, secretAccessKey: loc.secretAccessKey, sessionToken: loc.sessionToken },
});

const big = randomBytes(12 << 20);
await new Upload({ client: s3, params: { Bucket: loc.bucket, Key: `${loc.prefix}big.bin`, Body: big } }).done();
const streamFile = join(tmpdir(), `tessera-js-${process.pid}.bin`);
writeFileSync(streamFile, randomBytes(3 << 20));
await s3.send(new PutObjectCommand({
  Bucket: loc.bucket, Key: `${loc.prefix}stream.bin`,
  Body: createReadStream(streamFile), ContentLength: statSync(streamFile).size,
}));
const stored = (name) => readFileSync(join(dataDir, "sources", String(id), name));
const ok1 = sha(stored("big.bin")) === sha(big);
const ok2 = sha(stored("stream.bin")) === sha(readFileSync(streamFile));
let refused = false;
try {
  await s3.send(new PutObjectCommand({ Bucket: loc.bucket, Key: "sources/1/evil.bin", Body: "x" }));
} catch (e) {
  refused = e.name === "AccessDenied" || String(e).includes("AccessDenied");
}
console.log(`S3-JS multipart Upload 12 MiB: ${ok1 ? "identical" : "DIFFERENT"}; stream PutObject: ${ok2 ? "identical" : "DIFFERENT"}; outside prefix refused: ${refused}`);
process.exit(ok1 && ok2 && refused ? 0 : 1);
