// Small DOM helpers: an element builder that only ever sets text (never HTML), number
// formats, and the form-error display that puts each API error next to its field.

/**
 * Build an element. `attrs`: "class", "for", "on<event>" (a function), "dataset"
 * (an object), booleans as properties, anything else as an attribute. Children are
 * nodes or strings (set as text); null/undefined/false are skipped, arrays flattened.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "for") el.htmlFor = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function ms(value) {
  if (value === null || value === undefined) return "–";
  return `${value < 10 ? value.toFixed(3) : value.toFixed(1)} ms`;
}

export function pct(value, digits = 1) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(digits)}%`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

/** Say `message` to screen readers (the polite live region). */
export function announce(message) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  setTimeout(() => { region.textContent = message; }, 50);
}

/** A labelled <progress> with its percentage as text beside it. */
export function progressBar(fraction, label) {
  const value = Math.round(100 * Math.max(0, Math.min(1, fraction)));
  return h("div", { class: "progress" },
    h("progress", { max: "100", value: String(value), "aria-label": label }),
    h("span", { class: "progress-text" }, `${value}%`));
}

/** A labelled control with a slot for its error message; `name` is its API field. */
export function field(label, control, hint) {
  const id = control.id || `f-${control.name.replaceAll(".", "-")}`;
  control.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  control.setAttribute("aria-describedby",
    [hintEl ? hintEl.id : null, error.id].filter(Boolean).join(" "));
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl, error);
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error, .form-error")) {
    el.hidden = true;
    el.textContent = "";
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

// The API's 422 detail lists up to five "body.a.b: message" parts joined by "; ".
function fieldErrors(error) {
  const found = [];
  for (const part of String(error.detail).split("; ")) {
    const match = /^((?:body|query|path)(?:\.[\w-]+)*): (.*)$/.exec(part);
    if (match) found.push([match[1], match[2]]);
  }
  if (!found.length && error.field) found.push([error.field, error.detail]);
  return found;
}

function controlFor(form, location) {
  const parts = location.split(".");
  if (["body", "query", "path"].includes(parts[0])) parts.shift();
  for (let n = parts.length; n > 0; n -= 1) {
    const control = form.elements.namedItem(parts.slice(0, n).join("."));
    if (control instanceof Element) return control;
  }
  return null;
}

/**
 * Show an ApiError on `form`: each field the API names next to its control (marked
 * aria-invalid), anything else in the form's error box. Focuses the first bad control.
 */
export function showErrors(form, error) {
  clearErrors(form);
  const box = form.querySelector(".form-error");
  const loose = [];
  let first = null;
  for (const [location, message] of fieldErrors(error)) {
    const control = controlFor(form, location);
    const slot = control ? document.getElementById(`${control.id}-error`) : null;
    if (!slot) {
      loose.push(`${location}: ${message}`);
      continue;
    }
    control.setAttribute("aria-invalid", "true");
    slot.textContent = message;
    slot.hidden = false;
    first ??= control;
  }
  if (loose.length || !first) {
    box.textContent = loose.length ? loose.join("; ") : error.detail;
    box.hidden = false;
  }
  (first ?? box).focus?.();
  announce(first ? `Please check the form: ${error.detail}` : error.detail);
}

/** The error box every form carries (role=alert, focusable). */
export function formError() {
  return h("p", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
}

/** A <select> of `options` (strings or [value, label]) with `selected` chosen. */
export function select(name, options, selected) {
  return h("select", { name },
    options.map((option) => {
      const [value, label] = Array.isArray(option) ? option : [option, option];
      return h("option", { value, selected: String(value) === String(selected) }, label);
    }));
}

/** A table in a horizontally scrollable, focusable box (readable at phone width). */
export function table(caption, headers, rows) {
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": caption },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows)));
}

/** A description list of [term, value] pairs. */
export function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))));
}

/** KEY=VALUE pairs of the param inputs inside `form`. */
export function paramsOf(form) {
  const params = {};
  for (const input of form.querySelectorAll("[data-param]")) {
    if (input.value.trim() !== "") params[input.dataset.param] = input.value.trim();
  }
  return params;
}
