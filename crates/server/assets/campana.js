// Campana console: asks before submitting a form that has data-confirm (start, stop, delete, ...).
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    e.preventDefault();
  }
});

// Campaign progress (campaign page): figures and today's chart, kept current by the campaign's
// progress stream (server-sent events, one every 2 s). Every fifth event also refreshes the
// campaign's agents table (htmx listens for "campana:progress5").
(function () {
  var root = document.getElementById("campaign-progress");
  if (!root || !window.EventSource) return;
  var labels = JSON.parse(root.getAttribute("data-labels") || "{}");
  var SVG = "http://www.w3.org/2000/svg";
  var ticks = 0;
  function pct(x) { return (x * 100).toFixed(2) + "%"; }
  function set(id, text) { var el = document.getElementById(id); if (el) el.textContent = text; }
  function el(name, attrs, text) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }
  function chart(p) {
    var svg = document.getElementById("pg-chart");
    if (!svg) return;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var W = 720, H = 220, L = 40, R = 50, T = 24, B = 24, w = W - L - R, h = H - T - B;
    var s = p.series || [];
    if (!s.length) { svg.appendChild(el("text", { x: L, y: H / 2, "class": "pg-none" }, labels.none)); return; }
    var step = (p.series_bucket_s || 300) * 1000;
    var first = Date.parse(s[0].start), last = Math.max(Date.parse(s[s.length - 1].start), Date.parse(p.at) - step);
    var n = Math.max(12, Math.round((last - first) / step) + 1);
    var byIndex = {}, maxDials = 1;
    s.forEach(function (b) { byIndex[Math.round((Date.parse(b.start) - first) / step)] = b; maxDials = Math.max(maxDials, b.dials); });
    var cap = p.abandon_rate_max || 0.03, maxRate = cap * 2, live = 0, ab = 0, rates = [];
    for (var i = 0; i < n; i++) {
      var b = byIndex[i];
      if (b) { live += b.live_answers; ab += b.abandons; }
      var r = live ? ab / live : 0;
      rates.push(r); maxRate = Math.max(maxRate, r);
    }
    var bw = w / n, y = function (v) { return T + h - (v / maxDials) * h; }, yr = function (v) { return T + h - (v / maxRate) * h; };
    svg.appendChild(el("line", { x1: L, y1: T + h, x2: L + w, y2: T + h, "class": "pg-axis" }));
    svg.appendChild(el("text", { x: L - 4, y: T + 4, "text-anchor": "end", "class": "pg-tick" }, String(maxDials)));
    svg.appendChild(el("text", { x: L + w + 4, y: T + 4, "class": "pg-tick" }, pct(maxRate)));
    for (var j = 0; j < n; j++) {
      var bk = byIndex[j];
      if (!bk) continue;
      var x = L + j * bw;
      svg.appendChild(el("rect", { x: x + bw * 0.1, y: y(bk.dials), width: bw * 0.8, height: T + h - y(bk.dials), "class": "pg-dials" }));
      svg.appendChild(el("rect", { x: x + bw * 0.25, y: y(bk.connects), width: bw * 0.5, height: T + h - y(bk.connects), "class": "pg-connects" }));
    }
    svg.appendChild(el("line", { x1: L, y1: yr(cap), x2: L + w, y2: yr(cap), "class": "pg-cap" }));
    var pts = rates.map(function (r, k) { return (L + (k + 0.5) * bw).toFixed(1) + "," + yr(r).toFixed(1); }).join(" ");
    svg.appendChild(el("polyline", { points: pts, "class": "pg-rate" }));
    var fmt = function (t) { return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); };
    svg.appendChild(el("text", { x: L, y: H - 6, "class": "pg-tick" }, fmt(first)));
    svg.appendChild(el("text", { x: L + w, y: H - 6, "text-anchor": "end", "class": "pg-tick" }, fmt(first + (n - 1) * step)));
    var lx = L;
    [["pg-dials", labels.dials], ["pg-connects", labels.connects], ["pg-rate", labels.rate], ["pg-cap", labels.cap + " " + pct(cap)]].forEach(function (item) {
      svg.appendChild(el("rect", { x: lx, y: 6, width: 10, height: 10, "class": item[0] + " pg-key" }));
      svg.appendChild(el("text", { x: lx + 14, y: 15, "class": "pg-tick" }, item[1]));
      lx += 28 + item[1].length * 6.5;
    });
  }
  function show(p) {
    var r = p.records, t = p.today, l = p.live || {};
    set("pg-total", r.total); set("pg-yet", r.yet_to_call); set("pg-in-progress", t.in_progress);
    set("pg-successful", r.successful); set("pg-failed", r.failed); set("pg-rescheduled", r.rescheduled);
    set("pg-agents", p.agents_assigned + " · " + p.agents_logged_in + " · " + p.agents_on_call);
    set("pg-today", t.dials + " · " + t.live_answers + " · " + t.connects + " · " + t.abandons);
    set("pg-abandon", pct(p.abandon_rate_today) + " · " + pct(l.abandon_rate_24h || 0) + " · " + pct(l.abandon_rate_30d || 0));
    set("pg-updated", new Date(p.at).toLocaleTimeString());
    root.setAttribute("data-dials", t.dials);
    chart(p);
  }
  try { show(JSON.parse(root.getAttribute("data-initial"))); } catch (e) { /* drawn at the first event */ }
  var es = new EventSource(root.getAttribute("data-stream"));
  es.addEventListener("progress", function (e) {
    show(JSON.parse(e.data));
    ticks += 1;
    if (ticks % 5 === 0) document.body.dispatchEvent(new CustomEvent("campana:progress5"));
  });
})();
