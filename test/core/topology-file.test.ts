// applyTopology: created / already present / conflicts, all or nothing.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { PROJECT_ROOT } from "../../src/config.js";
import { KINDS, Model } from "../../src/core/model.js";
import { applyTopology, describeTopologyReport, type TopologySpec } from "../../src/core/topology-file.js";
import { DRIVERS } from "../../src/drivers/index.js";

const BASE: TopologySpec = {
  units: [{ name: "dmar0", driver: "intel-vtd" }, { name: "dmar1", driver: "intel-vtd" }],
  groups: [{ name: "g0", unit: "dmar0", devices: [{ name: "d0" }] }, { name: "g1", unit: "dmar1", devices: [{ name: "d1" }] }],
  containers: [{ name: "vm" }],
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
  it("creates what is missing and counts what is present", () => {
    const model = applied();
    const again = applyTopology(model, { ...BASE, groups: [...BASE.groups!, { name: "g2", unit: "dmar1", devices: [{ name: "d2" }] }] });
    expect(again).toEqual({
      created: { units: 0, groups: 1, devices: 1, containers: 0, domains: 0 },
      present: { units: 2, groups: 2, devices: 2, containers: 1, domains: 1 },
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
    ["a domain of another type", { units: [], domains: [{ name: "p0", type: "identity" }] }, /^domain p0 exists with type paging, the file says identity$/],
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
});
