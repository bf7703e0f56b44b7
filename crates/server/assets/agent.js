// Campana agent desktop (/agent). Plain JS, no build step. The page carries every label; the
// strings this script writes come from the catalogue in #desk-strings. State comes from
// GET /api/v1/agent/state, fetched again on every notice of the SSE stream
// /api/v1/agent/events; actions POST to the agent API with the session's CSRF token.
(function () {
  "use strict";
  var desk = document.getElementById("desk");
  if (!desk) return;
  var T = JSON.parse(document.getElementById("desk-strings").textContent || "{}");
  var csrf = desk.getAttribute("data-csrf");
  var lang = desk.getAttribute("data-lang") || "en";
  var screen = null; // the last GET /api/v1/agent/state
  var $ = function (id) { return document.getElementById(id); };

  function t(key, args) {
    var s = T[key] || key;
    for (var k in args || {}) s = s.split("{" + k + "}").join(args[k]);
    return s;
  }
  function show(id, on) { $(id).hidden = !on; }
  function text(id, s) { $(id).textContent = s == null ? "" : String(s); }
  function error(msg) { text("desk-error", msg || ""); show("desk-error", !!msg); }

  // An RFC 9457 problem: its detail and every field named.
  function problemText(p) {
    var parts = [];
    (p.errors || []).forEach(function (e) { parts.push(t("field_error", { field: e.field, message: e.message })); });
    return parts.length ? parts.join("; ") : (p.detail || p.title || String(p.status || ""));
  }

  function api(path, body) {
    error("");
    return fetch("/api/v1/agent/" + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { error(problemText(j)); throw j; }
        return j;
      });
    }).finally(refresh);
  }

  var refreshing = null, again = false;
  function refresh() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = fetch("/api/v1/agent/state", { credentials: "same-origin" })
      .then(function (r) {
        // Signed out (session expired or ended elsewhere): back to the sign-in page.
        if (r.status === 401) { window.location.assign("/login?next=%2Fagent"); throw r; }
        return r.json();
      })
      .then(function (s) { screen = s; render(); })
      .catch(function () {})
      .finally(function () { refreshing = null; if (again) { again = false; refresh(); } });
    return refreshing;
  }

  function timeIn(zone, date) {
    try {
      return new Intl.DateTimeFormat(lang, { timeZone: zone, weekday: "short", hour: "2-digit", minute: "2-digit" }).format(date);
    } catch (e) { return null; }
  }
  function zone() { return screen && screen.contact_time_zones && screen.contact_time_zones[0]; }
  function secondsLeft(until) { return Math.max(0, Math.ceil((new Date(until) - Date.now()) / 1000)); }

  var lastKey = null; // re-fill the form only when the call or offer changes
  function render() {
    var s = screen || {};
    var a = s.agent;
    var state = !s.dialer_running ? "off" : a ? a.state : "out";
    $("state-line").setAttribute("data-state", state);
    var line = t("state_" + state);
    var code = a && a.pause_code ? pauseLabel(a.pause_code) : null;
    if (state === "not_ready" && code) line = t("state_not_ready_code", { code: code });
    if (state !== "not_ready" && code) line += " · " + t("pause_pending", { code: code });
    text("state", line);
    text("state-since", a ? t("since", { time: new Date(a.since).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" }) }) : "");
    show("dialer-login", s.dialer_running && !a);
    show("dialer-logout", !!a);
    show("ready", !!a && (state === "not_ready" || !!a.pause_code));
    show("pause", !!a && state !== "not_ready" && !a.pause_code);
    var r = s.record;
    show("offer", state === "preview" && !!r);
    show("call", !!r);
    show("hang-up", state === "on_call" || state === "alerting");
    show("wrap-countdown", state === "wrap_up");
    $("dispose").hidden = !(state === "on_call" || state === "wrap_up");
    if (!r) { lastKey = null; tick(); return; }
    var key = (a.call_id || "") + ":" + r.id;
    if (key !== lastKey) { lastKey = key; fill(s); }
    renderTags(s);
    tick();
  }

  // A listed pause code in the page's language; a typed one as typed.
  function pauseLabel(code) {
    var opts = $("pause-code").options;
    for (var i = 0; i < opts.length; i++) if (opts[i].value && opts[i].value === code) return opts[i].textContent;
    return code;
  }

  function fill(s) {
    var r = s.record;
    text("campaign-name", s.campaign ? s.campaign.name : "");
    text("contact-name", r.name);
    text("contact-phone", r.phone);
    text("contact-phone-type", t("phone_" + r.phone_type));
    text("contact-external-id", r.external_id || "");
    text("contact-postal-code", r.postal_code || "");
    var custom = $("contact-custom");
    custom.textContent = "";
    Object.keys(r.custom || {}).forEach(function (k) {
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k; dd.textContent = String(r.custom[k]);
      custom.appendChild(dt); custom.appendChild(dd);
    });
    text("campaign-notes", s.campaign ? s.campaign.agent_notes : "");
    text("script", s.script || "");
    var h = $("history");
    h.textContent = "";
    (s.history || []).forEach(function (c) {
      var li = document.createElement("li");
      var when = c.started_at ? new Date(c.started_at).toLocaleString(lang) : "";
      li.textContent = [when, c.disposition || c.result || "", c.notes].filter(Boolean).join(" · ");
      h.appendChild(li);
    });
    show("history-empty", !(s.history || []).length);
    var sel = $("disposition");
    while (sel.options.length > 1) sel.remove(1);
    s.dispositions.forEach(function (d) {
      var o = document.createElement("option");
      o.value = d.id; o.textContent = d.name;
      if (d.is_callback) o.setAttribute("data-callback", "1");
      if (d.is_do_not_call) o.setAttribute("data-dnc", "1");
      sel.appendChild(o);
    });
    sel.value = "";
    $("notes").value = "";
    var at = new Date(Date.now() + 3600 * 1000);
    at.setMinutes(0, 0, 0);
    $("callback-at").value = localInput(at);
    $("callback-personal").checked = true;
    onDisposition();
  }

  function localInput(d) {
    var p = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
  }

  function renderTags(s) {
    var box = $("tags");
    box.textContent = "";
    (s.manager_tags || []).forEach(function (tag) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "tag";
      b.setAttribute("data-tag-id", tag.id);
      b.style.borderLeftColor = tag.colour;
      b.textContent = tag.name;
      var applied = (s.applied_tag_ids || []).indexOf(tag.id) >= 0;
      if (applied) { b.classList.add("applied"); b.disabled = true; }
      b.addEventListener("click", function () {
        api("tags", { call_id: s.agent.call_id, tag_id: tag.id });
      });
      box.appendChild(b);
    });
  }

  function selected() { var sel = $("disposition"); return sel.options[sel.selectedIndex]; }

  function onDisposition() {
    var o = selected();
    show("callback", !!o && o.hasAttribute("data-callback"));
    contactTime();
  }

  // The contact's local time at the chosen callback time.
  function contactTime() {
    var v = $("callback-at").value, z = zone();
    if (!v) { text("callback-contact-time", ""); return; }
    var at = timeIn(z, new Date(v));
    text("callback-contact-time", z && at ? t("contact_at", { time: at, zone: z }) : t("zone_unknown"));
  }

  function tick() {
    var s = screen || {}, a = s.agent;
    var z = zone();
    text("contact-local-time", z ? (timeIn(z, new Date()) || "") + " (" + z + ")" : t("zone_unknown"));
    if (a && a.until && a.state === "preview") text("offer-countdown", t("offer_left", { s: secondsLeft(a.until) }));
    if (a && a.until && a.state === "wrap_up") {
      var left = secondsLeft(a.until);
      text("wrap-countdown", t("state_wrap_up") + ": " + (left > 0 ? t("wrap_left", { s: left }) : t("wrap_done")));
    }
  }
  setInterval(tick, 1000);

  function dispose(dispositionId, isCallback) {
    var body = { call_id: screen.agent.call_id, disposition_id: Number(dispositionId), notes: $("notes").value };
    if (isCallback) {
      var v = $("callback-at").value;
      if (!v) { error(t("callback_needed")); return; }
      body.callback = { at: new Date(v).toISOString(), personal: $("callback-personal").checked };
    }
    api("disposition", body).then(function () { error(""); });
  }

  $("dialer-login").addEventListener("click", function () { api("login"); });
  $("dialer-logout").addEventListener("click", function () { api("logout"); });
  $("ready").addEventListener("click", function () { api("ready"); });
  $("pause-code").addEventListener("change", function () { show("pause-other", this.value === ""); });
  $("not-ready").addEventListener("click", function () {
    var code = $("pause-code").value || $("pause-other").value;
    api("not-ready", { pause_code: code });
  });
  $("preview-call").addEventListener("click", function () { api("preview/accept", { record_id: screen.record.id }); });
  $("preview-skip").addEventListener("click", function () { api("preview/skip", { record_id: screen.record.id }); });
  $("hang-up").addEventListener("click", function () { api("hang-up", { call_id: screen.agent.call_id }); });
  $("disposition").addEventListener("change", onDisposition);
  $("callback-at").addEventListener("input", contactTime);
  $("callback-at").addEventListener("change", contactTime);
  $("dispose").addEventListener("submit", function (e) {
    e.preventDefault();
    var o = selected();
    if (!o || !o.value) { error(t("choose_disposition")); return; }
    dispose(o.value, o.hasAttribute("data-callback"));
  });
  $("mark-dnc").addEventListener("click", function () {
    var o = $("disposition").querySelector("option[data-dnc]");
    if (!o) { error(t("no_dnc")); return; }
    if (!window.confirm(t("confirm_dnc"))) return;
    $("disposition").value = o.value;
    dispose(o.value, false);
  });

  // Live: every notice of this agent (offer, call, wrap-up, back to ready) refetches the state.
  function listen() {
    var es = new EventSource("/api/v1/agent/events");
    es.addEventListener("open", function () { error(""); refresh(); });
    es.addEventListener("notice", refresh);
    es.addEventListener("resync", refresh);
    es.addEventListener("error", function () { if (es.readyState === EventSource.CLOSED) { error(t("reconnecting")); setTimeout(listen, 3000); } });
  }
  listen();
  refresh();
})();
