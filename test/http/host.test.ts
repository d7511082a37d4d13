// /v1/host: the host's settings (its kernel-version profile), read by every
// role, changed by an administrator; and what a client is answered under an
// older kernel's profile (src/core/profiles.ts).
import { describe, expect, it } from "vitest";
import { HOST_ID } from "../../src/core/entities.js";
import { authAppForFile } from "../helpers/auth.js";
import {
  clientForFile, expectInvalid, expectProblem,
  type DeviceView, type DomainView, type EventView, type GroupView, type UnitView,
} from "../helpers/http.js";

const c = clientForFile();
const auth = authAppForFile();

interface HostView { id: number; kernelProfile: string; version: string }

async function profile(name: string): Promise<HostView> {
  return c.ok<HostView>("PATCH", "/v1/host", { kernelProfile: name });
}

describe("GET and PATCH /v1/host", () => {
  it("answers the defaults before anything set them: today's rules (6.5+), with a version as the ETag", async () => {
    const res = await c.get<HostView>("/v1/host");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: HOST_ID, kernelProfile: "6.5+", version: expect.any(String) });
    expect(res.headers.etag).toBe(`"${res.body.version}"`);
  });

  it("PATCH sets the kernel profile; GET shows it; an If-Match of the old version is then refused (412)", async () => {
    const before = await c.read<HostView>("/v1/host");
    const set = await profile("6.1");
    expect(set).toEqual({ id: HOST_ID, kernelProfile: "6.1", version: expect.any(String) });
    expect(set.version).not.toBe(before.version);
    expect(await c.read<HostView>("/v1/host")).toEqual(set);
    const stale = await c.send("PATCH", "/v1/host", { kernelProfile: "6.2" }, { "if-match": `"${before.version}"` });
    expectProblem(stale, 412, "ESTALE", "precondition-failed");
    const fresh = await c.send<HostView>("PATCH", "/v1/host", { kernelProfile: "6.5+" }, { "if-match": `"${set.version}"` });
    expect(fresh.status).toBe(200);
    expect(fresh.body.kernelProfile).toBe("6.5+");
  });

  it("refuses an unknown profile with 400 naming the field, and an empty or unknown-field body", async () => {
    const bad = expectInvalid(await c.patch("/v1/host", { kernelProfile: "5.15" }), "body.kernelProfile");
    expect(bad.errors).toEqual([{ field: "body.kernelProfile", message: "must be one of 6.1, 6.2, 6.5+" }]);
    expectInvalid(await c.patch("/v1/host", {}), "body");
    expectInvalid(await c.patch("/v1/host", { kernelProfile: "6.1", allowUnsafe: true }));
    expect((await c.read<HostView>("/v1/host")).kernelProfile).toBe("6.5+");
  });

  it("with tokens: every role reads it; only an administrator changes it (403 forbidden-role)", async () => {
    for (const who of ["reader", "a", "admin"] as const) {
      expect((await auth.as[who].get<HostView>("/v1/host")).status, who).toBe(200);
    }
    for (const who of ["reader", "a"] as const) {
      expectProblem(await auth.as[who].patch("/v1/host", { kernelProfile: "6.1" }), 403, "EPERM", "forbidden-role");
    }
    expect((await auth.as.admin.read<HostView>("/v1/host")).kernelProfile).toBe("6.5+");
    const set = await auth.as.admin.ok<HostView>("PATCH", "/v1/host", { kernelProfile: "6.1" });
    expect(set.kernelProfile).toBe("6.1");
  });
});

describe("answers under the 6.1 profile", () => {
  it("SMMUv3, another SMMU's domain: 422 ENODEV as the contract classifies the ENXIO 6.1 returns, driverErrno ENXIO; 409 soft EINVAL on 6.5+", async () => {
    const smmu0 = await c.unit({ driver: "arm-smmu-v3" });
    const smmu1 = await c.unit({ driver: "arm-smmu-v3" });
    const domain = await c.domain({ unitId: smmu0.id });
    const { group, devices } = await c.groupWith(smmu1.id);
    const detail = `domain ${domain.id} is finalised on ${smmu0.name}, ${devices[0]!.name} is behind ${smmu1.name}`;
    await profile("6.1");
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: domain.id }), 422, "ENODEV", "different-instance", {
      soft: false, driverErrno: "ENXIO", detail: `${detail}; Linux 6.1 returns ENXIO`,
      groupId: group.id, domainId: domain.id, deviceId: devices[0]!.id,
    });
    await profile("6.5+");
    const today = expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: domain.id }), 409, "EINVAL", "different-instance", { soft: true, detail });
    expect(today.driverErrno).toBeUndefined();
  });

  it("virtio-iommu, a granule larger than the page: EINVAL on 6.1, which the contract reads as soft (409); ENODEV 422 on 6.5+", async () => {
    const unit = await c.unit({ driver: "virtio-iommu", capabilities: { pageSizes: [65536], cpuPageSize: 4096 } });
    const { group } = await c.groupWith(unit.id);
    const domain = await c.domain({ driver: "virtio-iommu" });
    const detail = `${unit.name} granule 65536 exceeds the CPU page size 4096 (domain ${domain.id})`;
    await profile("6.1");
    const old = expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: domain.id }), 409, "EINVAL", "granule-too-large", {
      soft: true, detail: `${detail}; Linux 6.1 returns EINVAL`,
    });
    expect(old.driverErrno).toBeUndefined();
    await profile("6.5+");
    expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: domain.id }), 422, "ENODEV", "granule-too-large", { soft: false, detail });
  });

  it("a group attach failing on its second device: the problem names the devices left on the new domain, the device shows it, the event says it", async () => {
    const unit: UnitView = await c.unit({ driver: "mock" });
    const { group, devices }: { group: GroupView; devices: DeviceView[] } = await c.groupWith(unit.id, [{}, {}]);
    const domain: DomainView = await c.domain({ unitId: unit.id });
    await c.fault({ deviceId: devices[1]!.id, errno: "EIO" });
    await profile("6.1");
    const note = `no unwind before Linux 6.5: the attach leaves device ${devices[0]!.id} on domain ${domain.id}`;
    const problem = expectProblem(await c.post(`/v1/groups/${group.id}/attach`, { domainId: domain.id }), 422, "ENODEV", "injected-fault", {
      driverErrno: "EIO", deviceId: devices[1]!.id, detail: `injected EIO on ${devices[1]!.name}; ${note}`,
    });
    expect((problem as unknown as { stranded: unknown }).stranded).toEqual({ domainId: domain.id, deviceIds: [devices[0]!.id] });
    expect(await c.read<DeviceView>(`/v1/devices/${devices[0]!.id}`)).toMatchObject({ strandedOnDomainId: domain.id });
    expect(await c.read<DeviceView>(`/v1/devices/${devices[1]!.id}`)).toMatchObject({ strandedOnDomainId: null });
    expect((await c.groupNow(group.id)).domainId).toBe(group.domainId);
    const events = (await c.events()).filter((e: EventView) => e.groupId === group.id);
    expect(events.at(-1)).toMatchObject({ op: "attach-group", errno: "ENODEV", detail: `injected EIO on ${devices[1]!.name}; ${note}` });
    expectProblem(await c.del(`/v1/domains/${domain.id}`), 409, "EBUSY", "domain-in-use");
    // The fault is used up: the retry reaches both devices and clears the state.
    const moved = await c.ok<{ changed: boolean }>("POST", `/v1/groups/${group.id}/attach`, { domainId: domain.id });
    expect(moved.changed).toBe(true);
    expect(await c.read<DeviceView>(`/v1/devices/${devices[0]!.id}`)).toMatchObject({ strandedOnDomainId: null });
    await profile("6.5+");
  });
});
