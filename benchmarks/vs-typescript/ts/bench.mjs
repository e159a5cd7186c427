// The TypeScript side of benchmarks/vs-typescript/run.sh: the official SDK (`createTinybirdApi`) and `jose` against
// the same tinybird-local server as the Rust harness (../rust), with the same rows, requests and loop counts.
//
//   node bench.mjs query RUNS | ingest ROWS BATCH RUNS | jwt-local TOKENS RUNS | jwt-api CALLS | latency CALLS WARMUP
//
// TB_URL is the server's base URL; the admin token comes from `GET {TB_URL}/tokens`, as on the Rust side. One JSON
// line per figure on stdout ({"bench","side","unit","better","samples"}), in the harness's format.

import { createTinybirdApi } from "@tinybirdco/sdk/api";
import { SignJWT } from "jose";

const INGEST_DS = "events_ingest";
const EVENT_TYPES = ["page_view", "click", "signup", "purchase", "scroll"];
const START_MS = Date.UTC(2026, 0, 1, 0, 0, 0);

function fail(message) {
  console.error(`error: ${process.argv[2] ?? ""}: ${message}`);
  process.exit(1);
}

function num(i, name) {
  const raw = process.argv[3 + i];
  const n = Number(String(raw ?? "").replaceAll("_", ""));
  if (!Number.isInteger(n) || n < 1) fail(`${name} must be a positive integer, got '${raw ?? ""}'`);
  return n;
}

function emit(bench, side, unit, better, samples) {
  console.log(JSON.stringify({ bench, side, unit, better, samples }));
}

/** CPU time (user + system) of this process, in milliseconds. */
function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Row `i` of the data set: the very rows `event(i)` builds in ../rust/src/main.rs. */
function event(i) {
  return {
    timestamp: new Date(START_MS + i * 1000).toISOString().slice(0, 19).replace("T", " "),
    org_id: i % 50,
    user_id: (i * 7919) % 100000,
    event_type: EVENT_TYPES[i % 5],
    page: `/docs/page/${i % 1000}`,
    duration_ms: i % 5000,
    value: (i % 10000) * 0.25,
  };
}

const url = (process.env.TB_URL ?? fail("set TB_URL to the server's base URL")).replace(/\/+$/, "");
const tokens = await (await fetch(`${url}/tokens`)).json();
const admin = tokens.admin_token ?? fail("GET /tokens returned no admin_token");
const api = createTinybirdApi({ baseUrl: url, token: admin });

async function query(runs) {
  // Warm-up: connection set-up and the server's first plan.
  const first = await api.query("bench_rows", {});
  const rows = first.data.length;
  if (rows !== 100000) fail(`bench_rows returned ${rows} rows, expected 100000: was the data loaded?`);
  const rate = [];
  const cpu = [];
  for (let r = 0; r < runs; r++) {
    const c0 = cpuMs();
    const t0 = performance.now();
    const res = await api.query("bench_rows", {});
    const elapsed = (performance.now() - t0) / 1000;
    cpu.push(cpuMs() - c0);
    if (res.data.length !== rows) fail(`bench_rows returned ${res.data.length} rows, then ${rows}`);
    rate.push(rows / elapsed);
  }
  emit("query_e2e", "ts", "rows/s", "higher", rate);
  emit("query_client_cpu", "ts", "ms CPU/query", "lower", cpu);

  // Decode only, no network: `query()` itself, with a fetch that hands back the body the server sent.
  const body = new Uint8Array(
    await (await fetch(`${url}/v0/pipes/bench_rows.json`, { headers: { Authorization: `Bearer ${admin}` } })).arrayBuffer(),
  );
  const stub = createTinybirdApi({
    baseUrl: url,
    token: admin,
    fetch: async () => new Response(body, { status: 200, headers: { "Content-Type": "application/json" } }),
  });
  const decode = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const res = await stub.query("bench_rows", {});
    decode.push(res.data.length / ((performance.now() - t0) / 1000));
  }
  emit("query_decode", "ts", "rows/s", "higher", decode);
}

async function ingest(rows, batch, runs) {
  const all = Array.from({ length: rows }, (_, i) => event(i));
  const rate = [];
  const cpu = [];
  for (let r = 0; r < runs; r++) {
    await api.truncateDatasource(INGEST_DS);
    const c0 = cpuMs();
    const t0 = performance.now();
    let ok = 0;
    for (let s = 0; s < rows; s += batch) {
      const res = await api.ingestBatch(INGEST_DS, all.slice(s, s + batch));
      ok += res.successful_rows;
    }
    const elapsed = (performance.now() - t0) / 1000;
    cpu.push((cpuMs() - c0) / (rows / 1e6));
    if (ok !== rows) fail(`the server acknowledged ${ok} rows of ${rows}`);
    rate.push(rows / elapsed);
  }
  await api.truncateDatasource(INGEST_DS);
  emit("ingest_e2e", "ts", "rows/s", "higher", rate);
  emit("ingest_client_cpu", "ts", "ms CPU/1M rows", "lower", cpu);

  // Encoding only, no network: `ingestBatch()` itself, with a fetch that acknowledges without sending.
  const stub = createTinybirdApi({
    baseUrl: url,
    token: admin,
    fetch: async (_url, init) => {
      const n = init.body.length > 0 ? init.body.split("\n").length : 0;
      return new Response(JSON.stringify({ successful_rows: n, quarantined_rows: 0 }), { status: 200 });
    },
  });
  const encode = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    for (let s = 0; s < rows; s += batch) await stub.ingestBatch(INGEST_DS, all.slice(s, s + batch));
    encode.push(rows / ((performance.now() - t0) / 1000));
  }
  emit("ingest_encode", "ts", "rows/s", "higher", encode);
}

/** The claims of user `i`'s JWT: what the Rust side's `user_jwt(i)` signs. */
function claims(workspaceId, i) {
  return {
    workspace_id: workspaceId,
    name: `user_${i}`,
    exp: Math.floor(Date.now() / 1000) + 900,
    scopes: [{ type: "PIPES:READ", resource: "bench_small", fixed_params: { org_id: i % 50 } }],
    limits: { rps: 10 },
  };
}

async function jwtLocal(count, runs) {
  const workspaceId = JSON.parse(Buffer.from(admin.split(".")[1], "base64url").toString()).u;
  if (!workspaceId) fail("the admin token's payload has no workspace id");
  // The usual hand-written code passes the secret as bytes; a pre-imported CryptoKey spares jose an import per token.
  const secret = new TextEncoder().encode(admin);
  const cryptoKey = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mint = (i, key) => new SignJWT(claims(workspaceId, i)).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(key);
  const probe = await mint(7, secret);
  const res = await api.query("bench_small", { org_id: 3 }, { token: probe });
  if (res.data.length === 0) fail("a jose-minted JWT returned no rows");
  const rates = { ts_jose: [], ts_jose_cryptokey: [] };
  for (let r = 0; r < runs; r++) {
    for (const [side, key] of [["ts_jose", secret], ["ts_jose_cryptokey", cryptoKey]]) {
      const t0 = performance.now();
      for (let i = 0; i < count; i++) await mint(i, key);
      rates[side].push(count / ((performance.now() - t0) / 1000));
    }
  }
  for (const [side, rate] of Object.entries(rates)) emit("jwt_local", side, "tokens/s", "higher", rate);
}

async function jwtApi(calls) {
  const lat = [];
  for (let i = 0; i < calls; i++) {
    const body = {
      name: `user_${i}`,
      scopes: [{ type: "PIPES:READ", resource: "bench_small", fixed_params: { org_id: i % 50 } }],
      limits: { rps: 10 },
    };
    const t0 = performance.now();
    const res = await api.createToken(body, { expirationTime: Math.floor(Date.now() / 1000) + 900 });
    lat.push((performance.now() - t0) * 1000);
    if (!res.token) fail("the Token API returned no token");
  }
  // The first call sets up the connection; it is not a round trip like the others.
  emit("jwt_token_api", "ts", "µs/token", "lower", lat.slice(1));
}

async function latency(calls, warmup) {
  const lat = [];
  for (let i = 0; i < warmup + calls; i++) {
    const t0 = performance.now();
    const res = await api.query("bench_small", { org_id: 7 });
    const us = (performance.now() - t0) * 1000;
    if (res.data.length !== 10) fail(`bench_small returned ${res.data.length} rows, expected 10`);
    if (i >= warmup) lat.push(us);
  }
  emit("latency_small", "ts", "µs", "lower", lat);
}

const cmd = process.argv[2];
try {
  switch (cmd) {
    case "query": await query(num(0, "RUNS")); break;
    case "ingest": await ingest(num(0, "ROWS"), num(1, "BATCH"), num(2, "RUNS")); break;
    case "jwt-local": await jwtLocal(num(0, "TOKENS"), num(1, "RUNS")); break;
    case "jwt-api": await jwtApi(num(0, "CALLS")); break;
    case "latency": await latency(num(0, "CALLS"), num(1, "WARMUP")); break;
    default: fail(`unknown command '${cmd ?? ""}' (query, ingest, jwt-local, jwt-api, latency)`);
  }
} catch (e) {
  fail(e?.message ?? String(e));
}
