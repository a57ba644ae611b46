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
      last = Date.now();
      void invalidate(key);
    }, Math.max(0, last + everyMs - Date.now()));
  });
  onMount(() => () => clearTimeout(timer));
}
