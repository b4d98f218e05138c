// Bundles the SDK core (src/index.ts with the wire types and @bufbuild/protobuf)
// minified for browsers and prints its size raw and gzipped.
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
  treeShaking: true,
});
const bytes = r.outputFiles[0].contents;
const gz = gzipSync(bytes, { level: 9 });
console.log(`core bundle: ${bytes.length} bytes minified, ${gz.length} bytes gzipped (${(gz.length / 1024).toFixed(1)} KiB)`);
