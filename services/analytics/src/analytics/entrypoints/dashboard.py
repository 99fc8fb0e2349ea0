"""The wallboard page: self-contained HTML that consumes `/v1/kpis/stream` and redraws itself."""

from __future__ import annotations

STREAM_PATH = "/v1/kpis/stream"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchboard wallboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{padding:12px 20px;font-size:20px}#status{font-size:13px;color:#aaa;margin-left:12px}
#tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px;padding:0 20px}
.tile{border-radius:8px;padding:14px;background:#333}.tile .v{font-size:34px;font-weight:600}
.tile .n{font-size:13px;text-transform:uppercase;opacity:.8}.tile .d{font-size:12px;opacity:.8}
.green{background:#1b7f3b}.amber{background:#b07b00}.red{background:#a3262a}
section{display:grid;grid-template-columns:2fr 1fr;gap:12px;padding:20px}
svg{width:100%;height:160px;background:#1c1c1c;border-radius:8px}li{margin:4px 0}
td{padding:2px 10px 2px 0}
</style></head><body>
<header>Wallboard <span id="status">connecting...</span></header>
<div id="tiles"></div>
<section><div><h3>Service level today</h3><svg id="sl" viewBox="0 0 96 100" preserveAspectRatio="none"></svg>
<h3>Backlog today</h3><svg id="backlog" viewBox="0 0 96 100" preserveAspectRatio="none"></svg></div>
<div><h3>Top contact reasons</h3><ol id="reasons"></ol>
<h3>Aging backlog</h3><table id="aging"></table>
<h3>Staffing gap</h3><div id="gap" class="tile"></div><table id="needs"></table></div></section>
<script>
const STREAM = "__STREAM__";
const PCT = new Set(["service_level","abandonment_rate","csat","negative_sentiment_share",
  "occupancy","fcr","alert_ahead_share"]);
const SECS = new Set(["asa","aht","frt"]);
function fmt(k, v) {
  if (v === null || v === undefined) return "-";
  if (PCT.has(k)) return (100 * v).toFixed(1) + "%";
  if (SECS.has(k)) return v.toFixed(0) + " s";
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
function tiles(snap) {
  const box = document.getElementById("tiles"); box.innerHTML = "";
  for (const k of snap.tiles) {
    const cell = snap.current[k];
    const t = document.createElement("div");
    t.className = "tile " + cell.colour; t.dataset.kpi = k; t.dataset.colour = cell.colour;
    t.innerHTML = `<div class="n">${k.replaceAll("_", " ")}</div><div class="v">${fmt(k, cell.value)}</div>` +
      `<div class="d">today ${fmt(k, snap.today[k].value)}</div>`;
    box.appendChild(t);
  }
}
function chart(id, points, key) {
  const vals = points.map(p => p[key]).filter(v => v !== null);
  const top = Math.max(1, ...vals);
  const xy = points.filter(p => p[key] !== null).map(p => {
    const d = new Date(p.interval_start); const x = d.getUTCHours() * 4 + d.getUTCMinutes() / 15;
    return `${x},${100 - 100 * p[key] / top}`;
  });
  const dots = xy.map(p => p.split(",")).map(([x, y]) =>
    `<circle cx="${x}" cy="${y}" r="0.8" fill="#6cf"/>`).join("");
  document.getElementById(id).innerHTML =
    `<polyline fill="none" stroke="#6cf" stroke-width="1" points="${xy.join(" ")}"/>` + dots;
}
function draw(snap) {
  tiles(snap); chart("sl", snap.series, "service_level"); chart("backlog", snap.series, "backlog");
  document.getElementById("reasons").innerHTML =
    snap.top_reasons.map(([c, n]) => `<li>${c.replaceAll("_", " ")}: ${n}</li>`).join("");
  document.getElementById("aging").innerHTML = snap.aging
    .map(([b, n]) => `<tr data-age="${b}"><td>${b.replaceAll("_", " ")}</td>` +
      `<td>${fmt(b, n)}</td></tr>`).join("");
  const st = snap.staffing, gap = document.getElementById("gap");
  gap.className = "tile " + (st.needed === 0 ? "none" : st.gap >= 0 ? "green" : "red");
  gap.dataset.gap = st.gap;
  gap.innerHTML = `<div class="v">${st.gap > 0 ? "+" : ""}${st.gap}</div>` +
    `<div class="d">online ${st.online} · needed ${st.needed} (Erlang A)</div>`;
  document.getElementById("needs").innerHTML = st.queues
    .map(q => `<tr><td>${q.queue}</td><td>${q.needed} needed</td>` +
      `<td>${q.rate_per_h.toFixed(0)}/h</td></tr>`).join("");
  document.getElementById("status").textContent = "live · interval " + snap.interval_start;
}
async function follow() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  const query = new URLSearchParams(location.search).toString();
  const res = await fetch(STREAM + (query ? "?" + query : ""), {headers: {authorization: "Bearer " + token}});
  if (!res.ok) throw new Error("stream answered " + res.status);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const {value, done} = await reader.read(); if (done) return;
    buf += value.replaceAll("\\r\\n", "\\n");
    let cut;
    while ((cut = buf.indexOf("\\n\\n")) >= 0) {
      const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
      const data = block.split("\\n").filter(l => l.startsWith("data:"))
        .map(l => l.slice(5).trim()).join("\\n");
      if (block.includes("event: kpis") && data) draw(JSON.parse(data));
    }
  }
}
(async () => { for (;;) { try { await follow(); } catch (e) {
  document.getElementById("status").textContent = "reconnecting: " + e.message; }
  await new Promise(r => setTimeout(r, 2000)); } })();
</script></body></html>
""".replace("__STREAM__", STREAM_PATH)
