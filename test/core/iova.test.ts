// A container's IOVA space (drivers/iommu/iommufd/io_pagetable.c): mappings
// (iopt_map_pages, iopt_check_iova, iopt_alloc_iova, iopt_unmap_iova), the
// devices' reserved regions (iopt_table_enforce_dev_resv_regions via
// iommufd_device_attach_reserved_iova) and the domains' apertures and page
// sizes (iopt_table_add_domain), with the kernel's errno for each refusal.
import { describe, expect, it } from "vitest";
import { groupCompatibility } from "../../src/core/compat.js";
import { containerAttach, containerDetach, type SearchError } from "../../src/core/container-attach.js";
import type { ReservedRegionType } from "../../src/core/entities.js";
import { attachGroup, detachGroup, replaceDomain } from "../../src/core/group-moves.js";
import {
  addReservedRegion, createReservedRegion, mapIova, MAX_IOVA, removeReservedRegion, unmapMapping, unmapRange, type MapSpec,
} from "../../src/core/iova.js";
import { createContainer, createDomain, deleteContainer, deleteDevice } from "../../src/core/objects.js";
import type { ErrnoError } from "../../src/core/result.js";
import { ANON, as, build, errorOf, snapshot, unwrap, type Fixture } from "./fixtures.js";

const MSI = { start: 0xfee00000, length: 0x100000, type: "msi" } as const; // intel_iommu_get_resv_regions: IOAPIC_RANGE
const SW_MSI = { start: 0x8000000, length: 0x100000, type: "sw-msi" } as const; // arm_smmu_get_resv_regions: MSI_IOVA_BASE
const hex = (n: number) => `0x${n.toString(16)}`;
const span = (start: number, length: number) => `[${hex(start)}, ${hex(start + length - 1)}]`;

function region(fx: Fixture, deviceId: number, spec: { start: number; length: number; type: ReservedRegionType }) {
  return unwrap(createReservedRegion(fx.model, deviceId, spec), "createReservedRegion");
}
function mapAt(fx: Fixture, containerId: number, iova: number, length: number) {
  return unwrap(fx.op(mapIova, ANON, containerId, { iova, length }), "mapIova");
}

/**
 * An IOAS "vm" holding one automatic VT-d domain (48-bit aperture, 4 KiB
 * smallest page) with a group attached whose device reports the MSI window
 * and a relaxable 1:1 range over the first 16 MiB, and one mapping of
 * 1 MiB at 1 MiB.
 */
function world() {
  const fx = build();
  const unit = fx.unit("intel-vtd");
  const ioas = fx.container(undefined, "vm");
  const { group, devices } = fx.groupWith(unit.id);
  const device = devices[0]!;
  const msi = region(fx, device.id, MSI);
  region(fx, device.id, { start: 0, length: 0x1000000, type: "direct-relaxable" });
  const domainId = unwrap(fx.op(containerAttach, ANON, ioas.id, group.id)).domainId;
  const mapped = mapAt(fx, ioas.id, 0x100000, 0x100000);
  fx.commit();
  return { fx, unit, ioas, group, device, msi, domainId, mapped };
}
type World = ReturnType<typeof world>;

type Want = { iova: number } | { errno: string; reason: string; detail: (w: World) => string; ids?: (w: World) => Record<string, number> };

describe("IOMMU_IOAS_MAP with IOMMU_IOAS_MAP_FIXED_IOVA (iopt_alloc_area_pages, iopt_check_iova)", () => {
  it.each<[string, MapSpec, Want]>([
    ["length 0 → EINVAL (iopt_alloc_area_pages: !length)", { iova: 0x4000000, length: 0 },
      { errno: "EINVAL", reason: "invalid-argument", detail: () => "length must be at least 1" }],
    ["a length not a multiple of the IOAS alignment (4 KiB: the domain's smallest page) → EINVAL", { iova: 0x4000000, length: 0x800 },
      { errno: "EINVAL", reason: "iova-misaligned", detail: () => "length 2048 is not a multiple of 4096, the IOVA alignment of container vm" }],
    ["an IOVA not a multiple of the IOAS alignment → EINVAL", { iova: 0x4000800, length: 0x1000 },
      { errno: "EINVAL", reason: "iova-misaligned", detail: () => "IOVA 0x4000800 is not a multiple of 4096, the IOVA alignment of container vm" }],
    ["over the attached device's MSI region → EINVAL (a reserved IOVA intersects)", { iova: 0xfee00000, length: 0x1000 },
      { errno: "EINVAL", reason: "iova-reserved",
        detail: (w) => `${span(0xfee00000, 0x1000)} overlaps ${w.device.name}'s msi region ${w.msi.id} ${span(MSI.start, MSI.length)} in container vm`,
        ids: (w) => ({ containerId: w.ioas.id, deviceId: w.device.id, regionId: w.msi.id }) }],
    ["ending one page into the MSI region → EINVAL", { iova: 0xfedff000, length: 0x2000 },
      { errno: "EINVAL", reason: "iova-reserved",
        detail: (w) => `${span(0xfedff000, 0x2000)} overlaps ${w.device.name}'s msi region ${w.msi.id} ${span(MSI.start, MSI.length)} in container vm` }],
    ["touching the MSI region from below (last byte 0xfedfffff) → mapped", { iova: 0xfedff000, length: 0x1000 }, { iova: 0xfedff000 }],
    ["touching the MSI region from above (first byte 0xfef00000) → mapped", { iova: 0xfef00000, length: 0x1000 }, { iova: 0xfef00000 }],
    ["over a direct-relaxable region → mapped (IOMMU_RESV_DIRECT_RELAXABLE is not reserved)", { iova: 0x200000, length: 0x1000 }, { iova: 0x200000 }],
    ["over an existing mapping → EEXIST", { iova: 0x1ff000, length: 0x2000 },
      { errno: "EEXIST", reason: "iova-mapped",
        detail: (w) => `${span(0x1ff000, 0x2000)} overlaps mapping ${w.mapped.id} ${span(0x100000, 0x100000)} of container vm`,
        ids: (w) => ({ containerId: w.ioas.id, mappingId: w.mapped.id }) }],
    ["ending right before an existing mapping → mapped", { iova: 0xff000, length: 0x1000 }, { iova: 0xff000 }],
    ["above the domain's 48-bit aperture → EINVAL (iopt_table_add_domain reserved it)", { iova: 2 ** 48, length: 0x1000 },
      { errno: "EINVAL", reason: "iova-reserved",
        detail: (w) => `${span(2 ** 48, 0x1000)} overlaps the IOVA above domain ${w.domainId}'s 48-bit aperture [${hex(2 ** 48)}, ${hex(MAX_IOVA)}] in container vm`,
        ids: (w) => ({ containerId: w.ioas.id, domainId: w.domainId }) }],
    ["the last page under the aperture → mapped", { iova: 2 ** 48 - 0x1000, length: 0x1000 }, { iova: 2 ** 48 - 0x1000 }],
    ["a range ending past 2^53 - 1 → EINVAL (beyond what the service represents, §4 D19)", { iova: 2 ** 53 - 0x1000, length: 0x2000 },
      { errno: "EINVAL", reason: "invalid-argument",
        detail: () => `8192 bytes at ${hex(2 ** 53 - 0x1000)} end past 0x1fffffffffffff, the highest IOVA the service represents` }],
  ])("%s", (_name, spec, want) => {
    const w = world();
    const before = snapshot(w.fx.model);
    const r = w.fx.op(mapIova, ANON, w.ioas.id, spec);
    const [event] = w.fx.events();
    if ("iova" in want) {
      expect(unwrap(r)).toMatchObject({ containerId: w.ioas.id, iova: want.iova, length: spec.length, owner: null });
      expect(event).toMatchObject({ op: "container-map", containerId: w.ioas.id, errno: null, code: 0 });
      return;
    }
    const error = errorOf(r);
    expect(error).toMatchObject({ errno: want.errno, reason: want.reason, detail: want.detail(w) });
    if (want.ids) expect(error.ids).toEqual(want.ids(w));
    expect(snapshot(w.fx.model)).toBe(before);
    expect(event).toMatchObject({ op: "container-map", containerId: w.ioas.id, groupId: null, domainId: null, errno: want.errno, reason: want.reason, soft: false });
  });

  it("without a domain the IOAS has alignment 1 and the whole space up to 2^53 - 1 (iopt_init_table)", () => {
    const fx = build();
    const ioas = fx.container();
    expect(mapAt(fx, ioas.id, 0x1001, 3)).toMatchObject({ iova: 0x1001, length: 3 });
    expect(mapAt(fx, ioas.id, 0, 1)).toMatchObject({ iova: 0, length: 1 });
    expect(mapAt(fx, ioas.id, MAX_IOVA, 1)).toMatchObject({ iova: MAX_IOVA, length: 1 });
    expect(mapAt(fx, ioas.id, 2 ** 52, 2 ** 52 - 1)).toMatchObject({ iova: 2 ** 52, length: 2 ** 52 - 1 });
    expect(errorOf(fx.op(mapIova, ANON, ioas.id, { iova: 2 ** 52, length: 1 }))).toMatchObject({ errno: "EEXIST", reason: "iova-mapped" });
  });

  it("a region is reserved while its device is attached through the container, until the last device holding it detaches", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const ioas = fx.container();
    const a = fx.groupWith(unit.id);
    const b = fx.groupWith(unit.id);
    region(fx, a.devices[0]!.id, MSI);
    region(fx, b.devices[0]!.id, MSI);
    const overMsi = { iova: MSI.start, length: 0x1000 };
    expect(unwrap(fx.op(mapIova, ANON, ioas.id, overMsi)).iova).toBe(MSI.start); // nothing attached: nothing reserved
    unwrap(fx.op(unmapRange, ANON, ioas.id, "all"));
    unwrap(fx.op(containerAttach, ANON, ioas.id, a.group.id));
    unwrap(fx.op(containerAttach, ANON, ioas.id, b.group.id));
    expect(errorOf(fx.op(mapIova, ANON, ioas.id, overMsi))).toMatchObject({ errno: "EINVAL", reason: "iova-reserved", ids: { deviceId: a.devices[0]!.id } });
    unwrap(fx.op(containerDetach, ANON, ioas.id, a.group.id));
    // iommufd_hw_pagetable_detach removed a's reservation; b's, the same range, stays.
    expect(errorOf(fx.op(mapIova, ANON, ioas.id, overMsi))).toMatchObject({ errno: "EINVAL", reason: "iova-reserved", ids: { deviceId: b.devices[0]!.id } });
    unwrap(fx.op(containerDetach, ANON, ioas.id, b.group.id));
    expect(unwrap(fx.op(mapIova, ANON, ioas.id, overMsi)).iova).toBe(MSI.start);
  });
});

describe("IOMMU_IOAS_MAP without a fixed IOVA (iopt_alloc_iova)", () => {
  it.each<[string, number[][], number, number]>([
    ["the first page is never handed out: PAGE_SIZE first", [], 0x1000, 0x1000],
    ["aligned to the length rounded up to a power of two", [], 0x3000, 0x4000],
    ["alignment at most HPAGE_SIZE (2 MiB)", [], 2 ** 30, 0x200000],
    ["past mappings, first fit", [[0x1000, 0x1000], [0x3000, 0x1000]], 0x1000, 0x2000],
    ["a one-byte hole is skipped (__alloc_iova_check_range: aligned_start >= last)", [[0x1000, 0x1000], [0x2001, 0xfff]], 1, 0x3000],
  ])("%s", (_name, fixed, length, iova) => {
    const fx = build();
    const ioas = fx.container();
    for (const [at, len] of fixed) mapAt(fx, ioas.id, at!, len!);
    expect(unwrap(fx.op(mapIova, ANON, ioas.id, { length }))).toMatchObject({ iova, length });
  });

  it("around the attached devices' regions and the mappings", () => {
    const w = world();
    // [0x1000, 0xfffff] is free below the 1 MiB mapping: a 1 MiB range does not fit there.
    expect(unwrap(w.fx.op(mapIova, ANON, w.ioas.id, { length: 0x100000 })).iova).toBe(0x200000);
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const ioas = fx.container();
    const { group, devices } = fx.groupWith(unit.id);
    region(fx, devices[0]!.id, { start: 0x1000, length: 0x7000, type: "reserved" });
    unwrap(fx.op(containerAttach, ANON, ioas.id, group.id));
    expect(unwrap(fx.op(mapIova, ANON, ioas.id, { length: 0x1000 })).iova).toBe(0x8000);
  });

  it("no hole large enough → ENOSPC (a 32-bit aperture, 4 GiB asked)", () => {
    const fx = build();
    const unit = fx.unit("mock", { addressWidth: 32 });
    const ioas = fx.container(undefined, "small");
    unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(unit.id).group.id));
    expect(errorOf(fx.op(mapIova, ANON, ioas.id, { length: 2 ** 32 }))).toEqual({
      errno: "ENOSPC", reason: "iova-space-exhausted", ids: { containerId: ioas.id },
      detail: "no free IOVA range of 4294967296 bytes (aligned to 2097152) in container small",
    });
    expect(unwrap(fx.op(mapIova, ANON, ioas.id, { length: 2 ** 31 })).iova).toBe(0x200000);
  });

  it("an IOAS aligned beyond HPAGE_SIZE (a domain whose smallest page is 1 GiB) → EINVAL", () => {
    const fx = build();
    const unit = fx.unit("mock", { pageSizes: [2 ** 30] });
    const ioas = fx.container(undefined, "huge");
    fx.domain({ unitId: unit.id, containerId: ioas.id });
    expect(errorOf(fx.op(mapIova, ANON, ioas.id, { length: 2 ** 30 }))).toEqual({
      errno: "EINVAL", reason: "iova-misaligned", ids: { containerId: ioas.id },
      detail: "an automatic IOVA for 1073741824 bytes is aligned to 2097152; container huge needs 1073741824",
    });
    expect(mapAt(fx, ioas.id, 2 ** 30, 2 ** 30).iova).toBe(2 ** 30);
  });
});

describe("who may map, and how many", () => {
  it("another client's container → EPERM; a missing one → ENOENT, not logged", () => {
    const fx = build();
    const ioas = unwrap(fx.op((m) => createContainerAs(m, "vmm-a")));
    fx.commit();
    expect(errorOf(fx.op(mapIova, as("vmm-b"), ioas.id, { length: 0x1000 }))).toMatchObject({ errno: "EPERM", reason: "owned-by-other" });
    expect(errorOf(fx.op(mapIova, as("vmm-b"), 999, { length: 0x1000 }))).toMatchObject({ errno: "ENOENT", reason: "no-such-container" });
    expect(fx.events().map((e) => [e.op, e.errno])).toEqual([["container-map", "EPERM"]]);
  });

  it("a mapping counts in its creator's object quota (an administrator's do not)", () => {
    const fx = build();
    const ioas = unwrap(fx.op((m) => createContainerAs(m, "vmm-a")));
    const quotas = { objectsPerClient: 2 };
    const first = unwrap(fx.op(mapIova, as("vmm-a"), ioas.id, { length: 0x1000 }, quotas));
    expect(first.owner).toBe("vmm-a");
    expect(fx.model.ownedObjectCount("vmm-a")).toBe(2);
    expect(errorOf(fx.op(mapIova, as("vmm-a"), ioas.id, { length: 0x1000 }, quotas))).toMatchObject({
      errno: "EDQUOT", reason: "quota-exceeded",
      detail: "vmm-a has created 2 containers, domains and IOVA mappings, the most a client may hold (2); delete some first",
    });
    expect(unwrap(fx.op(mapIova, { owner: "ops", admin: true }, ioas.id, { length: 0x1000 }, quotas)).owner).toBeNull();
    unwrap(fx.op(unmapMapping, as("vmm-a"), ioas.id, first.id));
    expect(fx.model.ownedObjectCount("vmm-a")).toBe(1);
  });
});

function createContainerAs(m: Fixture["model"], owner: string) {
  return createContainer(m, { name: `ioas-${owner}` }, { owner });
}

describe("IOMMU_IOAS_UNMAP (iopt_unmap_iova, iommufd_ioas_unmap)", () => {
  /** Mappings A [0x10000, 0x1ffff], B [0x20000, 0x2ffff], C [0x40000, 0x4ffff] in a container without domains. */
  function three() {
    const fx = build();
    const ioas = fx.container(undefined, "u");
    const [a, b, c] = [0x10000, 0x20000, 0x40000].map((iova) => mapAt(fx, ioas.id, iova, 0x10000));
    fx.commit();
    return { fx, ioas, a: a!, b: b!, c: c! };
  }
  type Three = ReturnType<typeof three>;

  it.each<[string, (t: Three) => { iova: number; length: number } | "all", ((t: Three) => number[]) | { errno: string; reason: string; detail: (t: Three) => string }]>([
    ["exactly one mapping", () => ({ iova: 0x10000, length: 0x10000 }), (t) => [t.a.id]],
    ["a range covering two whole mappings and the hole after them", () => ({ iova: 0x10000, length: 0x30000 }), (t) => [t.a.id, t.b.id]],
    ["a range running to the top of the space", () => ({ iova: 0x40000, length: MAX_IOVA }), (t) => [t.c.id]],
    ["everything (iopt_unmap_all)", () => "all", (t) => [t.a.id, t.b.id, t.c.id]],
    ["length 0 → EINVAL", () => ({ iova: 0x10000, length: 0 }), { errno: "EINVAL", reason: "invalid-argument", detail: () => "length must be at least 1" }],
    ["a range that cuts the last mapping it reaches → ENOENT, nothing unmapped (§4 D20: the kernel unmaps A first)", () => ({ iova: 0x10000, length: 0x18000 }),
      { errno: "ENOENT", reason: "mapping-split", detail: (t) => `${span(0x10000, 0x18000)} covers only part of mapping ${t.b.id} ${span(0x20000, 0x10000)}; mappings are unmapped whole` }],
    ["a range starting inside a mapping → ENOENT", () => ({ iova: 0x18000, length: 0x8000 }),
      { errno: "ENOENT", reason: "mapping-split", detail: (t) => `${span(0x18000, 0x8000)} covers only part of mapping ${t.a.id} ${span(0x10000, 0x10000)}; mappings are unmapped whole` }],
    ["a range with nothing mapped → ENOENT", () => ({ iova: 0x30000, length: 0x10000 }),
      { errno: "ENOENT", reason: "iova-not-mapped", detail: () => `nothing is mapped in ${span(0x30000, 0x10000)} of container u` }],
  ])("%s", (_name, range, want) => {
    const t = three();
    const before = snapshot(t.fx.model);
    const r = t.fx.op(unmapRange, ANON, t.ioas.id, range(t));
    const [event] = t.fx.events();
    if (typeof want === "function") {
      const ids = want(t);
      const done = unwrap(r);
      expect(done.mappings.map((m) => m.id)).toEqual(ids);
      expect(done.unmapped).toBe(ids.length * 0x10000);
      for (const id of ids) expect(t.fx.model.get("mapping", id)).toBeUndefined();
      expect(t.fx.model.mappingCount(t.ioas.id)).toBe(3 - ids.length);
      expect(event).toMatchObject({ op: "container-unmap", containerId: t.ioas.id, errno: null });
      return;
    }
    expect(errorOf(r)).toMatchObject({ errno: want.errno, reason: want.reason, detail: want.detail(t) });
    expect(snapshot(t.fx.model)).toBe(before);
    expect(event).toMatchObject({ op: "container-unmap", errno: want.errno, reason: want.reason });
  });

  it("everything, of an empty container → 0 bytes, no error", () => {
    const fx = build();
    expect(unwrap(fx.op(unmapRange, ANON, fx.container().id, "all"))).toEqual({ unmapped: 0, mappings: [] });
  });

  it("one mapping by id; one of another container or none at all → ENOENT no-such-mapping", () => {
    const t = three();
    const other = t.fx.container(undefined, "other");
    expect(unwrap(t.fx.op(unmapMapping, ANON, t.ioas.id, t.b.id))).toEqual({ unmapped: 0x10000, mappings: [t.b] });
    expect(errorOf(t.fx.op(unmapMapping, ANON, other.id, t.a.id))).toEqual({
      errno: "ENOENT", reason: "no-such-mapping", detail: `mapping ${t.a.id} is not in container other`, ids: { containerId: other.id, mappingId: t.a.id },
    });
    expect(errorOf(t.fx.op(unmapMapping, ANON, t.ioas.id, t.b.id))).toMatchObject({ errno: "ENOENT", reason: "no-such-mapping" });
    expect(t.fx.model.mappingsOf(t.ioas.id).map((m) => m.id)).toEqual([t.a.id, t.c.id]);
  });

  it("deleting the container unmaps what is left (iommufd_ioas_destroy → iopt_unmap_all); one holding domains stays EBUSY", () => {
    const t = three();
    unwrap(t.fx.op(deleteContainer, t.ioas.id));
    expect([...t.fx.model.all("mapping")]).toEqual([]);
    const w = world();
    expect(errorOf(w.fx.op(deleteContainer, w.ioas.id))).toMatchObject({ errno: "EBUSY", reason: "container-in-use" });
    expect(w.fx.model.get("mapping", w.mapped.id)).toEqual(w.mapped);
  });
});

describe("attaching over a mapping (iommufd_device_attach_reserved_iova → iopt_reserve_iova: EADDRINUSE)", () => {
  /** A VT-d group whose one device reports a region of `type` over [0xfee00000, +1 MiB), and a container "vm" with a manual domain. */
  function setup(type: ReservedRegionType) {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const ioas = fx.container(undefined, "vm");
    const domain = fx.domain({ unitId: unit.id, containerId: ioas.id });
    const { group, devices } = fx.groupWith(unit.id);
    const r = region(fx, devices[0]!.id, { ...MSI, type });
    fx.commit();
    return { fx, unit, ioas, domain, group, device: devices[0]!, region: r };
  }

  it.each<[ReservedRegionType, boolean]>([
    ["direct", true], ["reserved", true], ["msi", true], ["sw-msi", true], ["direct-relaxable", false],
  ])("a %s region over a mapping → refused: %s (iopt_table_enforce_dev_resv_regions skips only IOMMU_RESV_DIRECT_RELAXABLE)", (type, refused) => {
    const s = setup(type);
    const m = mapAt(s.fx, s.ioas.id, 0xfeeff000, 0x2000); // its first page is the region's last
    s.fx.commit();
    const before = snapshot(s.fx.model);
    const r = s.fx.op(attachGroup, ANON, s.group.id, s.domain.id);
    if (!refused) {
      expect(unwrap(r).changed).toBe(true);
      return;
    }
    expect(errorOf(r)).toEqual({
      errno: "EADDRINUSE", reason: "reserved-region-mapped",
      detail: `${s.device.name}'s ${type} region ${s.region.id} ${span(MSI.start, MSI.length)} overlaps mapping ${m.id} ${span(0xfeeff000, 0x2000)} of container vm; unmap it before attaching`,
      ids: { deviceId: s.device.id, regionId: s.region.id, containerId: s.ioas.id, mappingId: m.id, groupId: s.group.id, domainId: s.domain.id },
    });
    expect(snapshot(s.fx.model)).toBe(before);
    expect(s.fx.events()).toEqual([expect.objectContaining({ op: "attach-group", errno: "EADDRINUSE", code: -98, soft: false, reason: "reserved-region-mapped" })]);
  });

  it.each<[string, boolean, number, number]>([
    ["a mapping ending right below the region", false, 0xfedff000, 0x1000],
    ["a mapping starting right above it", false, 0xfef00000, 0x1000],
    ["a mapping covering the region", true, 0xfe000000, 0x2000000],
    ["a mapping of one page on the region's last page", true, 0xfeeff000, 0x1000],
  ])("%s → refused: %s", (_name, refused, iova, length) => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const ioas = fx.container();
    const domain = fx.domain({ unitId: unit.id, containerId: ioas.id });
    mapAt(fx, ioas.id, iova, length);
    const { group, devices } = fx.groupWith(unit.id);
    region(fx, devices[0]!.id, MSI);
    const r = fx.op(attachGroup, ANON, group.id, domain.id);
    if (refused) expect(errorOf(r)).toMatchObject({ errno: "EADDRINUSE", reason: "reserved-region-mapped" });
    else expect(unwrap(r).changed).toBe(true);
  });

  it("a domain outside any container reserves nothing; a move between domains of one container reserves nothing anew; a replace into another container does (iommufd_group_do_replace_reserved_iova)", () => {
    const s = setup("msi");
    const plain = s.fx.domain({ unitId: s.unit.id });
    const other = s.fx.container(undefined, "other");
    const otherDomain = s.fx.domain({ unitId: s.unit.id, containerId: other.id });
    const second = s.fx.domain({ unitId: s.unit.id, containerId: s.ioas.id });
    const inOther = mapAt(s.fx, other.id, MSI.start, 0x1000);
    expect(unwrap(s.fx.op(attachGroup, ANON, s.group.id, plain.id)).changed).toBe(true);
    expect(unwrap(s.fx.op(replaceDomain, ANON, s.group.id, s.domain.id)).changed).toBe(true);
    expect(unwrap(s.fx.op(replaceDomain, ANON, s.group.id, second.id)).changed).toBe(true);
    expect(errorOf(s.fx.op(replaceDomain, ANON, s.group.id, otherDomain.id))).toMatchObject({
      errno: "EADDRINUSE", reason: "reserved-region-mapped", ids: { containerId: other.id, mappingId: inOther.id },
    });
    expect(s.fx.groupNow(s.group.id).domainId).toBe(second.id);
  });

  it("the dry run reports it (EADDRINUSE, not soft) and changes nothing", () => {
    const s = setup("msi");
    const plain = s.fx.domain({ unitId: s.unit.id });
    mapAt(s.fx, s.ioas.id, MSI.start, 0x1000);
    const verdicts = unwrap(groupCompatibility(s.fx.model, s.group.id, { limit: 100 })).verdicts;
    expect(verdicts.find((v) => v.domainId === s.domain.id)).toMatchObject({ compatible: false, errno: "EADDRINUSE", code: -98, soft: false, reason: "reserved-region-mapped" });
    expect(verdicts.find((v) => v.domainId === plain.id)).toMatchObject({ compatible: true });
  });
});

describe("the container search (iommufd_device_auto_get_domain) and the IOAS", () => {
  const attemptsOf = (e: ErrnoError) => (e as SearchError).attempts.map((a) => [a.domainId, a.allocated, a.freed, a.errno, a.soft, a.reason]);

  /** Two SMMUv3 groups attached through "vm" (two automatic domains, each bound to its SMMU), and a third SMMU's group whose device has the SW_MSI window. */
  function smmus() {
    const fx = build();
    const [u1, u2, u3] = [fx.unit("arm-smmu-v3"), fx.unit("arm-smmu-v3"), fx.unit("arm-smmu-v3")];
    const ioas = fx.container(undefined, "vm");
    const d1 = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(u1.id).group.id)).domainId;
    const d2 = unwrap(fx.op(containerAttach, ANON, ioas.id, fx.groupWith(u2.id).group.id)).domainId;
    const { group, devices } = fx.groupWith(u3.id);
    const msi = region(fx, devices[0]!.id, SW_MSI);
    fx.commit();
    return { fx, ioas, d1, d2, group, device: devices[0]!, msi };
  }

  it("ends with EADDRINUSE at the first automatic domain, with no soft skip before it and no allocation: the reservation precedes every driver op", () => {
    const s = smmus();
    const m = mapAt(s.fx, s.ioas.id, SW_MSI.start, 0x1000);
    s.fx.commit();
    const before = snapshot(s.fx.model);
    const error = errorOf(s.fx.op(containerAttach, ANON, s.ioas.id, s.group.id));
    expect(error).toMatchObject({
      errno: "EADDRINUSE", reason: "reserved-region-mapped",
      detail: `${s.device.name}'s sw-msi region ${s.msi.id} ${span(SW_MSI.start, SW_MSI.length)} overlaps mapping ${m.id} ${span(SW_MSI.start, 0x1000)} of container vm; unmap it before attaching`,
    });
    expect(attemptsOf(error)).toEqual([[s.d1, false, false, "EADDRINUSE", false, "reserved-region-mapped"]]);
    expect(snapshot(s.fx.model)).toBe(before);
    expect(s.fx.events()).toEqual([expect.objectContaining({ op: "container-attach", errno: "EADDRINUSE", code: -98, soft: false })]);
    // Unmapped, the same search skips both domains (another SMMU each: soft EINVAL) and allocates.
    unwrap(s.fx.op(unmapMapping, ANON, s.ioas.id, m.id));
    const r = unwrap(s.fx.op(containerAttach, ANON, s.ioas.id, s.group.id));
    expect(r.attempts.map((a) => [a.domainId, a.allocated, a.reason])).toEqual([[s.d1, false, "different-instance"], [s.d2, false, "different-instance"], [r.domainId, true, null]]);
  });

  it("with no automatic domain, the domain allocated for the group is freed again (iommufd_hwpt_paging_alloc attaches after allocating)", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const ioas = fx.container(undefined, "vm");
    const { group, devices } = fx.groupWith(unit.id);
    region(fx, devices[0]!.id, MSI);
    mapAt(fx, ioas.id, MSI.start, 0x100000);
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(containerAttach, ANON, ioas.id, group.id));
    const [tried] = (error as SearchError).attempts;
    expect(attemptsOf(error)).toEqual([[tried!.domainId, true, true, "EADDRINUSE", false, "reserved-region-mapped"]]);
    expect(error.ids).not.toHaveProperty("domainId");
    expect(fx.model.get("domain", tried!.domainId)).toBeUndefined();
    expect(snapshot(fx.model)).toBe(before);
  });

  it.each<[string, { addressWidth?: number; pageSizes?: number[] }, [number, number], string, (d: number, m: number) => string]>([
    ["a mapping above the new domain's aperture → EADDRINUSE", { addressWidth: 39 }, [2 ** 40, 0x1000], "mapping-outside-aperture",
      (d, m) => `mapping ${m} ${span(2 ** 40, 0x1000)} of container vm lies above domain ${d}'s 39-bit aperture (last IOVA ${hex(2 ** 39 - 1)})`],
    ["a mapping not aligned to the new domain's smallest page → EADDRINUSE (iopt_check_iova_alignment)", { pageSizes: [4096] }, [0x1800, 0x800], "mapping-misaligned",
      (d, m) => `mapping ${m} ${span(0x1800, 0x800)} of container vm is not aligned to 4096 bytes, the smallest page of domain ${d}`],
  ])("a domain joining the IOAS (iopt_table_add_domain): %s, and the allocated domain is freed", (_name, caps, [iova, length], reason, detail) => {
    const fx = build();
    const unit = fx.unit("mock", caps);
    const ioas = fx.container(undefined, "vm");
    const m = mapAt(fx, ioas.id, iova, length); // mapped while the IOAS had no domain
    const group = fx.groupWith(unit.id).group;
    fx.commit();
    const before = snapshot(fx.model);
    const error = errorOf(fx.op(containerAttach, ANON, ioas.id, group.id));
    const tried = (error as SearchError).attempts[0]!.domainId;
    expect(error).toEqual(expect.objectContaining({ errno: "EADDRINUSE", reason, detail: detail(tried, m.id), ids: { containerId: ioas.id, mappingId: m.id } }));
    expect(attemptsOf(error)).toEqual([[tried, true, true, "EADDRINUSE", false, reason]]);
    expect(snapshot(fx.model)).toBe(before);
    // IOMMU_HWPT_ALLOC on the IOAS joins it the same way.
    expect(errorOf(fx.op(createDomain, { type: "paging", unitId: unit.id, containerId: ioas.id }))).toMatchObject({ errno: "EADDRINUSE", reason });
    expect(fx.model.domainsOf(ioas.id)).toEqual([]);
  });
});

describe("reserved regions of a device", () => {
  it("change only while the group is not attached through a container; a plain paging domain does not hold them", () => {
    const fx = build();
    const unit = fx.unit("intel-vtd");
    const ioas = fx.container(undefined, "vm");
    const { group, devices } = fx.groupWith(unit.id);
    const device = devices[0]!;
    const msi = unwrap(fx.op(addReservedRegion, ANON, device.id, MSI));
    expect(msi).toEqual({ id: msi.id, deviceId: device.id, start: MSI.start, length: MSI.length, type: "msi" });
    unwrap(fx.op(attachGroup, ANON, group.id, fx.domain({ unitId: unit.id }).id));
    unwrap(fx.op(addReservedRegion, ANON, device.id, { start: 0, length: 0x1000, type: "reserved" }));
    unwrap(fx.op(detachGroup, ANON, group.id, fx.groupNow(group.id).domainId));
    unwrap(fx.op(containerAttach, ANON, ioas.id, group.id));
    fx.commit();
    const detail = `group ${group.name} is attached through container vm, which holds ${device.name}'s reserved regions; detach it first`;
    const ids = { deviceId: device.id, groupId: group.id, containerId: ioas.id };
    expect(errorOf(fx.op(addReservedRegion, ANON, device.id, SW_MSI))).toEqual({ errno: "EBUSY", reason: "group-attached", detail, ids });
    expect(errorOf(fx.op(removeReservedRegion, ANON, device.id, msi.id))).toEqual({ errno: "EBUSY", reason: "group-attached", detail, ids });
    expect(fx.events().map((e) => [e.op, e.deviceId, e.groupId, e.errno])).toEqual([
      ["region-add", device.id, group.id, "EBUSY"], ["region-remove", device.id, group.id, "EBUSY"],
    ]);
    unwrap(fx.op(containerDetach, ANON, ioas.id, group.id));
    expect(unwrap(fx.op(removeReservedRegion, ANON, device.id, msi.id))).toEqual(msi);
    expect(fx.model.regionsOf(device.id).map((r) => r.type)).toEqual(["reserved"]);
  });

  it.each<[string, ReservedRegionType[], ReservedRegionType, boolean]>([
    ["a software MSI window beside a hardware one", ["msi"], "sw-msi", false],
    ["a hardware MSI window beside a software one", ["sw-msi"], "msi", false],
    ["a second software MSI window", ["sw-msi"], "sw-msi", false],
    ["a second hardware MSI window", ["msi"], "msi", true],
    ["a software MSI window beside 1:1 and reserved ranges", ["direct", "reserved", "direct-relaxable"], "sw-msi", true],
  ])("%s → accepted: %s (iopt_table_enforce_dev_resv_regions: drivers must offer sane combinations)", (_name, have, type, accepted) => {
    const fx = build();
    const device = fx.groupWith(fx.unit("mock").id).devices[0]!;
    const made = have.map((t, i) => region(fx, device.id, { start: 0x10000000 * (i + 1), length: 0x1000, type: t }));
    const r = fx.op(addReservedRegion, ANON, device.id, { start: 0x8000000, length: 0x100000, type });
    if (accepted) {
      expect(unwrap(r).type).toBe(type);
      return;
    }
    const clash = made.find((m) => m.type === "sw-msi" || type === "sw-msi")!;
    expect(errorOf(r)).toEqual({
      errno: "EINVAL", reason: "invalid-argument", ids: { deviceId: device.id, regionId: clash.id },
      detail: `${device.name} has ${clash.type} region ${clash.id}; a device has one software MSI window and no hardware one beside it`,
    });
  });

  it.each<[string, { start: number; length: number }, string | null]>([
    ["length 0", { start: 0x1000, length: 0 }, "length must be at least 1"],
    ["ending past 2^53 - 1", { start: MAX_IOVA, length: 2 }, `2 bytes at ${hex(MAX_IOVA)} end past ${hex(MAX_IOVA)}, the highest address the service represents`],
    ["ending exactly at 2^53 - 1", { start: MAX_IOVA, length: 1 }, null],
  ])("%s → %s", (_name, spec, refusal) => {
    const fx = build();
    const device = fx.groupWith(fx.unit("mock").id).devices[0]!;
    const r = fx.op(addReservedRegion, ANON, device.id, { ...spec, type: "reserved" });
    if (refusal === null) expect(unwrap(r)).toMatchObject(spec);
    else expect(errorOf(r)).toEqual({ errno: "EINVAL", reason: "invalid-argument", detail: refusal, ids: { deviceId: device.id } });
  });

  it("of another device, or none → ENOENT no-such-region; of a missing device → ENOENT, not logged; they go with their device", () => {
    const fx = build();
    const unit = fx.unit("mock");
    const a = fx.groupWith(unit.id).devices[0]!;
    const b = fx.groupWith(unit.id).devices[0]!;
    const r = region(fx, a.id, MSI);
    fx.commit();
    expect(errorOf(fx.op(removeReservedRegion, ANON, b.id, r.id))).toEqual({
      errno: "ENOENT", reason: "no-such-region", detail: `region ${r.id} is not ${b.name}'s`, ids: { deviceId: b.id, regionId: r.id },
    });
    expect(errorOf(fx.op(removeReservedRegion, ANON, a.id, 999))).toMatchObject({ errno: "ENOENT", reason: "no-such-region" });
    expect(errorOf(fx.op(addReservedRegion, ANON, 999, MSI))).toMatchObject({ errno: "ENOENT", reason: "no-such-device" });
    expect(fx.events().map((e) => [e.op, e.errno])).toEqual([["region-remove", "ENOENT"], ["region-remove", "ENOENT"]]);
    unwrap(fx.op(deleteDevice, a.id));
    expect([...fx.model.all("region")]).toEqual([]);
  });
});
