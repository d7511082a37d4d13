// The validator every route's body, params and querystring go through: Ajv on
// the route's schema, preceded by two checks no schema keyword expresses.
//
// 1. Every string, and every object key, anywhere in the part is well-formed
//    UTF-16 without NUL. A lone surrogate passes JSON.parse and Ajv, and then
//    SQLite refuses the whole group-commit batch it lands in: the request must
//    fail alone, here.
// 2. A path or query value whose schema is an integer is canonical decimal
//    text. Ajv's coercion reads "0x1", "1e0", "+1", "01" and " 1" all as 1;
//    one id must have one spelling.
import type { FastifySchemaCompiler } from "fastify";
import { Ajv, type ErrorObject } from "ajv";

/** Why `text` cannot be stored, or null when it can. */
export function unstorable(text: string): string | null {
  if (text.includes("\u0000")) return "must not contain NUL (\\u0000)";
  if (!isWellFormed(text)) return "must be well-formed Unicode (it has a lone UTF-16 surrogate)";
  return null;
}

// String.prototype.isWellFormed is in Node 20 but not in the ES2023 lib typings.
const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed();
const toWellFormed = (text: string): string => (text as unknown as { toWellFormed(): string }).toWellFormed();

/** JSON pointer token (RFC 6901), made printable for the problem's `field`. */
function token(key: string | number): string {
  return toWellFormed(String(key)).replace(/~/g, "~0").replace(/\//g, "~1");
}

function error(instancePath: string, keyword: string, message: string): ErrorObject {
  return { instancePath, schemaPath: `#/${keyword}`, keyword, params: {}, message };
}

/**
 * The first unstorable string or key in `data`. Iterative, so a deeply
 * nested body cannot overflow the stack before its schema refuses it.
 */
export function firstUnstorable(data: unknown): ErrorObject | null {
  const stack: { value: unknown; path: string }[] = [{ value: data, path: "" }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === "string") {
      const why = unstorable(value);
      if (why) return error(path, "wellFormed", why);
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}/${i}` });
    } else if (value !== null && typeof value === "object") {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        const why = unstorable(key);
        if (why) return error(`${path}/${token(key)}`, "wellFormed", `(a field name) ${why}`);
        stack.push({ value: (value as Record<string, unknown>)[key], path: `${path}/${token(key)}` });
      }
    }
  }
  return null;
}

/** Decimal digits only: no sign but "-", no leading zero, exponent, radix prefix or spaces. */
const CANONICAL_INTEGER = /^(?:0|-?[1-9][0-9]*)$/;

type JsonSchema = { type?: unknown; properties?: Record<string, JsonSchema>; anyOf?: JsonSchema[] };

function acceptsInteger(schema: JsonSchema): boolean {
  if (schema.type === "integer" || (Array.isArray(schema.type) && schema.type.includes("integer"))) return true;
  return (schema.anyOf ?? []).some(acceptsInteger);
}

/** The properties of a path or query schema that are integers. */
function integerFields(schema: JsonSchema): string[] {
  return Object.entries(schema.properties ?? {}).filter(([, s]) => acceptsInteger(s)).map(([name]) => name);
}

/** The first integer field of a path or query part not spelled in canonical decimal. */
function firstNonCanonical(data: unknown, fields: readonly string[]): ErrorObject | null {
  if (data === null || typeof data !== "object") return null;
  for (const field of fields) {
    const raw = (data as Record<string, unknown>)[field];
    for (const text of Array.isArray(raw) ? raw : [raw]) {
      if (typeof text === "string" && !CANONICAL_INTEGER.test(text)) {
        return error(`/${token(field)}`, "type", "must be an integer in plain decimal digits");
      }
    }
  }
  return null;
}

/** A Fastify validator function: false with `errors` set, as Ajv's own. */
type Validate = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/**
 * Two Ajv instances: path and query values arrive as text and are converted
 * ("7" → 7); JSON bodies are taken as sent ({"unitId":"7"} is a 400, not 7).
 * Unknown fields are errors everywhere: a typo must not be silently dropped.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false } as const;
  const bodyAjv = new Ajv({ ...strict, coerceTypes: false });
  const urlAjv = new Ajv({ ...strict, coerceTypes: "array" });
  return ({ schema, httpPart }) => {
    const inUrl = httpPart === "params" || httpPart === "querystring";
    const ajv = inUrl ? urlAjv : bodyAjv;
    const check = ajv.compile(schema as object);
    const integers = inUrl ? integerFields(schema as JsonSchema) : [];
    const validate: Validate = (data) => {
      const refused = firstUnstorable(data) ?? (integers.length > 0 ? firstNonCanonical(data, integers) : null);
      if (refused) {
        validate.errors = [refused];
        return false;
      }
      const valid = check(data);
      validate.errors = check.errors ?? null;
      return valid;
    };
    return validate;
  };
}
