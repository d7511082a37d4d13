// POST /v1/containers/:id/attach and /detach: the container search over
// HTTP. In an iommufd container, policy "kernel" (the default,
// iommufd_device_auto_get_domain) or "qemu" (QEMU's
// iommufd_cdev_autodomains_get): reuse a compatible domain of the search,
// skip soft EINVALs, stop at the first hard error, allocate when nothing
// fits; in a VFIO type1 container, vfio_iommu_type1_attach_group. Detach
// frees a search's domain left empty.
import { describe, expect, it } from "vitest";
import {
  clientForFile, expectProblem,
  type ContainerDetachView, type ContainerView, type DomainView, type MovedView, type PageView, type SearchView, type UnitView,
} from "../helpers/http.js";

const c = clientForFile();

const OK_ATTEMPT = { errno: null, code: 0, soft: false, reason: null, detail: null };

async function domainsOf(containerId: number): Promise<DomainView[]> {
  return (await c.read<PageView<DomainView>>(`/v1/domains?containerId=${containerId}&limit=1000`)).items;
}

async function domainCount(): Promise<number> {
  return (await c.read<{ objects: Record<string, number> }>("/v1/stats")).objects.domain!;
}

/** Two intel units: a 48-bit one and a 39-bit one (a 48-bit domain is EINVAL there). */
async function twoUnits(): Promise<{ wide: UnitView; narrow: UnitView }> {
  return {
    wide: await c.unit({ driver: "intel-vtd", capabilities: { addressWidth: 48 } }),
    narrow: await c.unit({ driver: "intel-vtd", capabilities: { addressWidth: 39 } }),
  };
}

describe("search", () => {
  it("allocates an automatic domain when the container has none, finalised for the group's unit, coherent as the device's IOMMU can be", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "arm-smmu-v3", capabilities: { addressWidth: 44, dirtyTracking: true } });
    const { group } = await c.groupWith(u.id, [{ canwbs: true }]);
    const r = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: group.id });
    expect(r.allocated).toBe(true);
    // Flags 0 (never dirty tracking); CANWBS: IOMMU_CAP_ENFORCE_CACHE_COHERENCY.
    expect(r.domain).toMatchObject({
      type: "paging", driver: "arm-smmu-v3", unitId: u.id, auto: true, search: "kernel", containerId: ct.id, attachedGroupCount: 1,
      config: { addressWidth: 44, enforceCacheCoherency: true, dirtyTracking: false, nestParent: false },
    });
    expect(r.group).toMatchObject({ id: group.id, domainId: r.domain.id });
    expect(r.attempts).toEqual([{ domainId: r.domain.id, allocated: true, freed: false, ...OK_ATTEMPT }]);
    expect((await c.read<ContainerView>(`/v1/containers/${ct.id}`)).domainIds).toEqual([r.domain.id]);
  });

  it("reuses a compatible automatic domain", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "intel-vtd" });
    const a = await c.groupWith(u.id);
    const b = await c.groupWith(u.id);
    const first = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: a.group.id });
    const before = await domainCount();
    const second = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: b.group.id });
    expect(second).toMatchObject({ allocated: false, group: { id: b.group.id, domainId: first.domain.id }, domain: { id: first.domain.id, attachedGroupCount: 2 } });
    expect(second.attempts).toEqual([{ domainId: first.domain.id, allocated: false, freed: false, ...OK_ATTEMPT }]);
    expect(await domainCount()).toBe(before);
  });

  it("skips incompatible automatic domains (soft EINVAL attempts), then allocates", async () => {
    const ct = await c.container();
    const { wide, narrow } = await twoUnits();
    const a = await c.groupWith(wide.id);
    const b = await c.groupWith(narrow.id);
    const first = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: a.group.id });
    const r = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: b.group.id });
    expect(r.allocated).toBe(true);
    expect(r.attempts).toHaveLength(2);
    expect(r.attempts[0]).toMatchObject({ domainId: first.domain.id, allocated: false, errno: "EINVAL", code: -22, soft: true, reason: "address-width" });
    expect(r.attempts[1]).toEqual({ domainId: r.domain.id, allocated: true, freed: false, ...OK_ATTEMPT });
    expect(r.domain.config.addressWidth).toBe(39);
    expect((await domainsOf(ct.id)).map((d) => d.id)).toEqual([first.domain.id, r.domain.id]);
    // The skipped domain is untouched.
    expect(await c.groupsOn(first.domain.id)).toEqual([a.group.id]);
  });

  it("skips to a later compatible automatic domain rather than allocating", async () => {
    const ct = await c.container();
    const { wide, narrow } = await twoUnits();
    const g1 = await c.groupWith(wide.id);
    const g2 = await c.groupWith(narrow.id);
    const g3 = await c.groupWith(narrow.id);
    const d1 = (await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: g1.group.id })).domain.id;
    const d2 = (await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: g2.group.id })).domain.id;
    const r = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: g3.group.id });
    expect(r.allocated).toBe(false);
    expect(r.domain.id).toBe(d2);
    expect(r.attempts.map((a) => [a.domainId, a.errno, a.soft])).toEqual([[d1, "EINVAL", true], [d2, null, false]]);
  });

  it("never tries manually created domains of the container", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "intel-vtd" });
    const manual = await c.domain({ unitId: u.id, containerId: ct.id });
    const { group } = await c.groupWith(u.id);
    const r = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: group.id });
    expect(r.allocated).toBe(true);
    expect(r.attempts.map((a) => a.domainId)).not.toContain(manual.id);
    expect(r.domain.id).not.toBe(manual.id);
  });

  it("an injected (driver) EINVAL is skipped like any incompatibility, and reported as soft", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "intel-vtd" });
    const a = await c.groupWith(u.id);
    const b = await c.groupWith(u.id);
    const first = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: a.group.id });
    await c.fault({ deviceId: b.devices[0]!.id, errno: "EINVAL", count: 1 });
    const r = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: b.group.id });
    expect(r.allocated).toBe(true);
    expect(r.attempts[0]).toMatchObject({ domainId: first.domain.id, errno: "EINVAL", reason: "injected-fault" });
    // include/linux/iommu.h: EINVAL is the soft class; the search treated it so.
    expect(r.attempts[0]!.soft).toBe(true);
  });

  it("a group already attached through the container: 200, no attempts", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(u.id);
    const first = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: group.id });
    const seq = await c.lastSeq();
    const again = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: group.id });
    expect(again).toMatchObject({ allocated: false, attempts: [], domain: { id: first.domain.id } });
    const events = await c.events(seq);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ op: "container-attach", containerId: ct.id, groupId: group.id, domainId: first.domain.id, errno: null });
  });

  it("a group attached through another iommufd container moves here (a replace); the automatic domain it leaves is freed", async () => {
    const c1 = await c.container();
    const c2 = await c.container();
    const u = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(u.id);
    const old = (await c.ok<SearchView>("POST", `/v1/containers/${c1.id}/attach`, { groupId: group.id })).domain.id;
    const r = await c.ok<SearchView>("POST", `/v1/containers/${c2.id}/attach`, { groupId: group.id });
    expect(r).toMatchObject({ allocated: true, group: { domainId: r.domain.id }, domain: { containerId: c2.id } });
    expectProblem(await c.get(`/v1/domains/${old}`), 404, "ENOENT", "no-such-domain");
  });

  it("a group attached to some other paging domain: 409 EBUSY group-attached", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(u.id);
    const d = await c.domain({ unitId: u.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: d.id });
    expectProblem(await c.post(`/v1/containers/${ct.id}/attach`, { groupId: group.id }), 409, "EBUSY", "group-attached", { soft: false, groupId: group.id, domainId: d.id });
    expect(await domainsOf(ct.id)).toEqual([]);
  });

  it("an owned group: only its owner may attach it through the container", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(u.id);
    await c.ok("POST", `/v1/groups/${group.id}/claim`, { owner: "vfio" });
    expectProblem(await c.post(`/v1/containers/${ct.id}/attach`, { groupId: group.id, owner: "other" }), 403, "EPERM", "owned-by-other");
    const r = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: group.id, owner: "vfio" });
    expect(r.allocated).toBe(true);
    // Detaching through the container returns an owned group to its blocking domain.
    const back = await c.ok<ContainerDetachView>("POST", `/v1/containers/${ct.id}/detach`, { groupId: group.id, owner: "vfio" });
    expect(back.group.domainId).toBe(back.group.blockingDomainId);
    expect(back.freedDomainId).toBe(r.domain.id);
  });
});

describe("hard errors stop the search", () => {
  it("ENOMEM on the first candidate: 507 with attempts, nothing allocated, group unchanged", async () => {
    const ct = await c.container();
    const { wide, narrow } = await twoUnits();
    const a = await c.groupWith(wide.id);
    const b = await c.groupWith(narrow.id);
    const first = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: a.group.id });
    await c.fault({ unitId: narrow.id, errno: "ENOMEM", count: 1 });
    const count = await domainCount();
    const body = expectProblem(await c.post(`/v1/containers/${ct.id}/attach`, { groupId: b.group.id }), 507, "ENOMEM", "injected-fault", { soft: false });
    expect(body.attempts).toEqual([
      { domainId: first.domain.id, allocated: false, freed: false, errno: "ENOMEM", code: -12, soft: false, reason: "injected-fault", detail: expect.any(String) },
    ]);
    expect(await domainCount()).toBe(count);
    expect((await domainsOf(ct.id)).map((d) => d.id)).toEqual([first.domain.id]);
    expect(await c.groupNow(b.group.id)).toEqual(b.group);
  });

  it("ENOMEM after soft skips: the search stops at the hard error, before allocating", async () => {
    const ct = await c.container();
    const { wide, narrow } = await twoUnits();
    const g1 = await c.groupWith(wide.id);
    const g2 = await c.groupWith(narrow.id);
    const g3 = await c.groupWith(wide.id);
    const d1 = (await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: g1.group.id })).domain.id;
    const d2 = (await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: g2.group.id })).domain.id;
    // g3 fits both domains; two one-shot device faults make the first refuse softly and the second hard.
    await c.fault({ deviceId: g3.devices[0]!.id, errno: "EINVAL", count: 1 });
    await c.fault({ deviceId: g3.devices[0]!.id, errno: "ENOSPC", count: 1 });
    const count = await domainCount();
    const body = expectProblem(await c.post(`/v1/containers/${ct.id}/attach`, { groupId: g3.group.id }), 507, "ENOSPC", "injected-fault");
    expect(body.attempts!.map((a) => [a.domainId, a.errno, a.allocated])).toEqual([[d1, "EINVAL", false], [d2, "ENOSPC", false]]);
    expect(await domainCount()).toBe(count);
    expect((await c.groupNow(g3.group.id)).domainId).toBe(g3.group.defaultDomainId);
  });

  it("a failing attach of a freshly allocated domain frees it again", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "amd-iommu" });
    const { group } = await c.groupWith(u.id);
    await c.fault({ unitId: u.id, errno: "ENOMEM", count: 1 });
    const count = await domainCount();
    const seq = await c.lastSeq();
    const body = expectProblem(await c.post(`/v1/containers/${ct.id}/attach`, { groupId: group.id }), 507, "ENOMEM", "injected-fault");
    expect(body.attempts).toHaveLength(1);
    expect(body.attempts![0]).toMatchObject({ allocated: true, freed: true, errno: "ENOMEM", soft: false });
    expectProblem(await c.get(`/v1/domains/${body.attempts![0]!.domainId}`), 404, "ENOENT", "no-such-domain");
    // The answer names only objects that exist: not the freed domain.
    expect(body).not.toHaveProperty("domainId");
    expect(body).toMatchObject({ groupId: group.id });
    expect(await domainCount()).toBe(count);
    expect(await domainsOf(ct.id)).toEqual([]);
    expect(await c.groupNow(group.id)).toEqual(group);
    expect((await c.events(seq))[0]).toMatchObject({ op: "container-attach", errno: "ENOMEM", containerId: ct.id, groupId: group.id });
  });

  it("allocation refused by the driver (virtio-iommu's domain IDs used up): 507 ENOSPC, nothing tried", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "virtio-iommu", capabilities: { domainIds: 1 } });
    const { group } = await c.groupWith(u.id); // its default domain holds the only domain ID
    const body = expectProblem(await c.post(`/v1/containers/${ct.id}/attach`, { groupId: group.id }), 507, "ENOSPC", "domain-ids-exhausted");
    expect(body.attempts).toEqual([]);
    expect(await domainsOf(ct.id)).toEqual([]);
  });

  it("arm-smmu takes its context bank at the first attach: 507 ENOSPC there, the new domain freed again", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "arm-smmu", capabilities: { domainIds: 1 } });
    const { group } = await c.groupWith(u.id); // its default domain holds the only context bank
    const body = expectProblem(await c.post(`/v1/containers/${ct.id}/attach`, { groupId: group.id }), 507, "ENOSPC", "context-banks-exhausted");
    expect(body.attempts).toEqual([expect.objectContaining({ allocated: true, freed: true, errno: "ENOSPC", reason: "context-banks-exhausted" })]);
    expect(await domainsOf(ct.id)).toEqual([]);
  });
});

describe("policy qemu: QEMU's search", () => {
  it("allocates with dirty tracking when the device's IOMMU reports it, and only ever tries its own page tables", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "intel-vtd", capabilities: { dirtyTracking: true } });
    const a = await c.groupWith(u.id);
    const b = await c.groupWith(u.id);
    const kernel = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: a.group.id });
    expect(kernel.domain).toMatchObject({ search: "kernel", config: { dirtyTracking: false } });
    const qemu = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: b.group.id, policy: "qemu" });
    expect(qemu.attempts).toEqual([{ domainId: qemu.domain.id, allocated: true, freed: false, ...OK_ATTEMPT }]);
    expect(qemu.domain).toMatchObject({ auto: true, search: "qemu", containerId: ct.id, config: { dirtyTracking: true, enforceCacheCoherency: true } });
    const c2 = await c.groupWith(u.id);
    const again = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: c2.group.id, policy: "qemu" });
    expect(again).toMatchObject({ allocated: false, domain: { id: qemu.domain.id }, attempts: [{ domainId: qemu.domain.id, allocated: false, freed: false, ...OK_ATTEMPT }] });
  });

  it("is refused on a VFIO type1 container: 400 EINVAL invalid-argument", async () => {
    const ct = await c.container({ kind: "type1" });
    const u = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(u.id);
    expectProblem(await c.post(`/v1/containers/${ct.id}/attach`, { groupId: group.id, policy: "qemu" }), 400, "EINVAL", "invalid-argument", { soft: false, containerId: ct.id });
    expect(await c.groupNow(group.id)).toEqual(group);
  });
});

describe("a VFIO type1 container", () => {
  it("allocates a domain per group, then merges a group into an existing domain of the same driver and coherency, freeing the new one", async () => {
    const ct = await c.container({ kind: "type1" });
    const u = await c.unit({ driver: "intel-vtd" });
    const a = await c.groupWith(u.id);
    const b = await c.groupWith(u.id);
    const first = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: a.group.id });
    expect(first).toMatchObject({ allocated: true, domain: { auto: true, search: "kernel", containerId: ct.id, config: { enforceCacheCoherency: true } } });
    const second = await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: b.group.id });
    const fresh = second.attempts[0]!.domainId;
    expect(second).toMatchObject({ allocated: false, domain: { id: first.domain.id, attachedGroupCount: 2 } });
    expect(second.attempts).toEqual([
      { domainId: fresh, allocated: true, freed: true, ...OK_ATTEMPT },
      { domainId: first.domain.id, allocated: false, freed: false, ...OK_ATTEMPT },
    ]);
    expectProblem(await c.get(`/v1/domains/${fresh}`), 404, "ENOENT", "no-such-domain");
    expect((await c.read<ContainerView>(`/v1/containers/${ct.id}`)).domainIds).toEqual([first.domain.id]);
    const back = await c.ok<ContainerDetachView>("POST", `/v1/containers/${ct.id}/detach`, { groupId: a.group.id });
    expect(back.freedDomainId).toBeNull();
  });

  it("a group attached through another type1 container: 409 EINVAL in-other-container", async () => {
    const ct = await c.container({ kind: "type1" });
    const other = await c.container({ kind: "type1" });
    const u = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(u.id);
    await c.ok("POST", `/v1/containers/${other.id}/attach`, { groupId: group.id });
    expectProblem(await c.post(`/v1/containers/${ct.id}/attach`, { groupId: group.id }), 409, "EINVAL", "in-other-container", { soft: false, groupId: group.id, containerId: other.id });
  });
});

describe("detach through the container", () => {
  it("frees an automatic domain left empty (freedDomainId) and keeps a shared one", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "intel-vtd" });
    const a = await c.groupWith(u.id);
    const b = await c.groupWith(u.id);
    const d = (await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: a.group.id })).domain.id;
    await c.ok("POST", `/v1/containers/${ct.id}/attach`, { groupId: b.group.id });

    const first = await c.ok<ContainerDetachView>("POST", `/v1/containers/${ct.id}/detach`, { groupId: a.group.id });
    expect(first.freedDomainId).toBeNull();
    expect(first.group).toEqual(a.group);
    expect(first.domain).toMatchObject({ id: a.group.defaultDomainId, type: "dma" });
    expect(await c.read<DomainView>(`/v1/domains/${d}`)).toMatchObject({ auto: true, attachedGroupCount: 1 });

    const second = await c.ok<ContainerDetachView>("POST", `/v1/containers/${ct.id}/detach`, { groupId: b.group.id });
    expect(second.freedDomainId).toBe(d);
    expectProblem(await c.get(`/v1/domains/${d}`), 404, "ENOENT", "no-such-domain");
    expect((await c.read<ContainerView>(`/v1/containers/${ct.id}`)).domainIds).toEqual([]);
  });

  it("a group not attached through this container: 409 EINVAL not-in-container (not soft)", async () => {
    const ct = await c.container();
    const other = await c.container();
    const u = await c.unit({ driver: "mock" });
    const { group } = await c.groupWith(u.id);
    expectProblem(await c.post(`/v1/containers/${ct.id}/detach`, { groupId: group.id }), 409, "EINVAL", "not-in-container", { soft: false, groupId: group.id, containerId: ct.id });
    await c.ok("POST", `/v1/containers/${other.id}/attach`, { groupId: group.id });
    expectProblem(await c.post(`/v1/containers/${ct.id}/detach`, { groupId: group.id }), 409, "EINVAL", "not-in-container");
  });

  it("a replace away from an automatic domain frees it (iommufd selftest)", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "intel-vtd" });
    const { group } = await c.groupWith(u.id);
    const auto = (await c.ok<SearchView>("POST", `/v1/containers/${ct.id}/attach`, { groupId: group.id })).domain.id;
    const manual = await c.domain({ unitId: u.id });
    const moved = await c.ok<MovedView>("POST", `/v1/groups/${group.id}/replace`, { domainId: manual.id });
    expect(moved.group.domainId).toBe(manual.id);
    expectProblem(await c.get(`/v1/domains/${auto}`), 404, "ENOENT", "no-such-domain");
  });

  it("a manually created container domain is never freed by a detach", async () => {
    const ct = await c.container();
    const u = await c.unit({ driver: "intel-vtd" });
    const { group } = await c.groupWith(u.id);
    const manual = await c.domain({ unitId: u.id, containerId: ct.id });
    await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: manual.id });
    const r = await c.ok<ContainerDetachView>("POST", `/v1/containers/${ct.id}/detach`, { groupId: group.id });
    expect(r.freedDomainId).toBeNull();
    expect((await c.read<DomainView>(`/v1/domains/${manual.id}`)).attachedGroupCount).toBe(0);
  });
});
