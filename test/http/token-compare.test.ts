// The token lookup compares digests with crypto.timingSafeEqual, against
// every entry whatever matched: the time it takes does not tell which entry a
// token is (or is close to). Its own file: node:crypto is wrapped to count.
import { describe, expect, it, vi } from "vitest";

vi.mock("node:crypto", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:crypto")>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const { timingSafeEqual } = await import("node:crypto");
const { makeTokenEntry, parseTokenTable } = await import("../../src/http/tokens.js");

describe("constant-time lookup", () => {
  const made = Array.from({ length: 5 }, (_, i) => makeTokenEntry(`client-${i}`, "client"));
  const table = parseTokenTable(JSON.stringify({ tokens: made.map((m) => m.entry) }), "t");
  const spy = vi.mocked(timingSafeEqual);

  it.each([
    ["the first entry's token", made[0]!.token, "client-0"],
    ["the last entry's token", made[4]!.token, "client-4"],
    ["an unknown token", "iat_unknown", null],
  ])("%s: one timingSafeEqual per entry, over 32-byte digests", (_case, token, name) => {
    spy.mockClear();
    expect(table.identify(token)?.name ?? null).toBe(name);
    expect(spy).toHaveBeenCalledTimes(5);
    for (const [a, b] of spy.mock.calls) {
      expect((a as Buffer).length).toBe(32);
      expect((b as Buffer).length).toBe(32);
    }
  });
});
