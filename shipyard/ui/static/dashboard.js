// Draws each chart of the page with plotly, from the JSON embedded next to it.
// Every <figure class="chart"> holds <script type="application/json" class="chart-data">
// (a Chart record: panel, series, heatmap, annotations) and an empty <div class="plot">.
// Nothing is fetched: the data is in the page, plotly.min.js is served by the dashboard.
"use strict";
(function () {
  var ARM_COLOURS = { champion: "#1f77b4", challenger: "#ff7f0e", shadow: "#7f7f7f" };
  var OTHER_COLOURS = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
  var EVENT_COLOURS = { alert: "#d62728", rollback: "#d62728", promote: "#2ca02c" };
  var UNIT_FORMATS = { percentunit: ".1%", s: ".3s", reqps: ".3s", currencyUSD: "$.4f" };

  function eventColour(kind) {
    for (var key in EVENT_COLOURS) {
      if (kind && kind.indexOf(key) !== -1) return EVENT_COLOURS[key];
    }
    return "#555555";
  }

  function traces(chart) {
    if (chart.heatmap) {
      return [{
        type: "heatmap", x: chart.heatmap.x, y: chart.heatmap.y, z: chart.heatmap.z,
        colorscale: "YlOrRd", hoverongaps: false
      }];
    }
    var other = 0;
    return (chart.series || []).map(function (series) {
      var colour = series.arm && ARM_COLOURS[series.arm];
      if (!colour) { colour = OTHER_COLOURS[other % OTHER_COLOURS.length]; other += 1; }
      return {
        type: "scatter", mode: series.x.length > 1 ? "lines" : "markers",
        name: series.name, x: series.x, y: series.y, connectgaps: false,
        line: { color: colour, dash: series.dash ? "dash" : "solid", width: 2 },
        marker: { color: colour }, legendgroup: series.arm || series.name
      };
    });
  }

  function annotate(chart, layout) {
    var notes = chart.annotations || [];
    layout.shapes = notes.map(function (note) {
      return {
        type: "line", xref: "x", yref: "paper", x0: note.time, x1: note.time, y0: 0, y1: 1,
        line: { color: eventColour(note.kind), width: 1, dash: "dot" }
      };
    });
    layout.annotations = notes.map(function (note) {
      return {
        x: note.time, xref: "x", y: 1, yref: "paper", yanchor: "bottom", showarrow: false,
        text: "\u25BC", font: { color: eventColour(note.kind), size: 10 },
        hovertext: note.kind + (note.arm ? " (" + note.arm + ")" : "") + ": " + note.text
      };
    });
  }

  function draw(figure) {
    var holder = figure.querySelector("script.chart-data");
    var plot = figure.querySelector(".plot");
    if (!holder || !plot) return;
    var chart = JSON.parse(holder.textContent);
    if (Number(figure.getAttribute("data-points")) === 0) {
      plot.classList.add("empty");
      plot.textContent = chart.error ? "" : "No data in this range.";
      return;
    }
    var layout = {
      height: 280, margin: { l: 60, r: 20, t: 24, b: 40 }, showlegend: true,
      legend: { orientation: "h", y: -0.2 }, xaxis: { type: "date" },
      yaxis: { tickformat: UNIT_FORMATS[chart.panel.unit] || "" }, hovermode: "closest"
    };
    if (chart.heatmap) { layout.yaxis = { automargin: true }; }
    annotate(chart, layout);
    Plotly.newPlot(plot, traces(chart), layout, { displaylogo: false, responsive: true });
  }

  function drawAll() {
    if (typeof Plotly === "undefined") return;
    document.querySelectorAll("figure.chart").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
