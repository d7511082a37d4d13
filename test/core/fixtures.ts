// A small builder for core tests: makes a Model through the real creation
// functions of src/core/objects.ts and unwraps their Results (a failing
// fixture step throws, which fails the test that needed it).
import { ANONYMOUS, type Caller } from "../../src/core/caller.js";
import type {
  Container, ContainerKind, Device, DeviceFlags, Domain, EventDraft, Fault, Group,
  Unit, UnitCapabilities,
} from "../../src/core/entities.js";
import type { ErrnoName } from "../../src/core/errno.js";
import { KINDS, Model } from "../../src/core/model.js";
import {
  createContainer, createDevice, createDomain, createGroup, createUnit, injectFault,
  type DomainSpec,
} from "../../src/core/objects.js";
import { perform } from "../../src/core/operation.js";
import type { ErrnoError, Result } from "../../src/core/result.js";
import { DRIVERS, type DriverName } from "../../src/drivers/index.js";

export function unwrap<T>(r: Result<T>, what = "fixture step"): T {
  if (!r.ok) throw new Error(`${what} failed: ${r.error.errno} ${r.error.reason}: ${r.error.detail}`);
  return r.value;
}

/** The error of a Result that must have failed (throws if it succeeded). */
export function errorOf<T>(r: Result<T>): ErrnoError {
  if (r.ok) throw new Error(`expected a failure, got ${JSON.stringify(r.value)}`);
  return r.error;
}

export function as(owner: string): Caller & { owner: string } {
  return { owner };
}
export const ANON: Caller = ANONYMOUS;

/** Every row of every kind, ordered, as plain JSON: compare to prove "nothing changed". */
export function snapshot(model: Model, opts: { withFaults?: boolean } = {}): string {
  const out: Record<string, unknown[]> = {};
  for (const kind of KINDS) {
    if (kind === "fault" && opts.withFaults === false) continue;
    out[kind] = [...model.all(kind)].sort((a, b) => a.id - b.id);
  }
  return JSON.stringify(out);
}

export class Fixture {
  /** The service's driver registry, handed to the core as server.ts does. */
  readonly model = new Model(DRIVERS);
  private seq = 0;

  private name(prefix: string): string {
    return `${prefix}${++this.seq}`;
  }

  unit(driver: DriverName, capabilities: Partial<UnitCapabilities> = {}, opts: { name?: string; online?: boolean } = {}): Unit {
    return unwrap(createUnit(this.model, {
      name: opts.name ?? this.name(`${driver}-`), driver, capabilities,
      ...(opts.online !== undefined ? { online: opts.online } : {}),
    }), "createUnit");
  }

  group(unitId: number, name?: string): Group {
    return unwrap(createGroup(this.model, { name: name ?? this.name("group-"), unitId }), "createGroup");
  }

  device(groupId: number, flags: Partial<DeviceFlags> = {}, name?: string): Device {
    return unwrap(createDevice(this.model, { name: name ?? this.name("dev-"), groupId, flags }), "createDevice");
  }

  /** A device that takes PASIDs below `maxPasids` (dev->iommu->max_pasids). */
  pasidDevice(groupId: number, maxPasids = 1 << 20, flags: Partial<DeviceFlags> = {}): Device {
    return unwrap(createDevice(this.model, { name: this.name("pdev-"), groupId, flags, maxPasids }), "createDevice");
  }

  /** A group on `unitId` holding one device per entry of `devices` (flags of each). */
  groupWith(unitId: number, devices: Partial<DeviceFlags>[] = [{}]): { group: Group; devices: Device[] } {
    const group = this.group(unitId);
    return { group, devices: devices.map((flags) => this.device(group.id, flags)) };
  }

  /** A paging domain unless the spec says otherwise. */
  domain(spec: Partial<DomainSpec> = {}): Domain {
    return unwrap(createDomain(this.model, { type: "paging", ...spec }), "createDomain");
  }

  /** An iommufd IOAS unless `kind` says type1. */
  container(kind?: ContainerKind, name?: string): Container {
    return unwrap(createContainer(this.model, { name: name ?? this.name("ioas-"), kind }), "createContainer");
  }

  fault(spec: { unitId?: number; deviceId?: number; errno: ErrnoName; count?: number }): Fault {
    return unwrap(injectFault(this.model, { ...spec, count: spec.count ?? 1 }), "injectFault");
  }

  /**
   * Runs a core operation the way the store does: all or nothing (see
   * src/core/operation.ts), so a test sees what a client would.
   */
  op<A extends unknown[], T>(fn: (model: Model, ...args: A) => Result<T>, ...args: A): Result<T> {
    return perform(this.model, (m) => fn(m, ...args)).result;
  }

  // ---- reads of the current state -----------------------------------------

  groupNow(id: number): Group {
    const g = this.model.get("group", id);
    if (!g) throw new Error(`group ${id} is gone`);
    return g;
  }

  domainNow(id: number): Domain | undefined {
    return this.model.get("domain", id);
  }

  /** Forget the changes made so far (as the store does after a commit). */
  commit(): void {
    this.model.takeChanges();
  }

  /** The events recorded since the last drain (drains). */
  events(): EventDraft[] {
    return this.model.takeChanges().events;
  }
}

export function build(): Fixture {
  return new Fixture();
}
