// armsledger release page: searchable table previews and the evidence behind each row.
// Data comes from the inline JSON block #preview-data; every value is written with
// textContent (never as HTML), so texts from documents cannot run as code.
(function () {
  "use strict";
  var source = document.getElementById("preview-data");
  if (!source) { return; }
  var DATA = JSON.parse(source.textContent);
  var NAMES = DATA.names || {};
  var LIMIT = 200;
  var ACTOR_COLUMNS = { actor_id: 1, supplier_id: 1, recipient_id: 1, initiator_id: 1, source_actor_id: 1 };

  function plain(value) {
    if (value === null || value === undefined) { return ""; }
    if (Array.isArray(value)) { return value.map(String).join(", "); }
    return String(value);
  }

  function shown(column, value) {
    if (column === "actor_ids" && Array.isArray(value)) {
      return value.map(function (id) { return NAMES[id] || id; }).join(", ");
    }
    if (ACTOR_COLUMNS[column] && value && NAMES[value] && column !== "actor_id") { return NAMES[value]; }
    return plain(value);
  }

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // Search text per row: raw values and the names shown for ids, lower-cased.
  Object.keys(DATA.tables).forEach(function (name) {
    var t = DATA.tables[name];
    t.search = t.rows.map(function (row) {
      return row.map(function (value, i) {
        var col = t.columns[i];
        return plain(value) + " " + shown(col, value);
      }).join(" \u0001 ").toLowerCase();
    });
  });

  function linkCell(t, row) {
    var td = make("td");
    var target = null;
    if (t.link === "evidence") { target = row[t.columns.indexOf(t.key)]; }
    if (t.link === "target") { target = row[t.columns.indexOf("target_id")]; }
    if (target && DATA.evidence[target]) {
      var a = make("a", "ev-link", "evidence (" + DATA.evidence[target] + ")");
      a.href = "#evidence/" + encodeURIComponent(target);
      a.setAttribute("data-target", target);
      td.appendChild(a);
    }
    return td;
  }

  function render(name) {
    var t = DATA.tables[name];
    var panel = document.getElementById("panel-" + name);
    var input = panel.querySelector("input[type=search]");
    var tbody = panel.querySelector("tbody");
    var status = panel.querySelector(".status");
    var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var keyIndex = t.columns.indexOf(t.key);
    var rows = [];
    var matched = 0;
    for (var i = 0; i < t.rows.length; i++) {
      var hay = t.search[i];
      var ok = terms.every(function (term) { return hay.indexOf(term) !== -1; });
      if (!ok) { continue; }
      matched++;
      if (rows.length >= LIMIT) { continue; }
      var row = t.rows[i];
      var tr = make("tr");
      tr.id = "row-" + name + "-" + row[keyIndex];
      if (t.link) { tr.appendChild(linkCell(t, row)); }
      row.forEach(function (value, j) {
        var col = t.columns[j];
        var text = shown(col, value);
        var td = make("td", typeof value === "number" ? "num" : "", text);
        var raw = plain(value);
        if (raw !== text || text.length > 40) { td.title = raw === text ? text : text + " (" + raw + ")"; }
        tr.appendChild(td);
      });
      rows.push(tr);
    }
    tbody.replaceChildren.apply(tbody, rows);
    var total = t.total;
    var note = matched + " of " + t.rows.length + " rows match";
    if (matched > rows.length) { note += "; the first " + rows.length + " are shown"; }
    if (total > t.rows.length) { note += " (the preview holds the first " + t.rows.length + " of " + total + " rows; download the table for all)"; }
    status.textContent = note;
  }

  function showTable(name) {
    document.querySelectorAll(".tabs button").forEach(function (button) {
      var on = button.getAttribute("data-table") === name;
      button.setAttribute("aria-selected", on ? "true" : "false");
    });
    document.querySelectorAll(".preview").forEach(function (panel) {
      panel.hidden = panel.id !== "panel-" + name;
    });
  }

  function showEvidence(id) {
    var article = document.getElementById("ev-" + id);
    if (!article) { return; }
    document.querySelectorAll(".evidence").forEach(function (node) { node.hidden = node !== article; });
    var hint = document.getElementById("evidence-hint");
    if (hint) { hint.hidden = true; }
    article.scrollIntoView({ block: "start" });
  }

  function showRow(table, key) {
    if (!DATA.tables[table]) { return; }
    var panel = document.getElementById("panel-" + table);
    panel.querySelector("input[type=search]").value = "";
    showTable(table);
    render(table);
    var tr = document.getElementById("row-" + table + "-" + key);
    if (!tr) { return; }
    document.querySelectorAll("tr.flash").forEach(function (node) { node.classList.remove("flash"); });
    tr.classList.add("flash");
    tr.scrollIntoView({ block: "center" });
  }

  function route() {
    var hash = decodeURIComponent(location.hash.slice(1));
    if (hash.indexOf("evidence/") === 0) { showEvidence(hash.slice(9)); }
    else if (hash.indexOf("row/") === 0) {
      var rest = hash.slice(4);
      var cut = rest.indexOf("/");
      if (cut > 0) { showRow(rest.slice(0, cut), rest.slice(cut + 1)); }
    }
  }

  document.querySelectorAll(".tabs button").forEach(function (button) {
    button.addEventListener("click", function () { showTable(button.getAttribute("data-table")); });
  });
  Object.keys(DATA.tables).forEach(function (name) {
    var input = document.querySelector("#panel-" + name + " input[type=search]");
    input.addEventListener("input", function () { render(name); });
    render(name);
  });
  showTable(DATA.first);
  window.addEventListener("hashchange", route);
  // A link to the place already named in the address does not fire hashchange: route it anyway.
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a") : null;
    var href = link ? link.getAttribute("href") : null;
    if (href && href.charAt(0) === "#" && href === location.hash) { route(); }
  });
  route();
})();
