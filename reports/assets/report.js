// report.html's explorer: no framework, no network. Reads the JSON in
// #rb-data (written by reports/src/export/html_data.rs) and adds: a bucket
// read-out on the timeline panels, action markers that open their row of
// the actions table, case show/hide, sortable tables.
(function () {
  "use strict";
  var el = document.getElementById("rb-data");
  if (!el) return;
  var data = JSON.parse(el.textContent);
  var axis = data.axis;

  function text(node, s) { node.textContent = s; return node; }
  function make(tag, cls) { var n = document.createElement(tag); if (cls) n.className = cls; return n; }
  function ms(v) { return v === null ? "–" : v.toFixed(2) + " ms"; }

  // The bucket of case c at time t (s): the last bucket starting at or before t.
  function bucketAt(c, t) {
    var b = c.b, lo = 0, hi = b.length - 1, at = -1, tms = t * 1000;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (b[mid][0] <= tms) { at = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    if (at < 0 || tms >= b[at][0] + c.bucket_ms) return null;
    return b[at];
  }

  // Time (s) and x in figure pixels under a pointer on a panel's SVG.
  function timeOf(svg, ev) {
    var r = svg.getBoundingClientRect();
    if (r.width <= 0) return null;
    var x = (ev.clientX - r.left) * axis.width / r.width;
    if (x < axis.x0 || x > axis.x1) return null;
    return { t: (x - axis.x0) / (axis.x1 - axis.x0) * axis.t_max_s, x: x, scale: r.width / axis.width };
  }

  function bucketText(c, b) {
    var lines = [];
    lines.push((b[0] / 1000).toFixed(3) + "–" + ((b[0] + c.bucket_ms) / 1000).toFixed(3) + " s");
    lines.push("ok/s: " + (b[1] === null ? "– (cut short by the end of the load)" : b[1].toFixed(1)));
    var f = b[5], parts = [];
    for (var i = 0; i + 1 < f.length; i += 2) parts.push(data.classes[f[i]] + " " + f[i + 1]);
    lines.push("failed: " + (parts.length ? parts.join(", ") : "0"));
    lines.push("p50 " + ms(b[2]) + " · p99 " + ms(b[3]) + " · max " + ms(b[4]));
    return lines;
  }

  // The row of `w` (long-lived connections) of case c at time t (s), or null.
  function wsAt(c, t) {
    if (!c.w || !c.w_ms) return null;
    var i = Math.floor(t * 1000 / c.w_ms);
    return i >= 0 && i < c.w.length ? c.w[i] : null;
  }

  // The old-generations counts of case c in force at time t (s), or null.
  function genAt(c, t) {
    if (!c.g) return null;
    var at = null, tms = t * 1000;
    for (var k = 0; k < c.g.length && c.g[k][0] <= tms; k++) at = c.g[k];
    return at;
  }

  // The read-out at time t: the request bucket's lines, then those of the
  // long-lived connections' bucket and the old generations'.
  function readOut(c, t) {
    var b = bucketAt(c, t), w = wsAt(c, t), g = genAt(c, t), lines = b ? bucketText(c, b) : [];
    if (w) {
      if (!b) {
        var i = Math.floor(t * 1000 / c.w_ms);
        lines.push((i * c.w_ms / 1000).toFixed(3) + "–" + ((i + 1) * c.w_ms / 1000).toFixed(3) + " s");
      }
      lines.push("connections open " + w[0] + " · opened " + w[1] + " · failed to open " + w[2]);
      lines.push("closed cleanly " + w[3] + " · cut " + w[4]);
      lines.push("messages sent " + w[5] + " · echoed " + w[6] + " · lost " + w[7] + " · late " + w[8]);
    }
    if (g && (b || w)) {
      lines.push("old processes " + g[2] + " · old generations " + g[3] + (g[1] === null ? "" : " · processes " + g[1]));
    }
    return lines;
  }

  // The actions table row of action `index` of case `ci` (opening the
  // collapsed full table of a long case), or null.
  function actionRow(ci, index) {
    var box = document.querySelector('[data-actions-case="' + ci + '"]');
    if (!box) return null;
    var tables = box.querySelectorAll("table"), want = String(index);
    for (var k = tables.length - 1; k >= 0; k--) {
      var head = tables[k].querySelector("th");
      if (!head || head.textContent !== "#") continue;
      var rows = tables[k].tBodies[0].rows;
      for (var j = 0; j < rows.length; j++) {
        if (rows[j].cells[0].textContent === want) {
          var d = rows[j].closest("details");
          if (d) d.open = true;
          return rows[j];
        }
      }
    }
    return null;
  }

  function showAction(ci, a, info) {
    var old = document.querySelectorAll("tr.rb-hl");
    for (var i = 0; i < old.length; i++) old[i].classList.remove("rb-hl");
    var row = actionRow(ci, a[0]);
    info.textContent = "";
    var head = make("div", "rb-info-head");
    text(head, "action #" + a[0] + " at " + a[1].toFixed(3) + " s: " + a[2]);
    info.appendChild(head);
    if (!row) return;
    row.classList.add("rb-hl");
    var table = row.closest("table"), hs = table.tHead.rows[0].cells, dl = make("dl");
    for (var k = 0; k < hs.length; k++) {
      dl.appendChild(text(make("dt"), hs[k].textContent));
      dl.appendChild(text(make("dd"), row.cells[k].textContent));
    }
    info.appendChild(dl);
    var go = text(make("a"), "go to its row in the actions table");
    go.href = "#";
    go.addEventListener("click", function (ev) { ev.preventDefault(); row.scrollIntoView({ block: "center" }); });
    info.appendChild(go);
  }

  // Timeline panels: read-out on hover, nearest action on click.
  var panels = document.querySelectorAll(".rb-panel");
  Array.prototype.forEach.call(panels, function (panel) {
    var ci = Number(panel.getAttribute("data-case")), c = data.cases[ci];
    var svg = panel.querySelector("svg");
    if (!c || !svg) return;
    var guide = make("div", "rb-guide"), tip = make("div", "rb-tip"), info = make("div", "rb-info");
    panel.appendChild(guide);
    panel.appendChild(tip);
    panel.parentNode.insertBefore(info, panel.nextSibling);
    panel.addEventListener("mousemove", function (ev) {
      var p = timeOf(svg, ev), lines = p ? readOut(c, p.t) : [];
      if (!lines.length) { guide.style.display = tip.style.display = "none"; return; }
      var left = ev.clientX - panel.getBoundingClientRect().left;
      guide.style.left = left + "px";
      guide.style.display = "block";
      tip.textContent = "";
      lines.forEach(function (l) { tip.appendChild(text(make("div"), l)); });
      tip.style.display = "block";
      var right = left + 16 + tip.offsetWidth > panel.clientWidth;
      tip.style.left = (right ? left - 16 - tip.offsetWidth : left + 16) + "px";
      tip.style.top = Math.max(0, ev.clientY - panel.getBoundingClientRect().top - tip.offsetHeight / 2) + "px";
    });
    panel.addEventListener("mouseleave", function () { guide.style.display = tip.style.display = "none"; });
    panel.addEventListener("click", function (ev) {
      var p = timeOf(svg, ev);
      if (!p || !c.a.length) return;
      var best = null, bestDx = Infinity;
      c.a.forEach(function (a) {
        var dx = Math.abs(a[1] - p.t) / axis.t_max_s * (axis.x1 - axis.x0) * p.scale;
        if (dx < bestDx) { best = a; bestDx = dx; }
      });
      if (best && bestDx <= 8) showAction(ci, best, info);
    });
  });

  // Cases shown or hidden: timeline panels, table rows naming the case,
  // the case's actions section.
  var names = data.cases.map(function (c) { return c.name; });
  function setCase(ci, shown) {
    var sel = '.rb-panel[data-case="' + ci + '"], [data-actions-case="' + ci + '"]';
    Array.prototype.forEach.call(document.querySelectorAll(sel), function (n) { n.hidden = !shown; });
    Array.prototype.forEach.call(document.querySelectorAll("table tbody tr"), function (tr) {
      if (tr.cells.length && tr.cells[0].textContent === names[ci]) tr.hidden = !shown;
    });
  }
  var box = document.getElementById("rb-cases");
  if (box && names.length > 1) {
    box.appendChild(text(make("span"), "Cases shown: "));
    names.forEach(function (n, ci) {
      var label = make("label"), cb = make("input");
      cb.type = "checkbox";
      cb.checked = true;
      cb.addEventListener("change", function () { setCase(ci, cb.checked); });
      label.appendChild(cb);
      label.appendChild(document.createTextNode(" " + n));
      box.appendChild(label);
    });
    box.hidden = false;
  }

  // Tables sort by a column on a click on its header: numbers as numbers
  // (– and empty cells last), text as text; a second click reverses.
  function key(s) {
    var t = s.replace(/^[≤<>~ ]+/, "").replace(/,/g, "");
    var m = /^-?\d+(\.\d+)?/.exec(t);
    return m ? Number(m[0]) : null;
  }
  Array.prototype.forEach.call(document.querySelectorAll("table"), function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    var ths = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th, col) {
      th.classList.add("rb-sort");
      th.tabIndex = 0;
      function sort() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(ths, function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.forEach(function (r, i) { r.rbAt = i; });
        rows.sort(function (a, b) {
          var x = a.cells[col] ? a.cells[col].textContent : "", y = b.cells[col] ? b.cells[col].textContent : "";
          var kx = key(x), ky = key(y), d;
          if (kx !== null && ky !== null) d = kx - ky;
          else if (kx !== null || ky !== null) return kx === null ? 1 : -1;
          else d = x.localeCompare(y);
          return (asc ? d : -d) || a.rbAt - b.rbAt;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter") sort(); });
    });
  });
})();
