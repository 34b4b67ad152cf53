/* abmhub tracker (API contract: website visits). No cookies, no storage. Served as is: keep it small. */
(() => {
  "use strict";
  const KEY = "__ABMHUB_SITE_KEY__";
  const COLLECT = "__ABMHUB_COLLECT_URL__";
  const w = window;
  const d = document;
  const n = navigator;
  const loc = location;
  const stub = w.abmhub;
  if (stub && stub.loaded) return; // pasted twice: count once

  // data-allow-local="true" lifts only the localhost rule (to try it on 127.0.0.1);
  // data-api="/path" posts there instead (served first-party through the site's own proxy).
  const tag = d.currentScript;
  const api = (tag && tag.getAttribute("data-api")) || COLLECT;
  const h = loc.hostname;
  const local = !h || h === "localhost" || h === "127.0.0.1" || h === "[::1]" || /\.localhost$/.test(h);
  const off =
    n.webdriver === true ||
    [n.doNotTrack, w.doNotTrack, n.msDoNotTrack].some((v) => v === "1" || v === "yes") ||
    n.globalPrivacyControl === true ||
    (local && !(tag && tag.getAttribute("data-allow-local") === "true"));

  const send = (event) => {
    if (off) return;
    try {
      // text/plain: no CORS preflight; keepalive: outlives the page
      fetch(api, {
        method: "POST",
        body: JSON.stringify(Object.assign({ k: KEY }, event)),
        keepalive: true,
        headers: { "Content-Type": "text/plain" },
        credentials: "omit",
      }).catch(() => {});
    } catch (e) {}
  };
  const identify = (email) => {
    const id = typeof email === "string" ? email.trim() : "";
    if (id) send({ n: "identify", u: loc.href, email: id });
  };
  w.abmhub = { identify, loaded: true };
  if (off) return;

  // Engagement: visible ms and deepest scroll % since the last engagement event.
  let engaged = 0;
  let since = 0; // 0: not visible
  let depth = 0;
  let url = ""; // the page's: location moves before an SPA's pageview
  let seen = "";

  const measure = () => {
    const height = Math.max(d.documentElement.scrollHeight, d.body ? d.body.scrollHeight : 0);
    depth = Math.max(depth, Math.min(100, Math.round(((w.scrollY + w.innerHeight) / height) * 100) || 0));
  };
  const start = () => {
    if (!since && d.visibilityState === "visible") since = performance.now();
  };
  const flush = () => {
    if (since) engaged += performance.now() - since;
    since = 0;
    measure();
    if (engaged >= 3000) {
      send({ n: "engagement", u: url, e: Math.round(engaged), sd: depth });
      engaged = 0;
    }
  };
  // A view per URL, ignoring #fragments and repeats (replaceState).
  const pageview = () => {
    const now = loc.href.split("#")[0];
    if (now === seen) return;
    // the previous page, as a full navigation would say
    const r = url || d.referrer;
    if (url) flush();
    engaged = depth = since = 0;
    seen = now;
    url = loc.href;
    start();
    send(r ? { n: "pageview", u: url, r } : { n: "pageview", u: url });
  };

  for (const name of ["pushState", "replaceState"]) {
    const original = history[name];
    history[name] = function () {
      const result = original.apply(this, arguments);
      pageview();
      return result;
    };
  }
  w.addEventListener("popstate", pageview);
  w.addEventListener("scroll", measure, { passive: true });
  w.addEventListener("focus", start);
  w.addEventListener("pagehide", flush);
  d.addEventListener("visibilitychange", () => (d.visibilityState === "visible" ? start() : flush()));
  // back from the back-forward cache: a view, as a reload would be
  w.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      url = seen = "";
      pageview();
    }
  });

  pageview(); // no scroll depth yet: in <head> the page has no height
  // calls queued before load: abmhub.q = [["identify", email]]
  for (const call of stub && Array.isArray(stub.q) ? stub.q : []) if (call && call[0] === "identify") identify(call[1]);
})();
