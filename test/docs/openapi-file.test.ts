// The committed openapi.json is what `npm run openapi` writes from today's
// routes: a client generated from the file matches the service. This fails
// when a route or schema changed and the file was not regenerated.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { documentText, OPENAPI_FILE } from "../../scripts/openapi.js";
import { clientForFile } from "../helpers/http.js";

const c = clientForFile();

describe("openapi.json", () => {
  it("is what npm run openapi writes (run it after changing a route or a schema)", () => {
    const committed = readFileSync(OPENAPI_FILE, "utf8");
    // One assertion on the whole text would print a 200 kB diff: compare the parsed paths first for a readable failure.
    const current = documentText(c.app);
    expect(Object.keys((JSON.parse(committed) as { paths: object }).paths), "openapi.json is stale: run npm run openapi")
      .toEqual(Object.keys((JSON.parse(current) as { paths: object }).paths));
    expect(committed === current, "openapi.json is stale: run npm run openapi").toBe(true);
  });
});
