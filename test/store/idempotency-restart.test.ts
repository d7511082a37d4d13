// Remembered idempotent answers survive a restart: a client whose request was
// answered just before the service restarted may retry it afterwards and must
// get the same answer, not a second execution.
//
// EXPECTED TO FAIL until the durable store lands: the temporary store keeps
// remembered answers in memory (src/store/store.ts, TEMPORARY).
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openApp, tempDbFile } from "../helpers/app.js";
import { Client, type FaultView, type UnitView } from "../helpers/http.js";

const dirs: string[] = [];
let open: FastifyInstance | null = null;

afterEach(async () => {
  if (open) await open.close();
  open = null;
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function boot(file: string): Promise<Client> {
  if (open) await open.close();
  open = (await openApp(file)).app;
  return new Client(open);
}

describe("idempotency keys across a restart", () => {
  it("a retry after a restart replays the answer, success and refusal alike, and runs nothing again", async () => {
    const { dir, file } = tempDbFile();
    dirs.push(dir);
    let c = await boot(file);
    const unit = await c.unit({ driver: "mock" });
    const created = { key: `"${randomUUID()}"`, body: { unitId: unit.id, errno: "EIO" } };
    const refused = { key: `"${randomUUID()}"`, url: `/v1/units/${unit.id + 1000}` };
    const first = await c.send<FaultView>("POST", "/v1/faults", created.body, { "idempotency-key": created.key });
    const firstRefusal = await c.send("PATCH", refused.url, { online: false }, { "idempotency-key": refused.key });
    expect([first.status, firstRefusal.status]).toEqual([201, 404]);

    c = await boot(file);
    const again = await c.send("POST", "/v1/faults", created.body, { "idempotency-key": created.key });
    const refusedAgain = await c.send("PATCH", refused.url, { online: false }, { "idempotency-key": refused.key });
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.text).toBe(first.text);
    expect(refusedAgain.headers["idempotent-replayed"]).toBe("true");
    expect(refusedAgain.text).toBe(firstRefusal.text);
    expect((await c.faults()).map((f) => f.id)).toEqual([first.body.id]);
    expect((await c.read<{ items: UnitView[] }>("/v1/units")).items).toHaveLength(1);
  });
});
