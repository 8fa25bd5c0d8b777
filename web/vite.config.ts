// Builds the dashboard into dist/, which `outpost hub` serves (hub/dashboard.h). Everything
// is bundled: no CDN, no external fonts, so it works on a hub with no internet.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
  },
});
