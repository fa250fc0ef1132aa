// Live numbers and charts on top of server-rendered pages; every page works without this file.
(function () {
  "use strict";
  var body = document.body;
  var base = body.dataset.base || "";
  var POLL_MS = 2000;

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  });

  function getJSON(path, done) {
    fetch(base + path, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) done(data); })
      .catch(function () {});
  }

  function setText(selector, value) {
    document.querySelectorAll(selector).forEach(function (el) {
      var text = String(value);
      if (el.textContent !== text) el.textContent = text;
    });
  }

  function makeChart(el, series, data) {
    if (!el || !window.uPlot) return null;
    el.textContent = "";
    var opts = {
      width: Math.max(el.clientWidth, 300), height: 180, series: [{}].concat(series),
      axes: [{}, { size: 50 }], legend: { show: true }, cursor: { drag: { x: false, y: false } },
    };
    return new window.uPlot(opts, data, el);
  }

  var palette = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00"];
  function line(label, i) { return { label: label, stroke: palette[i % palette.length], width: 1.5, spanGaps: true }; }

  // Rebuild the "working" table from JSON with textContent only: job arguments stay inert text.
  function cell(tr, text, href) {
    var td = document.createElement("td");
    if (href) {
      var a = document.createElement("a");
      a.href = href; a.textContent = text; td.appendChild(a);
    } else { td.textContent = text; }
    tr.appendChild(td);
    return td;
  }
  function renderBusy(busy) {
    document.querySelectorAll('[data-live-table="busy"] tbody').forEach(function (tbody) {
      var rows = document.createDocumentFragment();
      busy.forEach(function (w) {
        var tr = document.createElement("tr");
        cell(tr, w.id, base + "/workers#" + encodeURIComponent(w.id));
        cell(tr, w.queue); cell(tr, w["class"]);
        var code = document.createElement("code"); code.textContent = w.args;
        cell(tr, "").appendChild(code);
        cell(tr, w.run_at);
        rows.appendChild(tr);
      });
      if (!busy.length) {
        var tr = document.createElement("tr");
        var td = cell(tr, "nothing is working"); td.colSpan = 5; td.className = "muted";
        rows.appendChild(tr);
      }
      tbody.replaceChildren(rows);
    });
  }

  // Add and drop rows of the overview's queue table as queues appear and go (text only).
  function renderQueues(queues) {
    var tbody = document.querySelector("#queues tbody");
    if (!tbody) return;
    var names = Object.keys(queues).sort();
    var shown = Array.prototype.map.call(tbody.querySelectorAll("[data-queue]"), function (td) {
      return td.dataset.queue;
    });
    if (names.join("\n") === shown.join("\n")) return;
    var failedRow = tbody.lastElementChild;
    var rows = document.createDocumentFragment();
    names.forEach(function (q) {
      var tr = document.createElement("tr");
      cell(tr, q, base + "/queues/" + encodeURIComponent(q));
      var td = cell(tr, String(queues[q]));
      td.className = "r"; td.dataset.queue = q;
      rows.appendChild(tr);
    });
    rows.appendChild(failedRow);
    tbody.replaceChildren(rows);
  }

  // Minutes without jobs have no percentile: show each measured minute as a dot too.
  function dots(series) { series.points = { show: true, size: 5 }; return series; }

  // --- live counters and the jobs-per-second chart ---
  var rate = { t: [], p: [], f: [] }, last = null, rateChart = null;
  function onLive(d) {
    ["processed", "failed", "failures", "workers", "working"].forEach(function (k) {
      setText('[data-live="' + k + '"]', d[k]);
    });
    renderQueues(d.queues);
    Object.keys(d.queues).forEach(function (q) {
      setText('[data-queue="' + CSS.escape(q) + '"]', d.queues[q]);
    });
    renderBusy(d.busy);
    window.pyresqueLivePolls = (window.pyresqueLivePolls || 0) + 1;
    if (last) {
      var dt = Math.max(d.time - last.time, 0.001);
      var p = Math.max(d.processed - last.processed, 0) / dt, f = Math.max(d.failed - last.failed, 0) / dt;
      setText('[data-live="rate"]', p.toFixed(1));
      setText('[data-live="failrate"]', f.toFixed(1));
      rate.t.push(d.time); rate.p.push(p); rate.f.push(f);
      if (rate.t.length > 300) { rate.t.shift(); rate.p.shift(); rate.f.shift(); }
      var el = document.getElementById("chart-rate");
      if (el) {
        var data = [rate.t, rate.p, rate.f];
        if (!rateChart) rateChart = makeChart(el, [line("processed/s", 0), line("failed/s", 1)], data);
        else rateChart.setData(data);
      }
    }
    last = d;
  }
  function pollLive() { getJSON("/api/live", onLive); }
  if (document.querySelector("[data-live], [data-queue]")) {
    pollLive();
    setInterval(pollLive, POLL_MS);
  }

  // --- last hour of samples: queue depths and busy/idle workers ---
  function onSeries(s) {
    var qel = document.getElementById("chart-queues"), wel = document.getElementById("chart-workers");
    var names = Object.keys(s.queues);
    if (qel) makeChart(qel, names.map(line), [s.minute].concat(names.map(function (q) { return s.queues[q]; })));
    if (wel) makeChart(wel, [line("busy", 3), line("idle", 5)], [s.minute, s.busy, s.idle]);
  }
  if (document.getElementById("chart-queues")) {
    getJSON("/api/series", onSeries);
    setInterval(function () { getJSON("/api/series", onSeries); }, 30000);
  }

  // --- per-job metrics page ---
  var jobs = document.querySelector("[data-hours]");
  if (jobs) {
    var q = "/api/jobs?hours=" + encodeURIComponent(jobs.dataset.hours) +
      (jobs.dataset.class ? "&class=" + encodeURIComponent(jobs.dataset.class) : "");
    getJSON(q, function (s) {
      makeChart(document.getElementById("chart-jobs"), [line("processed", 0), line("failed", 1)], [s.minute, s.processed, s.failed]);
      makeChart(document.getElementById("chart-latency"), [dots(line("p50 ms", 2)), dots(line("p95 ms", 4))], [s.minute, s.p50, s.p95]);
    });
  }
})();
