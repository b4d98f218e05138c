// Bundles the SDK core (src/index.ts with the ts-proto wire types and the
// @bufbuild/protobuf/wire reader and writer they use) minified for browsers
// and prints its size, gzipped, with where the bytes come from; then the
// media entry (src/media.ts with tus-js-client's browser build), which a
// page loads beside the core (the bytes they share are counted in the core).
import { build } from "esbuild";
import { gzipSync } from "node:zlib";

async function bundle(entry) {
  const r = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    metafile: true,
  });
  const bytes = r.outputFiles[0].contents;
  return { r, bytes, gz: gzipSync(bytes, { level: 9 }) };
}

const core = await bundle("src/index.ts");
console.log(`core bundle: ${core.bytes.length} bytes minified, ${core.gz.length} bytes gzipped (${(core.gz.length / 1024).toFixed(1)} KiB)`);
const parts = { "SDK (src/*.ts)": 0, "wire types (src/gen)": 0, "@bufbuild/protobuf/wire": 0 };
for (const [path, v] of Object.entries(Object.values(core.r.metafile.outputs)[0].inputs)) {
  const k = path.includes("@bufbuild/protobuf") ? "@bufbuild/protobuf/wire" : path.includes("src/gen/") ? "wire types (src/gen)" : "SDK (src/*.ts)";
  parts[k] += v.bytesInOutput;
}
for (const [k, n] of Object.entries(parts)) console.log(`  ${k}: ${n} bytes minified`);

const media = await bundle("src/media.ts");
console.log(`media entry (@actorim/sdk/media, not in the core): ${media.bytes.length} bytes minified, ${media.gz.length} bytes gzipped (${(media.gz.length / 1024).toFixed(1)} KiB)`);
const mparts = { "src/media.ts and what it shares with the core": 0, "tus-js-client and its dependencies": 0 };
for (const [path, v] of Object.entries(Object.values(media.r.metafile.outputs)[0].inputs)) {
  mparts[path.includes("node_modules") ? "tus-js-client and its dependencies" : "src/media.ts and what it shares with the core"] += v.bytesInOutput;
}
for (const [k, n] of Object.entries(mparts)) console.log(`  ${k}: ${n} bytes minified`);
