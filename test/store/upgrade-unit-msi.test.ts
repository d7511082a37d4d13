// A database written before units said whether their MSIs are isolated
// holds capabilities without isolatedMsi. The migration that adds iommufd
// devices gives each stored unit its driver's default (the data step of
// 20261128000007_iommufd_devices), so every unit loads, answers with the
// capability, and binds to iommufd as a unit created now would.
import Database from "better-sqlite3";
import { rmSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, expect, it } from "vitest";
import { applyMigrations } from "../../src/store/migrate.js";
import { DRIVER_NAMES, DRIVERS } from "../../src/drivers/index.js";
import { migrationsBefore, openApp, tempDbFile } from "../helpers/app.js";
import { Client, type UnitView } from "../helpers/http.js";

const IOMMUFD_MIGRATION = "20261128000007_iommufd_devices";

const dirs: string[] = [];
let open: FastifyInstance | null = null;
afterEach(async () => {
  await open?.close();
  open = null;
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const earlierMigrations = (dir: string) => migrationsBefore(dir, IOMMUFD_MIGRATION);

it("units stored without isolatedMsi take their driver's default, on disk and in answers; one stored with it keeps its own", async () => {
  const { dir, file } = tempDbFile();
  dirs.push(dir);
  expect(applyMigrations(file, earlierMigrations(dir)).applied.at(-1)! < IOMMUFD_MIGRATION).toBe(true);
  const db = new Database(file);
  try {
    db.transaction(() => {
      const unit = db.prepare(`INSERT INTO "Unit" ("id", "name", "driver", "capabilities", "online") VALUES (?, ?, ?, ?, 1)`);
      DRIVER_NAMES.forEach((driver, i) => {
        const { isolatedMsi: _new, ...old } = DRIVERS[driver].defaults;
        unit.run(i + 1, `old-${driver}`, driver, JSON.stringify(old));
      });
      // A guest whose virtio-iommu sits behind an ITS, written with the field already.
      unit.run(DRIVER_NAMES.length + 1, "guest-its", "virtio-iommu", JSON.stringify({ ...DRIVERS["virtio-iommu"].defaults, isolatedMsi: true }));
      db.prepare(`INSERT INTO "IdWatermark" ("kind", "last") VALUES ('unit', ?)`).run(DRIVER_NAMES.length + 1);
    })();
  } finally {
    db.close();
  }

  open = (await openApp(file)).app;
  const c = new Client(open);
  const units = (await c.read<{ items: UnitView[] }>("/v1/units")).items;
  expect(units.map((u) => [u.driver, u.capabilities])).toEqual([
    ...DRIVER_NAMES.map((d) => [d, DRIVERS[d].defaults]),
    ["virtio-iommu", { ...DRIVERS["virtio-iommu"].defaults, isolatedMsi: true }],
  ]);
  // An Intel unit's device binds (isolated MSIs); a virtio-iommu one's is refused.
  const intel = units.find((u) => u.driver === "intel-vtd")!;
  const virtio = units.find((u) => u.driver === "virtio-iommu")!;
  for (const [unit, status] of [[intel, 201], [virtio, 403]] as const) {
    const { devices: [d] } = await c.groupWith(unit.id);
    expect((await c.post(`/v1/devices/${d!.id}/iommufd`, { owner: "vmm" })).status).toBe(status);
  }
});
