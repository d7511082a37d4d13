// What one driver's table of tests is made of (test/drivers/rules.test.ts
// holds one per registered driver). A row builds a one-device group and a
// domain, and says what attaching them must give: success, or the errno,
// reason and detail text of the rule that refuses it.
import type { DomainAllocFlags, FinaliseTiming, IommuCap } from "../../src/core/driver.js";
import type { Device, DeviceFlags, Domain, Unit, UnitCapabilities } from "../../src/core/entities.js";
import type { ErrnoName } from "../../src/core/errno.js";
import { attachGroup } from "../../src/core/group-moves.js";
import type { DomainSpec } from "../../src/core/objects.js";
import { attachPasid } from "../../src/core/pasid.js";
import type { Reason } from "../../src/core/reasons.js";
import { ANON, type Fixture } from "../core/fixtures.js";

export interface Setup {
  readonly groupId: number;
  readonly deviceId: number;
  readonly domainId: number;
  readonly unitId: number;
}

/** The objects of a row as they are before the attach, to spell the expected detail with. */
export interface Seen {
  readonly unit: Unit;
  readonly device: Device;
  readonly domain: Domain;
  /** The unit the domain is bound to, if any. */
  readonly boundTo: Unit | null;
}

export interface Row {
  readonly rule: string;
  readonly setup: (fx: Fixture) => Setup;
  /** null: the attach succeeds. */
  readonly errno: ErrnoName | null;
  readonly reason: Reason | null;
  readonly soft: boolean;
  readonly detail: ((seen: Seen) => string) | null;
  /** The DMA owner the group is claimed by and the attach made as (default: unowned, anonymous). */
  readonly owner?: string;
}

/** A domain allocation (domain_alloc_paging), for a unit or for none. */
export interface AllocSetup {
  readonly spec: DomainSpec;
  /** The unit named (the detail's subject), if any. */
  readonly unitId: number | null;
  /** Gives an ID back (frees a domain, or a group's last device): the allocation then succeeds. */
  readonly free?: () => void;
}

export interface AllocRow {
  readonly rule: string;
  readonly setup: (fx: Fixture) => AllocSetup;
  /** null: allocated. */
  readonly errno: ErrnoName | null;
  readonly reason: Reason | null;
  /** `domainId`: the id the allocation was given. */
  readonly detail: ((unit: Unit | null, domainId: number) => string) | null;
  /** On success: the domain is finalised (bound) on the unit at once, or not yet. */
  readonly bound?: boolean;
}

/** A group's first device, whose default domain needs an ID its driver may not have. */
export interface FirstDeviceRow {
  readonly rule: string;
  /** Fills the ID space; returns the unit, a group without devices on it and how to give one ID back. */
  readonly setup: (fx: Fixture) => { unitId: number; groupId: number; free: () => void };
  readonly errno: ErrnoName;
  readonly reason: Reason;
  readonly detail: (unit: Unit) => string;
}

/** device_iommu_capable(): every answer for a device with these flags behind a unit with these capabilities. */
export interface CapableRow {
  readonly unit: Partial<UnitCapabilities>;
  readonly device: Partial<DeviceFlags>;
  readonly answers: Readonly<Record<IommuCap, boolean>>;
}

/** enforce_cache_coherency: a domain (already enforcing or not) with these devices attached, each behind its own unit. */
export interface EnforceRow {
  readonly rule: string;
  readonly enforcing: boolean;
  readonly attached: readonly { readonly unit: Partial<UnitCapabilities>; readonly device: Partial<DeviceFlags> }[];
  readonly enforced: boolean;
}

/** Everything a driver promises, pinned: change the driver and a row here must change too. */
export interface DriverCase {
  /** The capabilities a unit defined with none gets. */
  readonly defaults: UnitCapabilities;
  /** The domain-allocation flags it accepts. */
  readonly allocFlags: DomainAllocFlags;
  /** It binds a paging domain to one instance (it has a finalise op). */
  readonly binds: boolean;
  /** When a binding driver finalises a domain allocated for a unit (null: it does not bind). */
  readonly finaliseAt: FinaliseTiming | null;
  /** domain_alloc_paging outcomes: what allocation takes, refuses, and gives back. */
  readonly allocate: readonly AllocRow[];
  /** The group's first device refused for its default domain's ID (null: default domains take none). */
  readonly firstDevice: FirstDeviceRow | null;
  /** It has a static identity domain (ops->identity_domain) and a static blocked domain (ops->blocked_domain). */
  readonly staticDomains: { readonly identity: boolean; readonly blocked: boolean };
  /** attach_dev (and finalise) outcomes; at least one success and one failure. */
  readonly attach: readonly Row[];
  /** iommu_ops.capable; null: the driver has no such op (every answer false). */
  readonly capable: readonly CapableRow[] | null;
  /** iommu_domain_ops.enforce_cache_coherency; null: the driver has no such op. */
  readonly enforceCoherency: readonly EnforceRow[] | null;
}

/** The answers of a capable() row, in IOMMU_CAPS order: cache coherency, enforce cache coherency, dirty tracking. */
export const answers = (cacheCoherency: boolean, enforceCacheCoherency: boolean, dirtyTracking: boolean): Record<IommuCap, boolean> =>
  ({ "cache-coherency": cacheCoherency, "enforce-cache-coherency": enforceCacheCoherency, "dirty-tracking": dirtyTracking });

/** A one-device group on `unitId` and the domain to attach it to. */
export function single(fx: Fixture, unitId: number, domainId: number, flags: Partial<DeviceFlags> = {}): Setup {
  const { group, devices } = fx.groupWith(unitId, [flags]);
  return { groupId: group.id, deviceId: devices[0]!.id, domainId, unitId };
}

/** Spend one of the unit's domain IDs: another group attached to another paging domain of `driver`. */
export function occupyDomainId(fx: Fixture, unitId: number, driver: string): void {
  const other = single(fx, unitId, fx.domain({ driver }).id);
  const r = fx.op(attachGroup, ANON, other.groupId, other.domainId);
  if (!r.ok) throw new Error(`setup attach failed: ${r.error.reason}`);
}

/** A group of the unit attached to `domainId` (the setup step of rows that need one there already). */
export function attachAnother(fx: Fixture, unitId: number, domainId: number): void {
  const other = single(fx, unitId, domainId);
  const r = fx.op(attachGroup, ANON, other.groupId, domainId);
  if (!r.ok) throw new Error(`setup attach failed: ${r.error.reason}`);
}

/**
 * A group on `unitId` whose one device takes PASIDs and has PASID 1 attached
 * to `pasidDomainId`, and the domain to attach it to.
 */
export function singleWithPasid(fx: Fixture, unitId: number, domainId: number, pasidDomainId: number, flags: Partial<DeviceFlags> = {}): Setup {
  const group = fx.group(unitId);
  const device = fx.pasidDevice(group.id, 1 << 20, flags);
  const r = fx.op(attachPasid, ANON, device.id, 1, pasidDomainId);
  if (!r.ok) throw new Error(`setup PASID attach failed: ${r.error.reason}`);
  return { groupId: group.id, deviceId: device.id, domainId, unitId };
}

export const ok = (rule: string, setup: Row["setup"]): Row =>
  ({ rule, setup, errno: null, reason: null, soft: false, detail: null });

export const soft = (reason: Reason, detail: (seen: Seen) => string, setup: Row["setup"], rule: string = reason): Row =>
  ({ rule, setup, errno: "EINVAL", reason, soft: true, detail });

export const hard = (errno: ErrnoName, reason: Reason, detail: (seen: Seen) => string, setup: Row["setup"], rule: string = reason): Row =>
  ({ rule, setup, errno, reason, soft: false, detail });

export const allocated = (rule: string, bound: boolean, setup: AllocRow["setup"]): AllocRow =>
  ({ rule, setup, errno: null, reason: null, detail: null, bound });

export const refused = (errno: ErrnoName, reason: Reason, detail: (unit: Unit | null, domainId: number) => string, setup: AllocRow["setup"], rule: string = reason): AllocRow =>
  ({ rule, setup, errno, reason, detail });

/** The detail of the core's different-instance refusal, common to every binding driver. */
export const differentInstance = ({ domain, device, unit, boundTo }: Seen) =>
  `domain ${domain.id} is finalised on ${boundTo!.name}, ${device.name} is behind ${unit.name}`;
