// applyTopology: created / already present / conflicts, all or nothing.
import { describe, expect, it } from "vitest";
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
});
