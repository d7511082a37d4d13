// The live topology page at `/`: one HTML file, one stylesheet and one
// script from public/ at the project root, read once when the app is built
// and served from memory. The page holds no data: its script reads the API
// (with the token the user pastes, if tokens are configured) and follows the
// event stream, so the routes themselves are public, like /docs.
//
// tsc copies no non-TypeScript file into dist/, so the files are found from
// PROJECT_ROOT (the project root both from src/ and from dist/), not from
// this module's directory.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { PROJECT_ROOT } from "../config.js";

export const PAGE_PATH = "/";
export const PUBLIC_DIR = path.join(PROJECT_ROOT, "public");

/** What the page is allowed: this server only, no inline script or style, no framing. */
export const PAGE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self' data:",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join("; ");

interface Asset {
  readonly url: string;
  readonly file: string;
  readonly type: string;
  readonly description: string;
}

const ASSETS: readonly Asset[] = [
  { url: PAGE_PATH, file: "index.html", type: "text/html; charset=utf-8", description: "The live topology page (HTML): units, groups, devices, domains, containers and recent attempts, following the event stream" },
  { url: "/page/app.js", file: "app.js", type: "text/javascript; charset=utf-8", description: "The topology page's script (an ES module)" },
  { url: "/page/app.css", file: "app.css", type: "text/css; charset=utf-8", description: "The topology page's stylesheet" },
];

export async function installPage(app: FastifyInstance): Promise<void> {
  for (const asset of ASSETS) {
    const body = readFileSync(path.join(PUBLIC_DIR, asset.file));
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
    const mediaType = asset.type.split(";")[0]!;
    app.get(asset.url, {
      config: { role: "public" },
      schema: {
        description: asset.description,
        response: {
          200: { description: asset.description, content: { [mediaType]: { schema: { type: "string" } } } },
          304: { description: "Not Modified: the copy the client holds (If-None-Match) is current", type: "null" },
        },
      },
    }, (request, reply) => {
      // no-cache: the browser keeps a copy but asks every time (a 304 when
      // unchanged), so a new release is seen on the next load.
      reply.header("cache-control", "no-cache").header("etag", etag);
      if (asset.url === PAGE_PATH) reply.header("content-security-policy", PAGE_CSP);
      if (request.headers["if-none-match"] === etag) return reply.code(304).send();
      // A Buffer is sent as it is, with the type set here.
      return reply.type(asset.type).send(body);
    });
  }
}
