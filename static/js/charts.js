// Charts: arrow keys move between a chart's columns (one tab stop per chart). Hover and focus show the
// values from CSS alone (static/css/charts.css); without this script the first column and the table
// below each chart stay reachable by keyboard. Delegated from the document, so charts that htmx swaps
// in later work too; loaded once per page (the guard keeps a second copy from binding twice).
(function () {
  "use strict";
  if (window.registryCharts) return;
  window.registryCharts = true;

  var KEYS = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };

  document.addEventListener("keydown", function (event) {
    var column = event.target.closest && event.target.closest(".viz-col");
    if (!column) return;
    var chart = column.closest("[data-viz-columns]");
    if (!chart) return;
    var columns = Array.prototype.slice.call(chart.querySelectorAll(".viz-col"));
    var index = columns.indexOf(column);
    var next = index;
    if (event.key in KEYS) next = index + KEYS[event.key];
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = columns.length - 1;
    else return;
    event.preventDefault();
    next = Math.max(0, Math.min(columns.length - 1, next));
    if (next === index) return;
    column.setAttribute("tabindex", "-1");
    columns[next].setAttribute("tabindex", "0");
    columns[next].focus();
  });

  // Tooltips are sized on the server from an estimate of the text's width: fit them to the real one.
  function fit(column) {
    var tip = column.querySelector(".viz-tip");
    if (!tip || tip.dataset.fitted) return;
    var box = tip.querySelector("rect");
    var head = tip.querySelector(".viz-tip-head");
    if (!head || !head.getBBox().width) return; // not laid out yet
    var needed = head.getBBox().width + 20;
    var lines = tip.querySelectorAll(".viz-tip-line");
    for (var i = 0; i < lines.length; i++) {
      var value = lines[i].nextElementSibling;
      var valueWidth = value && value.classList.contains("viz-tip-value") ? value.getBBox().width + 16 : 0;
      needed = Math.max(needed, 24 + lines[i].getBBox().width + valueWidth + 10);
    }
    needed = Math.ceil(needed);
    var x = parseFloat(box.getAttribute("x"));
    var width = parseFloat(box.getAttribute("width"));
    if (needed > width) {
      // Slide it as the server did: by the point's share of the width (data-x, a percentage).
      var share = parseFloat(column.getAttribute("data-x")) / 100 || 0;
      var shift = Math.round(-needed * share) - x;
      box.setAttribute("width", String(needed));
      box.setAttribute("x", String(x + shift));
      var parts = tip.querySelectorAll("text, circle");
      for (var j = 0; j < parts.length; j++) {
        var attr = parts[j].tagName.toLowerCase() === "circle" ? "cx" : "x";
        var at = parseFloat(parts[j].getAttribute(attr));
        // Values are right-aligned: they move with the right edge.
        var grow = parts[j].getAttribute("text-anchor") === "end" ? needed - width : 0;
        parts[j].setAttribute(attr, String(at + shift + grow));
      }
    }
    tip.dataset.fitted = "1";
  }
  function onEnter(event) {
    var column = event.target.closest && event.target.closest(".viz-col");
    if (column) fit(column);
  }
  document.addEventListener("mouseover", onEnter);
  document.addEventListener("focusin", onEnter);
})();
