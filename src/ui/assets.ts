/**
 * The UI's stylesheet and script, embedded as strings (nothing is read from disk at run time) and
 * served from `/ui/style.css` and `/ui/app.js`, so the pages can forbid inline script entirely.
 */

/** The stylesheet: plain CSS, readable on a phone. */
export const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f5f6f8}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.2rem;align-items:center;padding:.6rem 1rem;background:#1f3a5f;color:#fff}
header a{color:#fff;text-decoration:none}
header .brand{font-weight:600;font-size:1.1rem}
main{max-width:64rem;margin:0 auto;padding:1rem}
h1{font-size:1.3rem;margin:.2rem 0 1rem;word-break:break-all}
h2{font-size:1.05rem;margin:0 0 .6rem}
section{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:.8rem 1rem;margin:0 0 1rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e6e8ec;vertical-align:top}
th{font-weight:600;font-size:.85rem;color:#555}
.scroll{overflow-x:auto}
.mono,code,pre,textarea{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem}
pre{white-space:pre-wrap;word-break:break-all;margin:0;background:#f2f3f5;padding:.5rem;border-radius:4px;max-height:24rem;overflow:auto}
.badge{display:inline-block;white-space:nowrap;padding:0 .45rem;border-radius:999px;font-size:.8rem;font-weight:600}
.ready{background:#d6f5df;color:#17643a}.not-ready{background:#fde2c8;color:#8a4300}.idle{background:#e4e7ec;color:#444}
.flash{background:#e3f1ff;border:1px solid #9cc7f0;padding:.5rem .8rem;border-radius:4px;margin:0 0 1rem}
.error{background:#fde8e8;border:1px solid #f0a8a8;color:#8b1a1a;padding:.5rem .8rem;border-radius:4px;margin:0 0 1rem;white-space:pre-wrap}
form.inline{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}
label{display:block;font-size:.85rem;font-weight:600;margin:.5rem 0 .2rem}
input,select,textarea,button{font:inherit;padding:.35rem .5rem;border:1px solid #b9c0cb;border-radius:4px;max-width:100%}
input[type=text],textarea,select[multiple]{width:100%}
textarea{min-height:4.5rem}
button,.button{background:#1f5fa8;color:#fff;border:1px solid #1f5fa8;cursor:pointer;text-decoration:none;display:inline-block;padding:.35rem .8rem;border-radius:4px;font:inherit;line-height:1.4}
button.danger,.button.danger{background:#b3261e;border-color:#b3261e}
.muted{color:#666;font-size:.85rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}
dt{font-weight:600;color:#555}dd{margin:0;word-break:break-all}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:0 1rem}
#logs{height:16rem}
`;

/**
 * The script: refreshes `data-refresh` fragments, submits `data-autosubmit` selects, runs the
 * invoke panel (fetch to `/function/…`, latency measured here) and follows logs (fetch and a
 * stream reader on `/ui/logs`). Everything it shows from a response is set as text, never HTML.
 */
export const SCRIPT = `
"use strict";
(function () {
  var $ = function (s) { return document.querySelector(s); };

  document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });

  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var last = null;
    setInterval(function () {
      if (document.hidden) return;
      fetch(el.getAttribute("data-refresh"), { headers: { accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (t) {
          // The fragment is HTML the server escaped; it replaces the block only when it changed.
          if (t !== null && t !== last) { last = t; el.innerHTML = t; }
        })
        .catch(function () {});
    }, 3000);
  });

  var form = $("#invoke");
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var method = $("#invoke-method").value, path = $("#invoke-path").value || "/";
      if (path.charAt(0) !== "/") path = "/" + path;
      var init = { method: method, headers: {} };
      if (method !== "GET" && method !== "HEAD") {
        init.body = $("#invoke-body-in").value;
        var type = $("#invoke-type").value;
        if (type) init.headers["content-type"] = type;
      }
      var out = $("#invoke-result");
      out.hidden = false;
      $("#invoke-status").textContent = "…";
      $("#invoke-latency").textContent = "";
      $("#invoke-headers").textContent = "";
      $("#invoke-body").textContent = "";
      var started = performance.now(), res;
      fetch(form.getAttribute("data-target") + path, init)
        .then(function (r) { res = r; return r.text(); })
        .then(function (text) {
          var ms = performance.now() - started;
          $("#invoke-status").textContent = res.status + " " + res.statusText;
          $("#invoke-latency").textContent = ms.toFixed(1) + " ms";
          var lines = [];
          res.headers.forEach(function (v, k) { lines.push(k + ": " + v); });
          $("#invoke-headers").textContent = lines.join("\\n");
          $("#invoke-body").textContent = text;
        })
        .catch(function (err) {
          $("#invoke-status").textContent = "request failed: " + err;
        });
    });
  }

  var logs = $("#logs");
  if (logs) {
    var state = $("#logs-state"), max = 500, decoder = new TextDecoder();
    var add = function (rec) {
      var line = document.createElement("div");
      line.textContent = (rec.timestamp || "").replace("T", " ").slice(0, 19) + "  " +
        (rec.instance || "") + "  " + (rec.text || "");
      logs.appendChild(line);
      while (logs.childNodes.length > max) logs.removeChild(logs.firstChild);
      logs.scrollTop = logs.scrollHeight;
    };
    var follow = function () {
      state.textContent = "following";
      fetch(logs.getAttribute("data-src")).then(function (res) {
        if (!res.ok) { state.textContent = "stopped: " + res.status; return; }
        var reader = res.body.getReader(), buf = "";
        var pump = function () {
          return reader.read().then(function (r) {
            if (r.done) throw new Error("stream ended");
            buf += decoder.decode(r.value, { stream: true });
            var parts = buf.split("\\n");
            buf = parts.pop();
            parts.forEach(function (p) { if (p) { try { add(JSON.parse(p)); } catch (e) {} } });
            return pump();
          });
        };
        return pump();
      }).catch(function () {
        state.textContent = "reconnecting";
        logs.setAttribute("data-src", logs.getAttribute("data-src").replace(/tail=[^&]*/, "tail=0"));
        setTimeout(follow, 2000);
      });
    };
    follow();
  }
})();
`;
