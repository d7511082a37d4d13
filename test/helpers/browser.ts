// Headless Chromium for the browser tests: Debian's package (or
// CHROMIUM_PATH), launched with the flags this machine needs, and a page
// that records what a test must see none of: script errors, CSP violations
// and requests to anywhere but the server under test.
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";

/** The browser to run, or null where none is installed (the tests are then skipped). */
export function chromiumPath(): string | null {
  const candidates = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", chromium.executablePath()];
  return candidates.find((p): p is string => p !== undefined && p !== "" && existsSync(p)) ?? null;
}

export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
}

export interface WatchedPage {
  readonly page: Page;
  /** Console errors, uncaught exceptions and CSP violations, as they happened. */
  readonly problems: string[];
  /** Every URL requested outside `origin` (data: URLs aside). */
  readonly elsewhere: string[];
}

export async function openWatchedPage(browser: Browser, origin: string, viewport?: { width: number; height: number }): Promise<WatchedPage> {
  const page = await browser.newPage(viewport ? { viewport } : {});
  const problems: string[] = [];
  const elsewhere: string[] = [];
  // Run in the page (a string: this project's TypeScript has no DOM types).
  await page.addInitScript({
    content: 'document.addEventListener("securitypolicyviolation", (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.sourceFile}:${e.lineNumber}`));',
  });
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("request", (r) => { if (!r.url().startsWith(`${origin}/`) && !r.url().startsWith("data:")) elsewhere.push(r.url()); });
  return { page, problems, elsewhere };
}
