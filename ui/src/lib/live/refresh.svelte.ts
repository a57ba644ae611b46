import { onMount } from "svelte";
import { invalidate } from "$app/navigation";
import { live } from "./live.svelte.ts";

/**
 * Reloads the page data that depends on `key` (aggregates of the read models: counts, per-minute series, the
 * projector's lag) at most every `everyMs` while live events arrive: driven by events, no polling of an idle
 * fleet. Call it while the component initialises.
 */
export function reloadWhileEventsArrive(key: string, everyMs: number): void {
  let last = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  $effect(() => {
    if (live.applied === 0 || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      // The dashboard refused this page's sign-in (a catch-up found it): its reload is refused too, and SvelteKit
      // follows the refusal's redirect to the login page in this page's place. The page keeps what it has and says to
      // sign in again (the footer); the next event after a check that passes reloads as before.
      if (live.behind?.stopped === "sign-in") return;
      last = Date.now();
      void invalidate(key);
    }, Math.max(0, last + everyMs - Date.now()));
  });
  onMount(() => () => clearTimeout(timer));
}
