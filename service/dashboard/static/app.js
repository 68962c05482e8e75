// The dashboard's shell: sign-in, navigation and the router (#/devices, #/devices/3,
// #/searches, #/searches/5). Each page gets a context whose timers stop when the user
// leaves it, so live polling never outlives its page.

import { ApiError, clearToken, request, setToken, token } from "./api.js";
import { deviceList, devicePage } from "./devices.js";
import { announce, formError, h } from "./dom.js";
import { searchList, searchPage } from "./searches.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let current = null;
let signInNotice = null;

class PageContext {
  constructor() {
    this.timers = [];
    this.alive = true;
  }

  /** Run `fn` now and then every `ms` until it returns true or the page is left. */
  every(ms, fn) {
    const tick = async () => {
      if (!this.alive) return;
      let done = false;
      try {
        done = await fn();
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 401) console.error(error);
      }
      if (!done && this.alive) this.timers.push(setTimeout(tick, ms));
    };
    tick();
  }

  close() {
    this.alive = false;
    this.timers.forEach(clearTimeout);
  }
}

const ROUTES = [
  [/^#\/devices$/, "devices", () => deviceList],
  [/^#\/devices\/(\d+)$/, "devices", () => devicePage],
  [/^#\/searches$/, "searches", () => searchList],
  [/^#\/searches\/(\d+)$/, "searches", () => searchPage],
];

async function route() {
  current?.close();
  current = new PageContext();
  const hash = location.hash || "#/devices";
  if (!token() || hash === "#/signin") {
    showSignIn();
    return;
  }
  const found = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!found) {
    location.hash = "#/devices";
    return;
  }
  const [pattern, section, page] = found;
  const args = pattern.exec(hash).slice(1).map(Number);
  nav.hidden = false;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const ctx = current;
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const content = await page()(ctx, ...args);
    if (ctx !== current) return;
    main.replaceChildren(content);
  } catch (error) {
    if (ctx !== current || (error instanceof ApiError && error.status === 401)) return;
    main.replaceChildren(h("h1", { tabindex: "-1" }, "Something went wrong"),
      h("p", { class: "error", role: "alert" }, error.detail ?? String(error)),
      h("p", {}, h("a", { href: "#/devices" }, "Back to the devices")));
  }
  const heading = main.querySelector("h1");
  if (heading) {
    document.title = `${heading.textContent} · hwnas`;
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

function showSignIn() {
  nav.hidden = true;
  const input = h("input", { id: "token", name: "token", type: "password", required: true,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "token-help" });
  const remember = h("input", { id: "remember", type: "checkbox" });
  const error = formError();
  error.id = "signin-error";
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "card narrow", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    error.hidden = true;
    if (!value) {
      signInError(error, input, "Enter your API token.");
      return;
    }
    button.disabled = true;
    try {
      await request("/v1/devices", { auth: value });
      setToken(value, remember.checked);
      signInNotice = null;
      announce("Signed in");
      go(location.hash && location.hash !== "#/signin" ? location.hash : "#/devices");
    } catch (err) {
      signInError(error, input, err.status === 401
        ? `This token was not accepted (${err.detail}). Check it, or create a new one `
          + "with `hwnas admin token USER` on the service's machine."
        : err.detail);
    } finally {
      button.disabled = false;
    }
  } },
  h("h1", { tabindex: "-1" }, "Sign in"),
  signInNotice ? h("p", { class: "notice", role: "status" }, signInNotice) : null,
  h("div", { class: "field" },
    h("label", { for: "token" }, "API token"),
    input,
    h("p", { class: "hint", id: "token-help" },
      "A bearer token from ", h("code", {}, "hwnas admin token USER"),
      ". It is kept in this browser tab only, unless you tick the box below.")),
  h("div", { class: "check" }, remember, h("label", { for: "remember" },
    "Remember me on this browser")),
  error,
  button);
  main.replaceChildren(form);
  document.title = "Sign in · hwnas";
  input.focus();
}

function signInError(box, input, message) {
  box.textContent = message;
  box.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", "token-help signin-error");
  input.focus();
}

/** Show `hash`, re-rendering when it is the one shown already (no hashchange then). */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

window.addEventListener("hwnas:unauthorized", () => {
  clearToken();
  signInNotice = "The service refused your token (it may have been revoked): sign in again.";
  go("#/signin");
});
document.getElementById("sign-out").addEventListener("click", () => {
  clearToken();
  signInNotice = "Signed out.";
  go("#/signin");
});
// The skip link must not touch the URL's fragment: the router lives there.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", route);
route();
