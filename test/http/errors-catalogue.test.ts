// The error catalogue pinned row by row: each reason's section, errno, soft
// flag and HTTP status, as a client sees them in the problem document.
// Changing any of them in src/core/reasons.ts or src/http/status.ts is a
// change of the API and must change this table too.
import { describe, expect, it } from "vitest";
import { ATTACH_DEV_ERRNOS, errnoCode, type AttachDevErrno, type ErrnoName } from "../../src/core/errno.js";
import { CORE_REASONS, REASONS, SERVICE_REASONS, type FixedReason, type Reason } from "../../src/core/reasons.js";
import { driverFailure, failure, isSoft, type ErrnoError } from "../../src/core/result.js";
import { problemDocument } from "../../src/http/problem.js";
import { STATUS, statusOf } from "../../src/http/status.js";

type Section = "core" | "service";
type Pinned = [reason: Reason, section: Section, errno: ErrnoName | null, soft: boolean, status: number | Record<AttachDevErrno, number>];

const PINNED: Pinned[] = [
  ["address-width"               , "core",    "EINVAL"       , true , 409],
  ["snoop-control"               , "core",    "EINVAL"       , true , 409],
  ["cache-coherency"             , "core",    "EINVAL"       , true , 409],
  ["dirty-tracking"              , "core",    "EINVAL"       , true , 409],
  ["page-size"                   , "core",    "EINVAL"       , true , 409],
  ["iommu-coherency"             , "core",    "EINVAL"       , true , 409],
  ["first-stage"                 , "core",    "EINVAL"       , true , 409],
  ["different-instance"          , "core",    "EINVAL"       , true , 409],
  ["different-driver"            , "core",    "EINVAL"       , true , 409],
  ["requires-identity"           , "core",    "EINVAL"       , false, 409],
  ["untrusted-device"            , "core",    "EINVAL"       , false, 409],
  ["bypass-unsupported"          , "core",    "EINVAL"       , false, 409],
  ["driver-mismatch"             , "core",    "EINVAL"       , false, 400],
  ["group-has-multiple-devices"  , "core",    "EINVAL"       , false, 409],
  ["group-attached"              , "core",    "EBUSY"        , false, 409],
  ["group-not-default"           , "core",    "EBUSY"        , false, 409],
  ["group-has-devices"           , "core",    "EBUSY"        , false, 409],
  ["group-empty"                 , "core",    "ENODEV"       , false, 422],
  ["domain-in-use"               , "core",    "EBUSY"        , false, 409],
  ["domain-not-attachable"       , "core",    "EINVAL"       , false, 409],
  ["unit-in-use"                 , "core",    "EBUSY"        , false, 409],
  ["container-in-use"            , "core",    "EBUSY"        , false, 409],
  ["not-in-container"            , "core",    "EINVAL"       , false, 409],
  ["in-other-container"          , "core",    "EINVAL"       , false, 409],
  ["pasid-in-use"                , "core",    "EBUSY"        , false, 409],
  ["pasid-incompatible"          , "core",    "EINVAL"       , true , 409],
  ["pasid-attached"              , "core",    "EBUSY"        , false, 409],
  ["pasid-out-of-range"          , "core",    "EINVAL"       , false, 409],
  ["no-pasid-table"              , "core",    "EINVAL"       , false, 409],
  ["host-driver-bound"           , "core",    "EPERM"        , false, 403],
  ["group-owned"                 , "core",    "EBUSY"        , false, 409],
  ["device-has-driver"           , "core",    "EBUSY"        , false, 409],
  ["not-cache-coherent"          , "core",    "EINVAL"       , false, 409],
  ["msi-not-isolated"            , "core",    "EPERM"        , false, 403],
  ["group-claimed"               , "core",    "EPERM"        , false, 403],
  ["iommufd-bound"               , "core",    "EPERM"        , false, 403],
  ["not-bound"                   , "core",    "ENOENT"       , false, 404],
  ["device-not-attached"         , "core",    "EINVAL"       , false, 409],
  ["group-on-another-domain"     , "core",    "EINVAL"       , false, 409],
  ["no-such-pasid"               , "core",    "ENOENT"       , false, 404],
  ["owned-by-other"              , "core",    "EPERM"        , false, 403],
  ["not-owned"                   , "core",    "EPERM"        , false, 403],
  ["quota-exceeded"              , "core",    "EDQUOT"       , false, 403],
  ["domain-ids-exhausted"        , "core",    "ENOSPC"       , false, 507],
  ["asids-exhausted"             , "core",    "EBUSY"        , false, 507],
  ["vmids-exhausted"             , "core",    "ENOSPC"       , false, 507],
  ["context-banks-exhausted"     , "core",    "ENOSPC"       , false, 507],
  ["domain-id-pool-exhausted"    , "core",    "ENOMEM"       , false, 507],
  ["page-too-large"              , "core",    "EINVAL"       , false, 409],
  ["granule-too-large"           , "core",    "ENODEV"       , false, 422],
  ["unit-offline"                , "core",    "ENODEV"       , false, 422],
  ["device-faulty"               , "core",    "ENODEV"       , false, 422],
  ["injected-fault"              , "core",    null           , true , { EINVAL: 409, EBUSY: 409, ENOMEM: 507, ENOSPC: 507, ENODEV: 422 }],
  ["unsupported"                 , "core",    "EOPNOTSUPP"   , false, 501],
  ["name-taken"                  , "core",    "EEXIST"       , false, 409],
  ["no-such-unit"                , "core",    "ENOENT"       , false, 404],
  ["no-such-group"               , "core",    "ENOENT"       , false, 404],
  ["no-such-device"              , "core",    "ENOENT"       , false, 404],
  ["no-such-domain"              , "core",    "ENOENT"       , false, 404],
  ["no-such-container"           , "core",    "ENOENT"       , false, 404],
  ["no-such-fault"               , "core",    "ENOENT"       , false, 404],
  ["invalid-argument"            , "core",    "EINVAL"       , false, 400],
  ["reserved-region-mapped"      , "core",    "EADDRINUSE"   , false, 409],
  ["mapping-outside-aperture"    , "core",    "EADDRINUSE"   , false, 409],
  ["mapping-misaligned"          , "core",    "EADDRINUSE"   , false, 409],
  ["iova-misaligned"             , "core",    "EINVAL"       , false, 409],
  ["iova-reserved"               , "core",    "EINVAL"       , false, 409],
  ["iova-mapped"                 , "core",    "EEXIST"       , false, 409],
  ["iova-space-exhausted"        , "core",    "ENOSPC"       , false, 507],
  ["iova-not-mapped"             , "core",    "ENOENT"       , false, 404],
  ["mapping-split"               , "core",    "ENOENT"       , false, 404],
  ["no-such-mapping"             , "core",    "ENOENT"       , false, 404],
  ["no-such-region"              , "core",    "ENOENT"       , false, 404],
  ["invalid-request"             , "service", "EINVAL"       , false, 400],
  ["no-such-route"               , "service", "ENOENT"       , false, 404],
  ["unauthenticated"             , "service", "EACCES"       , false, 401],
  ["forbidden-role"              , "service", "EPERM"        , false, 403],
  ["malformed-request"           , "service", "EINVAL"       , false, 400],
  ["method-not-allowed"          , "service", "EOPNOTSUPP"   , false, 405],
  ["method-not-implemented"      , "service", "ENOSYS"       , false, 501],
  ["body-too-large"              , "service", "E2BIG"        , false, 413],
  ["uri-too-long"                , "service", "ENAMETOOLONG" , false, 414],
  ["unsupported-media-type"      , "service", "EINVAL"       , false, 415],
  ["store-unavailable"           , "service", "EIO"          , false, 503],
  ["not-ready"                   , "service", "EIO"          , false, 503],
  ["internal-error"              , "service", "EIO"          , false, 500],
  ["rate-limited"                , "service", "EAGAIN"       , false, 429],
  ["overloaded"                  , "service", "EAGAIN"       , false, 503],
  ["too-many-connections"        , "service", "EAGAIN"       , false, 503],
  ["too-many-streams"            , "service", "EAGAIN"       , false, 503],
  ["request-timeout"             , "service", "ETIMEDOUT"    , false, 408],
  ["headers-too-large"           , "service", "E2BIG"        , false, 431],
  ["invalid-idempotency-key"     , "service", "EINVAL"       , false, 400],
  ["idempotency-key-reused"      , "service", "EINVAL"       , false, 422],
  ["idempotency-key-in-flight"   , "service", "EAGAIN"       , false, 409],
  ["precondition-failed"         , "service", "ESTALE"       , false, 412],
];

const fixed = PINNED.filter((row): row is [FixedReason, Section, ErrnoName, boolean, number] => row[2] !== null);

function errorOf(result: { ok: boolean; error?: ErrnoError }): ErrnoError {
  if (result.ok || !result.error) throw new Error("expected a failure");
  return result.error;
}

describe("the error catalogue", () => {
  it("pins every reason exactly once, and no other", () => {
    const pinned = PINNED.map(([reason]) => reason);
    expect(new Set(pinned).size).toBe(pinned.length);
    expect([...pinned].sort()).toEqual(Object.keys(REASONS).sort());
  });

  it.each(PINNED)("%s: %s, %s, soft %s, HTTP %j", (reason, section, errno, soft, status) => {
    expect(Object.hasOwn(section === "core" ? CORE_REASONS : SERVICE_REASONS, reason)).toBe(true);
    expect(REASONS[reason].errno).toBe(errno);
    expect(REASONS[reason].soft).toBe(soft);
    expect(STATUS[reason]).toEqual(status);
    expect(REASONS[reason].title).not.toBe("");
  });

  it.each(fixed)("%s answers a problem document with its errno, soft flag and status", (reason, _section, errno, soft, status) => {
    const error = failure(reason, "what happened");
    expect(error).toEqual({ errno, reason, detail: "what happened" });
    expect(isSoft(error)).toBe(soft);
    expect(statusOf(error)).toBe(status);
    expect(problemDocument(error, { instance: "/v1/x", requestId: "r1" })).toEqual({
      type: `urn:iommu-arbiter:problem:${reason}`, title: REASONS[reason].title, status,
      errno, code: errnoCode(errno), soft, reason, detail: "what happened", instance: "/v1/x", requestId: "r1",
    });
  });

  // The one reason without an errno of its own: a driver's code, answered
  // (after the "any other code is ENODEV" rule) with that code's status.
  const injected = PINNED.find(([reason]) => reason === "injected-fault")!;
  const byErrno = injected[4] as Record<AttachDevErrno, number>;
  const RAW: [raw: ErrnoName, errno: AttachDevErrno, soft: boolean][] = [
    ...ATTACH_DEV_ERRNOS.map((e): [ErrnoName, AttachDevErrno, boolean] => [e, e, e === "EINVAL"]),
    ["ETIMEDOUT", "ENODEV", false],
    ["EIO", "ENODEV", false],
  ];
  it.each(RAW)("injected-fault with %s: %s, soft %s, its code's status", (raw, errno, soft) => {
    const error = errorOf(driverFailure(raw, "injected-fault", "injected"));
    expect(error.errno).toBe(errno);
    expect(error.driverErrno).toBe(raw === errno ? undefined : raw);
    expect(isSoft(error)).toBe(soft);
    expect(statusOf(error)).toBe(byErrno[errno]);
    expect(problemDocument(error)).toMatchObject({ status: byErrno[errno], errno, soft, reason: "injected-fault", ...(raw === errno ? {} : { driverErrno: raw }) });
  });

  it("gives every reason a title of its own", () => {
    const titles = Object.values(REASONS).map((entry) => entry.title);
    expect(new Set(titles).size).toBe(titles.length);
  });
});
