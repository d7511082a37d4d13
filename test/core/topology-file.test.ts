// applyTopology: created / already present / conflicts, all or nothing.
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { claimOwnership } from "../../src/core/group-moves.js";
import { unbindHostDriver } from "../../src/core/host-driver.js";
import { KINDS, Model } from "../../src/core/model.js";
import { applyTopology, describeTopologyReport, type TopologySpec } from "../../src/core/topology-file.js";
import path from "node:path";
import { PROJECT_ROOT } from "../../src/config.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { readTopologyFile } from "../../src/startup/topology.js";
import { errorOf, unwrap } from "./fixtures.js";

const BASE: TopologySpec = {
  units: [{ name: "dmar0", driver: "intel-vtd" }, { name: "dmar1", driver: "intel-vtd" }],
  groups: [{ name: "g0", unit: "dmar0", devices: [{ name: "d0" }] }, { name: "g1", unit: "dmar1", devices: [{ name: "d1" }] }],
  containers: [{ name: "vm" }, { name: "legacy", kind: "type1" }],
  domains: [{ name: "p0", type: "paging", unit: "dmar0", container: "vm" }],
};

function applied(): Model {
  const model = new Model(DRIVERS);
  expect(applyTopology(model, BASE).conflicts).toEqual([]);
  model.takeChanges();
  return model;
}

const counts = (model: Model) => Object.fromEntries(KINDS.map((k) => [k, model.count(k)]));

describe("applyTopology", () => {
  it("gives a device the file's PASID width; the same width again is present, not a conflict", () => {
    const model = applied();
    const spec: TopologySpec = { units: [], groups: [{ name: "g0", unit: "dmar0", devices: [{ name: "d0" }, { name: "d5", maxPasids: 1024 }] }] };
    expect(applyTopology(model, spec).created.devices).toBe(1);
    expect(model.get("device", model.idByName("device", "d5")!)?.maxPasids).toBe(1024);
    expect(applyTopology(model, spec)).toMatchObject({ conflicts: [], present: { devices: 2 } });
  });

  it("creates what is missing and counts what is present", () => {
    const model = applied();
    const again = applyTopology(model, { ...BASE, groups: [...BASE.groups!, { name: "g2", unit: "dmar1", devices: [{ name: "d2" }] }] });
    expect(again).toEqual({
      created: { units: 0, groups: 1, devices: 1, containers: 0, domains: 0 },
      present: { units: 2, groups: 2, devices: 2, containers: 2, domains: 1 },
      conflicts: [],
      kernelProfile: null,
    });
    expect(describeTopologyReport(again).at(-1)).toBe("applied");
  });

  it.each<[string, TopologySpec, RegExp]>([
    ["a unit with another driver", { units: [{ name: "dmar0", driver: "amd-iommu" }] }, /^unit dmar0 exists with driver intel-vtd, the file says amd-iommu$/],
    ["a unit with other capabilities", { units: [{ name: "dmar0", driver: "intel-vtd", capabilities: { addressWidth: 39 } }] },
      /^unit dmar0 exists with addressWidth \d+, the file says 39$/],
    ["a group on another unit", { units: [], groups: [{ name: "g0", unit: "dmar1" }] }, /^group g0 exists on unit dmar0, the file puts it on dmar1$/],
    ["a device in another group", { units: [], groups: [{ name: "g1", unit: "dmar1", devices: [{ name: "d0" }] }] },
      /^device d0 exists in group g0, the file puts it in g1$/],
    ["a group naming an unknown unit", { units: [], groups: [{ name: "g9", unit: "dmar9" }] },
      /^group g9 names unit dmar9, which neither the database nor the file defines$/],
    ["a device with another PASID width", { units: [], groups: [{ name: "g0", unit: "dmar0", devices: [{ name: "d0", maxPasids: 256 }] }] },
      /^device d0 exists with maxPasids 0, the file says 256$/],
    ["a domain of another type", { units: [], domains: [{ name: "p0", type: "identity" }] }, /^domain p0 exists with type paging, the file says identity$/],
    ["a container of another kind", { units: [], containers: [{ name: "vm", kind: "type1" }] }, /^container vm exists with kind iommufd, the file says type1$/],
    ["a container of another kind (the default, iommufd)", { units: [], containers: [{ name: "legacy" }] }, /^container legacy exists with kind type1, the file says iommufd$/],
    ["a domain in another container", { units: [], containers: [{ name: "vm2" }], domains: [{ name: "p0", type: "paging", container: "vm2" }] },
      /^domain p0 exists with container vm, the file says vm2$/],
  ])("reports %s as a conflict and changes nothing", (_name, spec, conflict) => {
    const model = applied();
    const before = counts(model);
    // Something the file would create alongside, to show it is not kept.
    const report = applyTopology(model, { ...spec, units: [...spec.units, { name: "new-unit", driver: "mock" }] });
    expect(report.conflicts).toHaveLength(1);
    expect(report.conflicts[0]).toMatch(conflict);
    expect(report.created.units).toBe(1);
    expect(counts(model)).toEqual(before);
    expect(model.idByName("unit", "new-unit")).toBeUndefined();
    expect(describeTopologyReport(report).at(-1)).toBe("not applied: 1 conflict(s); the database is unchanged");
    // Nor is its create logged: nothing was created.
    expect(model.takeChanges().events).toEqual([]);
  });

  it("logs one create per object it makes, naming kind and id, and nothing for what was present", () => {
    const model = new Model(DRIVERS);
    expect(applyTopology(model, BASE).conflicts).toEqual([]);
    const id = (kind: "unit" | "group" | "device" | "container" | "domain", name: string) =>
      kind === "domain" ? [...model.all("domain")].find((d) => d.name === name)!.id : model.idByName(kind, name)!;
    expect(model.takeChanges().events.map((e) => [e.op, e.kind, e.objectId, e.groupId, e.errno])).toEqual([
      ["create", "unit", id("unit", "dmar0"), null, null], ["create", "unit", id("unit", "dmar1"), null, null],
      ["create", "group", id("group", "g0"), null, null], ["create", "device", id("device", "d0"), null, null],
      ["create", "group", id("group", "g1"), null, null], ["create", "device", id("device", "d1"), null, null],
      ["create", "container", id("container", "vm"), null, null], ["create", "container", id("container", "legacy"), null, null],
      ["create", "domain", id("domain", "p0"), null, null],
    ]);
    expect(applyTopology(model, BASE).conflicts).toEqual([]);
    expect(model.takeChanges().events).toEqual([]);
  });

  it("a file that fails midway, after creating objects, setting the host and binding a host driver, logs none of it", () => {
    const model = applied();
    const report = applyTopology(model, {
      host: { kernelProfile: "6.1" },
      units: [{ name: "new-unit", driver: "mock" }],
      groups: [{ name: "g-new", unit: "new-unit", devices: [{ name: "nvme-new", hostDriver: "nvme" }] }, { name: "g9", unit: "dmar9" }],
      containers: [{ name: "c-new" }],
    });
    expect(report.conflicts).toEqual([expect.stringMatching(/^group g9 names unit dmar9/)]);
    expect(report.created).toMatchObject({ units: 1, groups: 1, devices: 1, containers: 1 });
    expect(model.takeChanges().events).toEqual([]);
  });

  it("a driver's static domain is named after it and bound to no unit: a unit in the file names its driver, applying again finds it", () => {
    const model = applied();
    const statics: TopologySpec = { units: [], domains: [{ name: "intel-vtd-identity", type: "identity", unit: "dmar0" }] };
    expect(applyTopology(model, statics)).toMatchObject({ created: { domains: 1 }, conflicts: [] });
    expect(applyTopology(model, statics)).toMatchObject({ created: { domains: 0 }, present: { domains: 1 }, conflicts: [] });
    expect(applyTopology(model, { units: [{ name: "amd0", driver: "amd-iommu" }], domains: [{ name: "intel-vtd-identity", type: "identity", unit: "amd0" }] }).conflicts)
      .toEqual(["domain intel-vtd-identity exists with driver intel-vtd, the file's unit amd0 is amd-iommu"]);
    expect(applyTopology(model, { units: [], domains: [{ name: "pt", type: "identity", driver: "intel-vtd" }] }).conflicts)
      .toEqual(["domain pt: the static identity domain of intel-vtd is named intel-vtd-identity"]);
  });

  it("reports a device that cannot join its group (attached elsewhere), and every conflict, not only the first", () => {
    const model = applied();
    const g0 = model.idByName("group", "g0")!;
    const p0 = [...model.all("domain")].find((d) => d.name === "p0")!;
    model.remove("device", model.idByName("device", "d0")!);
    model.put("group", { ...model.get("group", g0)!, domainId: p0.id });
    model.takeChanges();
    const report = applyTopology(model, { ...BASE, units: [{ name: "dmar1", driver: "arm-smmu-v3" }, ...BASE.units] });
    expect(report.conflicts).toEqual([
      "unit dmar1 exists with driver intel-vtd, the file says arm-smmu-v3",
      expect.stringMatching(/^device d0: group g0 is attached to domain \d+/),
    ]);
  });

  it("gives a device it creates the reserved regions the file lists; a present device's are the service's state, not compared", () => {
    const model = applied();
    const spec: TopologySpec = {
      units: [],
      groups: [{ name: "g0", unit: "dmar0", devices: [
        { name: "d0", reservedRegions: [{ start: 0xfee00000, length: 0x100000, type: "msi" }] },
        { name: "d9", reservedRegions: [{ start: 0xfee00000, length: 0x100000, type: "msi" }, { start: 0x7c000000, length: 0x400000, type: "direct" }] },
      ] }],
    };
    expect(applyTopology(model, spec).conflicts).toEqual([]);
    expect(model.regionsOf(model.idByName("device", "d0")!)).toEqual([]);
    expect(model.regionsOf(model.idByName("device", "d9")!).map((r) => [r.start, r.length, r.type])).toEqual([
      [0xfee00000, 0x100000, "msi"], [0x7c000000, 0x400000, "direct"],
    ]);
  });

  it("reports a device's region the service refuses (a second software MSI window), and keeps nothing", () => {
    const model = applied();
    const before = counts(model);
    const sw = { start: 0x8000000, length: 0x100000, type: "sw-msi" } as const;
    const report = applyTopology(model, { units: [], groups: [{ name: "g1", unit: "dmar1", devices: [{ name: "d8", reservedRegions: [sw, sw] }] }] });
    expect(report.conflicts).toEqual([expect.stringMatching(/^device d8: d8 has sw-msi region \d+; a device has one software MSI window and no hardware one beside it$/)]);
    expect(counts(model)).toEqual(before);
  });

  it("examples/arm-smmuv3-server.json: every device reports the SMMU's software MSI window (arm_smmu_get_resv_regions)", () => {
    const model = new Model(DRIVERS);
    const file = readTopologyFile(path.join(PROJECT_ROOT, "examples", "arm-smmuv3-server.json"));
    expect(applyTopology(model, file).conflicts).toEqual([]);
    const devices = [...model.all("device")];
    expect(devices.length).toBeGreaterThan(0);
    for (const d of devices) expect(model.regionsOf(d.id).map((r) => [r.start, r.length, r.type])).toEqual([[0x8000000, 0x100000, "sw-msi"]]);
  });
});

describe("the presets in examples/", () => {
  const dir = new URL("../../examples/", import.meta.url);
  // Every object of a preset must be creatable under the drivers' rules
  // (a default domain's ID with its group's first device, allocation checks).
  it.each(readdirSync(dir).filter((f) => f.endsWith(".json")))("%s applies without a conflict", (file) => {
    const spec = JSON.parse(readFileSync(new URL(file, dir), "utf8")) as TopologySpec;
    expect(applyTopology(new Model(DRIVERS), spec).conflicts).toEqual([]);
  });
});

describe("domains a driver leaves unbound", () => {
  it("an arm-smmu domain allocated for a unit is unbound until its first attach: applying the file again finds it present", () => {
    const spec: TopologySpec = {
      units: [{ name: "smmu", driver: "arm-smmu" }],
      domains: [{ name: "d", type: "paging", unit: "smmu" }],
    };
    const model = new Model(DRIVERS);
    expect(applyTopology(model, spec).conflicts).toEqual([]);
    expect(model.get("domain", model.lastIds().domain)?.unitId).toBeNull();
    const again = applyTopology(model, spec);
    expect(again.conflicts).toEqual([]);
    expect(again.present.domains).toBe(1);
  });

  it("sets the host's kernel profile the file names, says so, and says when it already was", () => {
    const model = new Model(DRIVERS);
    expect(model.host().kernelProfile).toBe("6.5+");
    const report = applyTopology(model, { ...BASE, host: { kernelProfile: "6.1" } });
    expect(report.kernelProfile).toEqual({ name: "6.1", changed: true });
    expect(model.host()).toEqual({ id: 1, kernelProfile: "6.1" });
    expect(describeTopologyReport(report)).toContain("host        kernel profile 6.1 set");
    model.takeChanges();
    const again = applyTopology(model, { units: [], host: { kernelProfile: "6.1" } });
    expect(again.kernelProfile).toEqual({ name: "6.1", changed: false });
    expect(describeTopologyReport(again)).toContain("host        kernel profile 6.1 already set");
    expect(model.takeChanges().rows.host.size).toBe(0);
  });

  it("a file without host settings leaves the host's kernel profile alone", () => {
    const model = applied();
    const report = applyTopology(model, { units: [] });
    expect(report.kernelProfile).toBeNull();
    expect(describeTopologyReport(report).some((line) => line.startsWith("host"))).toBe(false);
    expect(model.host().kernelProfile).toBe("6.5+");
  });

  it("with a conflict the profile is not set either (nothing is applied)", () => {
    const model = applied();
    const report = applyTopology(model, { units: [{ name: "dmar0", driver: "amd-iommu" }], host: { kernelProfile: "6.2" } });
    expect(report.conflicts).toHaveLength(1);
    expect(describeTopologyReport(report)).toContain("host        kernel profile 6.2 would be set");
    expect(model.host().kernelProfile).toBe("6.5+");
  });

  it("the virtio guest preset declares a 6.1 kernel", () => {
    const spec = JSON.parse(readFileSync(path.join(PROJECT_ROOT, "examples", "virtio-guest.json"), "utf8")) as TopologySpec;
    const model = new Model(DRIVERS);
    expect(applyTopology(model, spec)).toMatchObject({ conflicts: [], kernelProfile: { name: "6.1", changed: true } });
    expect(model.host().kernelProfile).toBe("6.1");
  });

  it("the virtio guest preset shows a host-bound device, reserved regions and an old kernel in one host", () => {
    const spec = JSON.parse(readFileSync(path.join(PROJECT_ROOT, "examples", "virtio-guest.json"), "utf8")) as TopologySpec;
    const model = new Model(DRIVERS);
    expect(applyTopology(model, spec).conflicts).toEqual([]);
    const disk = model.get("device", model.idByName("device", "0000:03:00.0")!)!;
    expect(disk.hostDriver).toBe("virtio_blk");
    expect(model.regionsOf(disk.id).map((r) => [r.start, r.length, r.type])).toEqual([[0xfee00000, 0x100000, "msi"]]);
    // iommu_group_claim_dma_owner: the guest kernel's own driver holds owner_cnt.
    expect(errorOf(claimOwnership(model, { owner: "qemu-l2" }, disk.groupId))).toMatchObject({ errno: "EPERM", reason: "host-driver-bound" });
  });

  it("binds a host driver a new device names; a present device's binding is the service's state, not compared", () => {
    const model = applied();
    const spec: TopologySpec = { units: [], groups: [{ name: "g0", unit: "dmar0", devices: [{ name: "nvme0", hostDriver: "nvme" }] }] };
    expect(applyTopology(model, spec).conflicts).toEqual([]);
    const id = model.idByName("device", "nvme0")!;
    expect(model.get("device", id)!.hostDriver).toBe("nvme");
    // g0 was there already: the device is created, then bound.
    expect(model.takeChanges().events).toEqual([
      expect.objectContaining({ op: "create", kind: "device", objectId: id, deviceId: null }),
      expect.objectContaining({ op: "bind-host-driver", deviceId: id, errno: null }),
    ]);
    unwrap(unbindHostDriver(model, { owner: null, admin: true }, id));
    expect(applyTopology(model, spec)).toMatchObject({ conflicts: [], present: { devices: 1 } });
    expect(model.get("device", id)!.hostDriver).toBeNull();
  });
});
