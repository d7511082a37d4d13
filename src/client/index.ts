// The iommu-arbiter client: `import { ArbiterClient } from "iommu-arbiter/client"`.
export { ArbiterClient, type ClientOptions } from "./client.js";
export { attachThroughContainer, attachWithRetry, type AttachWithRetryOptions, type Placement } from "./attach-with-retry.js";
export { ErrnoError, ProblemError, TransportError } from "./errors.js";
export type { FollowOptions } from "./events.js";
export { DEFAULT_RETRY, type CallOptions, type RetryInfo, type RetryPolicy, type TransportOptions } from "./transport.js";
export type * from "./types.js";
