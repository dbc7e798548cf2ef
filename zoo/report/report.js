// zoo-report's HTML page: sorting and filtering a task's table, and showing one run's learning curve and flipped examples.
// The figures are plotly's (inlined above this script); the data of the curves and the flips is the page's zoo-data block.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("zoo-data").textContent);

  function compare(a, b, kind, ascending) {
    if (a === b) return 0;
    if (a === "") return 1; // a cell without a value sorts last, in either order
    if (b === "") return -1;
    const order = kind === "number" ? Number(a) - Number(b) : a.localeCompare(b);
    return ascending ? order : -order;
  }

  function sortTable(table, index) {
    const header = table.tHead.rows[0].cells[index];
    const ascending = header.dataset.order !== "ascending";
    for (const cell of table.tHead.rows[0].cells) delete cell.dataset.order;
    header.dataset.order = ascending ? "ascending" : "descending";
    const body = table.tBodies[0];
    const keyed = Array.from(body.rows, (row) => [row, row.cells[index].dataset.value]);
    keyed.sort((x, y) => compare(x[1], y[1], header.dataset.kind, ascending));
    const fragment = document.createDocumentFragment();
    keyed.forEach(([row]) => fragment.appendChild(row));
    body.appendChild(fragment);
  }

  function applyFilters(box) {
    const table = document.getElementById(box.dataset.table);
    const method = box.querySelector(".filter-method").value.trim().toLowerCase();
    const wanted = Array.from(box.querySelectorAll("select[data-attribute]"), (s) => [s.dataset.attribute, s.value]);
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      const visible = row.dataset.method.toLowerCase().includes(method) &&
        wanted.every(([key, value]) => value === "" || row.dataset[key] === value);
      row.hidden = !visible;
      shown += visible ? 1 : 0;
    }
    box.querySelector(".shown").textContent = shown + " of " + table.tBodies[0].rows.length + " rows shown";
  }

  function cell(tag, text) {
    const element = document.createElement(tag);
    element.textContent = text;
    return element;
  }

  function listing(title, examples) {
    const table = document.createElement("table");
    table.className = "examples";
    table.appendChild(cell("caption", title + ": " + examples.length + " examples"));
    const head = table.createTHead().insertRow();
    ["#", "text", "label", "zero-shot", "tuned"].forEach((name) => head.appendChild(cell("th", name)));
    const body = table.createTBody();
    for (const example of examples) {
      const row = body.insertRow();
      [example.index, example.text, example.label, example.before, example.after].forEach((value) => row.appendChild(cell("td", String(value))));
    }
    return table;
  }

  function showRun(select) {
    const task = data.tasks[select.dataset.task];
    if (select.dataset.view === "curve") {
      Plotly.react(select.dataset.target, task.curves[select.value], task.curve_layout, {displaylogo: false});
    } else {
      const flips = task.flips[select.value];
      document.getElementById(select.dataset.target).replaceChildren(listing("fixed", flips.fixed), listing("broken", flips.broken));
    }
  }

  document.querySelectorAll("table.rows").forEach((table) => {
    Array.from(table.tHead.rows[0].cells).forEach((header, index) => header.addEventListener("click", () => sortTable(table, index)));
  });
  document.querySelectorAll(".filters").forEach((box) => {
    box.querySelectorAll("input, select").forEach((control) => control.addEventListener("input", () => applyFilters(box)));
    applyFilters(box);
  });
  document.querySelectorAll("select.run").forEach((select) => {
    select.addEventListener("change", () => showRun(select));
    showRun(select);
  });
})();
