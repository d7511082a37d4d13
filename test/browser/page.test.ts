// The live topology page (/) in headless Chromium through playwright-core,
// against a real listening server on the intel-2s preset: the page draws
// the units and groups, then follows changes made through the API (a
// successful attach, a soft EINVAL refusal) without a reload, under its own
// Content-Security-Policy, with no script error and no request leaving this
// server. With tokens configured it asks for one and works once it is
// pasted. Skipped where no Chromium is installed.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Browser } from "playwright-core";
import { pino } from "pino";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { buildApp } from "../../src/http/app.js";
import { makeTokenEntry, parseTokenTable, type TokenTable } from "../../src/http/tokens.js";
import { applyPreset, readTopologyFile } from "../../src/startup/topology.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, TEST_LIMITS, tempDbFile } from "../helpers/app.js";
import { chromiumPath, launchChromium, openWatchedPage } from "../helpers/browser.js";

const executablePath = chromiumPath();
const INTEL = path.join(PROJECT_ROOT, "examples", "intel-2s-server.json");
/** How long to wait for the page to show a change (a bound, not a measurement: the machine may be busy). */
const WAIT = { timeout: 15_000, interval: 50 };
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface Served {
  readonly app: FastifyInstance;
  readonly origin: string;
  readonly dir: string;
}

/** The server on a new database with the intel-2s preset; with `tokens` (client name → role), bearer tokens are required. */
async function serve(tokens: TokenTable | null): Promise<Served> {
  const db = tempDbFile();
  const store = await SqliteStore.open({ drivers: DRIVERS, file: db.file, migrationsDir: MIGRATIONS });
  await applyPreset(store, INTEL, readTopologyFile(INTEL), pino({ level: "silent" }), DRIVERS);
  const app = await buildApp({ store, logger: false, limits: TEST_LIMITS, tokens });
  app.addHook("onClose", () => store.close());
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, origin: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, dir: db.dir };
}

/** A page that records script errors, CSP violations and requests to anywhere but `origin`. */
function openPage(browser: Browser, origin: string) {
  return openWatchedPage(browser, origin, { width: 1400, height: 1000 });
}

async function post(origin: string, url: string, body: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${origin}${url}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe.skipIf(executablePath === null)("the topology page in a browser", () => {
  let browser: Browser;
  const shots = mkdtempSync(path.join(os.tmpdir(), "iommu-arbiter-page-"));
  beforeAll(async () => {
    browser = await launchChromium(executablePath!);
  });
  afterAll(async () => {
    await browser?.close();
    rmSync(shots, { recursive: true, force: true });
  });

  describe("open mode", () => {
    let served: Served;
    beforeAll(async () => { served = await serve(null); });
    afterAll(async () => {
      await served?.app.close();
      if (served) rmSync(served.dir, { recursive: true, force: true });
    });

    it("draws units, groups and devices, then shows an attach and a soft refusal as they happen", async () => {
      const { origin } = served;
      const { page, problems, elsewhere } = await openPage(browser, origin);
      await page.goto(`${origin}/`);
      await page.waitForSelector(".unit .group");
      // Every unit and group of the service, each group inside its unit.
      const units = (await (await fetch(`${origin}/v1/units`)).json()) as { items: { id: number; name: string; driver: string }[] };
      const groups = (await (await fetch(`${origin}/v1/groups?limit=1000`)).json()) as { items: { id: number; unitId: number; domainId: number }[] };
      expect(await page.locator(".unit").count()).toBe(units.items.length);
      expect(await page.locator(".group").count()).toBe(groups.items.length);
      for (const unit of units.items) {
        const box = page.locator(`.unit[data-unit-id="${unit.id}"]`);
        await expect.poll(() => box.locator(".unit-name").textContent(), WAIT).toBe(unit.name);
        expect(await box.locator(".driver").textContent()).toBe(unit.driver);
        expect(await box.locator(".group").count()).toBe(groups.items.filter((g) => g.unitId === unit.id).length);
      }
      const group1 = page.locator('.group[data-group-id="1"]');
      expect(await group1.getAttribute("data-domain-id")).toBe(String(groups.items.find((g) => g.id === 1)!.domainId));
      await expect.poll(() => page.locator("#status").getAttribute("data-state"), WAIT).toMatch(/^(live|polling)$/);

      // Through the API, not the page: a successful attach ...
      const attached = await post(origin, "/v1/groups/1/attach", { domainId: 11 });
      expect(attached.status).toBe(200);
      await expect.poll(() => group1.getAttribute("data-domain-id"), WAIT).toBe("11");
      await expect.poll(() => group1.locator(".dom").first().getAttribute("data-domain-type"), WAIT).toBe("paging");
      await expect.poll(() => group1.locator(".attempt.ok").count(), WAIT).toBe(1);
      // ... and a soft refusal (dmar1 has no snoop control): amber, not red.
      const refused = await post(origin, "/v1/groups/9/attach", { domainId: 11 });
      expect(refused.status).toBe(409);
      expect(refused.json).toMatchObject({ errno: "EINVAL", soft: true, reason: "snoop-control" });
      const group9 = page.locator('.group[data-group-id="9"]');
      await expect.poll(() => group9.locator(".attempt.soft").count(), WAIT).toBe(1);
      expect(await group9.locator(".attempt.soft").getAttribute("data-errno")).toBe("EINVAL");
      expect(await group9.locator(".attempt.soft").textContent()).toContain("snoop-control");
      expect(await group9.locator(".attempt.hard").count()).toBe(0);
      // ... and a hard one (EBUSY: group 1 is already on a domain of someone's choosing): red.
      const busy = await post(origin, "/v1/groups/1/attach", { domainId: 12 });
      expect(busy.json).toMatchObject({ errno: "EBUSY", soft: false });
      await expect.poll(() => group1.locator(".attempt.hard").count(), WAIT).toBe(1);
      // The latest attempts, newest first.
      await expect.poll(() => page.locator("#log .attempt").count(), WAIT).toBe(3);
      expect(await page.locator("#log .attempt").first().getAttribute("data-errno")).toBe("EBUSY");

      const file = path.join(shots, "topology.png");
      await page.screenshot({ path: file, fullPage: true });
      const png = readFileSync(file);
      expect(png.length).toBeGreaterThan(PNG_SIGNATURE.length);
      expect(png.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)).toBe(true);
      // PAGE_SCREENSHOT=file.png keeps a copy to look at.
      if (process.env.PAGE_SCREENSHOT) copyFileSync(file, process.env.PAGE_SCREENSHOT);

      expect(problems).toEqual([]);
      expect(elsewhere).toEqual([]);
      await page.close();
    });

    it("the move form attaches through the API and shows the answer: ok green, a soft refusal amber", async () => {
      const { origin } = served;
      const { page, problems, elsewhere } = await openPage(browser, origin);
      await page.goto(`${origin}/`);
      await page.waitForSelector('#move-domain option[value="12"]', { state: "attached" });
      await page.selectOption("#move-group", "4");
      await page.selectOption("#move-op", "attach");
      await page.selectOption("#move-domain", "12");
      await page.click("#move-form button[type=submit]");
      await expect.poll(() => page.locator("#move-result").getAttribute("class"), WAIT).toBe("move-result attempt ok");
      const group4 = page.locator('.group[data-group-id="4"]');
      await expect.poll(() => group4.getAttribute("data-domain-id"), WAIT).toBe("12");
      const fromApi = (await (await fetch(`${origin}/v1/groups/4`)).json()) as { domainId: number };
      expect(fromApi.domainId).toBe(12);
      // dmar1 has no snoop control: group 10 onto the coherent domain 11 is a soft EINVAL.
      await page.selectOption("#move-group", "10");
      await page.selectOption("#move-domain", "11");
      await page.click("#move-form button[type=submit]");
      await expect.poll(() => page.locator("#move-result").getAttribute("class"), WAIT).toBe("move-result attempt soft");
      expect(await page.locator("#move-result").textContent()).toContain("EINVAL (soft) snoop-control");
      await expect.poll(() => page.locator('.group[data-group-id="10"] .attempt.soft').count(), WAIT).toBe(1);
      // The refused request is the one error the browser logs.
      expect(problems.filter((p) => !p.includes("409"))).toEqual([]);
      expect(elsewhere).toEqual([]);
      await page.close();
    });

    it("falls back to polling the paged log when the stream is refused, and still follows changes", async () => {
      const { origin } = served;
      const { page, problems, elsewhere } = await openPage(browser, origin);
      // The stream request answers 503, as a server at its stream cap would.
      await page.route((url) => url.pathname === "/v1/events", async (route) => {
        if ((route.request().headers().accept ?? "").includes("text/event-stream")) {
          await route.fulfill({ status: 503, contentType: "application/problem+json", body: "{}" });
        } else {
          await route.continue();
        }
      });
      await page.goto(`${origin}/`);
      await page.waitForSelector(".unit .group");
      await expect.poll(() => page.locator("#status").getAttribute("data-state"), WAIT).toBe("polling");
      const group2 = page.locator('.group[data-group-id="2"]');
      expect(await post(origin, "/v1/groups/2/attach", { domainId: 12 }).then((r) => r.status)).toBe(200);
      await expect.poll(() => group2.getAttribute("data-domain-id"), WAIT).toBe("12");
      await expect.poll(() => group2.locator(".attempt.ok").count(), WAIT).toBe(1);
      expect(problems.filter((p) => !p.includes("503"))).toEqual([]);
      expect(elsewhere).toEqual([]);
      await page.close();
    });
  });

  describe("with tokens", () => {
    let served: Served;
    const reader = makeTokenEntry("viewer", "reader");
    const client = makeTokenEntry("vm-a", "client");
    beforeAll(async () => {
      served = await serve(parseTokenTable(JSON.stringify({ tokens: [reader.entry, client.entry] }), "test tokens"));
    });
    afterAll(async () => {
      await served?.app.close();
      if (served) rmSync(served.dir, { recursive: true, force: true });
    });

    it("asks for a token, then draws the topology and follows the stream with it", async () => {
      const { origin } = served;
      const { page, elsewhere } = await openPage(browser, origin);
      await page.goto(`${origin}/`);
      await expect.poll(() => page.locator("#status").getAttribute("data-state"), WAIT).toBe("unauthorized");
      expect(await page.locator(".group").count()).toBe(0);
      await page.fill("#token", reader.token);
      await page.click("#token-form button[type=submit]");
      await page.waitForSelector(".unit .group");
      await expect.poll(() => page.locator("#status").getAttribute("data-state"), WAIT).toBe("live");
      // DMA ownership: the group moves to its blocking domain, with its owner.
      const claimed = await post(origin, "/v1/groups/3/claim", {}, client.token);
      expect(claimed.status).toBe(200);
      const blocking = String((claimed.json.group as { domainId: number }).domainId);
      const group3 = page.locator('.group[data-group-id="3"]');
      await expect.poll(() => group3.getAttribute("data-domain-id"), WAIT).toBe(blocking);
      await expect.poll(() => group3.locator(".dom").first().getAttribute("data-domain-type"), WAIT).toBe("blocked");
      await expect.poll(() => group3.locator(".owner").textContent(), WAIT).toBe("owner vm-a");
      // The token stays for the tab's session: a reload needs no pasting.
      await page.reload();
      await page.waitForSelector(`.group[data-group-id="3"][data-domain-id="${blocking}"]`);
      expect(elsewhere).toEqual([]);
      await page.close();
    });
  });
});
