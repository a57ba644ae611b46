// See https://svelte.dev/docs/kit/types#app.d.ts
declare global {
  namespace App {
    interface Error {
      code?: string;
    }
    interface Locals {
      /** False only on /login when a token is required and none was presented. */
      authenticated: boolean;
    }
  }
}
export {};
