// The driver registry: one line per file in this folder. The service hands
// this table to the core (new Model(DRIVERS)); the core never imports it.
import type { DriverTable } from "../core/driver.js";
import { amdIommu } from "./amd-iommu.js";
import { appleDart } from "./apple-dart.js";
import { armSmmuV3 } from "./arm-smmu-v3.js";
import { armSmmu } from "./arm-smmu.js";
import { intelVtd } from "./intel-vtd.js";
import { mock } from "./mock.js";
import { virtioIommu } from "./virtio-iommu.js";

export const DRIVERS = {
  "intel-vtd": intelVtd,
  "arm-smmu-v3": armSmmuV3,
  "arm-smmu": armSmmu,
  "amd-iommu": amdIommu,
  "apple-dart": appleDart,
  "virtio-iommu": virtioIommu,
  mock,
} satisfies DriverTable;

/** A registered driver's name: the HTTP schemas' enum and the test tables' keys. */
export type DriverName = keyof typeof DRIVERS;

export const DRIVER_NAMES = Object.keys(DRIVERS) as readonly DriverName[];
