// The dashboard's charts, drawn by Plotly.js (served from the `plotly` Python package at
// /ui/vendor/plotly.min.js). Each function (re)draws into one container element.

const CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d"],
};
const FONT = { family: "system-ui, sans-serif", size: 13 };
const COLORS = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490"];

function plotly() {
  if (!window.Plotly) throw new Error("the chart library (plotly.min.js) did not load");
  return window.Plotly;
}

function layout(xTitle, yTitle, extra = {}) {
  return {
    font: FONT,
    margin: { l: 64, r: 16, t: 16, b: 104 },
    xaxis: { title: { text: xTitle }, zeroline: false },
    yaxis: { title: { text: yTitle }, zeroline: false },
    // Under the axis title at any width: placed from the figure's bottom edge.
    legend: { orientation: "h", yref: "container", y: 0, yanchor: "bottom" },
    hovermode: "closest",
    ...extra,
  };
}

function band(lo, hi, spread, name, color) {
  return {
    x: [lo, hi, hi, lo, lo],
    y: [lo * (1 - spread), hi * (1 - spread), hi * (1 + spread), lo * (1 + spread),
      lo * (1 - spread)],
    fill: "toself", mode: "lines", line: { width: 0 }, fillcolor: color, name,
    hoverinfo: "name",
  };
}

/**
 * Predicted vs. measured latency of the predictor's judged archs, with y = x, the +-10%
 * band and the measurement noise floor (a robust CV, drawn as +-floor around y = x).
 */
export function accuracyChart(el, points, noiseFloor) {
  const measured = points.map((p) => p.measured_ms);
  const predicted = points.map((p) => p.predicted_ms);
  const lo = 0.85 * Math.min(...measured, ...predicted);
  const hi = 1.15 * Math.max(...measured, ...predicted);
  const traces = [band(lo, hi, 0.1, "±10%", "rgba(31, 95, 191, 0.12)")];
  if (noiseFloor) {
    traces.push(band(lo, hi, noiseFloor, `noise floor ±${(100 * noiseFloor).toFixed(1)}%`,
      "rgba(194, 65, 12, 0.22)"));
  }
  traces.push(
    { x: [lo, hi], y: [lo, hi], mode: "lines", name: "predicted = measured",
      line: { color: "#555", dash: "dot", width: 1 }, hoverinfo: "skip" },
    { x: measured, y: predicted, mode: "markers", type: "scatter", name: "held-out archs",
      text: points.map((p) => p.arch),
      hovertemplate: "%{text}<br>measured %{x:.3f} ms<br>predicted %{y:.3f} ms<extra></extra>",
      marker: { color: COLORS[0], size: 9, line: { color: "#fff", width: 1 } } },
  );
  return plotly().react(el, traces, layout("measured (ms)", "predicted (ms)", {
    xaxis: { title: { text: "measured (ms)" }, range: [lo, hi] },
    yaxis: { title: { text: "predicted (ms)" }, range: [lo, hi] },
  }), CONFIG);
}

/**
 * Best score so far against evaluations, one line per stage, every score as a dot.
 * `history`: [{stage, score}] in evaluation order.
 */
export function bestChart(el, history) {
  const stages = [...new Set(history.map((e) => e.stage))];
  const traces = [];
  stages.forEach((stage, i) => {
    const x = [];
    const best = [];
    const scores = [];
    let top = -Infinity;
    history.forEach((entry, n) => {
      if (entry.stage !== stage) return;
      top = Math.max(top, entry.score);
      x.push(n + 1);
      best.push(top);
      scores.push(entry.score);
    });
    const color = COLORS[i % COLORS.length];
    traces.push(
      { x, y: scores, mode: "markers", name: `${stage} scores`, opacity: 0.45,
        marker: { color, size: 5 } },
      { x, y: best, mode: "lines", name: `${stage} best so far`, line: { color, shape: "hv" } },
    );
  });
  return plotly().react(el, traces, layout("evaluation", "estimated accuracy (score)"),
    CONFIG);
}

/**
 * The search's Pareto front (predicted latency vs. score), one trace per device, each
 * device's budget as a dashed vertical line and the chosen arch as a star.
 */
export function paretoChart(el, report) {
  const traces = [];
  const shapes = [];
  const annotations = [];
  report.targets.forEach((target, i) => {
    const color = COLORS[i % COLORS.length];
    traces.push({
      x: report.pareto.map((p) => p.latency_ms[target.device]),
      y: report.pareto.map((p) => p.score),
      text: report.pareto.map((p) => p.arch),
      mode: "lines+markers", type: "scatter", name: `${target.device} front`,
      line: { color, shape: "hv", width: 1 },
      marker: { color: report.pareto.map((p) => (p.feasible ? color : "#9ca3af")), size: 9 },
      hovertemplate: "%{text}<br>%{x:.3f} ms, score %{y:.4g}<extra></extra>",
    });
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: target.budget_ms,
      x1: target.budget_ms, y0: 0, y1: 1, line: { color, dash: "dash", width: 2 } });
    annotations.push({ x: target.budget_ms, y: 1, xref: "x", yref: "paper", yanchor: "bottom",
      text: `${target.device} budget ${target.budget_ms} ms`, showarrow: false,
      font: { color, size: 12 } });
  });
  traces.push({
    x: report.targets.map((t) => t.predicted_ms),
    y: report.targets.map(() => report.score),
    mode: "markers", type: "scatter", name: "chosen arch",
    text: report.targets.map((t) => t.device),
    hovertemplate: "chosen on %{text}<br>%{x:.3f} ms, score %{y:.4g}<extra></extra>",
    marker: { symbol: "star", size: 18, color: "#facc15", line: { color: "#111", width: 1 } },
  });
  const extra = { shapes, annotations, margin: { l: 64, r: 16, t: 32, b: 104 } };
  return plotly().react(el, traces,
    layout("predicted latency (ms)", "estimated accuracy (score)", extra), CONFIG);
}
