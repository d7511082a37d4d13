// What one driver's table of tests is made of (test/drivers/rules.test.ts
// holds one per registered driver). A row builds a one-device group and a
// domain, and says what attaching them must give: success, or the errno,
// reason and detail text of the rule that refuses it.
import type { DomainAllocFlags } from "../../src/core/driver.js";
import type { Device, DeviceFlags, Domain, Unit, UnitCapabilities } from "../../src/core/entities.js";
import type { ErrnoName } from "../../src/core/errno.js";
import { attachGroup } from "../../src/core/group-moves.js";
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
}

/** Everything a driver promises, pinned: change the driver and a row here must change too. */
export interface DriverCase {
  /** The capabilities a unit defined with none gets. */
  readonly defaults: UnitCapabilities;
  /** The domain-allocation flags it accepts. */
  readonly allocFlags: DomainAllocFlags;
  /** It binds a paging domain to one instance (it has a finalise op). */
  readonly binds: boolean;
  /** It has a static identity domain (ops->identity_domain) and a static blocked domain (ops->blocked_domain). */
  readonly staticDomains: { readonly identity: boolean; readonly blocked: boolean };
  /** attach_dev (and finalise) outcomes; at least one success and one failure. */
  readonly attach: readonly Row[];
}

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

export const ok = (rule: string, setup: Row["setup"]): Row =>
  ({ rule, setup, errno: null, reason: null, soft: false, detail: null });

export const soft = (reason: Reason, detail: (seen: Seen) => string, setup: Row["setup"], rule: string = reason): Row =>
  ({ rule, setup, errno: "EINVAL", reason, soft: true, detail });

export const hard = (errno: ErrnoName, reason: Reason, detail: (seen: Seen) => string, setup: Row["setup"], rule: string = reason): Row =>
  ({ rule, setup, errno, reason, soft: false, detail });

/** The detail of the core's different-instance refusal, common to every binding driver. */
export const differentInstance = ({ domain, device, unit, boundTo }: Seen) =>
  `domain ${domain.id} is finalised on ${boundTo!.name}, ${device.name} is behind ${unit.name}`;
