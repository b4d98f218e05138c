// Bundles the SDK core (src/index.ts with the ts-proto wire types and the
// @bufbuild/protobuf/wire reader and writer they use)
// minified for browsers and prints its size, gzipped, with where the bytes come from.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";

const r = await build({
  entryPoints: ["src/index.ts"],
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  write: false,
  metafile: true,
});
const bytes = r.outputFiles[0].contents;
const gz = gzipSync(bytes, { level: 9 });
console.log(`core bundle: ${bytes.length} bytes minified, ${gz.length} bytes gzipped (${(gz.length / 1024).toFixed(1)} KiB)`);

const parts = { "SDK (src/*.ts)": 0, "wire types (src/gen)": 0, "@bufbuild/protobuf/wire": 0 };
for (const [path, v] of Object.entries(Object.values(r.metafile.outputs)[0].inputs)) {
  const k = path.includes("@bufbuild/protobuf") ? "@bufbuild/protobuf/wire" : path.includes("src/gen/") ? "wire types (src/gen)" : "SDK (src/*.ts)";
  parts[k] += v.bytesInOutput;
}
for (const [k, n] of Object.entries(parts)) console.log(`  ${k}: ${n} bytes minified`);
