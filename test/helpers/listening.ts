// The real app listening on a real port, with a topology preset applied as
// the service applies it to a new database: for the client and CLI tests,
// which talk to it over HTTP exactly as a separate process would (faster than
// starting bin/iommu-arbiter-server for each case).
import path from "node:path";
import net, { type AddressInfo } from "node:net";
import pino from "pino";
import { PROJECT_ROOT } from "../../src/config.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { applyPreset, readTopologyFile } from "../../src/startup/topology.js";
import { makeTestApp, type TestApp } from "./app.js";

export interface Listening extends TestApp {
  /** http://127.0.0.1:<port> */
  readonly base: string;
  readonly port: number;
}

/** A fresh database with `preset` (a file of examples/, or null for an empty host), listening on `port` (0: any free). */
export async function listeningArbiter(preset: string | null = "intel-2s-server.json", port = 0): Promise<Listening> {
  const t = await makeTestApp();
  if (preset !== null) {
    const file = path.join(PROJECT_ROOT, "examples", preset);
    await applyPreset(t.store, file, readTopologyFile(file), pino({ level: "silent" }), DRIVERS);
  }
  await t.app.listen({ host: "127.0.0.1", port });
  const bound = (t.app.server.address() as AddressInfo).port;
  return { ...t, base: `http://127.0.0.1:${bound}`, port: bound };
}

/** A port nothing listens on (yet): for a server that comes up later, or one that never does. */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
