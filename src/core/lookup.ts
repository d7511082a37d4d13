// Finding objects by id, with the ENOENT a caller gets when one is missing,
// and drivers by name.
import type { IommuDriver } from "./driver.js";
import type { Entities, Kind, Model } from "./model.js";
import { fail, ok, type Result } from "./result.js";
import type { FixedReason } from "./reasons.js";

/** The kinds a client names by id (the host's settings are one row, never looked up by id). */
type LookupKind = Exclude<Kind, "host">;

const MISSING: Record<LookupKind, FixedReason> = {
  unit: "no-such-unit", container: "no-such-container", domain: "no-such-domain",
  group: "no-such-group", device: "no-such-device", fault: "no-such-fault", pasid: "no-such-pasid",
  mapping: "no-such-mapping", region: "no-such-region",
  iommufd: "not-bound",
};

export function lookup<K extends LookupKind>(model: Model, kind: K, id: number): Result<Entities[K]> {
  const row = model.get(kind, id);
  return row ? ok(row) : fail(MISSING[kind], `${kind} ${id} does not exist`, { [`${kind}Id`]: id });
}

/**
 * The driver a unit or domain names. The HTTP schema refuses an unknown name
 * at the edge; this is the core's own check (a caller of the core, or a row
 * storage holds, naming a driver the table lacks).
 */
export function lookupDriver(model: Model, name: string): Result<IommuDriver> {
  const driver = model.driver(name);
  return driver ? ok(driver) : fail("invalid-argument", `${name} is not a registered IOMMU driver`);
}
