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

export function driverOf(name: DriverName): IommuDriver {
  return DRIVERS[name];
}

export type { IommuDriver, AttachContext } from "./types.js";
