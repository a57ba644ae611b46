import { canonicalTimeZone, type Fingerprint } from "@troupe/events";
import type { BrowserContext, CDPSession, Page, Viewport } from "puppeteer-core";
import { followContextPages, followTargets, puppeteerSession } from "./page-targets.ts";

/** What the scenario needs of an applied fingerprint. */
export interface AppliedFingerprint {
  /** The Recorder's `setViewport` step: the page's viewport, with the fingerprint's screen kept. */
  setViewport(vp: Viewport): Promise<void>;
}

/** Whatever a frame or worker target refuses of the overrides (a worker has no Emulation domain), for the log. */
export type OverrideError = (what: string, e: Error) => void;

/**
 * Applies a job's fingerprint to its page before the first navigation: user
 * agent with client hints (without metadata Chromium drops the Sec-CH-UA
 * headers for a foreign UA) and navigator.platform, Accept-Language and
 * navigator.languages plus the JS locale, timezone, viewport/screen and
 * geolocation. Every target the page starts gets them too, before it runs:
 * cross-site frames (a renderer process and a CDP target of their own) and
 * dedicated workers saw the real browser — HeadlessChrome, Linux, en-US, UTC
 * — beside the page's fingerprint (an attack). Not reached: a cross-site
 * frame's screen and scale (Chromium emulates device metrics on top-level
 * targets only), a worker's navigator.platform (Chromium overrides it in
 * frames only) and service workers (Puppeteer detaches from them); see
 * docs/worker.md.
 */
export async function applyFingerprint(page: Page, context: BrowserContext, fp: Fingerprint | undefined, onError: OverrideError = () => {}): Promise<AppliedFingerprint | undefined> {
  if (!fp) return undefined;
  // Overrides belong to the CDP session that set them: this one lives as long as the page.
  const cdp = await page.createCDPSession();
  const agent = fp.userAgent || fp.userAgentMetadata || fp.locale ? await userAgentOverride(page, fp) : undefined;
  const timezone = fp.timezone ? (canonicalTimeZone(fp.timezone) ?? fp.timezone) : undefined;
  // Frames and workers the page starts: their sessions are announced before Puppeteer lets them run, and what is
  // sent on them now arrives first.
  followTargets(puppeteerSession(page), (s) => overrideTarget(s, fp, agent, timezone, onError));
  // Pages the job's page opens (a popup, a target=_blank link): top-level, so they take the screen and scale too.
  // It lets go with the page (also one a job aborted during the awaits above had closed already).
  followContextPages(page, context.id, (s, topLevel) => (topLevel ? overridePopup : overrideTarget)(s, fp, agent, timezone, onError));
  if (agent) await cdp.send("Network.setUserAgentOverride", agent);
  if (fp.locale) {
    await page.setExtraHTTPHeaders({ "Accept-Language": acceptLanguage(fp.locale) });
    await cdp.send("Emulation.setLocaleOverride", { locale: fp.locale.replace(/-/g, "_") });
  }
  // A name Intl does not know (a job from before the submission check) goes as it is, and Chromium says why.
  if (timezone) await page.emulateTimezone(timezone);
  if (fp.viewport) {
    await page.setViewport({
      width: fp.viewport.width,
      height: fp.viewport.height,
      deviceScaleFactor: fp.viewport.deviceScaleFactor ?? 1,
      isMobile: fp.viewport.isMobile ?? false,
      hasTouch: fp.viewport.hasTouch ?? false,
    });
  }
  // The screen goes with the page's metrics on this session, which outweighs Puppeteer's: a Recorder setViewport
  // step (Puppeteer's session) did nothing on a job with a screen, so the step sets both (setViewport below).
  const screen = fp.screen;
  const withScreen = async (vp: Viewport) => {
    if (!screen) return;
    await cdp.send("Emulation.setDeviceMetricsOverride", {
      width: vp.width, height: vp.height, deviceScaleFactor: vp.deviceScaleFactor ?? 1, mobile: vp.isMobile ?? false,
      screenWidth: screen.width, screenHeight: screen.height,
    });
  };
  await withScreen(page.viewport() ?? { width: screen?.width ?? 800, height: screen?.height ?? 600 });
  if (fp.geolocation) {
    // Granted for every origin of this context only.
    await context.setPermission("*", { permission: { name: "geolocation" }, state: "granted" });
    await page.setGeolocation({ latitude: fp.geolocation.latitude, longitude: fp.geolocation.longitude, accuracy: fp.geolocation.accuracy ?? 10 });
  }
  return {
    setViewport: async (vp) => {
      await page.setViewport(vp);
      await withScreen(vp);
    },
  };
}

type UserAgentOverride = { userAgent: string; acceptLanguage?: string; userAgentMetadata?: Fingerprint["userAgentMetadata"]; platform?: string };

async function userAgentOverride(page: Page, fp: Fingerprint): Promise<UserAgentOverride> {
  const userAgent = fp.userAgent ?? (await page.browser().userAgent());
  const platform = navigatorPlatform(fp.userAgentMetadata?.platform, userAgent);
  return {
    userAgent,
    // A list without q-values: Chromium adds them to the header (given them, it sent "de;q=0.9;q=0.9", and
    // navigator.languages held "de;q=0.9").
    ...(fp.locale ? { acceptLanguage: languageList(fp.locale) } : {}),
    ...(fp.userAgentMetadata ? { userAgentMetadata: fp.userAgentMetadata } : {}),
    ...(platform ? { platform } : {}),
  };
}

/** Sends the overrides to a frame or worker target; what it does not support is reported, the rest applies. */
function overrideTarget(s: CDPSession, fp: Fingerprint, agent: UserAgentOverride | undefined, timezone: string | undefined, onError: OverrideError) {
  const send = (what: string, p: Promise<unknown>) => void p.catch((e: Error) => onError(what, e));
  if (agent) send("Network.setUserAgentOverride", s.send("Network.setUserAgentOverride", agent));
  if (fp.locale) send("Emulation.setLocaleOverride", s.send("Emulation.setLocaleOverride", { locale: fp.locale.replace(/-/g, "_") }));
  if (timezone) send("Emulation.setTimezoneOverride", s.send("Emulation.setTimezoneOverride", { timezoneId: timezone }));
  // Not the screen and scale: Chromium takes device metrics on top-level targets only ("Command can only be executed
  // on top-level targets"), so a cross-site frame sees the real screen and a scale of 1 (docs/worker.md).
}

/** A page the job's page opened: what a frame gets, and the viewport, screen, touch and geolocation (it is top-level). */
function overridePopup(s: CDPSession, fp: Fingerprint, agent: UserAgentOverride | undefined, timezone: string | undefined, onError: OverrideError) {
  overrideTarget(s, fp, agent, timezone, onError);
  const send = (what: string, p: Promise<unknown>) => void p.catch((e: Error) => onError(what, e));
  if (fp.viewport || fp.screen) {
    const width = fp.viewport?.width ?? fp.screen?.width ?? 0;
    const height = fp.viewport?.height ?? fp.screen?.height ?? 0;
    send("Emulation.setDeviceMetricsOverride", s.send("Emulation.setDeviceMetricsOverride", {
      width: fp.viewport ? width : 0, height: fp.viewport ? height : 0, deviceScaleFactor: fp.viewport?.deviceScaleFactor ?? 0, mobile: fp.viewport?.isMobile ?? false,
      ...(fp.screen ? { screenWidth: fp.screen.width, screenHeight: fp.screen.height } : {}),
    }));
  }
  if (fp.viewport?.hasTouch) send("Emulation.setTouchEmulationEnabled", s.send("Emulation.setTouchEmulationEnabled", { enabled: true, maxTouchPoints: 1 }));
  if (fp.geolocation) send("Emulation.setGeolocationOverride", s.send("Emulation.setGeolocationOverride", { latitude: fp.geolocation.latitude, longitude: fp.geolocation.longitude, accuracy: fp.geolocation.accuracy ?? 10 }));
}

/** navigator.platform as the browser in question reports it (Chromium's override took the client-hint name, "Windows"). */
const PLATFORMS: Record<string, string> = { windows: "Win32", macos: "MacIntel", linux: "Linux x86_64", android: "Linux armv8l", "chrome os": "CrOS x86_64", chromeos: "CrOS x86_64" };

/** From the client-hint platform when there is one, else from the user agent; undefined: the browser's own. */
export function navigatorPlatform(hintPlatform: string | undefined, userAgent: string): string | undefined {
  if (hintPlatform !== undefined) return PLATFORMS[hintPlatform.toLowerCase()] ?? hintPlatform;
  if (/\biPhone\b/.test(userAgent)) return "iPhone";
  if (/\biPad\b/.test(userAgent)) return "iPad";
  if (/\bAndroid\b/.test(userAgent)) return "Linux armv8l";
  if (/\bWindows\b/.test(userAgent)) return "Win32";
  if (/\bMacintosh\b/.test(userAgent)) return "MacIntel";
  if (/\bCrOS\b/.test(userAgent)) return "CrOS x86_64";
  if (/\bLinux\b/.test(userAgent)) return "Linux x86_64";
  return undefined;
}

/** "de-DE" → "de-DE,de": navigator.languages, and Chromium's Accept-Language once it adds the q-values. */
export function languageList(locale: string): string {
  const base = locale.split("-")[0] as string;
  return base === locale ? locale : `${locale},${base}`;
}

/** "de-DE" → "de-DE,de;q=0.9": the header as sent. */
export function acceptLanguage(locale: string): string {
  const base = locale.split("-")[0] as string;
  return base === locale ? locale : `${locale},${base};q=0.9`;
}
