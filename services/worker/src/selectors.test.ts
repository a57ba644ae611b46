import { describe, expect, it } from "vitest";
import { selectorAlternatives, toPSelector, toPuppeteerSelector } from "./selectors.ts";

describe("Recorder selectors", () => {
  it("keeps single selectors as Puppeteer understands the Recorder prefixes", () => {
    expect(selectorAlternatives([["aria/Submit"], ["#submit"], ['xpath///*[@id="submit"]'], ["pierce/#submit"], ["text/Submit"]]))
      .toEqual(["aria/Submit", "#submit", 'xpath///*[@id="submit"]', "pierce/#submit", "text/Submit"]);
    expect(toPuppeteerSelector("button.primary")).toBe("button.primary");
  });
  it("maps prefixes to P-selectors with quoting", () => {
    expect(toPSelector('aria/Say "hi"')).toBe('::-p-aria("Say \\"hi\\"")');
    expect(toPSelector("xpath///div")).toBe('::-p-xpath("//div")');
    expect(toPSelector("text/Go")).toBe('::-p-text("Go")');
    expect(toPSelector("pierce/#x")).toBe(">>> #x");
  });
  it("joins a chain through shadow roots", () => {
    expect(toPuppeteerSelector(["my-app", "#inner"])).toBe("my-app >>>> #inner");
    expect(toPuppeteerSelector(["my-app", "aria/Save"])).toBe('my-app >>>> ::-p-aria("Save")');
    expect(toPuppeteerSelector(["pierce/my-app", "pierce/#x"])).toBe(":root >>> my-app >>> #x");
  });
});
