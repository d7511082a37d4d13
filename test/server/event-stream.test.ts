// The live event stream across a restart of the service process: the stream
// ends when the server stops (SIGTERM, exit 0), and a client resuming with
// its Last-Event-ID against the restarted server gets exactly the events it
// missed, then the new ones: seqs are the database's, not the process's.
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { tempDbFile } from "../helpers/app.js";
import { openEventStream } from "../helpers/event-stream.js";
import type { EventView, UnitView } from "../helpers/http.js";
import { SocketClient, startServer, type ServerProcess } from "../helpers/server.js";

describe("event stream across a restart", () => {
  const { dir, file } = tempDbFile();
  const env = { HOST: "127.0.0.1", PORT: "0", DATABASE_FILE: file, TOPOLOGY_FILE: "none", LOG_LEVEL: "info" };
  let server: ServerProcess | null = null;
  afterAll(async () => {
    await server?.kill9();
    rmSync(dir, { recursive: true, force: true });
  });

  it("ends the stream on SIGTERM, and resumes after Last-Event-ID on the restarted server with no gap and no duplicate", async () => {
    server = await startServer(env);
    let client = new SocketClient(server.base);
    const units: UnitView[] = [];
    const create = async (c: SocketClient) => {
      const r = await c.send<UnitView>("POST", "/v1/units", { name: `u${units.length}`, driver: "mock" });
      expect(r.status, r.text).toBe(201);
      units.push(r.body);
    };
    const stream = await openEventStream(server.base, "/v1/events?after=0");
    for (let i = 0; i < 3; i++) await create(client);
    await stream.waitFor(3);
    const seen = stream.events<EventView>();
    client.close();
    expect(await server.stop()).toBe(0);
    server = null;
    await stream.ended;

    // While it was down, the client missed nothing yet; after the restart a
    // change it did not see happens before it reconnects.
    server = await startServer(env);
    client = new SocketClient(server.base);
    await create(client);
    const resumed = await openEventStream(server.base, "/v1/events", { "last-event-id": String(seen[seen.length - 1]!.seq) });
    await create(client);
    await resumed.waitFor(2);
    const all = [...seen, ...resumed.events<EventView>()];
    expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(all.map((e) => [e.op, e.kind, e.objectId])).toEqual(units.map((u) => ["create", "unit", u.id]));
    resumed.close();
    client.close();
  });
});
