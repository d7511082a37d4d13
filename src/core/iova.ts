// A container's IOVA space as iommufd's io_pagetable keeps it
// (drivers/iommu/iommufd/io_pagetable.c): the ranges mapped in it (areas,
// IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP; ranges only, no memory behind them) and
// the ranges reserved in it. Two kinds of reservation exist, both derived
// from what is attached, never stored:
//
// - the reserved regions of every device attached to a paging domain of the
//   container, but IOMMU_RESV_DIRECT_RELAXABLE ones
//   (iopt_table_enforce_dev_resv_regions, called from
//   iommufd_device_attach_reserved_iova before the driver sees the domain,
//   released by iommufd_hw_pagetable_detach with the device);
// - everything above each paging domain's aperture, from the moment the
//   domain joins the container (iopt_table_add_domain) until it is freed.
//
// Reserving over a mapping is EADDRINUSE (iopt_reserve_iova); mapping over a
// reservation is EINVAL and over a mapping EEXIST (iopt_check_iova). The
// container's IOVA alignment is the largest smallest-page of its paging
// domains (iopt_calculate_iova_alignment), 1 without any.
//
// Addresses are exact up to 2^53 - 1 (MAX_IOVA): the kernel's go to
// ULONG_MAX, but JSON and JS numbers stop being exact there (docs/semantics.md
// §4 D19).
import { checkCreator, creatorOf } from "./access.js";
import type { Caller } from "./caller.js";
import { MAX_UINT64_EXACT } from "./declare.js";
import { Mapping, ReservedRegion, type Container, type Device, type Domain, type Group, type ReservedRegionType } from "./entities.js";
import { recordAttempt } from "./events.js";
import { lookup } from "./lookup.js";
import type { Model } from "./model.js";
import { checkObjectQuota, NO_QUOTAS, type Quotas } from "./quota.js";
import { fail, ok, OK, type Result } from "./result.js";

/** The highest IOVA the service represents. */
export const MAX_IOVA = MAX_UINT64_EXACT;
/** PAGE_SIZE of the host: iopt_alloc_iova never hands out an IOVA below it. */
export const PAGE_SIZE = 4096;
/**
 * HPAGE_SIZE on x86-64 with CONFIG_TRANSPARENT_HUGEPAGE: the largest
 * alignment iopt_alloc_iova gives an automatic IOVA.
 */
export const HPAGE_SIZE = 2 * 1024 * 1024;

/** An inclusive range, as the kernel's interval trees keep them: [start, last]. */
interface Span {
  readonly start: number;
  readonly last: number;
}

/** A reserved span, with what reserves it (for the detail text and the ids of a refusal). */
interface Reservation extends Span {
  readonly what: string;
  readonly ids: Record<string, number>;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const spanText = (s: Span): string => `[${hex(s.start)}, ${hex(s.last)}]`;
const overlaps = (a: Span, b: Span): boolean => a.start <= b.last && b.start <= a.last;

/** start + length - 1, or null when it passes MAX_IOVA (computed without leaving the exact integers). */
function lastOf(start: number, length: number): number | null {
  return length - 1 > MAX_IOVA - start ? null : start + (length - 1);
}

const spanOf = (m: { readonly iova: number; readonly length: number }): Span => ({ start: m.iova, last: m.iova + (m.length - 1) });
const regionSpan = (r: ReservedRegion): Span => ({ start: r.start, last: r.start + (r.length - 1) });
const mappingText = (m: Mapping): string => `mapping ${m.id} ${spanText(spanOf(m))}`;

// ---- what the container holds ------------------------------------------------

function isPagingIn(domain: Domain | undefined, containerId: number): boolean {
  return domain !== undefined && domain.type === "paging" && domain.containerId === containerId;
}

function pagingDomainsOf(model: Model, containerId: number): Domain[] {
  return model.domainsOf(containerId).filter((d) => d.type === "paging");
}

/** 1UL << __ffs(pgsize_bitmap): the domain's smallest page. */
function smallestPage(domain: Domain): number {
  return Math.min(...domain.config.pageSizes);
}

/**
 * iopt_calculate_iova_alignment: the largest smallest-page of the
 * container's paging domains (`except` left out), 1 without any.
 */
export function iovaAlignment(model: Model, containerId: number, except?: number): number {
  let alignment = 1;
  for (const d of pagingDomainsOf(model, containerId)) if (d.id !== except) alignment = Math.max(alignment, smallestPage(d));
  return alignment;
}

/** The last address of the domain's aperture (geometry.aperture_end). */
function apertureEnd(domain: Domain): number {
  return 2 ** domain.config.addressWidth - 1;
}

/** The regions the kernel reserves for a device: all but IOMMU_RESV_DIRECT_RELAXABLE. */
function enforcedRegions(model: Model, device: Device): ReservedRegion[] {
  return model.regionsOf(device.id).filter((r) => r.type !== "direct-relaxable");
}

/** The container's mappings in IOVA order (the area interval tree's order). */
function mappingsByIova(model: Model, containerId: number): Mapping[] {
  return model.mappingsOf(containerId).sort((a, b) => a.iova - b.iova || a.id - b.id);
}

/** Everything reserved in the container's IOVA space (its reserved_itree), by start. */
function reservations(model: Model, containerId: number): Reservation[] {
  const out: Reservation[] = [];
  for (const domain of pagingDomainsOf(model, containerId)) {
    const end = apertureEnd(domain);
    if (end < MAX_IOVA) {
      out.push({
        start: end + 1, last: MAX_IOVA, ids: { domainId: domain.id },
        what: `the IOVA above domain ${domain.id}'s ${domain.config.addressWidth}-bit aperture`,
      });
    }
    for (const groupId of model.groupsAttachedTo(domain.id)) {
      for (const device of model.devicesOf(groupId)) {
        for (const r of enforcedRegions(model, device)) {
          out.push({ ...regionSpan(r), ids: { deviceId: device.id, regionId: r.id }, what: `${device.name}'s ${r.type} region ${r.id}` });
        }
      }
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

// ---- attaching: reserving the devices' regions -----------------------------------

/**
 * iommufd_device_attach_reserved_iova → iopt_table_enforce_dev_resv_regions:
 * a group moving onto a paging domain of a container reserves its devices'
 * regions there, before the driver sees the domain; a region over a mapping
 * is EADDRINUSE (iopt_reserve_iova), hard, so the container search ends on
 * it. Moving between domains of the same container reserves nothing anew
 * (iommufd_group_do_replace_reserved_iova), and so does a domain outside
 * any container.
 */
export function checkReservedRegions(model: Model, group: Group, domain: Domain): Result<void> {
  const containerId = domain.containerId;
  if (containerId === null || domain.type !== "paging") return OK;
  if (isPagingIn(model.get("domain", group.domainId), containerId)) return OK;
  const mappings = mappingsByIova(model, containerId);
  if (mappings.length === 0) return OK;
  for (const device of model.devicesOf(group.id)) {
    for (const region of enforcedRegions(model, device)) {
      const span = regionSpan(region);
      const mapped = mappings.find((m) => overlaps(spanOf(m), span));
      if (mapped === undefined) continue;
      const container = model.get("container", containerId)!;
      return fail("reserved-region-mapped",
        `${device.name}'s ${region.type} region ${region.id} ${spanText(span)} overlaps ${mappingText(mapped)} of container ${container.name}; unmap it before attaching`,
        { deviceId: device.id, regionId: region.id, containerId, mappingId: mapped.id });
    }
  }
  return OK;
}

// ---- a paging domain joining the container -----------------------------------------

/**
 * iopt_table_add_domain: a paging domain joins its container (allocated by
 * the search after its first attach, or created in it). Its smallest page
 * may raise the container's IOVA alignment, which every mapping must meet
 * (iopt_check_iova_alignment), and everything above its aperture becomes
 * reserved (iopt_reserve_iova): either failing over a mapping is EADDRINUSE.
 */
export function checkDomainJoin(model: Model, domain: Domain): Result<void> {
  const containerId = domain.containerId;
  if (containerId === null || domain.type !== "paging") return OK;
  const mappings = mappingsByIova(model, containerId);
  if (mappings.length === 0) return OK;
  const container = model.get("container", containerId)!;
  const current = iovaAlignment(model, containerId, domain.id);
  const alignment = Math.max(current, smallestPage(domain));
  if (alignment !== current) {
    const unaligned = mappings.find((m) => m.iova % alignment !== 0 || m.length % alignment !== 0);
    if (unaligned !== undefined) {
      return fail("mapping-misaligned",
        `${mappingText(unaligned)} of container ${container.name} is not aligned to ${alignment} bytes, the smallest page of domain ${domain.id}`,
        { containerId, mappingId: unaligned.id, domainId: domain.id });
    }
  }
  const end = apertureEnd(domain);
  const above = mappings.find((m) => spanOf(m).last > end);
  if (above !== undefined) {
    return fail("mapping-outside-aperture",
      `${mappingText(above)} of container ${container.name} lies above domain ${domain.id}'s ${domain.config.addressWidth}-bit aperture (last IOVA ${hex(end)})`,
      { containerId, mappingId: above.id, domainId: domain.id });
  }
  return OK;
}

// ---- IOMMU_IOAS_MAP -------------------------------------------------------------------

export interface MapSpec {
  /** With it, IOMMU_IOAS_MAP_FIXED_IOVA; without, the service picks one (iopt_alloc_iova). */
  readonly iova?: number;
  readonly length: number;
}

/** The container, if it exists and the caller may use it. */
function usableContainer(model: Model, caller: Caller, containerId: number): Result<Container> {
  const container = lookup(model, "container", containerId);
  if (!container.ok) return container;
  const usable = checkCreator("container", container.value, caller);
  return usable.ok ? container : usable;
}

/** iopt_check_iova: where a fixed IOVA may be mapped. */
function checkFixedIova(model: Model, container: Container, span: Span, alignment: number): Result<void> {
  if (span.start % alignment !== 0) {
    return fail("iova-misaligned", `IOVA ${hex(span.start)} is not a multiple of ${alignment}, the IOVA alignment of container ${container.name}`,
      { containerId: container.id });
  }
  const reserved = reservations(model, container.id).find((r) => overlaps(r, span));
  if (reserved !== undefined) {
    return fail("iova-reserved", `${spanText(span)} overlaps ${reserved.what} ${spanText(reserved)} in container ${container.name}`,
      { containerId: container.id, ...reserved.ids });
  }
  const mapped = mappingsByIova(model, container.id).find((m) => overlaps(spanOf(m), span));
  if (mapped !== undefined) {
    return fail("iova-mapped", `${spanText(span)} overlaps ${mappingText(mapped)} of container ${container.name}`,
      { containerId: container.id, mappingId: mapped.id });
  }
  return OK;
}

/** roundup_pow_of_two, for 1 <= n <= 2^53. */
function roundUpPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * iopt_alloc_iova with no user address to copy the alignment from: the
 * first hole of at least `length` bytes from PAGE_SIZE to one page below the
 * top of the space (the kernel's allowed span is [PAGE_SIZE, ULONG_MAX -
 * PAGE_SIZE]), outside every reservation and mapping, aligned to the length
 * rounded up to a power of two (at most HPAGE_SIZE).
 */
function allocIova(model: Model, container: Container, length: number, alignment: number): Result<number> {
  const align = Math.min(roundUpPowerOfTwo(length), HPAGE_SIZE);
  if (align < alignment) {
    return fail("iova-misaligned", `an automatic IOVA for ${length} bytes is aligned to ${align}; container ${container.name} needs ${alignment}`,
      { containerId: container.id });
  }
  const used: Span[] = [...reservations(model, container.id), ...mappingsByIova(model, container.id).map(spanOf)]
    .sort((a, b) => a.start - b.start);
  const fits = (holeStart: number, holeLast: number): number | null => {
    const start = Math.ceil(holeStart / align) * align;
    // __alloc_iova_check_range: aligned_start >= last refuses even a one-byte fit at the hole's end.
    return start >= holeLast || holeLast - start < length - 1 ? null : start;
  };
  const top = MAX_IOVA - PAGE_SIZE;
  let cursor = PAGE_SIZE;
  for (const span of used) {
    if (cursor > top) break;
    if (span.last < cursor) continue;
    if (span.start > cursor) {
      const start = fits(cursor, Math.min(span.start - 1, top));
      if (start !== null) return ok(start);
    }
    cursor = span.last + 1;
  }
  if (cursor <= top) {
    const start = fits(cursor, top);
    if (start !== null) return ok(start);
  }
  return fail("iova-space-exhausted", `no free IOVA range of ${length} bytes (aligned to ${align}) in container ${container.name}`,
    { containerId: container.id });
}

function map(model: Model, caller: Caller, containerId: number, spec: MapSpec, quotas: Quotas): Result<Mapping> {
  const found = usableContainer(model, caller, containerId);
  if (!found.ok) return found;
  const container = found.value;
  // iopt_alloc_area_pages: `!length` is EINVAL.
  if (spec.length === 0) return fail("invalid-argument", "length must be at least 1", { containerId });
  if (spec.iova !== undefined && lastOf(spec.iova, spec.length) === null) {
    return fail("invalid-argument", `${spec.length} bytes at ${hex(spec.iova)} end past ${hex(MAX_IOVA)}, the highest IOVA the service represents`,
      { containerId });
  }
  const quota = checkObjectQuota(model, creatorOf(caller), quotas);
  if (!quota.ok) return quota;
  const alignment = iovaAlignment(model, containerId);
  if (spec.length % alignment !== 0) {
    return fail("iova-misaligned", `length ${spec.length} is not a multiple of ${alignment}, the IOVA alignment of container ${container.name}`,
      { containerId });
  }
  let iova: number;
  if (spec.iova !== undefined) {
    const fixed = checkFixedIova(model, container, { start: spec.iova, last: spec.iova + (spec.length - 1) }, alignment);
    if (!fixed.ok) return fixed;
    iova = spec.iova;
  } else {
    const picked = allocIova(model, container, spec.length, alignment);
    if (!picked.ok) return picked;
    iova = picked.value;
  }
  const mapping = Mapping.make({ id: model.allocateId("mapping"), containerId, iova, length: spec.length, owner: creatorOf(caller) });
  model.put("mapping", mapping);
  return ok(mapping);
}

/**
 * IOMMU_IOAS_MAP (iommufd_ioas_map → iopt_map_pages): with an IOVA, at
 * exactly that IOVA (IOMMU_IOAS_MAP_FIXED_IOVA); without, wherever
 * iopt_alloc_iova finds room. The mapping counts in its creator's object quota.
 */
export function mapIova(model: Model, caller: Caller, containerId: number, spec: MapSpec, quotas: Quotas = NO_QUOTAS): Result<Mapping> {
  return recordAttempt(model, "container-map", caller, { containerId }, map(model, caller, containerId, spec, quotas));
}

// ---- IOMMU_IOAS_UNMAP -----------------------------------------------------------------

export interface Unmapped {
  /** Bytes unmapped (the length IOMMU_IOAS_UNMAP answers). */
  readonly unmapped: number;
  readonly mappings: readonly Mapping[];
}

function removeAll(model: Model, mappings: readonly Mapping[]): Result<Unmapped> {
  for (const m of mappings) model.remove("mapping", m.id);
  return ok({ unmapped: mappings.reduce((n, m) => n + m.length, 0), mappings });
}

/** One mapping, by id: IOMMU_IOAS_UNMAP of exactly its range, which always succeeds. */
export function unmapMapping(model: Model, caller: Caller, containerId: number, mappingId: number): Result<Unmapped> {
  const result = ((): Result<Unmapped> => {
    const container = usableContainer(model, caller, containerId);
    if (!container.ok) return container;
    const mapping = lookup(model, "mapping", mappingId);
    if (!mapping.ok) return mapping;
    if (mapping.value.containerId !== containerId) {
      return fail("no-such-mapping", `mapping ${mappingId} is not in container ${container.value.name}`, { containerId, mappingId });
    }
    return removeAll(model, [mapping.value]);
  })();
  return recordAttempt(model, "container-unmap", caller, { containerId }, result);
}

/**
 * IOMMU_IOAS_UNMAP (iopt_unmap_iova): every mapping inside the range goes;
 * one the range cuts is ENOENT (mappings are never split), and so is a range
 * with nothing mapped (iommufd_ioas_unmap). Without a range, everything goes
 * and an empty container is fine (iopt_unmap_all). All or nothing: the kernel
 * unmaps the mappings before one it finds cut (§4 D20).
 */
export function unmapRange(
  model: Model, caller: Caller, containerId: number, range: { iova: number; length: number } | "all",
): Result<Unmapped> {
  const result = ((): Result<Unmapped> => {
    const container = usableContainer(model, caller, containerId);
    if (!container.ok) return container;
    const mappings = mappingsByIova(model, containerId);
    if (range === "all") return removeAll(model, mappings);
    if (range.length === 0) return fail("invalid-argument", "length must be at least 1", { containerId });
    // Nothing is mapped past MAX_IOVA, so a range running past it ends there.
    const span = { start: range.iova, last: lastOf(range.iova, range.length) ?? MAX_IOVA };
    const hit = mappings.filter((m) => overlaps(spanOf(m), span));
    const cut = hit.find((m) => m.iova < span.start || spanOf(m).last > span.last);
    if (cut !== undefined) {
      return fail("mapping-split", `${spanText(span)} covers only part of ${mappingText(cut)}; mappings are unmapped whole`,
        { containerId, mappingId: cut.id });
    }
    if (hit.length === 0) return fail("iova-not-mapped", `nothing is mapped in ${spanText(span)} of container ${container.value.name}`, { containerId });
    return removeAll(model, hit);
  })();
  return recordAttempt(model, "container-unmap", caller, { containerId }, result);
}

// ---- reserved regions of a device --------------------------------------------------------

export interface RegionSpec {
  readonly start: number;
  readonly length: number;
  readonly type: ReservedRegionType;
}

/**
 * The kernel reads a device's reserved regions when it attaches
 * (iommu_get_resv_regions) and holds them until it detaches: they are the
 * hardware's description and do not change in between. Here they change
 * only while the device's group is not attached through a container.
 */
function checkRegionsChangeable(model: Model, device: Device): Result<void> {
  const group = model.get("group", device.groupId)!;
  const domain = model.get("domain", group.domainId)!;
  if (domain.type !== "paging" || domain.containerId === null) return OK;
  const container = model.get("container", domain.containerId)!;
  return fail("group-attached",
    `group ${group.name} is attached through container ${container.name}, which holds ${device.name}'s reserved regions; detach it first`,
    { deviceId: device.id, groupId: group.id, containerId: container.id });
}

/**
 * iopt_table_enforce_dev_resv_regions refuses a driver's report of both a
 * hardware and a software MSI window, or of two software ones (WARN_ON,
 * EINVAL at every attach): a device is never given such a set here.
 */
function checkMsiWindows(model: Model, device: Device, type: ReservedRegionType): Result<void> {
  if (type !== "msi" && type !== "sw-msi") return OK;
  const clash = model.regionsOf(device.id).find((r) => r.type === "sw-msi" || (type === "sw-msi" && r.type === "msi"));
  return clash === undefined ? OK
    : fail("invalid-argument", `${device.name} has ${clash.type} region ${clash.id}; a device has one software MSI window and no hardware one beside it`,
      { deviceId: device.id, regionId: clash.id });
}

/** A reserved region for the device, without an event (a topology file's). */
export function createReservedRegion(model: Model, deviceId: number, spec: RegionSpec): Result<ReservedRegion> {
  const device = lookup(model, "device", deviceId);
  if (!device.ok) return device;
  if (spec.length === 0) return fail("invalid-argument", "length must be at least 1", { deviceId });
  if (lastOf(spec.start, spec.length) === null) {
    return fail("invalid-argument", `${spec.length} bytes at ${hex(spec.start)} end past ${hex(MAX_IOVA)}, the highest address the service represents`,
      { deviceId });
  }
  const changeable = checkRegionsChangeable(model, device.value);
  if (!changeable.ok) return changeable;
  const msi = checkMsiWindows(model, device.value, spec.type);
  if (!msi.ok) return msi;
  const region = ReservedRegion.make({ id: model.allocateId("region"), deviceId, start: spec.start, length: spec.length, type: spec.type });
  model.put("region", region);
  return ok(region);
}

/** A reserved region the device's driver reports (an RMRR, its MSI window, ...). */
export function addReservedRegion(model: Model, caller: Caller, deviceId: number, spec: RegionSpec): Result<ReservedRegion> {
  return recordAttempt(model, "region-add", caller, { deviceId, groupId: model.get("device", deviceId)?.groupId }, createReservedRegion(model, deviceId, spec));
}

export function removeReservedRegion(model: Model, caller: Caller, deviceId: number, regionId: number): Result<ReservedRegion> {
  const result = ((): Result<ReservedRegion> => {
    const device = lookup(model, "device", deviceId);
    if (!device.ok) return device;
    const region = lookup(model, "region", regionId);
    if (!region.ok) return region;
    if (region.value.deviceId !== deviceId) {
      return fail("no-such-region", `region ${regionId} is not ${device.value.name}'s`, { deviceId, regionId });
    }
    const changeable = checkRegionsChangeable(model, device.value);
    if (!changeable.ok) return changeable;
    model.remove("region", regionId);
    return ok(region.value);
  })();
  return recordAttempt(model, "region-remove", caller, { deviceId, groupId: model.get("device", deviceId)?.groupId }, result);
}
