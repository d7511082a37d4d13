// /docs in a real browser (headless Chromium through playwright-core): the
// reference renders every documented operation under its own
// Content-Security-Policy, with no violation, no script error and no request
// leaving this server. Skipped where no Chromium is installed.
import { rmSync } from "node:fs";
import type { Browser } from "playwright-core";
import { chromiumPath, launchChromium, openWatchedPage } from "../helpers/browser.js";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DOCS_PATH } from "../../src/http/openapi.js";
import { openApp, tempDbFile } from "../helpers/app.js";

const executablePath = chromiumPath();

describe.skipIf(executablePath === null)("/docs in a browser", () => {
  const db = tempDbFile();
  let app: FastifyInstance;
  let browser: Browser;
  let origin: string;
  beforeAll(async () => {
    ({ app } = await openApp(db.file));
    await app.listen({ port: 0, host: "127.0.0.1" });
    origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    browser = await launchChromium(executablePath!);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    rmSync(db.dir, { recursive: true, force: true });
  });

  it("renders every operation of the document; no CSP violation, no error, nothing fetched elsewhere", async () => {
    const { page, problems, elsewhere } = await openWatchedPage(browser, origin);
    await page.goto(`${origin}${DOCS_PATH}`);
    await page.waitForSelector(".opblock");
    const described = (await (await fetch(`${origin}/openapi.json`)).json()) as { paths: Record<string, object> };
    const operations = Object.values(described.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    await expect.poll(() => page.locator(".opblock").count()).toBe(operations);
    // Open one operation: its schemas render too.
    await page.locator(".opblock-summary").first().click();
    await page.waitForSelector(".responses-wrapper");
    expect(problems).toEqual([]);
    expect(elsewhere).toEqual([]);
    await page.close();
  });
});
