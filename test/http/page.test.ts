// The topology page's files over HTTP: served from public/ with their
// content types, a revalidating cache (ETag, 304), the page's own CSP
// without 'unsafe-inline', public with tokens configured while the API it
// reads is not. The page in a browser: test/browser/page.test.ts.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PAGE_CSP, PUBLIC_DIR } from "../../src/http/page.js";
import { authAppForFile } from "../helpers/auth.js";
import { clientForFile } from "../helpers/http.js";

const c = clientForFile();
const FILES = [
  { url: "/", file: "index.html", type: "text/html; charset=utf-8" },
  { url: "/page/app.js", file: "app.js", type: "text/javascript; charset=utf-8" },
  { url: "/page/app.css", file: "app.css", type: "text/css; charset=utf-8" },
] as const;

describe("the topology page's files", () => {
  for (const { url, file, type } of FILES) {
    it(`GET ${url}: public/${file} with its type, revalidated by ETag`, async () => {
      const res = await c.app.inject({ method: "GET", url });
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toBe(type);
      expect(res.body).toBe(readFileSync(path.join(PUBLIC_DIR, file), "utf8"));
      expect(res.headers["cache-control"]).toBe("no-cache");
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      const etag = String(res.headers.etag);
      expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
      const again = await c.app.inject({ method: "GET", url, headers: { "if-none-match": etag } });
      expect(again.statusCode).toBe(304);
      expect(again.body).toBe("");
      expect(again.headers.etag).toBe(etag);
      const stale = await c.app.inject({ method: "GET", url, headers: { "if-none-match": '"something-else"' } });
      expect(stale.statusCode).toBe(200);
    });
  }

  it("the page has a CSP of this server only, with no inline script or style, and loads only its own files", async () => {
    const res = await c.app.inject({ method: "GET", url: "/" });
    expect(res.headers["content-security-policy"]).toBe(PAGE_CSP);
    expect(PAGE_CSP).not.toContain("unsafe-inline");
    expect(PAGE_CSP).toContain("script-src 'self'");
    expect(PAGE_CSP).toContain("style-src 'self'");
    expect(PAGE_CSP).toContain("frame-ancestors 'none'");
    // No inline script or style element, no style attribute, nothing from elsewhere.
    expect(res.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(res.body).not.toMatch(/<style|\sstyle=/);
    const references = [...res.body.matchAll(/\s(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(references.filter((r) => /^[a-z]+:\/\//i.test(r) || r.startsWith("//"))).toEqual([]);
    for (const local of references.filter((r) => r.startsWith("/"))) {
      expect((await c.app.inject({ method: "GET", url: local })).statusCode, local).toBe(200);
    }
  });

  it("the script reaches only this server: relative API paths, no absolute URL", () => {
    const script = readFileSync(path.join(PUBLIC_DIR, "app.js"), "utf8");
    expect(script).not.toMatch(/https?:\/\//);
    expect(script).toContain("/v1/events");
  });
});

describe("with tokens configured", () => {
  const auth = authAppForFile();
  it("the page's files need no token; the API they read does", async () => {
    for (const { url } of FILES) expect((await auth.app().inject({ method: "GET", url })).statusCode, url).toBe(200);
    expect((await auth.app().inject({ method: "GET", url: "/v1/units" })).statusCode).toBe(401);
  });
});
