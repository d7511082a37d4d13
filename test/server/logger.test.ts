// The service makes its logger first and hands that one logger to the store
// and to Fastify: what the store reports and what the HTTP layer logs come
// out of the same stream.
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { start } from "../../src/server.js";
import { tempDbFile } from "../helpers/app.js";
import { captureLog, LEVEL } from "../helpers/log.js";

const { dir, file } = tempDbFile();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("one logger", () => {
  it("carries the store's lines (tagged component: store) and Fastify's request lines", async () => {
    const log = captureLog();
    const app = await start(parseConfig(["--port", "0", "--db", file, "--topology", "none"], {}), log.logger);
    try {
      const res = await app.inject({ method: "GET", url: "/v1/units", headers: { "x-request-id": "one-logger" } });
      expect(res.statusCode).toBe(200);
    } finally {
      await app.close();
    }
    expect(log.matching(/^database migrated$/)).toEqual([
      expect.objectContaining({ level: LEVEL.info, component: "store", file, migrations: expect.arrayContaining(["20261125000000_init"]) }),
    ]);
    expect(log.lines.filter((l) => l.reqId === "one-logger").length).toBeGreaterThan(0);
  });
});
