// Checks Kubernetes objects against the API of a current Kubernetes release, two ways:
// - @kubernetes/client-node's generated models (the official JavaScript client, generated from one release's
//   OpenAPI; see the "OpenAPI spec version" in its model files): the apiVersion/kind must exist in that release and
//   every field, at every depth, must be one of its model's fields (a field removed or renamed since is refused);
// - kubernetes-models' validate() (JSON schema: types, formats, enums, required fields).
// Input (stdin): [{"name": "...", "object": {...}}, ...]. Output (stdout): [{"name", "type", "errors": [...]}, ...].
import { readFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const models = path.join(path.dirname(require.resolve("@kubernetes/client-node/package.json")), "dist", "gen", "models");
const cache = new Map();

async function model(type) {
  if (!cache.has(type)) {
    const file = path.join(models, `${type}.js`);
    cache.set(type, existsSync(file) ? (await import(file))[type] ?? null : null);
  }
  return cache.get(type);
}

// apps/v1 Deployment -> V1Deployment; v1 Pod -> V1Pod; batch/v1beta1 CronJob -> V1beta1CronJob.
function typeName(apiVersion, kind) {
  const version = apiVersion.split("/").pop();
  return version.charAt(0).toUpperCase() + version.slice(1) + kind;
}

async function walk(value, type, at, errors) {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) { errors.push(`${at}: not a list`); return; }
    for (let i = 0; i < value.length; i++) await walk(value[i], array[1], `${at}[${i}]`, errors);
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value !== "object" || Array.isArray(value)) { errors.push(`${at}: not a map`); return; }
    for (const [k, v] of Object.entries(value)) await walk(v, map[1], `${at}[${k}]`, errors);
    return;
  }
  const cls = await model(type);
  if (!cls || typeof cls.getAttributeTypeMap !== "function") return; // string, number, boolean, Date, IntOrString, any
  if (typeof value !== "object" || Array.isArray(value)) { errors.push(`${at}: not an object (${type})`); return; }
  const fields = new Map(cls.getAttributeTypeMap().map(a => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!fields.has(k)) errors.push(`${at}.${k}: no such field in ${type}`);
    else await walk(v, fields.get(k), `${at}.${k}`, errors);
  }
}

async function kubernetesModels(apiVersion, kind, object, errors) {
  const module = `kubernetes-models/${apiVersion}`;
  let exports;
  try { exports = await import(module); } catch { errors.push(`kubernetes-models has no ${apiVersion}`); return; }
  const cls = exports[kind];
  if (!cls) { errors.push(`kubernetes-models has no ${apiVersion} ${kind}`); return; }
  try { new cls(object).validate(); }
  catch (e) { errors.push(`kubernetes-models: ${e.message}`); }
}

const input = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const { name, object } of input) {
  const errors = [];
  const type = typeName(object.apiVersion ?? "", object.kind ?? "");
  if (!(await model(type))) errors.push(`${object.apiVersion} ${object.kind} is not in this Kubernetes release's API (no ${type})`);
  else {
    await walk(object, type, "", errors);
    await kubernetesModels(object.apiVersion, object.kind, object, errors);
  }
  out.push({ name, type, errors });
}
process.stdout.write(JSON.stringify(out));
