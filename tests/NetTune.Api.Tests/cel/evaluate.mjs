// Runs CEL rules for CelConformanceTests: reads {"rules": [...], "cases": [{"rule": i, "self": value}]} on stdin,
// writes {"compile": [null | error], "results": [true | false | {"error": message}]} on stdout.
// JSON objects become CEL maps and integral numbers CEL ints (the CRDs have no floating-point fields), as the
// API server types them from the schema.
import { celEnv, isCelError, parse, plan } from "@bufbuild/cel";

const toCel = (v) => {
  if (Array.isArray(v)) return v.map(toCel);
  if (v !== null && typeof v === "object") return new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)]));
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  return v;
};

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const env = celEnv();
const compile = [];
const programs = input.rules.map((rule) => {
  try {
    const program = plan(env, parse(rule));
    compile.push(null);
    return program;
  } catch (e) {
    compile.push(String(e?.message ?? e));
    return null;
  }
});
const results = input.cases.map(({ rule, self }) => {
  const program = programs[rule];
  if (program === null) return { error: "does not compile" };
  try {
    const r = program({ self: toCel(self) });
    if (isCelError(r)) return { error: r.message };
    return typeof r === "boolean" ? r : { error: `result ${String(r)} is not a bool` };
  } catch (e) {
    return { error: String(e?.message ?? e) };
  }
});
process.stdout.write(JSON.stringify({ compile, results }));
