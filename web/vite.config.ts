import { defineConfig } from "vite";

// `npm run dev` serves the app with hot reload and passes /api to an eoengine server (EOENGINE_SERVER,
// default http://127.0.0.1:8000), so the app runs same-origin with its session cookie as in production.
const server = process.env.EOENGINE_SERVER ?? "http://127.0.0.1:8000";

// The built app is package data of the Python package: the platform server serves it at `/`.
export default defineConfig({
  base: "/",
  server: { host: "127.0.0.1", proxy: { "/api": { target: server } } },
  build: {
    outDir: "../src/eoengine/platform/web_dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000, // maplibre-gl alone is about 1 MB minified
  },
});
