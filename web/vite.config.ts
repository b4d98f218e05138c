// The web app: plain TypeScript on the SDK's sources (../sdk/js/src), so a
// fresh clone builds with `npm ci` here alone; the SDK's dependencies
// (@bufbuild/protobuf, and tus-js-client for its media entry) come from this
// package's node_modules.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  resolve: {
    alias: [
      { find: /^@actorim\/sdk\/media$/, replacement: fileURLToPath(new URL("../sdk/js/src/media.ts", import.meta.url)) },
      { find: /^@actorim\/sdk$/, replacement: fileURLToPath(new URL("../sdk/js/src/index.ts", import.meta.url)) },
    ],
    dedupe: ["@bufbuild/protobuf", "tus-js-client"],
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
  },
});
