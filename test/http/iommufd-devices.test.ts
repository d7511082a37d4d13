// /v1/devices/{id}/iommufd: iommufd device objects over HTTP
// (iommufd_device_bind / _attach / _replace / _detach / _unbind, as VFIO's
// device cdev reaches them): every route's answers, each refusal's status,
// the host's allow-unsafe-interrupts setting, and bad input naming the field.
import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.js";
import { DRIVERS } from "../../src/drivers/index.js";
import { SqliteStore } from "../../src/store/store.js";
import { MIGRATIONS, TEST_LIMITS, tempDbFile } from "../helpers/app.js";
import {
  Client, clientForFile, expectInvalid, expectProblem,
  type AttemptView, type DeviceView, type DomainView, type EventView, type GroupView, type Method, type MovedView,
} from "../helpers/http.js";

const c = clientForFile();

interface IommufdView { id: number; deviceId: number; owner: string; domainId: number | null; version: string }
interface IommufdMovedView { changed: boolean; iommufdDevice: IommufdView; group: GroupView; domain: DomainView; allocated: boolean; attempts: AttemptView[] }
interface IommufdDetachedView { changed: boolean; iommufdDevice: IommufdView; group: GroupView; domain: DomainView; freedDomainId: number | null }

/** A group of `n` devices on a new unit of `driver`, and a paging domain of that driver. */
async function rig(driver = "mock", n = 2, client: Client = c): Promise<{ group: GroupView; devices: DeviceView[]; domain: DomainView }> {
  const unit = await client.unit({ driver });
  const { group, devices } = await client.groupWith(unit.id, Array.from({ length: n }, () => ({})));
  return { group, devices, domain: await client.domain({ driver }) };
}

const bindUrl = (d: { id: number }) => `/v1/devices/${d.id}/iommufd`;

describe("POST /v1/devices/:id/iommufd (bind)", () => {
  it("binds: 201 with the iommufd device and its ETag, the group on its blocking domain owned by the client; again: 200, the same; GET reads it", async () => {
    const { group, devices: [a] } = await rig();
    const res = await c.post<IommufdView>(bindUrl(a!), { owner: "vmm" });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: expect.any(Number), deviceId: a!.id, owner: "vmm", domainId: null, version: expect.any(String) });
    expect(res.headers.etag).toBe(`"${res.body.version}"`);
    const g = await c.groupNow(group.id);
    expect(g).toMatchObject({ owner: "vmm", domainId: g.blockingDomainId });
    const again = await c.post<IommufdView>(bindUrl(a!), { owner: "vmm" });
    expect([again.status, again.body]).toEqual([200, res.body]);
    expect(await c.read(bindUrl(a!))).toEqual(res.body);
    const events = (await c.events()).filter((e: EventView) => e.deviceId === a!.id);
    expect(events.map((e) => [e.op, e.owner, e.groupId, e.errno])).toEqual([["bind-iommufd", "vmm", group.id, null], ["bind-iommufd", "vmm", group.id, null]]);
  });

  it.each<{ name: string; status: number; errno: Parameters<typeof expectProblem>[2]; reason: string; run: () => Promise<{ device: DeviceView; ids: Record<string, number> }> }>([
    {
      name: "an IOMMU without IOMMU_CAP_CACHE_COHERENCY (DART: no capable op) → 409 EINVAL not-cache-coherent", status: 409, errno: "EINVAL", reason: "not-cache-coherent",
      run: async () => {
        const { devices: [a] } = await rig("apple-dart", 1);
        return { device: a!, ids: { deviceId: a!.id } };
      },
    },
    {
      name: "MSIs that cannot be isolated (virtio-iommu) → 403 EPERM msi-not-isolated", status: 403, errno: "EPERM", reason: "msi-not-isolated",
      run: async () => {
        const { group, devices: [a] } = await rig("virtio-iommu", 1);
        return { device: a!, ids: { deviceId: a!.id, groupId: group.id } };
      },
    },
    {
      name: "a device of a group bound to another client → 403 EPERM owned-by-other", status: 403, errno: "EPERM", reason: "owned-by-other",
      run: async () => {
        const { group, devices: [a, b] } = await rig();
        await c.expect(201, "POST", bindUrl(b!), { owner: "other" });
        return { device: a!, ids: { groupId: group.id, deviceId: a!.id } };
      },
    },
    {
      name: "a group the client claimed as a whole → 403 EPERM group-claimed", status: 403, errno: "EPERM", reason: "group-claimed",
      run: async () => {
        const { group, devices: [a] } = await rig();
        await c.ok("POST", `/v1/groups/${group.id}/claim`, { owner: "vmm" });
        return { device: a!, ids: { groupId: group.id, deviceId: a!.id } };
      },
    },
    {
      name: "a host driver bound to another device of the group → 403 EPERM host-driver-bound", status: 403, errno: "EPERM", reason: "host-driver-bound",
      run: async () => {
        const { group, devices: [a, b] } = await rig();
        await c.ok("POST", `/v1/devices/${b!.id}/bind`, { hostDriver: "nvme" });
        return { device: a!, ids: { groupId: group.id, deviceId: b!.id } };
      },
    },
    {
      name: "the group on a paging domain → 409 EBUSY group-not-default", status: 409, errno: "EBUSY", reason: "group-not-default",
      run: async () => {
        const { group, devices: [a], domain } = await rig();
        await c.ok("POST", `/v1/groups/${group.id}/attach`, { domainId: domain.id });
        return { device: a!, ids: { groupId: group.id, domainId: domain.id, deviceId: a!.id } };
      },
    },
    {
      name: "an unknown device → 404 no-such-device", status: 404, errno: "ENOENT", reason: "no-such-device",
      run: async () => ({ device: { id: 555555 } as DeviceView, ids: { deviceId: 555555 } }),
    },
  ])("$name", async ({ status, errno, reason, run }) => {
    const { device, ids } = await run();
    const groupUrl = `/v1/groups/${ids.groupId ?? 0}`;
    const before = ids.groupId === undefined ? null : await c.read(groupUrl);
    expectProblem(await c.post(bindUrl(device), { owner: "vmm" }), status, errno, reason, { soft: false, ...ids });
    expect((await c.get<{ reason: string }>(bindUrl(device))).body.reason).toBe(device.id === 555555 ? "no-such-device" : "not-bound");
    if (before !== null) expect(await c.read(groupUrl)).toEqual(before);
  });

  it("with --allow-unsafe-interrupts a device without isolated MSIs binds", async () => {
    const { dir, file } = tempDbFile();
    const store = await SqliteStore.open({ drivers: DRIVERS, file, migrationsDir: MIGRATIONS });
    const app = await buildApp({ store, logger: false, limits: TEST_LIMITS, iommufdParams: { allowUnsafeInterrupts: true } });
    app.addHook("onClose", () => store.close());
    try {
      const unsafe = new Client(app);
      const { devices: [a] } = await rig("virtio-iommu", 1, unsafe);
      expect((await unsafe.post<IommufdView>(bindUrl(a!), { owner: "vmm" })).status).toBe(201);
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("while bound, the group is iommufd's: claim, group attach and container attach → 403 EPERM iommufd-bound; the device cannot be removed (409)", async () => {
    const { group, devices: [a], domain } = await rig();
    await c.expect(201, "POST", bindUrl(a!), { owner: "vmm" });
    const container = await c.container();
    const ids = { groupId: group.id, deviceId: a!.id };
    expectProblem(await c.post(`/v1/groups/${group.id}/claim`, { owner: "vmm" }), 403, "EPERM", "iommufd-bound", ids);
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: domain.id, owner: "vmm" }), 403, "EPERM", "iommufd-bound", ids);
    expectProblem(await c.post(`/v1/containers/${container.id}/attach`, { groupId: group.id, owner: "vmm" }), 403, "EPERM", "iommufd-bound", ids);
    expectProblem(await c.del(`/v1/devices/${a!.id}`), 409, "EBUSY", "device-has-driver", { deviceId: a!.id });
  });

  it("GET of a device not bound: 404 not-bound; of an unknown device: 404 no-such-device", async () => {
    const { devices: [a] } = await rig();
    expectProblem(await c.get(bindUrl(a!)), 404, "ENOENT", "not-bound", { deviceId: a!.id });
    expectProblem(await c.get("/v1/devices/555555/iommufd"), 404, "ENOENT", "no-such-device");
  });
});

describe("POST /v1/devices/:id/iommufd/attach, /replace, /detach", () => {
  it("attach through a container: the first device searches and allocates; the second joins; detach of both returns the group to its blocking domain and frees the domain", async () => {
    const { group, devices: [a, b] } = await rig();
    const container = await c.container();
    await c.expect(201, "POST", bindUrl(a!), { owner: "vmm" });
    await c.expect(201, "POST", bindUrl(b!), { owner: "vmm" });
    const first = await c.ok<IommufdMovedView>("POST", `${bindUrl(a!)}/attach`, { containerId: container.id, owner: "vmm" });
    expect(first).toMatchObject({
      changed: true, allocated: true, iommufdDevice: { deviceId: a!.id, domainId: first.domain.id },
      group: { id: group.id, domainId: first.domain.id }, domain: { auto: true, containerId: container.id },
      attempts: [{ domainId: first.domain.id, allocated: true, freed: false, errno: null }],
    });
    const joined = await c.ok<IommufdMovedView>("POST", `${bindUrl(b!)}/attach`, { containerId: container.id, owner: "vmm" });
    expect(joined).toMatchObject({ changed: true, allocated: false, iommufdDevice: { domainId: first.domain.id }, domain: { id: first.domain.id } });
    const detached = await c.ok<IommufdDetachedView>("POST", `${bindUrl(a!)}/detach`, { owner: "vmm" });
    expect(detached).toMatchObject({ changed: true, iommufdDevice: { domainId: null }, domain: { id: first.domain.id }, freedDomainId: null });
    const last = await c.ok<IommufdDetachedView>("POST", `${bindUrl(b!)}/detach`, { owner: "vmm" });
    expect(last).toMatchObject({ changed: true, domain: { type: "blocked" }, freedDomainId: first.domain.id });
    expect(last.group).toMatchObject({ owner: "vmm", domainId: last.domain.id, blockingDomainId: last.domain.id });
    expectProblem(await c.get(`/v1/domains/${first.domain.id}`), 404, "ENOENT", "no-such-domain");
    expect((await c.ok<IommufdDetachedView>("POST", `${bindUrl(b!)}/detach`, { owner: "vmm" })).changed).toBe(false);
  });

  it("another domain than the group's other device's: 409 EINVAL group-on-another-domain (not soft); replace moves the group: 200", async () => {
    const { group, devices: [a, b], domain } = await rig();
    const other = await c.domain({ driver: "mock" });
    for (const d of [a!, b!]) await c.expect(201, "POST", bindUrl(d), { owner: "vmm" });
    await c.ok("POST", `${bindUrl(a!)}/attach`, { domainId: domain.id, owner: "vmm" });
    expectProblem(await c.post(`${bindUrl(b!)}/attach`, { domainId: other.id, owner: "vmm" }), 409, "EINVAL", "group-on-another-domain",
      { soft: false, deviceId: b!.id, groupId: group.id, domainId: domain.id });
    expectProblem(await c.post(`${bindUrl(b!)}/replace`, { domainId: other.id, owner: "vmm" }), 409, "EINVAL", "device-not-attached",
      { soft: false, deviceId: b!.id });
    const moved = await c.ok<IommufdMovedView>("POST", `${bindUrl(a!)}/replace`, { domainId: other.id, owner: "vmm" });
    expect(moved).toMatchObject({ changed: true, allocated: false, attempts: [], group: { domainId: other.id }, iommufdDevice: { domainId: other.id } });
  });

  it("a non-paging domain: 409 EINVAL domain-not-attachable; both or neither target: 400 EINVAL invalid-argument; unknown container: 404", async () => {
    const { devices: [a] } = await rig();
    await c.expect(201, "POST", bindUrl(a!), { owner: "vmm" });
    const identity = await c.domain({ type: "blocked", driver: "mock" });
    expectProblem(await c.post(`${bindUrl(a!)}/attach`, { domainId: identity.id, owner: "vmm" }), 409, "EINVAL", "domain-not-attachable", { domainId: identity.id });
    expectProblem(await c.post(`${bindUrl(a!)}/attach`, { owner: "vmm" }), 400, "EINVAL", "invalid-argument");
    expectProblem(await c.post(`${bindUrl(a!)}/attach`, { containerId: 1, domainId: identity.id, owner: "vmm" }), 400, "EINVAL", "invalid-argument");
    expectProblem(await c.post(`${bindUrl(a!)}/attach`, { containerId: 555555, owner: "vmm" }), 404, "ENOENT", "no-such-container");
  });

  it("not bound: 404 not-bound; another client's binding: 403 EPERM owned-by-other", async () => {
    const { devices: [a], domain } = await rig();
    expectProblem(await c.post(`${bindUrl(a!)}/attach`, { domainId: domain.id, owner: "vmm" }), 404, "ENOENT", "not-bound", { deviceId: a!.id });
    await c.expect(201, "POST", bindUrl(a!), { owner: "vmm" });
    expectProblem(await c.post(`${bindUrl(a!)}/attach`, { domainId: domain.id, owner: "other" }), 403, "EPERM", "owned-by-other");
    expectProblem(await c.post(`${bindUrl(a!)}/detach`, { owner: "other" }), 403, "EPERM", "owned-by-other");
  });

  it("If-Match is compared with the device's group's version: 412 when stale", async () => {
    const { group, devices: [a], domain } = await rig();
    await c.expect(201, "POST", bindUrl(a!), { owner: "vmm" });
    const stale = `"${group.version}"`;
    expectProblem(await c.send("POST", `${bindUrl(a!)}/attach`, { domainId: domain.id, owner: "vmm" }, { "if-match": stale }), 412, "ESTALE", "precondition-failed");
    const current = `"${(await c.groupNow(group.id)).version}"`;
    expect((await c.send("POST", `${bindUrl(a!)}/attach`, { domainId: domain.id, owner: "vmm" }, { "if-match": current })).status).toBe(200);
  });
});

describe("DELETE /v1/devices/:id/iommufd (unbind)", () => {
  it("204: an attached device is detached first; the last binding releases the group to its default domain; again: 404 not-bound", async () => {
    const { group, devices: [a], domain } = await rig("mock", 1);
    await c.expect(201, "POST", bindUrl(a!), { owner: "vmm" });
    await c.ok("POST", `${bindUrl(a!)}/attach`, { domainId: domain.id, owner: "vmm" });
    expectProblem(await c.send("DELETE", bindUrl(a!), { owner: "other" }), 403, "EPERM", "owned-by-other");
    const res = await c.send("DELETE", bindUrl(a!), { owner: "vmm" });
    expect([res.status, res.text]).toEqual([204, ""]);
    expect(await c.groupNow(group.id)).toMatchObject({ owner: null, domainId: group.defaultDomainId });
    expectProblem(await c.send("DELETE", bindUrl(a!), { owner: "vmm" }), 404, "ENOENT", "not-bound");
    const events = (await c.events()).filter((e: EventView) => e.deviceId === a!.id).map((e) => [e.op, e.errno]);
    expect(events).toEqual([
      ["bind-iommufd", null], ["attach-iommufd", null], ["unbind-iommufd", "EPERM"], ["unbind-iommufd", null], ["unbind-iommufd", "ENOENT"],
    ]);
    // The group is the kernel's again.
    expect((await c.ok<MovedView>("POST", `/v1/groups/${group.id}/claim`, { owner: "other" })).group.owner).toBe("other");
  });
});

describe("bad input names the field", () => {
  it.each<{ name: string; method: Method; url: string; body?: unknown; field: string }>([
    { name: "bind without an owner in open mode", method: "POST", url: "/v1/devices/1/iommufd", body: {}, field: "body.owner" },
    { name: "bind with an unknown field", method: "POST", url: "/v1/devices/1/iommufd", body: { owner: "vmm", force: true }, field: "body.force" },
    { name: "bind with an empty owner", method: "POST", url: "/v1/devices/1/iommufd", body: { owner: "" }, field: "body.owner" },
    { name: "bad id on bind", method: "POST", url: "/v1/devices/x/iommufd", body: { owner: "vmm" }, field: "params.id" },
    { name: "bad id on GET", method: "GET", url: "/v1/devices/0/iommufd", field: "params.id" },
    { name: "containerId of the wrong type", method: "POST", url: "/v1/devices/1/iommufd/attach", body: { containerId: "one" }, field: "body.containerId" },
    { name: "domainId zero on replace", method: "POST", url: "/v1/devices/1/iommufd/replace", body: { domainId: 0 }, field: "body.domainId" },
    { name: "a target on detach", method: "POST", url: "/v1/devices/1/iommufd/detach", body: { domainId: 1 }, field: "body.domainId" },
    { name: "an unknown field on unbind", method: "DELETE", url: "/v1/devices/1/iommufd", body: { hostDriver: "nvme" }, field: "body.hostDriver" },
  ])("$name → 400 naming $field, nothing logged", async ({ method, url, body, field }) => {
    const seq = await c.lastSeq();
    expectInvalid(await c.send(method, url, body), field);
    expect(await c.lastSeq()).toBe(seq);
  });
});
