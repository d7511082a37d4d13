// The host's settings row through the store and start-up: stored, loaded
// again after a restart, and the precedence docs/semantics.md §7.3 states:
// --kernel-profile over what the database holds over the preset's.
import { rmSync } from "node:fs";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { DRIVERS } from "../../src/drivers/index.js";
import type { TopologyFile } from "../../src/http/schemas/topology.js";
import { applyKernelProfileFlag, applyPreset } from "../../src/startup/topology.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, tempDbFile } from "../helpers/app.js";

const logger = pino({ level: "silent" });
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function database(): string {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  return file;
}

const open = (file: string) => SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
const PRESET: TopologyFile = { host: { kernelProfile: "6.1" }, units: [{ name: "virtio0", driver: "virtio-iommu" }] };
const profileOf = (store: SqliteStore) => store.read((m) => m.host().kernelProfile);

describe("the host's kernel profile at start-up", () => {
  it("the preset sets it on a new database, the flag wins over it, and a restart keeps what was stored", async () => {
    const file = database();
    let store = await open(file);
    await applyPreset(store, "preset.json", PRESET, logger, DRIVERS);
    expect(await profileOf(store)).toBe("6.1");
    await applyKernelProfileFlag(store, null, logger);
    expect(await profileOf(store)).toBe("6.1");
    await applyKernelProfileFlag(store, "6.2", logger);
    expect(await profileOf(store)).toBe("6.2");
    await store.close();

    store = await open(file);
    expect(await profileOf(store)).toBe("6.2");
    // Not a new database any more: the preset (and its profile) is not applied again.
    await applyPreset(store, "preset.json", PRESET, logger, DRIVERS);
    expect(await profileOf(store)).toBe("6.2");
    await store.close();
  });

  it("a database whose profile was set before any object was made is still new: its preset is applied, the flag then wins", async () => {
    const file = database();
    const store = await open(file);
    await applyKernelProfileFlag(store, "6.5+", logger);
    await applyKernelProfileFlag(store, "6.2", logger);
    await applyPreset(store, "preset.json", PRESET, logger, DRIVERS);
    expect(await store.read((m) => m.count("unit"))).toBe(1);
    expect(await profileOf(store)).toBe("6.1");
    await applyKernelProfileFlag(store, "6.2", logger);
    expect(await profileOf(store)).toBe("6.2");
    await store.close();
  });

  it("with nothing set the host answers the default, 6.5+, and no row is written", async () => {
    const file = database();
    const store = await open(file);
    expect(await profileOf(store)).toBe("6.5+");
    expect(await store.read((m) => m.count("host"))).toBe(0);
    await store.close();
  });
});
