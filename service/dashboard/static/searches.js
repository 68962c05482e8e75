// Searches: the list with a form to start one, and one search's page: live progress
// (stage, evaluations, best so far over time), cancel, then the Pareto front, the chosen
// arch as a strip of per-layer ops, and a download button per artifact.

import { ApiError, download, isFinal, meta, request, spaceInfo, v1 } from "./api.js";
import { bestChart, paretoChart } from "./charts.js";
import {
  announce, bytes, clearErrors, facts, field, formError, h, ms, paramsOf, progressBar, select,
  showErrors, table, when,
} from "./dom.js";

const STAGES = {
  stage1: "Stage 1 of 2: the later layers",
  stage2: "Stage 2 of 2: the earlier layers",
  full: "One stage: every layer",
};
const PROGRESS = /^(\w+): (\d+)\/(\d+) evaluations, best (\S+)/;

async function measuredRange(device) {
  try {
    const predictor = await v1(`/devices/${device.id}/predictor`);
    const points = predictor.report.points ?? [];
    if (!points.length) return "a predictor is fitted";
    const values = points.map((p) => p.measured_ms);
    return `measured archs: ${ms(Math.min(...values))} to ${ms(Math.max(...values))}`;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return "no predictor yet";
    throw error;
  }
}

function searchRow(job) {
  const devices = (job.params.targets ?? []).map((t) => `#${t.device_id} ≤ ${t.budget_ms} ms`);
  return h("tr", {},
    h("th", { scope: "row" }, h("a", { href: `#/searches/${job.id}` }, `Search ${job.id}`)),
    h("td", {}, job.state), h("td", {}, progressBar(job.progress, `search ${job.id} progress`)),
    h("td", {}, job.params.space), h("td", {}, devices.join(", ")),
    h("td", {}, when(job.created_at)));
}

export async function searchList(ctx) {
  const [info, devices, searches] = await Promise.all([meta(), v1("/devices"),
    v1("/searches?limit=50")]);
  const hints = await Promise.all(devices.map(measuredRange));
  const body = h("tbody", {}, searches.map(searchRow));
  const list = searches.length
    ? table("Your searches, newest first", ["Search", "State", "Progress", "Space",
      "Devices and budgets", "Started"], [])
    : h("p", {}, "No searches yet.");
  list.querySelector?.("tbody")?.replaceWith(body);
  if (searches.some((job) => !isFinal(job.state))) {
    ctx.every(3000, async () => {
      const fresh = await v1("/searches?limit=50");
      body.replaceChildren(...fresh.map(searchRow));
      return fresh.every((job) => isFinal(job.state));
    });
  }
  return h("div", {},
    h("h1", {}, "Searches"),
    newSearchForm(info, devices, hints),
    h("h2", {}, "Searches so far"),
    list);
}

function targetRow(devices, hints, index) {
  const options = devices.map((d) => [String(d.id), `${d.name} (${d.backend})`]);
  const device = select(`targets.${index}.device_id`, options, options[0]?.[0]);
  const hint = h("span", {}, hints[0] ?? "");
  device.addEventListener("change", () => {
    hint.textContent = hints[devices.findIndex((d) => String(d.id) === device.value)] ?? "";
  });
  const row = h("div", { class: "grid target" },
    field("Device", device),
    field("Latency budget (ms)", h("input", { name: `targets.${index}.budget_ms`,
      type: "number", step: "any", min: "0", inputmode: "decimal" }), hint),
    h("button", { type: "button", class: "secondary remove",
      onclick: () => {
        const box = row.parentElement;
        if (box.children.length > 1) row.remove();
        renumber(box);
        box.lastElementChild.querySelector("select").focus();
      } }, "Remove"));
  return row;
}

// Keep the rows' names, ids and labels as targets.0..n-1 after one is removed.
function renumber(box) {
  [...box.children].forEach((row, i) => {
    for (const control of row.querySelectorAll("select, input")) {
      const old = control.id;
      control.name = control.name.replace(/^targets\.\d+/, `targets.${i}`);
      control.id = `f-${control.name.replaceAll(".", "-")}`;
      row.querySelector(`label[for="${old}"]`)?.setAttribute("for", control.id);
      const error = row.querySelector(`[id="${old}-error"]`);
      if (error) error.id = `${control.id}-error`;
      const hint = row.querySelector(`[id="${old}-hint"]`);
      if (hint) hint.id = `${control.id}-hint`;
      control.setAttribute("aria-describedby", [hint?.id, error?.id].filter(Boolean).join(" "));
    }
    const remove = row.querySelector(".remove");
    remove.setAttribute("aria-label", `Remove device ${i + 1}`);
    remove.disabled = box.children.length === 1;
  });
}

function number(value) {
  return value === "" || value === null ? undefined : Number(value);
}

function newSearchForm(info, devices, hints) {
  const spaces = Object.keys(info.spaces);
  const params = h("div", { class: "grid" });
  const showParams = (name) => params.replaceChildren(...Object.entries(info.spaces[name])
    .map(([key, value]) => field(key, h("input", { name: `params.${key}`, value: String(value),
      autocomplete: "off", dataset: { param: key } }))));
  const space = select("space", spaces, spaces[0]);
  space.addEventListener("change", () => showParams(space.value));
  showParams(space.value);
  const targets = h("div", { class: "targets" }, targetRow(devices, hints, 0));
  renumber(targets);
  const error = formError();
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "new-search" },
    h("h2", { id: "new-search" }, "Start a search"),
    devices.length ? null : h("p", { class: "notice" }, "Add a device and fit its predictor "
      + "first: ", h("a", { href: "#/devices" }, "Devices"), "."),
    h("div", { class: "grid" }, field("Space", space)),
    h("fieldset", {}, h("legend", {}, "Space parameters"), params),
    h("fieldset", {}, h("legend", {}, "Devices and budgets"), targets,
      h("button", { type: "button", class: "secondary", onclick: () => {
        targets.append(targetRow(devices, hints, targets.children.length));
        renumber(targets);
        targets.lastElementChild.querySelector("select").focus();
      } }, "Add a device")),
    h("div", { class: "grid" },
      field("Accuracy estimator", select("estimator", info.estimators, "zico")),
      field("Search strategy", select("strategy", info.strategies, "evolution")),
      field("Evaluations", h("input", { name: "limits.evaluations", type: "number",
        value: "200", min: "4" }), "Estimator calls in all."),
      field("Time limit (minutes)", h("input", { name: "limits.minutes", type: "number",
        value: "60", step: "any", min: "0" })),
      field("Train minutes (optional)", h("input", { name: "train_minutes", type: "number",
        step: "any", min: "0" }), "Minutes to train the winner after the search; "
        + "empty: no training."),
      field("Train epochs (optional)", h("input", { name: "train_epochs", type: "number",
        step: "1", min: "1" }), "Instead of minutes: epochs to train for."),
      field("Candidates to train", h("input", { name: "train_top", type: "number",
        value: "1", step: "1", min: "1", max: "8" }), "With a training budget: the winner "
        + "and the best runners-up of the Pareto front; the most accurate is shipped."),
      field("Seed", h("input", { name: "seed", type: "number", value: "0", min: "0" })),
      field("Data (optional)", h("input", { name: "data", autocomplete: "off" }),
        "Data set for accuracy estimation; empty: the estimator's default.")),
    error,
    h("button", { type: "submit" }, "Start search"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const data = new FormData(form);
    const body = {
      space: data.get("space"), params: paramsOf(params),
      targets: [...targets.children].map((_, i) => ({
        device_id: number(data.get(`targets.${i}.device_id`)) ?? null,
        budget_ms: number(data.get(`targets.${i}.budget_ms`)) })),
      estimator: data.get("estimator"), strategy: data.get("strategy"),
      limits: { evaluations: number(data.get("limits.evaluations")),
        minutes: number(data.get("limits.minutes")) },
      seed: number(data.get("seed")),
    };
    for (const key of ["train_minutes", "train_epochs"]) {
      if (data.get(key) !== "") body[key] = number(data.get(key));
    }
    if (body.train_minutes !== undefined || body.train_epochs !== undefined) {
      body.train_top = number(data.get("train_top"));
    }
    if (data.get("data")) body.data = data.get("data");
    try {
      const job = await v1("/searches", { method: "POST", body });
      announce(`Search ${job.id} started`);
      location.hash = `#/searches/${job.id}`;
    } catch (err) {
      showErrors(form, err);
    }
  });
  return form;
}

async function history(id) {
  try {
    const state = await request(`/v1/searches/${id}/artifacts/search_state.json`);
    return state.evaluated ?? [];
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return [];
    throw error;
  }
}

function stageOf(job) {
  const match = PROGRESS.exec(job.message);
  if (match) {
    return { stage: STAGES[match[1]] ?? match[1], done: Number(match[2]),
      calls: Number(match[3]), best: match[4] };
  }
  if (job.state === "succeeded") return { stage: "Done" };
  if (job.state === "queued") return { stage: "Waiting for a worker" };
  if (isFinal(job.state)) return { stage: job.state };
  return { stage: job.progress < 0.1 ? "Preparing" : "Exporting and timing the winner" };
}

export async function searchPage(ctx, id) {
  const job0 = await v1(`/searches/${id}`);
  const status = h("div", { class: "card", id: "search-status" });
  const bestBox = h("div", { id: "best-chart", class: "chart", role: "img",
    "aria-label": "Best estimated accuracy so far against evaluations" });
  const result = h("div", { id: "search-result" });
  let evaluated = [];
  let tick = 0;
  const cancel = h("button", { type: "button", class: "danger", onclick: async () => {
    cancel.disabled = true;
    try {
      render(await v1(`/searches/${id}/cancel`, { method: "POST" }));
      announce("Cancel requested");
    } catch (err) {
      announce(err.detail);
    }
  } }, "Cancel search");
  const render = (job) => {
    const stage = stageOf(job);
    const best = evaluated.length ? Math.max(...evaluated.map((e) => e.score)).toPrecision(4)
      : stage.best;
    status.replaceChildren(...[
      h("p", { class: `state state-${job.state}` }, `State: ${job.state}`
        + (job.cancel_requested && !isFinal(job.state) ? " (cancel requested)" : "")),
      h("div", { class: "field" }, h("span", { id: "progress-label" }, "Progress"),
        progressBar(job.progress, "search progress")),
      facts([["Stage", stage.stage],
        ["Evaluations", stage.calls ? `${stage.done} of ${stage.calls} in this stage`
          : String(evaluated.length)],
        ["Best so far", best ?? "–"],
        ["Time left", job.eta_s && !isFinal(job.state) ? `about ${Math.ceil(job.eta_s)} s` : "–"],
        ["Status", job.message || "–"], ["Started", when(job.started_at)]]),
      isFinal(job.state) ? null : cancel,
      job.error ? h("p", { class: "error", role: "alert" }, job.error) : null,
      job.state === "failed" && job.log_tail ? h("details", {}, h("summary", {}, "Log tail"),
        h("pre", {}, job.log_tail)) : null,
    ].filter(Boolean));
  };
  render(job0);
  ctx.every(1000, async () => {
    const job = await v1(`/searches/${id}`);
    tick += 1;
    const final = isFinal(job.state);
    if (final || tick % 3 === 1) {
      evaluated = await history(id);
      if (evaluated.length) bestChart(bestBox, evaluated);
    }
    render(job);
    if (final) {
      await showResult(result, job);
      announce(`Search ${id} ${job.state}`);
    }
    return final;
  });
  return h("div", {},
    h("p", { class: "crumbs" }, h("a", { href: "#/searches" }, "Searches"), " / ", `Search ${id}`),
    h("h1", {}, `Search ${id}`),
    h("p", {}, `${job0.params.space}, ${job0.params.estimator} estimator, `
      + `${job0.params.strategy} strategy, ${job0.params.limits?.evaluations} evaluations`),
    status,
    h("section", { "aria-labelledby": "best-title" },
      h("h2", { id: "best-title" }, "Best so far"), h("figure", {}, bestBox)),
    result);
}

async function showResult(box, job) {
  const files = await v1(`/searches/${job.id}/artifacts`);
  const artifacts = h("section", { "aria-labelledby": "artifacts" },
    h("h2", { id: "artifacts" }, "Artifacts"),
    files.length ? h("ul", { class: "artifacts" }, files.map((file) => h("li", {},
      h("button", { type: "button", onclick: () => download(
        `/v1/searches/${job.id}/artifacts/${encodeURIComponent(file.name)}`, file.name) },
      `Download ${file.name}`), h("span", { class: "muted" }, ` ${bytes(file.bytes)}`))))
      : h("p", {}, "No files."));
  if (job.state !== "succeeded" || !files.some((f) => f.name === "report.json")) {
    box.replaceChildren(artifacts);
    return;
  }
  const report = await request(`/v1/searches/${job.id}/artifacts/report.json`);
  const pareto = h("div", { id: "pareto-chart", class: "chart", role: "img",
    dataset: { points: String(report.pareto.length) },
    "aria-label": `Pareto front of ${report.pareto.length} archs: predicted latency against `
      + "estimated accuracy, with each device's budget and the chosen arch" });
  const rows = report.targets.map((t) => h("tr", {},
    h("th", { scope: "row" }, t.device), h("td", {}, ms(t.budget_ms)),
    h("td", {}, ms(t.predicted_ms)),
    h("td", {}, ms(t.measured?.drift_corrected_ms ?? t.measured?.median_ms ?? null)),
    h("td", {}, t.within_budget_predicted ? "yes" : "no")));
  box.replaceChildren(
    h("section", { "aria-labelledby": "chosen" },
      h("h2", { id: "chosen" }, "The chosen arch"),
      facts([["Score", report.score.toPrecision(4)], ["Estimator", report.estimator],
        ["Parameters", report.num_params.toLocaleString()],
        ["FLOPs", report.flops.toLocaleString()], ["Evaluations", String(report.evaluations)],
        ["Search time", `${report.seconds} s`]]),
      await archStrip(report),
      table("Latency of the chosen arch per device", ["Device", "Budget", "Predicted",
        "Measured", "Within budget"], rows)),
    h("section", { "aria-labelledby": "pareto-title" },
      h("h2", { id: "pareto-title" }, "Pareto front"), h("figure", {}, pareto,
        h("figcaption", {}, `${report.pareto.length} non-dominated archs; dashed lines are `
          + "the budgets, the star is the chosen arch, grey points are over a budget."))),
    artifacts);
  paretoChart(pareto, report);
}

function opColor(op) {
  let hash = 0;
  for (const char of op) hash = (hash * 31 + char.charCodeAt(0)) % 360;
  return `hsl(${hash} 70% 85%)`;
}

async function archStrip(report) {
  const info = await spaceInfo(report.space, report.deploy_params, report.arch);
  return h("figure", {},
    h("ol", { class: "arch-strip", "aria-label": "The chosen arch, one op per layer" },
      info.ops.map((op, i) => h("li", { style: `background:${opColor(op)}` },
        h("span", { class: "slot" }, info.slots[i].name), h("span", { class: "op" }, op)))),
    h("figcaption", {}, h("code", {}, report.arch)));
}
