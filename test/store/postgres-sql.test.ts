// The PostgreSQL write path's SQL text: inlined literals (the quoting that
// stands between a request's text and the database) and which errors count
// as a lost connection (503 and recovery) rather than a refused statement.
import { describe, expect, it } from "vitest";
import { inline, isConnectionLoss, literal } from "../../src/store/postgres-sql.js";

describe("literal and inline", () => {
  it.each([
    [null, "NULL"],
    [42, "'42'"],
    [-22, "'-22'"],
    ["plain", "'plain'"],
    ["it's", "'it''s'"],
    ["back\\slash", " E'back\\\\slash'"],
    ["'); DROP TABLE \"Unit\"; --", "'''); DROP TABLE \"Unit\"; --'"],
  ] as const)("%j is written as %s", (cell, sql) => {
    expect(literal(cell)).toBe(sql);
  });

  it("puts each value in its placeholder, in order", () => {
    expect(inline({ sql: `UPDATE "Group" SET "domainId" = ?, "owner" = ? WHERE "id" = ?`, params: [7, null, 3] }))
      .toBe(`UPDATE "Group" SET "domainId" = '7', "owner" = NULL WHERE "id" = '3'`);
  });

  it("refuses a statement whose placeholders and values do not match", () => {
    expect(() => inline({ sql: `DELETE FROM "Unit" WHERE "id" = ?`, params: [] })).toThrow(/1 placeholders for 0 values/);
    expect(() => inline({ sql: `DELETE FROM "Unit" WHERE "id" = ?`, params: [1, 2] })).toThrow(/1 placeholders for 2 values/);
  });
});

describe("isConnectionLoss", () => {
  const withCode = (code: string, message = "x") => Object.assign(new Error(message), { code });
  it.each([
    ["the server is shutting down (57P01)", withCode("57P01"), true],
    ["the server is starting up (57P03)", withCode("57P03"), true],
    ["a connection failure (08006)", withCode("08006"), true],
    ["too many connections (53300)", withCode("53300"), true],
    ["refused by the network (ECONNREFUSED)", withCode("ECONNREFUSED"), true],
    ["reset by the peer (ECONNRESET)", withCode("ECONNRESET"), true],
    ["the client's own: Connection terminated unexpectedly", new Error("Connection terminated unexpectedly"), true],
    ["a unique violation (23505)", withCode("23505"), false],
    ["a raised exception (P0001)", withCode("P0001"), false],
    ["a syntax error (42601)", withCode("42601"), false],
    ["not an Error", "ECONNRESET", false],
  ])("%s: %s", (_what, error, lost) => {
    expect(isConnectionLoss(error)).toBe(lost);
  });
});
