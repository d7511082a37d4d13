// Every operation is all or nothing, by construction: this is the one place
// that runs an operation against the model. A savepoint is taken before it;
// when its result is a failure, or it (or whatever presents its result)
// throws, the model goes back to the savepoint. What a refusal must still
// leave behind is kept through one named path only: a consumed injected
// fault and, on a kernel profile without the unwind, the devices a partial
// group attach left on the new domain (Model.putSurvivingRollback: a real
// driver's failure, and what the kernel did before it, happened whatever the
// caller does next), and the attempt's event (Model.record); not the
// topology changes it recorded (recordTopology), which it rolled back.
// Both are undone too when the operation threw: a crash decides nothing.
import type { Model } from "./model.js";
import type { Result } from "./result.js";

export type Operation<T> = (model: Model) => Result<T>;

export interface Performed<T, A> {
  readonly result: Result<T>;
  /** What `present` made of the result (undefined without one). */
  readonly presented: A | undefined;
}

/**
 * Runs `op` all or nothing; `present` turns its result into what must be
 * stored with its changes (an idempotent answer) and runs inside the same
 * scope, so a presenter that throws undoes the operation too.
 */
export function perform<T, A = never>(model: Model, op: Operation<T>, present?: (result: Result<T>) => A): Performed<T, A> {
  const savepoint = model.savepoint();
  const eventMark = model.eventCount();
  const survivingMark = model.survivingMark();
  try {
    const result = op(model);
    if (!result.ok) {
      model.rollbackTo(savepoint);
      model.forgetTopologyEventsAfter(eventMark);
    }
    return { result, presented: present?.(result) };
  } catch (error) {
    model.rollbackTo(savepoint);
    model.undoSurvivingAfter(survivingMark);
    model.forgetEventsAfter(eventMark);
    throw error;
  }
}
