// Devices: the list (backend, hardware, precision, LUT share, predictor accuracy), a form
// to describe a new one, and one device's page: kit download, measurement upload,
// predictor fit and its predicted-vs-measured chart.

import { ApiError, download, meta, request, saveResponse, spaceInfo, v1, waitJob } from "./api.js";
import { accuracyChart } from "./charts.js";
import {
  announce, clearErrors, facts, field, formError, h, ms, paramsOf, pct, progressBar, select,
  showErrors, table, when,
} from "./dom.js";

async function predictorOf(id) {
  try {
    return await v1(`/devices/${id}/predictor`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

/** The share of the LUT measured: the most complete set's cells over its space's cells. */
async function lutShare(sets) {
  if (!sets.length) return null;
  const best = sets.reduce((a, b) => (b.cells > a.cells ? b : a));
  const info = await spaceInfo(best.space, best.params);
  return { measured: best.cells, total: info.cells, share: Math.min(1, best.cells / info.cells) };
}

function lutCell(lut) {
  if (!lut) return "none measured";
  return h("span", {}, progressBar(lut.share, "share of the LUT measured"),
    h("span", { class: "muted" }, ` ${lut.measured}/${lut.total} cells`));
}

export async function deviceList() {
  const [devices, info] = await Promise.all([v1("/devices"), meta()]);
  const rows = await Promise.all(devices.map(async (device) => {
    const [sets, predictor] = await Promise.all([
      v1(`/devices/${device.id}/measurements`), predictorOf(device.id)]);
    const accuracy = predictor?.report?.accuracy;
    return h("tr", {},
      h("th", { scope: "row" }, h("a", { href: `#/devices/${device.id}` }, device.name)),
      h("td", {}, device.backend), h("td", {}, device.hardware), h("td", {}, device.precision),
      h("td", {}, String(device.threads)), h("td", {}, lutCell(await lutShare(sets))),
      h("td", {}, accuracy ? pct(accuracy.within_10pct) : "–"),
      h("td", {}, accuracy ? ms(accuracy.rmse_ms) : "–"));
  }));
  return h("div", {},
    h("h1", {}, "Devices"),
    devices.length
      ? table("Your devices", ["Name", "Backend", "Hardware", "Precision", "Threads",
        "LUT measured", "Predictor ±10%", "RMSE"], rows)
      : h("p", {}, "No devices yet: describe your first one below."),
    newDeviceForm(info));
}

function newDeviceForm(info) {
  const error = formError();
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "new-device" },
    h("h2", { id: "new-device" }, "Add a device"),
    h("div", { class: "grid" },
      field("Name", h("input", { name: "name", autocomplete: "off" }),
        "Unique among your devices, e.g. pi5-xnnpack."),
      field("Backend", select("backend", info.backends, "onnxruntime")),
      field("Hardware", h("input", { name: "hardware", autocomplete: "off" }),
        "Free text, e.g. Raspberry Pi 5, Cortex-A76 x4."),
      field("Threads", h("input", { name: "threads", type: "number", value: "1", min: "1" })),
      field("Precision", select("precision", info.precisions, "fp32")),
      field("TFLite delegate (optional)", h("input", { name: "delegate", autocomplete: "off" }),
        "Path of an external delegate library; tflite only.")),
    error,
    h("button", { type: "submit" }, "Add device"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const data = new FormData(form);
    const body = { name: data.get("name"), backend: data.get("backend"),
      hardware: data.get("hardware"), precision: data.get("precision") };
    if (data.get("threads") !== "") body.threads = Number(data.get("threads"));
    if (data.get("delegate")) body.delegate = data.get("delegate");
    try {
      const device = await v1("/devices", { method: "POST", body });
      announce(`Device ${device.name} added`);
      location.hash = `#/devices/${device.id}`;
    } catch (err) {
      showErrors(form, err);
    }
  });
  return form;
}

export async function devicePage(ctx, id) {
  const [device, info] = await Promise.all([v1(`/devices/${id}`), meta()]);
  const measurements = h("section", { "aria-labelledby": "measurements" });
  const predictor = h("section", { "aria-labelledby": "predictor" });
  const refresh = async () => {
    const [sets, fitted] = await Promise.all([
      v1(`/devices/${id}/measurements`), predictorOf(id)]);
    measurements.replaceChildren(...await measurementSection(device, sets, refresh));
    predictor.replaceChildren(...predictorSection(ctx, device, fitted, info, refresh));
    const chart = predictor.querySelector("#accuracy-chart");
    if (chart && fitted) {
      accuracyChart(chart, fitted.report.points, fitted.report.accuracy?.noise_floor);
    }
  };
  const page = h("div", {},
    h("p", { class: "crumbs" }, h("a", { href: "#/devices" }, "Devices"), " / ", device.name),
    h("h1", {}, device.name),
    facts([["Backend", device.backend], ["Hardware", device.hardware],
      ["Precision", device.precision], ["Threads", String(device.threads)],
      ["Delegate", device.delegate ?? "none"], ["Created", when(device.created_at)]]),
    kitSection(ctx, device, info), measurements, predictor);
  await refresh();
  return page;
}

function paramFields(prefix, defaults) {
  return Object.entries(defaults).map(([key, value]) => field(key,
    h("input", { name: `${prefix}.${key}`, value: String(value), inputmode: "decimal",
      autocomplete: "off", dataset: { param: key } })));
}

function kitSection(ctx, device, info) {
  const names = Object.keys(info.spaces);
  const params = h("div", { class: "grid" }, paramFields("param", info.spaces[names[0]]));
  const spaceSelect = select("space", names, names[0]);
  spaceSelect.addEventListener("change", () => {
    params.replaceChildren(...paramFields("param", info.spaces[spaceSelect.value]));
  });
  const status = h("p", { class: "status", role: "status" });
  const error = formError();
  const button = h("button", { type: "submit" }, "Download kit");
  const form = h("form", { class: "card", novalidate: true },
    h("h2", { id: "kit" }, "Profiling kit"),
    h("p", {}, "One small model per distinct cell of the space (and a few whole archs), "
      + "to measure on the device with ",
    h("code", {}, `python -m profilers run kit.zip --backend ${device.backend} `
      + `--threads ${device.threads} -o measurements.json`), "."),
    h("div", { class: "grid" },
      field("Space", spaceSelect),
      field("Format", select("format", ["onnx", "tflite", "openvino", "pt2"],
        info.kit_formats[device.backend]))),
    params, error, button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const query = new URLSearchParams({ space: spaceSelect.value,
      format: form.elements.namedItem("format").value });
    for (const [key, value] of Object.entries(paramsOf(form))) {
      query.append("param", `${key}=${value}`);
    }
    button.disabled = true;
    try {
      for (;;) {
        const response = await request(`/v1/devices/${device.id}/kit?${query}`, { raw: true });
        if (response.status === 200) {
          const name = await saveResponse(response, "kit.zip");
          status.textContent = `Downloaded ${name}.`;
          break;
        }
        const { job } = await response.json();
        const done = await waitJob(ctx, job.id, (state) => {
          status.replaceChildren(`Building the kit (job ${state.id}): `,
            progressBar(state.progress, "kit build progress"), ` ${state.message}`);
        });
        if (done.state !== "succeeded") {
          throw new ApiError(409, `The kit job ${done.state}: ${done.error ?? ""}`);
        }
      }
    } catch (err) {
      showErrors(form, err);
    } finally {
      button.disabled = false;
    }
  });
  return h("section", { "aria-labelledby": "kit" }, form);
}

async function measurementSection(device, sets, refresh) {
  const rows = await Promise.all(sets.map(async (set) => {
    const lut = await lutShare([set]);
    return h("tr", {},
      h("th", { scope: "row" }, String(set.id)), h("td", {}, set.space),
      h("td", {}, Object.entries(set.params).map(([k, v]) => `${k}=${v}`).join(", ")),
      h("td", {}, set.format), h("td", {}, lutCell(lut)), h("td", {}, String(set.archs)),
      h("td", {}, set.complete ? "yes" : "no"), h("td", {}, when(set.updated_at)));
  }));
  const file = h("input", { name: "file", type: "file", accept: ".json,application/json" });
  const result = h("p", { class: "status", role: "status" });
  const error = formError();
  const form = h("form", { class: "card", novalidate: true },
    h("h3", {}, "Upload measurements.json"),
    field("Measurements file", file, "As written by `python -m profilers run`; an upload "
      + "is merged into the set of the same kit."),
    error, h("button", { type: "submit" }, "Upload"), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const chosen = file.files[0];
    if (!chosen) {
      showErrors(form, new ApiError(422, "Choose a measurements.json file first.", "file"));
      return;
    }
    let body;
    try {
      body = JSON.parse(await chosen.text());
    } catch {
      showErrors(form, new ApiError(422, `${chosen.name} is not JSON.`, "file"));
      return;
    }
    try {
      const done = await v1(`/devices/${device.id}/measurements`, { method: "POST", body });
      await refresh();
      announce(`Uploaded: ${done.added} added, ${done.improved} improved, ${done.kept} kept`);
      document.getElementById("upload-result").textContent = `Uploaded ${chosen.name}: `
        + `${done.added} added, ${done.improved} improved, ${done.kept} kept.`;
    } catch (err) {
      showErrors(form, err);
    }
  });
  result.id = "upload-result";
  return [
    h("h2", { id: "measurements" }, "Measurements"),
    sets.length
      ? table("Measurement sets", ["Set", "Space", "Parameters", "Format", "LUT measured",
        "Whole archs", "Complete", "Updated"], rows)
      : h("p", {}, "Nothing measured yet: download the kit, run it on the device, upload "
        + "the file here."),
    form,
  ];
}

function predictorSection(ctx, device, fitted, info, refresh) {
  const parts = [h("h2", { id: "predictor" }, "Latency predictor")];
  if (fitted) {
    const report = fitted.report;
    const acc = report.accuracy;
    parts.push(facts([["Kind", fitted.kind], ["Fitted", when(fitted.created_at)],
        ["Judged on", acc ? `${acc.archs} ${report.held_out ? "held-out" : "in-sample"} archs`
          : "no whole archs measured"],
        ["Within ±10%", acc ? pct(acc.within_10pct) : "–"],
        ["Within ±5%", acc ? pct(acc.within_5pct) : "–"],
        ["RMSE", acc ? ms(acc.rmse_ms) : "–"],
        ["Kendall τ", acc && Number.isFinite(acc.kendall_tau) ? acc.kendall_tau.toFixed(3) : "–"],
        ["Noise floor", acc?.noise_floor ? pct(acc.noise_floor) : "not measured"]]));
    if (report.points?.length) {
      parts.push(h("figure", {},
        h("div", { id: "accuracy-chart", class: "chart", role: "img",
          "aria-label": `Predicted against measured latency of ${report.points.length} archs` }),
        h("figcaption", {}, "Predicted vs. measured latency of the judged archs; the blue "
          + "band is ±10%, the orange one the measurement noise floor.")));
    } else {
      parts.push(h("p", {}, "No predicted-vs-measured chart: the measurements hold no "
        + "whole archs from a kit this service built (or the predictor predates the chart)."));
    }
    parts.push(h("button", { type: "button", onclick: () => download(
      `/v1/devices/${device.id}/predictor/file`, "predictor.json") }, "Download predictor.json"));
  } else {
    parts.push(h("p", {}, "No predictor yet: upload measurements, then fit one."));
  }
  const status = h("p", { class: "status", role: "status" });
  const error = formError();
  const form = h("form", { class: "card", novalidate: true },
    h("h3", {}, "Fit a predictor"),
    field("Predictor kind", select("kind", info.predictors, fitted?.kind ?? "lut")),
    error, h("button", { type: "submit" }, "Fit predictor"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      const job = await v1(`/devices/${device.id}/predictor`, { method: "POST",
        body: { kind: form.elements.namedItem("kind").value } });
      const done = await waitJob(ctx, job.id, (state) => {
        status.replaceChildren(`Fitting (job ${state.id}): `,
          progressBar(state.progress, "predictor fit progress"), ` ${state.message}`);
      });
      if (done.state !== "succeeded") throw new ApiError(409, done.error ?? done.state);
      await refresh();
      announce("Predictor fitted");
    } catch (err) {
      showErrors(form, err);
    }
  });
  parts.push(form);
  return parts;
}
