// Draws each chart of the page with plotly, from the JSON embedded next to it.
// Every <figure class="chart"> holds <script type="application/json" class="chart-data">
// (a Chart record: panel, series, heatmap, annotations) and an empty <div class="plot">.
// Only the KPI charts are fetched after the page has loaded (GET /models/{name}/kpis, into
// the placeholders marked data-loading); plotly.min.js is served by the dashboard.
"use strict";
(function () {
  // Arms as colours; a second version in the same arm gets a shade of its arm's colour.
  var ARM_COLOURS = {
    champion: ["#1f77b4", "#0b3d66", "#6baed6", "#08519c"],
    challenger: ["#ff7f0e", "#a64b00", "#fdae6b", "#d94801"],
    shadow: ["#7f7f7f", "#404040", "#bdbdbd", "#969696"]
  };
  var OTHER_COLOURS = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
  var EVENT_COLOURS = {
    alert: "#d62728", rollback: "#d62728", rolled_back: "#d62728", paused: "#d62728",
    promote: "#2ca02c", retrain: "#ff7f0e", cycle: "#9467bd"
  };
  var UNIT_FORMATS = { percentunit: ".1%", s: ".3~g", reqps: ".3~g", currencyUSD: "$.4~g" };

  function eventColour(kind) {
    for (var key in EVENT_COLOURS) {
      if (kind && kind.indexOf(key) !== -1) return EVENT_COLOURS[key];
    }
    return "#555555";
  }

  // Plotly reads a subset of HTML in names and hover text (<b>, <a href>, <br>); data is
  // shown as written, so its markup characters go in as entities, which plotly displays.
  function literal(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function known(values) {
    var n = 0;
    for (var i = 0; i < values.length; i += 1) { if (values[i] !== null) n += 1; }
    return n;
  }

  function traces(chart) {
    if (chart.heatmap) {
      // One column (one monitor run) would be a brick a millisecond wide: give it a minute.
      var single = chart.heatmap.x.length === 1;
      return [{
        type: "heatmap", y: chart.heatmap.y.map(literal), z: chart.heatmap.z,
        x: single ? undefined : chart.heatmap.x,
        x0: single ? chart.heatmap.x[0] : undefined,
        dx: single ? 60000 : undefined,
        // Plotly's YlOrRd runs dark red -> pale yellow; reversed, the drifted cells are hot.
        // A fixed domain puts 1 (the retrain level) mid-scale on every page; 2 and above saturate.
        colorscale: "YlOrRd", reversescale: true, zmin: 0, zmax: 2, zauto: false,
        colorbar: { tickvals: [0, 0.5, 1, 1.5, 2], ticktext: ["0", "0.5", "1 retrain", "1.5", "\u2265 2"] },
        hoverongaps: false
      }];
    }
    var other = 0;
    var versions = {};  // arm -> the series' base names seen, in order
    return (chart.series || []).map(function (series) {
      var colour;
      var shades = series.arm && ARM_COLOURS[series.arm];
      if (shades) {
        var seen = versions[series.arm] || (versions[series.arm] = []);
        var base = series.name.split(" ")[0];
        if (seen.indexOf(base) === -1) seen.push(base);
        colour = shades[seen.indexOf(base) % shades.length];
      } else {
        colour = OTHER_COLOURS[other % OTHER_COLOURS.length];
        other += 1;
      }
      return {
        // Sparse series (gaps between few values) also get markers, or a lone value vanishes.
        type: "scatter", mode: known(series.y) < 30 ? "lines+markers" : "lines",
        name: literal(series.name), x: series.x, y: series.y, connectgaps: false,
        visible: series.hidden ? "legendonly" : true,
        line: { color: colour, dash: series.dash ? "dash" : "solid", width: 2 },
        marker: { color: colour, size: 5 }
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
        hovertext: literal(note.kind + (note.arm ? " (" + note.arm + ")" : "") + ": " + note.text)
      };
    });
  }

  // Every chart shares the page's x range (the range asked for, or the data's extent).
  // A KPI's values sit at the start of its own buckets (an hour, a day), which may begin
  // before the page's range: its chart widens the range to hold them.
  function xaxis(figure, chart) {
    var holder = figure.closest("[data-x-range]");
    var range = holder ? JSON.parse(holder.getAttribute("data-x-range")) : null;
    if (!range) return { type: "date" };
    if (chart && chart.panel && chart.panel.id === "kpi") {
      var low = Date.parse(range[0]), high = Date.parse(range[1]);
      (chart.series || []).forEach(function (series) {
        series.x.forEach(function (x) {
          var t = Date.parse(x);
          if (t < low) { low = t; range[0] = x; }
          if (t > high) { high = t; range[1] = x; }
        });
      });
    }
    return { type: "date", range: range, autorange: false };
  }

  function draw(figure) {
    var holder = figure.querySelector("script.chart-data");
    if (!holder) return;
    if (figure.hasAttribute("data-loading")) {  // fetched after the page: see loadKpis
      placeholder(figure, "Loading\u2026");
      return;
    }
    plotChart(figure, JSON.parse(holder.textContent));
  }

  function placeholder(figure, text) {
    var plot = figure.querySelector(".plot");
    if (!plot) return;
    plot.classList.add("empty");
    plot.textContent = text;
  }

  function plotChart(figure, chart) {
    var plot = figure.querySelector(".plot");
    if (!plot) return;
    if (Number(figure.getAttribute("data-points")) === 0) {
      placeholder(figure, chart.error ? "" : "No data in this range.");
      return;
    }
    plot.classList.remove("empty");
    plot.textContent = "";
    var data = traces(chart);
    // The legend sits under the x axis, about three entries a line, in a margin of its own.
    var legendLines = chart.heatmap ? 0 : Math.ceil(data.length / 3);
    var bottom = 50 + 18 * legendLines;
    var height = chart.heatmap
      ? Math.max(280, 120 + 22 * chart.heatmap.y.length)
      : 220 + bottom;
    var layout = {
      height: height, margin: { l: 60, r: 20, t: 24, b: bottom }, showlegend: !chart.heatmap,
      legend: {
        orientation: "h", x: 0, xanchor: "left", y: 0, yref: "container", yanchor: "bottom",
        entrywidth: 0.33, entrywidthmode: "fraction", font: { size: 10 }
      },
      xaxis: xaxis(figure, chart),
      yaxis: { tickformat: UNIT_FORMATS[chart.panel.unit] || "", rangemode: "tozero" },
      hovermode: "closest"
    };
    if (chart.heatmap) { layout.yaxis = { automargin: true }; }
    annotate(chart, layout);
    Plotly.newPlot(plot, data, layout, { displaylogo: false, responsive: true });
  }

  // A paragraph of the figure's caption (class chart-note or chart-error), set as text.
  function caption(figure, name, text) {
    var found = figure.querySelector("p." + name);
    if (!text) {
      if (found) found.remove();
      return;
    }
    if (!found) {
      found = document.createElement("p");
      found.className = name;
      figure.insertBefore(found, figure.querySelector(".plot"));
    }
    found.textContent = text;
  }

  // A fetched chart into its placeholder: points, note or error, the plot; then not loading.
  function settle(figure, chart) {
    figure.setAttribute("data-points", String(chart.points || 0));
    caption(figure, "chart-note", chart.note);
    caption(figure, "chart-error", chart.error);
    try {
      plotChart(figure, chart);
    } finally {
      figure.removeAttribute("data-loading");
    }
  }

  function failed(message) {
    return { error: message, series: [], annotations: [], points: 0, panel: {} };
  }

  // The KPI charts: evaluating a KPI's SQL takes seconds over a large log, so the page
  // leaves placeholders (data-loading), one per declared KPI in order, and fetches them here.
  function loadKpis() {
    var section = document.querySelector("[data-kpis-url]");
    if (!section) return;
    var waiting = Array.prototype.slice.call(section.querySelectorAll("figure.chart[data-loading]"));
    if (!waiting.length) return;
    fetch(section.getAttribute("data-kpis-url"), {
      headers: { Accept: "application/json" }, credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          throw new Error((body.error || "HTTP " + response.status) + (body.hint ? " " + body.hint : ""));
        }
        return body;
      }, function () {
        throw new Error("the answer was not JSON (HTTP " + response.status + ").");
      });
    }).then(function (body) {
      var charts = body.charts || [];
      waiting.forEach(function (figure, i) {
        // One error for all (the KPIs could not be evaluated at all) shows on each.
        var chart = charts.length === 1 && charts[0].error ? charts[0] : charts[i];
        settle(figure, chart || failed("The declared KPIs changed since the page loaded: reload it."));
      });
    }).catch(function (problem) {
      waiting.forEach(function (figure) {
        settle(figure, failed("Business KPIs could not be fetched: " + problem.message));
      });
    });
  }

  function drawAll() {
    if (typeof Plotly === "undefined") return;
    document.querySelectorAll("figure.chart").forEach(draw);
    loadKpis();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
