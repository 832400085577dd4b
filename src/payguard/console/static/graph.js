// The identity graph of a case: 2 hops on load (hubs drawn, not expanded), then any node
// expands one more hop on a click (or Enter on its button in the list under the drawing).
(function () {
  "use strict";
  const box = document.getElementById("graph");
  if (!box || typeof cytoscape === "undefined") return;
  const list = document.getElementById("graph-nodes");
  const base = box.dataset.url;
  const cy = cytoscape({
    container: box,
    style: [
      { selector: "node", style: { label: "data(label)", "font-size": 9, "background-color": "#5b7fa6",
        width: 18, height: 18, "text-valign": "bottom", color: "#223" } },
      { selector: "node[kind != 'account']", style: { shape: "round-rectangle", "background-color": "#9aa9b8" } },
      { selector: "node[?reported]", style: { "background-color": "#c0392b", "border-width": 3, "border-color": "#7b241c" } },
      { selector: "node[?root]", style: { "border-width": 3, "border-color": "#111", width: 26, height: 26 } },
      { selector: "node[?hub]", style: { "background-color": "#e0a800" } },
      { selector: "edge", style: { width: 1, "line-color": "#aab", "curve-style": "haystack" } },
    ],
    layout: { name: "cose", animate: false },
  });
  const expanded = new Set();

  function short(id) { return id.length > 14 ? id.slice(0, 6) + "…" + id.slice(-5) : id; }

  function addNodes(data, rootKey) {
    const added = [];
    for (const n of data.nodes) {
      if (cy.getElementById(n.key).length) continue;
      added.push({ group: "nodes", data: { id: n.key, kind: n.kind, ident: n.id, label: n.kind + ":" + short(n.id),
        reported: !!n.reported, hub: !!n.hub, root: n.key === rootKey } });
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "graph-node" + (n.reported ? " reported" : "");
      button.dataset.key = n.key;
      button.textContent = n.kind + " " + n.id + (n.reported ? " (reported)" : "") + (n.hub ? " (hub)" : "");
      button.addEventListener("click", () => expand(n.kind, n.id, n.key));
      item.appendChild(button);
      list.appendChild(item);
    }
    cy.add(added);
    const edges = [];
    for (const e of data.edges) {
      const id = e.source + "|" + e.target;
      if (!cy.getElementById(id).length) edges.push({ group: "edges", data: { id: id, source: e.source, target: e.target } });
    }
    cy.add(edges);
    cy.layout({ name: "cose", animate: false }).run();
    box.dataset.nodes = String(cy.nodes().length);
  }

  function expand(kind, ident, key, depth) {
    if (expanded.has(key)) return;
    expanded.add(key);
    fetch(base + "/" + encodeURIComponent(kind) + "/" + encodeURIComponent(ident) + "?depth=" + (depth || 1),
          { credentials: "same-origin" })
      .then((r) => r.json())
      .then((data) => {
        addNodes(data, "account:" + box.dataset.rootId);
        box.dataset.expanded = String(expanded.size);
      });
  }

  cy.on("tap", "node", (evt) => expand(evt.target.data("kind"), evt.target.data("ident"), evt.target.id()));
  expand(box.dataset.rootKind, box.dataset.rootId, box.dataset.rootKind + ":" + box.dataset.rootId, 2);
})();
