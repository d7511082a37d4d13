// Bounds on what one caller can make the arbiter hold. Unset quotas are
// unlimited, so the core and its tests need no configuration.
import type { Model } from "./model.js";
import { fail, ok, type Result } from "./result.js";

export interface Quotas {
  /** Containers + domains + IOVA mappings one client may have created (its automatic domains count). */
  readonly objectsPerClient?: number;
  /** Injected faults active at once, across the whole service. */
  readonly activeFaults?: number;
  /** The most attach ops one injected fault may fail (its `remaining`). */
  readonly faultCount?: number;
}

export const NO_QUOTAS: Quotas = Object.freeze({});

/**
 * What the service allows unless configured otherwise (src/config.ts): far
 * above what one VM manager needs, far below what exhausts the arbiter.
 */
export const DEFAULT_QUOTAS = Object.freeze({ objectsPerClient: 1000, activeFaults: 1000, faultCount: 1000 }) satisfies Required<Quotas>;

/** Room for one more object of `creator`'s (null: an administrator's, not counted). */
export function checkObjectQuota(model: Model, creator: string | null, quotas: Quotas): Result<void> {
  const max = quotas.objectsPerClient;
  if (creator === null || max === undefined) return ok(undefined);
  const held = model.ownedObjectCount(creator);
  return held < max
    ? ok(undefined)
    : fail("quota-exceeded", `${creator} has created ${held} containers, domains and IOVA mappings, the most a client may hold (${max}); delete some first`);
}

/** A fault of `count` attach failures fits the fault quotas. */
export function checkFaultQuota(model: Model, count: number, quotas: Quotas): Result<void> {
  if (quotas.faultCount !== undefined && count > quotas.faultCount) {
    return fail("quota-exceeded", `a fault may fail at most ${quotas.faultCount} attach ops, asked for ${count}`);
  }
  const active = model.count("fault");
  if (quotas.activeFaults !== undefined && active >= quotas.activeFaults) {
    return fail("quota-exceeded", `${active} faults are active, the most the service holds (${quotas.activeFaults}); delete or clear some first`);
  }
  return ok(undefined);
}
