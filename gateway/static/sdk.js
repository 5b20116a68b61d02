/* journeys website SDK: reports the pages an identified contact visits and shows the on-site
 * messages waiting for them (a chat prompt, an NPS pop-up).
 *
 *   <script src="https://GATEWAY/sdk.js" data-token="TOKEN" async></script>
 *
 * TOKEN identifies the signed-in contact; the site gets it from the journeys API. No cookies, no
 * dependencies; message text is shown as text, never as HTML.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var token = script && script.getAttribute("data-token");
  // Twice on one page (the tag included twice) would report every visit twice.
  if (!token || window.journeysSdkLoaded) return;
  window.journeysSdkLoaded = true;
  var base = script.src.replace(/\/sdk\.js([?#].*)?$/, "");

  function post(path, body) {
    return fetch(base + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
      keepalive: true, // a visit reported as the visitor leaves still arrives
    }).catch(function () {});
  }

  function visit() {
    post("/w/visits", { token: token, url: location.href });
  }

  // Text with its http(s) URLs as links; everything else stays text.
  function linked(text) {
    var out = document.createDocumentFragment();
    text.split(/(https?:\/\/[^\s<>"']+)/).forEach(function (part, i) {
      if (i % 2) {
        out.appendChild(link(part, part));
      } else if (part) {
        out.appendChild(document.createTextNode(part));
      }
    });
    return out;
  }

  function link(href, label) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    a.target = "_blank";
    a.rel = "noopener";
    return a;
  }

  function show(message) {
    var popup = message.kind === "nps_popup";
    var box = document.createElement("div");
    box.setAttribute("role", popup ? "dialog" : "status");
    box.setAttribute("aria-label", popup ? "Survey" : "Message");
    // Through the CSSOM, which a site's Content-Security-Policy for inline styles allows.
    Object.assign(box.style, {
      position: "fixed", zIndex: "2147483647", background: "#fff", color: "#1d1d1f",
      font: "15px/1.4 system-ui, sans-serif", padding: "16px 20px", borderRadius: "10px",
      boxShadow: "0 4px 24px rgba(0,0,0,.25)", maxWidth: "320px",
    });
    Object.assign(box.style, popup
      ? { top: "50%", left: "50%", transform: "translate(-50%, -50%)" }
      : { right: "20px", bottom: "20px" });
    var text = document.createElement("p");
    text.style.margin = "0 0 10px";
    text.appendChild(linked(message.body));
    box.appendChild(text);
    if (message.nps_url) {
      box.appendChild(link(message.nps_url, popup ? "Answer the survey" : "Give feedback"));
    }
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "\u00d7";
    close.setAttribute("aria-label", "Close");
    Object.assign(close.style, {
      position: "absolute", top: "4px", right: "8px", border: "0", background: "none",
      fontSize: "20px", cursor: "pointer",
    });
    close.addEventListener("click", function () { box.remove(); });
    box.appendChild(close);
    document.body.appendChild(box);
    post("/w/messages/" + encodeURIComponent(message.key) + "/shown", { token: token });
  }

  function showWaiting() {
    fetch(base + "/w/messages?token=" + encodeURIComponent(token), { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
      .then(function (data) { data.messages.forEach(show); })
      .catch(function () {});
  }

  function start() {
    visit();
    showWaiting();
    // Single-page sites change the URL without loading a page: each change is a visit too.
    var pushState = history.pushState;
    history.pushState = function () {
      var result = pushState.apply(this, arguments);
      visit();
      return result;
    };
    window.addEventListener("popstate", visit);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
