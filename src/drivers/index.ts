// The driver registry: one entry per file in this folder.
import type { DriverName } from "../core/entities.js";
import type { IommuDriver } from "./types.js";
import { intelVtd } from "./intel-vtd.js";
import { armSmmuV3 } from "./arm-smmu-v3.js";
import { armSmmu } from "./arm-smmu.js";
import { amdIommu } from "./amd-iommu.js";
import { appleDart } from "./apple-dart.js";
import { virtioIommu } from "./virtio-iommu.js";
import { mock } from "./mock.js";

export const DRIVERS: Readonly<Record<DriverName, IommuDriver>> = {
  "intel-vtd": intelVtd,
  "arm-smmu-v3": armSmmuV3,
  "arm-smmu": armSmmu,
  "amd-iommu": amdIommu,
  "apple-dart": appleDart,
  "virtio-iommu": virtioIommu,
  mock,
};

/** Records carry the driver's name as text (storage holds any). */
export function driverOf(name: string): IommuDriver {
  const driver = (DRIVERS as Readonly<Record<string, IommuDriver | undefined>>)[name];
  if (driver === undefined) throw new RangeError(`no driver named ${JSON.stringify(name)}`);
  return driver;
}

export type { IommuDriver, AttachContext } from "./types.js";
