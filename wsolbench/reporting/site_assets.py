"""The static report's stylesheet and script: plain CSS and a little JavaScript that
sorts and filters tables. No framework, no network: the site opens from ``file://``."""

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px;
       padding: 0 1em; color: #1d2330; }
nav a { margin-right: 1.2em; }
table { border-collapse: collapse; margin: 0.6em 0 1.6em; }
th, td { border-bottom: 1px solid #dde2ea; padding: 3px 8px; text-align: right; }
th { background: #eef2f7; cursor: pointer; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
tr.hidden { display: none; }
pre { background: #f6f8fa; padding: 1em; overflow: auto; max-height: 40em; }
img { max-width: 100%; border: 1px solid #dde2ea; }
figure.panel { display: inline-block; margin: 0 0.6em 0.6em 0; }
figcaption { font-size: 12px; color: #5a6475; }
.note { color: #5a6475; }
input { padding: 4px 8px; width: 24em; }
"""

JS = r"""
function cellValue(row, i) {
  const cell = row.cells[i];
  const v = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
  const n = parseFloat(v);
  return isNaN(n) ? v.toLowerCase() : n;
}
function sortBy(table, i, desc) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, i), y = cellValue(b, i);
    const same = typeof x === typeof y;
    const order = same ? (x < y ? -1 : x > y ? 1 : 0) : typeof x === "number" ? -1 : 1;
    return desc ? -order : order;
  });
  rows.forEach((r) => body.appendChild(r));
  table.dataset.sorted = table.tHead.rows[0].cells[i].dataset.key + (desc ? " desc" : "");
}
function setUp() {
  document.querySelectorAll("table.sortable").forEach((table) => {
    Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
      th.addEventListener("click", () => sortBy(table, i, table.dataset.sorted === th.dataset.key));
    });
  });
  const filter = document.getElementById("filter");
  if (filter) {
    filter.addEventListener("input", () => {
      const words = filter.value.toLowerCase().split(/\s+/).filter((w) => w);
      document.querySelectorAll("table.filterable tbody tr").forEach((r) => {
        const text = r.textContent.toLowerCase();
        r.classList.toggle("hidden", !words.every((w) => text.includes(w)));
      });
    });
  }
  // #sort=KEY[&desc] sorts the first sortable table on load (links, and the tests).
  const m = location.hash.match(/sort=([^&]+)(&desc)?/);
  const table = document.querySelector("table.sortable");
  if (m && table) {
    const i = Array.from(table.tHead.rows[0].cells).findIndex((th) => th.dataset.key === m[1]);
    if (i >= 0) sortBy(table, i, Boolean(m[2]));
  }
}
document.addEventListener("DOMContentLoaded", setUp);
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((i) => i.naturalWidth > 0).length;
  document.body.dataset.images = loaded + "/" + images.length;
});
"""
