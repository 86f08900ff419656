// toxiproxy's Node client, unchanged, against BindProxy's fault API.
// Usage: node compat.js http://127.0.0.1:API_PORT UPSTREAM_HOST:PORT
// Prints one line per step; exits non-zero at the first step that fails.
"use strict";
const { Toxiproxy } = require("toxiproxy-node-client");

const [api, upstream] = process.argv.slice(2);
const toxiproxy = new Toxiproxy(api);
const check = (ok, what) => { if (!ok) { throw new Error(`check failed: ${what}`); } };

async function main() {
  console.log(`version: ${await toxiproxy.getVersion()}`);

  const proxy = await toxiproxy.createProxy({ name: "made", listen: "127.0.0.1:0", upstream });
  check(proxy.name === "made" && /^127\.0\.0\.1:\d+$/.test(proxy.listen) && proxy.listen !== "127.0.0.1:0", "created proxy listens on a real port");
  console.log(`created: ${proxy.name} listen ${proxy.listen} upstream ${proxy.upstream} enabled ${proxy.enabled}`);

  const all = await toxiproxy.getAll();
  check("made" in all && "test" in all, "getAll lists the configured route and the created proxy");
  console.log(`listed: ${Object.keys(all).sort().join(", ")}`);

  const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream });
  check(disabled.enabled === false, "disabled");
  console.log(`disabled: enabled ${disabled.enabled}`);
  const enabled = await proxy.update({ enabled: true, listen: proxy.listen, upstream });
  check(enabled.enabled === true && enabled.listen === proxy.listen, "enabled on the same address");
  console.log(`enabled: enabled ${enabled.enabled} listen ${enabled.listen}`);

  const toxics = [
    { type: "latency", attributes: { latency: 100, jitter: 10 }, update: { latency: 200 } },
    { type: "bandwidth", attributes: { rate: 500 }, update: { rate: 100 } },
    { type: "slow_close", attributes: { delay: 100 }, update: { delay: 200 } },
    { type: "timeout", attributes: { timeout: 100 }, update: { timeout: 0 } },
    { type: "reset_peer", attributes: { timeout: 100 }, update: { timeout: 200 } },
    { type: "slicer", attributes: { average_size: 64, size_variation: 32, delay: 10 }, update: { delay: 20 } },
    { type: "limit_data", attributes: { bytes: 1000 }, update: { bytes: 2000 } },
  ];
  for (const t of toxics) {
    const name = `${t.type}_up`;
    const toxic = await proxy.addToxic({ name, type: t.type, stream: "upstream", toxicity: 1, attributes: t.attributes });
    check(toxic.name === name && toxic.type === t.type && toxic.stream === "upstream", `${t.type} added`);
    const read = await proxy.getToxic(name);
    const updated = await read.update({ attributes: t.update, toxicity: 0.5 });
    for (const [k, v] of Object.entries(t.update)) { check(updated.attributes[k] === v, `${t.type} ${k} updated`); }
    check(updated.toxicity === 0.5, `${t.type} toxicity updated`);
    await updated.remove();
    console.log(`toxic ${t.type}: added ${JSON.stringify(toxic.attributes)}, updated ${JSON.stringify(updated.attributes)} toxicity ${updated.toxicity}, removed`);
  }

  await proxy.addToxic({ type: "latency", attributes: { latency: 50 } });
  const populated = await toxiproxy.populate([
    { name: "populated", listen: "127.0.0.1:0", upstream },
    { name: "made", listen: proxy.listen, upstream, enabled: false },
  ]);
  check(Object.keys(populated).sort().join() === "made,populated", "populate");
  console.log(`populated: ${Object.keys(populated).sort().join(", ")}; made enabled ${populated.made.enabled}`);

  await toxiproxy.reset();
  const afterReset = await toxiproxy.get("made");
  check(afterReset.enabled === true, "reset enables");
  const stillToxic = await fetch(`${api}/proxies/made/toxics`).then((r) => r.json());
  check(stillToxic.length === 0, "reset removes toxics");
  console.log(`reset: made enabled ${afterReset.enabled}, ${stillToxic.length} toxics`);

  let missing = null;
  try { await toxiproxy.get("nosuch"); } catch (e) { missing = e; }
  check(missing !== null, "a missing proxy is an error");
  console.log(`missing proxy: ${missing.message}`);

  await afterReset.remove();
  await (await toxiproxy.get("populated")).remove();
  const left = await toxiproxy.getAll();
  check(!("made" in left) && !("populated" in left), "removed");
  console.log(`removed: ${Object.keys(left).sort().join(", ")} left`);
  console.log("ok");
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
