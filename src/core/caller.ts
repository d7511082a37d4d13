// "Who is asking" travels with every operation. With bearer tokens it is the
// authenticated client's name; in open development mode it is the `owner` a
// request names, as before tokens existed.
export interface Caller {
  readonly owner: string | null;
  /**
   * An administrator: may move any group, release any owner's claim, and use
   * or remove any client's domains and containers. Never set in open mode.
   */
  readonly admin?: boolean;
}

export const ANONYMOUS: Caller = Object.freeze({ owner: null });
