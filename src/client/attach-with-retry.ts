// Retry-on-EINVAL, done by the client: the contract's promise (an EINVAL
// that is `soft` means "this domain is incompatible with the group: another
// may work") put to use the way iommufd_device_auto_get_domain() uses it.
// The trace has the shape of the server-side search's `attempts`, so a
// caller can switch between the two without changing what it reads.
//
// One difference from the server's search, on purpose: the kernel's loop
// moves on after any EINVAL, including the hard ones (a device that can never
// be blocked, a bad argument); this one moves on only when the answer says
// `soft`, since another domain cannot cure a hard EINVAL.
import type { ArbiterClient } from "./client.js";
import { ErrnoError } from "./errors.js";
import type { Attempt, CreateDomain, Domain, Group } from "./types.js";

export interface AttachWithRetryOptions {
  /**
   * When no candidate fits: the POST /v1/domains body of a domain to
   * allocate and attach (freed again if that attach fails), or a function
   * giving it from the group and the trace so far. Without it the last soft
   * refusal is the answer.
   */
  allocate?: CreateDomain | ((groupId: number, attempts: readonly Attempt[]) => CreateDomain | Promise<CreateDomain>);
  /** The group's DMA owner, in open development mode (with tokens the token names it). */
  owner?: string;
  signal?: AbortSignal;
}

/** Where the group went, and every domain tried on the way (as a container attach answers). */
export interface Placement {
  group: Group;
  domain: Domain;
  /** The group is on a domain allocated for it. */
  allocated: boolean;
  attempts: Attempt[];
}

function succeeded(domainId: number, allocated: boolean): Attempt {
  return { domainId, allocated, freed: false, errno: null, code: 0, soft: false, reason: null, detail: null };
}

function failed(domainId: number, allocated: boolean, error: ErrnoError): Attempt {
  return { domainId, allocated, freed: false, errno: error.errno, code: error.code, soft: error.soft, reason: error.reason, detail: error.detail };
}

/**
 * Attach the group to the first candidate that takes it: a soft EINVAL moves
 * on to the next, any other refusal is thrown at once (an ErrnoError whose
 * `attempts` is the trace so far). When none fits, allocate a domain if told
 * how. Failures that are not refusals (ProblemError, TransportError, an
 * abort) are thrown as they are.
 */
export async function attachWithRetry(
  client: ArbiterClient, groupId: number, candidates: readonly number[], options: AttachWithRetryOptions = {},
): Promise<Placement> {
  const { owner, signal } = options;
  const target = (domainId: number) => ({ domainId, ...(owner !== undefined ? { owner } : {}) });
  const attempts: Attempt[] = [];
  let lastSoft: ErrnoError | null = null;
  for (const domainId of candidates) {
    try {
      const moved = await client.groups.attach(groupId, target(domainId), { signal });
      attempts.push(succeeded(domainId, false));
      return { group: moved.group, domain: moved.domain, allocated: false, attempts };
    } catch (error) {
      if (!(error instanceof ErrnoError)) throw error;
      attempts.push(failed(domainId, false, error));
      if (!error.soft) throw error.withAttempts(attempts);
      lastSoft = error;
    }
  }
  if (options.allocate === undefined) {
    if (lastSoft) throw lastSoft.withAttempts(attempts);
    throw new RangeError("attachWithRetry: no candidate domain and nothing to allocate");
  }
  const body = typeof options.allocate === "function" ? await options.allocate(groupId, attempts) : options.allocate;
  let domain: Domain & { created: boolean };
  try {
    domain = await client.domains.create(body, { signal });
  } catch (error) {
    // As the server's search: a failed allocation adds nothing to the trace.
    throw error instanceof ErrnoError ? error.withAttempts(attempts) : error;
  }
  try {
    const moved = await client.groups.attach(groupId, target(domain.id), { signal });
    attempts.push(succeeded(domain.id, true));
    return { group: moved.group, domain: moved.domain, allocated: true, attempts };
  } catch (error) {
    // Free what this call allocated, even when the caller aborted: an abort
    // must not leak a domain. A static domain (created: false) was not ours.
    const freed = domain.created && (await client.domains.delete(domain.id).then(() => true, () => false));
    if (!(error instanceof ErrnoError)) throw error;
    attempts.push({ ...failed(domain.id, true, error), freed });
    throw error.withAttempts(attempts);
  }
}

/**
 * The server-side search (POST /v1/containers/{id}/attach), answered in the
 * same shape as attachWithRetry: the server tries the container's domains
 * and allocates one in a single request. A failed search rejects with an
 * ErrnoError whose `attempts` is the server's trace.
 */
export async function attachThroughContainer(
  client: ArbiterClient, containerId: number, groupId: number,
  options: { policy?: "kernel" | "qemu"; owner?: string; signal?: AbortSignal } = {},
): Promise<Placement> {
  const { policy, owner, signal } = options;
  const answer = await client.containers.attach(containerId, {
    groupId, ...(policy !== undefined ? { policy } : {}), ...(owner !== undefined ? { owner } : {}),
  }, { signal });
  return { group: answer.group, domain: answer.domain, allocated: answer.allocated, attempts: answer.attempts };
}
