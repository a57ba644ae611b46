import { canonicalTimeZone, type Fingerprint } from "@troupe/events";
import type { BrowserContext, Page } from "puppeteer-core";

/**
 * Applies a job's fingerprint to its page before the first navigation: user
 * agent with client hints (without metadata Chromium drops the Sec-CH-UA
 * headers for a foreign UA), Accept-Language plus the JS locale, timezone,
 * viewport/screen and geolocation.
 */
export async function applyFingerprint(page: Page, context: BrowserContext, fp: Fingerprint | undefined): Promise<void> {
  if (!fp) return;
  // Overrides belong to the CDP session that set them: this one lives as long as the page.
  const cdp = await page.createCDPSession();
  if (fp.userAgent || fp.userAgentMetadata || fp.locale) {
    const userAgent = fp.userAgent ?? (await page.browser().userAgent());
    // Network.setUserAgentOverride sets the header, navigator.userAgent, client hints and Accept-Language in one go.
    await cdp.send("Network.setUserAgentOverride", {
      userAgent,
      ...(fp.locale ? { acceptLanguage: acceptLanguage(fp.locale) } : {}),
      ...(fp.userAgentMetadata ? { userAgentMetadata: fp.userAgentMetadata, platform: fp.userAgentMetadata.platform } : {}),
    });
  }
  if (fp.locale) {
    await page.setExtraHTTPHeaders({ "Accept-Language": acceptLanguage(fp.locale) });
    await cdp.send("Emulation.setLocaleOverride", { locale: fp.locale.replace(/-/g, "_") });
  }
  // A name Intl does not know (a job from before the submission check) goes as it is, and Chromium says why.
  if (fp.timezone) await page.emulateTimezone(canonicalTimeZone(fp.timezone) ?? fp.timezone);
  if (fp.viewport) {
    await page.setViewport({
      width: fp.viewport.width,
      height: fp.viewport.height,
      deviceScaleFactor: fp.viewport.deviceScaleFactor ?? 1,
      isMobile: fp.viewport.isMobile ?? false,
      hasTouch: fp.viewport.hasTouch ?? false,
    });
  }
  if (fp.screen) {
    const vp = page.viewport() ?? { width: fp.screen.width, height: fp.screen.height, deviceScaleFactor: 1, isMobile: false };
    await cdp.send("Emulation.setDeviceMetricsOverride", {
      width: vp.width, height: vp.height, deviceScaleFactor: vp.deviceScaleFactor ?? 1, mobile: vp.isMobile ?? false,
      screenWidth: fp.screen.width, screenHeight: fp.screen.height,
    });
  }
  if (fp.geolocation) {
    // Granted for every origin of this context only.
    await context.setPermission("*", { permission: { name: "geolocation" }, state: "granted" });
    await page.setGeolocation({ latitude: fp.geolocation.latitude, longitude: fp.geolocation.longitude, accuracy: fp.geolocation.accuracy ?? 10 });
  }
}

/** "de-DE" → "de-DE,de;q=0.9". */
export function acceptLanguage(locale: string): string {
  const base = locale.split("-")[0] as string;
  return base === locale ? locale : `${locale},${base};q=0.9`;
}
