// The dry run (the kernel's coming test_dev op): for each candidate domain,
// would attaching this group succeed, and if not, with which errno. It runs
// the same checks as a real attach in probe mode: nothing changes, not even
// an injected fault is consumed (it is reported as the answer it would give).
import { checkGroupAttach, isOnCoreDomain, isAnotherGroupsCoreDomain } from "./attach.js";
import type { Domain } from "./entities.js";
import { lookup } from "./lookup.js";
import type { Model } from "./model.js";
import { outcomeOf, type Outcome } from "./outcome.js";
import { ok, type Result } from "./result.js";

/** Would attaching to this domain succeed, and if not, the outcome it would have. */
export interface Verdict extends Outcome {
  readonly domainId: number;
  readonly compatible: boolean;
  /** An attach (not a replace) would also need the group on its core domain. */
  readonly current: boolean;
}

export interface CompatibilityQuery {
  readonly after?: number;
  readonly limit: number;
  readonly containerId?: number;
}

export function groupCompatibility(model: Model, groupId: number, query: CompatibilityQuery): Result<{ groupId: number; attachable: boolean; verdicts: Verdict[]; next: number | null }> {
  const found = lookup(model, "group", groupId);
  if (!found.ok) return found;
  const group = found.value;
  const pool: Iterable<Domain> = query.containerId !== undefined ? model.domainsOf(query.containerId) : model.all("domain");
  const candidates: Domain[] = [];
  for (const domain of pool) {
    if (query.after !== undefined && domain.id <= query.after) continue;
    if (isAnotherGroupsCoreDomain(model, group, domain)) continue; // never a candidate
    candidates.push(domain);
  }
  candidates.sort((a, b) => a.id - b.id);
  const page = candidates.slice(0, query.limit);
  const next = candidates.length > page.length ? page[page.length - 1]!.id : null;
  const verdicts = page.map((domain): Verdict => {
    const current = domain.id === group.domainId;
    const r = current ? ok(domain) : checkGroupAttach(model, group, domain, "probe");
    return { domainId: domain.id, compatible: r.ok, current, ...outcomeOf(r.ok ? null : r.error) };
  });
  return ok({ groupId, attachable: isOnCoreDomain(group), verdicts, next });
}
