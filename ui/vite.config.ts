import { sveltekit } from "@sveltejs/kit/vite";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [sveltekit()],
  // The contract and the projector's read models are TypeScript sources in the workspace: bundle them.
  ssr: { noExternal: ["@troupe/events"] },
});
