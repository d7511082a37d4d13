// The simulated objects. Records are immutable: the model replaces a record to
// change it, which is what lets it keep indexes and an undo log exact.
import type { Outcome } from "./outcome.js";

export const DOMAIN_TYPES = ["paging", "identity", "blocked", "dma"] as const;
export type DomainType = (typeof DOMAIN_TYPES)[number];

export interface UnitCapabilities {
  /** Input address bits the unit translates (VT-d MGAW, SMMU IAS). */
  readonly addressWidth: number;
  /** Supported page sizes in bytes (the unit's pgsize_bitmap). */
  readonly pageSizes: readonly number[];
  /** Can enforce cache coherency (VT-d snoop control, SMMU coherent walks). */
  readonly snoopControl: boolean;
  readonly dirtyTracking: boolean;
  readonly nesting: boolean;
  /** Domain IDs, ASIDs/VMIDs or context banks the unit has. */
  readonly domainIds: number;
  /** PAGE_SIZE of the CPU the unit serves. */
  readonly cpuPageSize: number;
}

export interface Unit {
  readonly id: number;
  readonly name: string;
  /** The name of a driver in the model's driver table (src/core/driver.ts). */
  readonly driver: string;
  readonly capabilities: UnitCapabilities;
  readonly online: boolean;
}

export interface DomainConfig {
  readonly addressWidth: number;
  readonly pageSizes: readonly number[];
  readonly enforceCacheCoherency: boolean;
  readonly dirtyTracking: boolean;
  readonly nestParent: boolean;
}

export interface Domain {
  readonly id: number;
  readonly name: string | null;
  readonly type: DomainType;
  readonly driver: string;
  /** The unit the domain is finalised on; null until its first attach. */
  readonly unitId: number | null;
  readonly config: DomainConfig;
  /** Allocated by the container search (iommufd's automatic domain). */
  readonly auto: boolean;
  readonly containerId: number | null;
  /** The client that created it (its automatic domains: the container's); null: an administrator or the service. */
  readonly owner: string | null;
}

export interface Group {
  readonly id: number;
  readonly name: string;
  readonly unitId: number;
  readonly domainId: number;
  readonly defaultDomainId: number;
  /** Allocated on the first DMA-ownership claim, as the kernel does. */
  readonly blockingDomainId: number | null;
  readonly owner: string | null;
}

export interface DeviceFlags {
  /** iommufd mock: the device cannot track dirty pages. */
  readonly noDirty: boolean;
  /** SMMUv3: the device's writes are coherent with the CPU caches (CANWBS). */
  readonly canwbs: boolean;
  /** Firmware-reserved regions (Intel RMRR): cannot be blocked. */
  readonly requiresIdentity: boolean;
  /** PASIDs are in use on the device (SMMUv3 refuses a stage-2 domain). */
  readonly pasid: boolean;
}

export interface Device {
  readonly id: number;
  readonly name: string;
  readonly groupId: number;
  readonly flags: DeviceFlags;
  readonly faulty: boolean;
}

export interface ContainerConfig {
  /** Ask for domains that enforce cache coherency (VFIO/iommufd enforce_cc). */
  readonly enforceCacheCoherency: boolean;
  readonly dirtyTracking: boolean;
}

export interface Container {
  readonly id: number;
  readonly name: string;
  readonly config: ContainerConfig;
  /** The client that created it; null: an administrator (usable by every client). */
  readonly owner: string | null;
}

export interface Fault {
  readonly id: number;
  readonly unitId: number | null;
  readonly deviceId: number | null;
  /** Any Linux errno name; codes outside the contract exercise the ENODEV rule. */
  readonly errno: string;
  readonly remaining: number;
}

export type EventOp =
  | "attach-device" | "detach-device" | "attach-group" | "replace-group" | "detach-group"
  | "claim" | "release" | "container-attach" | "container-detach";

/** An attempt as the core records it; the store stamps seq and time (and stores no soft: it is derived). */
export interface EventDraft extends Outcome {
  readonly op: EventOp;
  readonly owner: string | null;
  readonly groupId: number | null;
  readonly deviceId: number | null;
  readonly domainId: number | null;
  readonly containerId: number | null;
}

export interface EventRecord extends EventDraft {
  readonly seq: number;
  readonly at: Date;
}

export const DEFAULT_DEVICE_FLAGS: DeviceFlags = Object.freeze({
  noDirty: false, canwbs: false, requiresIdentity: false, pasid: false,
});
