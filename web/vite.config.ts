// The web app: plain TypeScript on the SDK's sources (../sdk/js/src), so a
// fresh clone builds with `npm ci` here alone; @bufbuild/protobuf (the SDK's
// one dependency) comes from this package's node_modules.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  resolve: {
    alias: { "@actorim/sdk": fileURLToPath(new URL("../sdk/js/src/index.ts", import.meta.url)) },
    dedupe: ["@bufbuild/protobuf"],
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
  },
});
