// Rows stored before a value object grew a field (UnitCapabilities,
// DomainConfig and DeviceFlags are JSON in the database, no column a
// migration could fill): completed as they load, with what a row made now
// would get. A unit takes its driver's default for a missing capability; a
// domain what its driver's allocation derives from its unit (the unit it is
// bound to, else the driver's defaults, domain-config.ts); a device false.
import { shapedConfig } from "./domain-config.js";
import { DEFAULT_DEVICE_FLAGS, type Entities, type Kind } from "./entities.js";
import { interned } from "./intern.js";
import type { Model } from "./model.js";

/** The row with every field its value objects have today. Units must be loaded before domains. */
export function completeStored<K extends Kind>(model: Model, kind: K, row: Entities[K]): Entities[K] {
  switch (kind) {
    case "unit": {
      const unit = row as Entities["unit"];
      const driver = model.driver(unit.driver);
      if (!driver) return row;
      return { ...unit, capabilities: interned({ ...driver.defaults, ...unit.capabilities }) } as Entities[K];
    }
    case "domain": {
      const domain = row as Entities["domain"];
      const caps = (domain.unitId === null ? undefined : model.get("unit", domain.unitId)?.capabilities) ?? model.driver(domain.driver)?.defaults;
      if (!caps) return row;
      return { ...domain, config: shapedConfig(caps, domain.config) } as Entities[K];
    }
    case "device": {
      const device = row as Entities["device"];
      return { ...device, flags: interned({ ...DEFAULT_DEVICE_FLAGS, ...device.flags }) } as Entities[K];
    }
    default:
      return row;
  }
}
