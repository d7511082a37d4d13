// "Who is asking" travels with every operation. Today it is the `owner` a
// request names; bearer-token identities will fill the same field later.
export interface Caller {
  readonly owner: string | null;
}

export const ANONYMOUS: Caller = Object.freeze({ owner: null });
