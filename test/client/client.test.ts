// The client against a real listening server (the Intel two-socket preset):
// every method group round-trips, and what a refusal looks like on the
// client's side (ErrnoError for the contract's refusals, ProblemError for
// the service's own).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArbiterClient, ErrnoError, ProblemError, type Attempt } from "../../src/client/index.js";
import { listeningArbiter, type Listening } from "../helpers/listening.js";

let server: Listening;
let client: ArbiterClient;

beforeAll(async () => {
  server = await listeningArbiter();
  client = new ArbiterClient({ baseUrl: server.base, retry: { maxAttempts: 1 } });
});
afterAll(() => server.close());

/** The rejection of `p`, which must reject. */
async function refusal(p: Promise<unknown>): Promise<unknown> {
  return p.then((value) => {
    throw new Error(`expected a refusal, got ${JSON.stringify(value)}`);
  }, (error: unknown) => error);
}

async function errnoError(p: Promise<unknown>): Promise<ErrnoError> {
  const error = await refusal(p);
  expect(error).toBeInstanceOf(ErrnoError);
  return error as ErrnoError;
}

describe("every method group round-trips", () => {
  it("units: create, list, get, patch, delete", async () => {
    const unit = await client.units.create({ name: "smmu-rt", driver: "arm-smmu-v3", capabilities: { domainIds: 8 } });
    expect(unit).toMatchObject({ name: "smmu-rt", driver: "arm-smmu-v3", online: true });
    expect(unit.capabilities.domainIds).toBe(8);
    const page = await client.units.list({ limit: 1000 });
    expect(page.items.map((u) => u.name)).toEqual(expect.arrayContaining(["dmar0", "dmar1", "smmu-rt"]));
    expect(page.next).toBeNull();
    expect(await client.units.get(unit.id)).toEqual(unit);
    const patched = await client.units.patch(unit.id, { online: false }, { ifMatch: `"${unit.version}"` });
    expect(patched.online).toBe(false);
    // The version moved on: the old tag is refused (412, not a contract refusal).
    const stale = await refusal(client.units.patch(unit.id, { online: true }, { ifMatch: `"${unit.version}"` }));
    expect(stale).toBeInstanceOf(ProblemError);
    expect(stale).not.toBeInstanceOf(ErrnoError);
    expect(stale).toMatchObject({ status: 412, errno: "ESTALE", reason: "precondition-failed" });
    await client.units.delete(unit.id);
    expect((await errnoError(client.units.get(unit.id))).errno).toBe("ENOENT");
  });

  it("groups and devices: create, list with filters, get, patch, device attach and detach, host drivers, delete", async () => {
    const group = await client.groups.create({ name: "grp-rt", unitId: 1 });
    const device = await client.devices.create({ name: "0000:7f:00.0", groupId: group.id, flags: { canwbs: true } });
    expect(device).toMatchObject({ groupId: group.id, faulty: false, hostDriver: null });
    expect((await client.groups.get(group.id)).deviceIds).toEqual([device.id]);
    const onUnit = await client.groups.list({ unitId: 1, limit: 1000 });
    expect(onUnit.items.map((g) => g.id)).toContain(group.id);
    expect((await client.devices.list({ limit: 1000 })).items.map((d) => d.id)).toContain(device.id);
    expect((await client.devices.patch(device.id, { flags: { untrusted: false } })).flags.untrusted).toBe(false);

    const attached = await client.devices.attach(device.id, { domainId: 12 });
    expect(attached).toMatchObject({ changed: true, group: { id: group.id, domainId: 12 }, domain: { id: 12 } });
    expect((await client.groups.list({ domainId: 12 })).items.map((g) => g.id)).toEqual([group.id]);
    const detached = await client.devices.detach(device.id, { domainId: 12 });
    expect(detached.group.domainId).toBe(group.defaultDomainId);

    const bound = await client.devices.bind(device.id, { hostDriver: "nvme" });
    expect(bound).toMatchObject({ changed: true, device: { hostDriver: "nvme" } });
    expect((await client.devices.unbind(device.id)).device.hostDriver).toBeNull();
    expect(await client.devices.get(device.id)).toMatchObject({ id: device.id, hostDriver: null });

    await client.devices.delete(device.id);
    await client.groups.delete(group.id);
    expect((await errnoError(client.groups.get(group.id))).reason).toBe("no-such-group");
  });

  it("groups: attach, replace, detach, claim, release and the dry run", async () => {
    const attached = await client.groups.attach(1, { domainId: 11 });
    expect(attached).toMatchObject({ changed: true, group: { id: 1, domainId: 11 }, domain: { id: 11, attachedGroupCount: 1 } });
    expect((await client.groups.replace(1, { domainId: 12 })).group.domainId).toBe(12);
    expect((await client.groups.detach(1, { domainId: 12 })).group.domainId).toBe(1);

    const claimed = await client.groups.claim(3, { owner: "vm-a" });
    expect(claimed.group).toMatchObject({ owner: "vm-a", domainId: claimed.group.blockingDomainId });
    const other = await errnoError(client.groups.claim(3, { owner: "vm-b" }));
    expect(other).toMatchObject({ errno: "EPERM", reason: "owned-by-other", status: 403 });
    expect((await client.groups.release(3, { owner: "vm-a" })).group.owner).toBeNull();

    const dry = await client.groups.compatibility(9, { limit: 20 });
    expect(dry.groupId).toBe(9);
    const byDomain = new Map(dry.verdicts.map((v) => [v.domainId, v]));
    expect(byDomain.get(11)).toMatchObject({ compatible: false, errno: "EINVAL", soft: true, reason: "snoop-control" });
    expect(byDomain.get(13)).toMatchObject({ compatible: true, errno: null });
    // Changes nothing.
    expect((await client.groups.get(9)).domainId).toBe(9);
  });

  it("domains: create (paging and the static ones), list by container, get, delete", async () => {
    const paging = await client.domains.create({ type: "paging", unitId: 2, containerId: 1, config: { addressWidth: 39 } });
    expect(paging).toMatchObject({ created: true, type: "paging", unitId: 2, containerId: 1, config: { addressWidth: 39 } });
    const identity = await client.domains.create({ type: "identity", driver: "intel-vtd" });
    const again = await client.domains.create({ type: "identity", driver: "intel-vtd" });
    expect([identity.created, again.created, again.id]).toEqual([true, false, identity.id]);
    expect((await client.domains.list({ containerId: 1 })).items.map((d) => d.id)).toContain(paging.id);
    const { created: _, ...representation } = paging;
    expect(await client.domains.get(paging.id)).toEqual(representation);
    await client.domains.delete(paging.id);
    expect((await errnoError(client.domains.get(paging.id))).errno).toBe("ENOENT");
  });

  it("containers: create, list, get, the server's search, detach, mappings, delete", async () => {
    const ct = await client.containers.create({ name: "ct-rt" });
    expect(ct).toMatchObject({ kind: "iommufd", domainIds: [] });
    expect((await client.containers.list()).items.map((c) => c.id)).toContain(ct.id);
    const searched = await client.containers.attach(ct.id, { groupId: 4 });
    expect(searched.allocated).toBe(true);
    expect(searched.attempts).toEqual([{ domainId: searched.domain.id, allocated: true, freed: false, errno: null, code: 0, soft: false, reason: null, detail: null }]);
    expect((await client.containers.get(ct.id)).domainIds).toEqual([searched.domain.id]);
    const detached = await client.containers.detach(ct.id, { groupId: 4 });
    expect(detached.freedDomainId).toBe(searched.domain.id);

    const mapping = await client.mappings.map(ct.id, { length: 1 << 21 });
    expect(mapping).toMatchObject({ containerId: ct.id, length: 1 << 21 });
    expect(await client.mappings.get(ct.id, mapping.id)).toEqual(mapping);
    expect((await client.mappings.list(ct.id)).items).toEqual([mapping]);
    const second = await client.mappings.map(ct.id, { length: 4096 });
    await client.mappings.delete(ct.id, second.id);
    const unmapped = await client.mappings.unmap(ct.id);
    expect(unmapped).toEqual({ unmapped: 1 << 21, mappings: [mapping] });
    await client.containers.delete(ct.id);
    expect((await errnoError(client.containers.get(ct.id))).reason).toBe("no-such-container");
  });

  it("reserved regions and PASIDs of a device", async () => {
    const region = await client.reservedRegions.create(5, { start: 0xfee00000, length: 1 << 20, type: "msi" });
    expect(region).toMatchObject({ deviceId: 5, start: 0xfee00000, type: "msi" });
    expect(await client.reservedRegions.get(5, region.id)).toEqual(region);
    expect((await client.reservedRegions.list(5)).items).toEqual([region]);
    await client.reservedRegions.delete(5, region.id);
    expect((await client.reservedRegions.list(5)).items).toEqual([]);

    const device = await client.devices.create({ name: "0000:6a:01.0", groupId: 5, maxPasids: 1 << 20 });
    const pasid = await client.pasids.attach(device.id, { pasid: 1, domainId: 12 });
    expect(pasid).toMatchObject({ deviceId: device.id, pasid: 1, domainId: 12 });
    expect((await client.pasids.list(device.id)).items).toEqual([pasid]);
    expect((await errnoError(client.pasids.attach(device.id, { pasid: 1, domainId: 12 }))).reason).toBe("pasid-attached");
    await client.pasids.detach(device.id, 1);
    expect((await client.pasids.list(device.id)).items).toEqual([]);
    await client.devices.delete(device.id);
  });

  it("iommufd devices: bind, get, attach through a container, join a domain, detach, unbind", async () => {
    const bound = await client.iommufd.bind(7, { owner: "vm-c" });
    expect(bound).toMatchObject({ deviceId: 7, owner: "vm-c", domainId: null });
    expect(await client.iommufd.get(7)).toEqual(bound);
    await client.iommufd.bind(8, { owner: "vm-c" });
    const first = await client.iommufd.attach(7, { containerId: 1, owner: "vm-c" });
    expect(first).toMatchObject({ changed: true, allocated: true, iommufdDevice: { deviceId: 7, domainId: first.domain.id } });
    const joined = await client.iommufd.attach(8, { domainId: first.domain.id, owner: "vm-c" });
    expect(joined.iommufdDevice.domainId).toBe(first.domain.id);
    const replaced = await client.iommufd.replace(8, { domainId: first.domain.id, owner: "vm-c" });
    expect(replaced.changed).toBe(false);
    expect((await client.iommufd.detach(8, { owner: "vm-c" })).iommufdDevice.domainId).toBeNull();
    await client.iommufd.unbind(8, { owner: "vm-c" });
    await client.iommufd.unbind(7, { owner: "vm-c" });
    expect((await errnoError(client.iommufd.get(7))).reason).toBe("not-bound");
    expect((await client.groups.get(7)).domainId).toBe(7);
  });

  it("faults, events, host and stats", async () => {
    const fault = await client.faults.inject({ unitId: 2, errno: "EIO", count: 2 });
    expect(fault).toMatchObject({ unitId: 2, errno: "EIO", remaining: 2 });
    expect((await client.faults.list()).items).toEqual([fault]);
    await client.faults.delete(fault.id);
    await client.faults.inject({ deviceId: 1, errno: "ENOMEM" });
    expect(await client.faults.clear()).toEqual({ cleared: 1 });

    const page = await client.events.page({ groupId: 1, limit: 2 });
    expect(page.items.map((e) => e.op)).toEqual(["attach-group", "replace-group"]);
    expect(page.items.every((e) => e.groupId === 1)).toBe(true);
    const rest = await client.events.page({ groupId: 1, after: page.next ?? 0 });
    expect(rest.items.map((e) => e.op)).toContain("detach-group");

    expect((await client.host.get()).kernelProfile).toBe("6.5+");
    expect((await client.host.patch({ kernelProfile: "6.2" })).kernelProfile).toBe("6.2");
    expect((await client.host.patch({ kernelProfile: "6.5+" })).kernelProfile).toBe("6.5+");
    const stats = await client.stats();
    expect(stats.objects.unit).toBeGreaterThanOrEqual(2);
    expect(stats.batches).toBeGreaterThan(0);
  });
});

describe("refusals", () => {
  it("a soft EINVAL is an ErrnoError with the problem's fields", async () => {
    const e = await errnoError(client.groups.attach(9, { domainId: 11 }));
    expect(e).toMatchObject({
      name: "ErrnoError", status: 409, errno: "EINVAL", code: -22, soft: true, reason: "snoop-control",
      type: "urn:iommu-arbiter:problem:snoop-control", title: "Domain enforces cache coherency; unit has no snoop control",
      instance: "/v1/groups/9/attach", groupId: 9, deviceId: 10, domainId: 11, driverErrno: null,
    });
    expect(e.detail).toContain("dmar1 has no snoop control");
    expect(e.requestId).toEqual(expect.any(String));
    expect(e.errnoNumber).toBe(22);
    expect(e.message).toBe(`EINVAL (soft): ${e.detail}`);
  });

  it("a hard EBUSY is an ErrnoError, not soft", async () => {
    await client.groups.attach(2, { domainId: 12 });
    const e = await errnoError(client.groups.attach(2, { domainId: 11 }));
    expect(e).toMatchObject({ status: 409, errno: "EBUSY", code: -16, soft: false, reason: "group-attached", groupId: 2 });
    expect(e.errnoNumber).toBe(16);
    await client.groups.detach(2, { domainId: 12 });
  });

  it("a driver code outside the attach contract is ENODEV, the raw code kept in driverErrno", async () => {
    await client.faults.inject({ unitId: 1, errno: "ETIMEDOUT", count: 1 });
    const e = await errnoError(client.groups.attach(4, { domainId: 12 }));
    expect(e).toMatchObject({ status: 422, errno: "ENODEV", code: -19, soft: false, reason: "injected-fault", driverErrno: "ETIMEDOUT" });
    // A 6.1 kernel's own code, the same way.
    await client.host.patch({ kernelProfile: "6.1" });
    try {
      const old = await errnoError(client.groups.attach(9, { domainId: 11 }));
      expect(old).toMatchObject({ errno: "ENODEV", soft: false, reason: "snoop-control", driverErrno: "EOPNOTSUPP" });
    } finally {
      await client.host.patch({ kernelProfile: "6.5+" });
    }
  });

  it("reads an unnormalised driver code the way the kernel's callers do (a server without the rule)", () => {
    // The document such a server would send: the raw code as the errno.
    const e = new ErrnoError({
      type: "urn:iommu-arbiter:problem:injected-fault", title: "Injected driver failure", status: 409,
      errno: "ETIMEDOUT", code: -110, soft: false, reason: "injected-fault", detail: "injected ETIMEDOUT",
    });
    expect(e).toMatchObject({ errno: "ENODEV", code: -19, soft: false, driverErrno: "ETIMEDOUT", errnoNumber: 19 });
  });

  it("the service's own refusals are ProblemErrors: validation, unknown route, ids that do not exist are the contract's ENOENT", async () => {
    const invalid = await refusal(client.groups.attach(9, { domainId: 0 }));
    expect(invalid).toBeInstanceOf(ProblemError);
    expect(invalid).not.toBeInstanceOf(ErrnoError);
    expect(invalid).toMatchObject({ status: 400, errno: "EINVAL", soft: false, reason: "invalid-request" });
    expect((invalid as ProblemError).problem.errors?.[0]?.field).toBe("body.domainId");

    const route = await refusal(client.request("GET", "/v1/nothing-here"));
    expect(route).toBeInstanceOf(ProblemError);
    expect(route).not.toBeInstanceOf(ErrnoError);
    expect(route).toMatchObject({ status: 404, reason: "no-such-route" });

    expect(await errnoError(client.groups.attach(9999, { domainId: 11 }))).toMatchObject({ status: 404, errno: "ENOENT", reason: "no-such-group" });
  });

  it("a failed server-side search carries its attempts", async () => {
    // The domain the search allocates for group 4 fails to take it: allocated, tried, freed.
    await client.faults.inject({ deviceId: 4, errno: "ENOSPC", count: 1 });
    const e = await errnoError(client.containers.attach(1, { groupId: 4 }));
    expect(e).toMatchObject({ errno: "ENOSPC", soft: false, reason: "injected-fault" });
    expect(e.attempts).not.toBeNull();
    const last = e.attempts!.at(-1) as Attempt;
    expect(last).toMatchObject({ allocated: true, freed: true, errno: "ENOSPC" });
  });
});
