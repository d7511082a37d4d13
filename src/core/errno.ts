// Linux errno names and values as seen by callers of the IOMMU attach ops
// (include/uapi/asm-generic/errno-base.h and errno.h). The table is wider than
// the contract so that fault injection can exercise the "any other code is
// treated as ENODEV" rule with real names.

export const ERRNO_VALUES = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7,
  ENOEXEC: 8, EBADF: 9, ECHILD: 10, EAGAIN: 11, ENOMEM: 12, EACCES: 13,
  EFAULT: 14, ENOTBLK: 15, EBUSY: 16, EEXIST: 17, EXDEV: 18, ENODEV: 19,
  ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25,
  ETXTBSY: 26, EFBIG: 27, ENOSPC: 28, ESPIPE: 29, EROFS: 30, EMLINK: 31,
  EPIPE: 32, EDOM: 33, ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36,
  ENOLCK: 37, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, ENOMSG: 42, EIDRM: 43,
  ENODATA: 61, ETIME: 62, ENOLINK: 67, EPROTO: 71, EBADMSG: 74,
  EOVERFLOW: 75, EILSEQ: 84, EOPNOTSUPP: 95, EADDRINUSE: 98,
  EADDRNOTAVAIL: 99, ENETDOWN: 100, ECONNRESET: 104, ENOBUFS: 105,
  ETIMEDOUT: 110, ECONNREFUSED: 111, EHOSTDOWN: 112, EALREADY: 114,
  EINPROGRESS: 115, ESTALE: 116, EREMOTEIO: 121, EDQUOT: 122,
  ECANCELED: 125, EOWNERDEAD: 130, ENOTRECOVERABLE: 131, ERFKILL: 132,
  EHWPOISON: 133,
} as const;

export type ErrnoName = keyof typeof ERRNO_VALUES;

/** The names the service itself produces, for readable call sites. */
export const Errno = {
  EPERM: "EPERM", ENOENT: "ENOENT", ENOMEM: "ENOMEM", EBUSY: "EBUSY",
  EEXIST: "EEXIST", ENODEV: "ENODEV", EINVAL: "EINVAL", ENOSPC: "ENOSPC",
  EOPNOTSUPP: "EOPNOTSUPP",
} as const satisfies Record<string, ErrnoName>;

/**
 * The codes struct iommu_domain_ops::attach_dev may return with a defined
 * meaning. Any other code is "discouraged" and callers treat it as ENODEV.
 */
export const ATTACH_DEV_ERRNOS = ["EINVAL", "ENOMEM", "ENOSPC", "EBUSY", "ENODEV"] as const satisfies readonly ErrnoName[];
export type AttachDevErrno = (typeof ATTACH_DEV_ERRNOS)[number];
const ATTACH_DEV_CODES: ReadonlySet<ErrnoName> = new Set<ErrnoName>(ATTACH_DEV_ERRNOS);

export function isAttachDevErrno(name: ErrnoName): name is AttachDevErrno {
  return ATTACH_DEV_CODES.has(name);
}

export function isErrnoName(name: string): name is ErrnoName {
  return Object.prototype.hasOwnProperty.call(ERRNO_VALUES, name);
}

/** Negative Linux value, as the kernel returns it (-22 for EINVAL). */
export function errnoCode(name: ErrnoName): number {
  return -ERRNO_VALUES[name];
}

/** How the attach caller classifies a driver's code (iommu.h contract). */
export function normaliseAttachErrno(name: ErrnoName): AttachDevErrno {
  return isAttachDevErrno(name) ? name : "ENODEV";
}
