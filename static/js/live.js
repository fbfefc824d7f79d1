// Live updates: the page follows what others change, without a reload (README, "Live updates").
//
// One WebSocket (/ws/events/) brings every committed domain event the user may see. Regions of the
// page say which events concern them, and where their fresh HTML comes from:
//   data-live-events="lifecycle.changed alias.set"  the event types that change the region
//   data-live-model="42"                            only events about this model
//   data-live-url="/models/42/parts/lifecycle/"     its fragment (fetched as htmx does: HX-Request)
//   data-live-swap="outerHTML"                      how it goes in (htmx swap styles; "none": out of band only)
//   data-live-notice                                not refreshed: shown, counting the events
//                                                   ([data-live-count]; a [data-live-show] button inside
//                                                   refreshes the element it names from this page's URL)
// A region holding a field the user is in (or has typed into) is left alone and marked stale; it is
// refreshed once the user leaves it, or on the "Update" button of the note it gets. After a dropped
// connection the socket comes back with backoff and every region is refreshed from the database.
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !window.WebSocket || !window.fetch) return;
  var socketPath = script.getAttribute("data-socket") || "/ws/events/";
  var SIGNED_OUT = 4401;
  var PING_MS = 25000;
  var SILENCE_MS = 60000; // no pong for this long: the connection is dead even if nobody said so
  var BATCH_MS = 40; // events of one change (an approval and its stage move) refresh a region once
  var SEEN_LIMIT = 500;

  // This page's id: events of changes made by its own htmx requests are skipped (their answer shows them).
  var tab = Array.from(window.crypto.getRandomValues(new Uint8Array(12)), function (b) {
    return ("0" + b.toString(16)).slice(-2);
  }).join("");
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-Live-Tab"] = tab;
  });

  var socket = null;
  var attempts = 0;
  var opened = false;
  var stopped = false;
  var pingTimer = null;
  var reconnectTimer = null;
  var lastHeard = 0;
  var seen = [];
  var seenSet = new Set();
  var pending = new Set();
  var flushTimer = null;

  function setState(state) {
    document.documentElement.setAttribute("data-live", state);
  }

  function connect() {
    if (stopped) return;
    clearTimeout(reconnectTimer);
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + window.location.host + socketPath);
    socket.onopen = function () {
      var reconnected = opened;
      opened = true;
      attempts = 0;
      lastHeard = Date.now();
      setState("open");
      clearInterval(pingTimer);
      pingTimer = setInterval(ping, PING_MS);
      if (reconnected) catchUp();
    };
    socket.onmessage = function (message) {
      lastHeard = Date.now();
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (!event || !event.id || remembered(event.id)) return;
      if (event.tab && event.tab === tab) return;
      apply(event);
    };
    socket.onclose = function (closed) {
      clearInterval(pingTimer);
      socket = null;
      if (closed.code === SIGNED_OUT) {
        // Signed out (here or elsewhere), or the session was revoked: nothing more to follow.
        stopped = true;
        setState("signed-out");
        return;
      }
      setState("closed");
      attempts += 1;
      var delay = Math.min(15000, 500 * Math.pow(2, attempts - 1));
      reconnectTimer = setTimeout(connect, delay / 2 + Math.random() * delay / 2);
    };
  }

  function ping() {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (Date.now() - lastHeard > SILENCE_MS) {
      socket.close();
      return;
    }
    socket.send(JSON.stringify({ type: "ping" }));
  }

  // Back online: try at once instead of waiting out the backoff.
  window.addEventListener("online", function () {
    if (!socket && !stopped) connect();
  });

  function remembered(id) {
    if (seenSet.has(id)) return true;
    seenSet.add(id);
    seen.push(id);
    if (seen.length > SEEN_LIMIT) seenSet.delete(seen.shift());
    return false;
  }

  function regions() {
    return Array.from(document.querySelectorAll("[data-live-events]"));
  }

  function concerns(region, event) {
    var types = (region.getAttribute("data-live-events") || "").split(/\s+/);
    if (types.indexOf(event.type) === -1) return false;
    var model = region.getAttribute("data-live-model");
    return !model || (event.model !== null && String(event.model.id) === model);
  }

  function apply(event) {
    regions().forEach(function (region) {
      if (!concerns(region, event)) return;
      if (region.hasAttribute("data-live-notice")) {
        announce(region, event);
      } else if (event.type === "model.deleted") {
        gone(region);
      } else {
        pending.add(region);
      }
    });
    if (pending.size && !flushTimer) flushTimer = setTimeout(flush, BATCH_MS);
  }

  function flush() {
    flushTimer = null;
    var batch = Array.from(pending);
    pending.clear();
    batch.forEach(function (region) { refresh(region, false); });
  }

  function catchUp() {
    var shown = [];
    document.querySelectorAll("[data-live-notice] [data-live-show]").forEach(function (button) {
      var target = document.querySelector(button.getAttribute("data-live-show"));
      if (target) shown.push(target);
      show(button);
    });
    regions().forEach(function (region) {
      if (region.hasAttribute("data-live-notice") || !region.hasAttribute("data-live-url")) return;
      if (shown.some(function (target) { return target.contains(region); })) return;
      refresh(region);
    });
  }

  // --- refreshing a region -------------------------------------------------------------------------

  function isField(node) {
    return node && (node.matches("input, textarea, select") || node.isContentEditable);
  }

  function edited(region) {
    return Array.from(region.querySelectorAll("input, textarea, select")).some(function (field) {
      if (field.type === "hidden" || field.type === "submit" || field.type === "button") return false;
      if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
      if (field.type === "file") return field.value !== "";
      if (field.tagName === "SELECT") {
        // With no option marked selected, a single select shows its first one: that is its default.
        var options = Array.from(field.options);
        var defaults = options.filter(function (option) { return option.defaultSelected; });
        if (!defaults.length && options.length && !field.multiple) defaults = [options[0]];
        return options.some(function (option) { return option.selected !== (defaults.indexOf(option) !== -1); });
      }
      return field.value !== field.defaultValue;
    });
  }

  function busy(region) {
    var active = document.activeElement;
    return (isField(active) && region.contains(active)) || edited(region);
  }

  function refresh(region, force) {
    if (!region.isConnected) return;
    var url = region.getAttribute("data-live-url");
    if (!url) return;
    if (!force && busy(region)) {
      markStale(region);
      return;
    }
    fetch(url, {
      credentials: "same-origin",
      headers: { "HX-Request": "true", "HX-Current-URL": window.location.href, "X-Live-Tab": tab },
    }).then(function (response) {
      if (response.redirected) {
        // Sent to the sign-in page: the session is over. The socket closes with 4401 too.
        return null;
      }
      if (response.status === 404) {
        gone(region);
        return null;
      }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null || html === undefined || !region.isConnected) return;
      if (!force && busy(region)) {
        markStale(region);
        return;
      }
      var style = region.getAttribute("data-live-swap") || "outerHTML";
      htmx.swap(region, html, { swapStyle: style, swapDelay: 0, settleDelay: 0 });
      if (style !== "outerHTML" && style !== "none") unmarkStale(region);
    }).catch(function () {
      // Offline or the server is away: the next event, or the catch-up after a reconnect, tries again.
    });
  }

  function markStale(region) {
    region.setAttribute("data-live-stale", "");
    if (region.querySelector(":scope > .live-stale")) return;
    var note = document.createElement("p");
    note.className = "live-stale";
    note.setAttribute("role", "status");
    note.appendChild(document.createTextNode("Changed by someone else while you were editing. "));
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button small";
    button.textContent = "Update";
    button.addEventListener("click", function () { refresh(region, true); });
    note.appendChild(button);
    region.insertBefore(note, region.firstChild);
  }

  function unmarkStale(region) {
    region.removeAttribute("data-live-stale");
    var note = region.querySelector(":scope > .live-stale");
    if (note) note.remove();
  }

  // Leaving a stale region (and having typed nothing there) brings it up to date.
  document.addEventListener("focusout", function () {
    setTimeout(function () {
      document.querySelectorAll("[data-live-stale]").forEach(function (region) {
        if (!busy(region)) refresh(region);
      });
    }, 0);
  });

  function gone(region) {
    region.classList.add("live-gone");
    region.setAttribute("title", "Deleted");
    region.removeAttribute("data-live-events");
  }

  // --- notices ------------------------------------------------------------------------------------

  function announce(region, event) {
    var count = region.querySelector("[data-live-count]");
    var total = (parseInt(region.getAttribute("data-live-total") || "0", 10) || 0) + 1;
    region.setAttribute("data-live-total", String(total));
    if (count) count.textContent = String(total);
    var plural = region.querySelector("[data-live-plural]");
    if (plural) plural.textContent = total === 1 ? "" : "s";
    var actor = region.querySelector("[data-live-actor]");
    if (actor) actor.textContent = event.actor ? " by " + event.actor.username : "";
    region.hidden = false;
  }

  function show(button) {
    var notice = button.closest("[data-live-notice]");
    var target = document.querySelector(button.getAttribute("data-live-show"));
    if (notice) {
      notice.hidden = true;
      notice.setAttribute("data-live-total", "0");
    }
    if (!target) return;
    fetch(window.location.pathname + window.location.search, {
      credentials: "same-origin",
      headers: { "HX-Request": "true", "HX-Current-URL": window.location.href, "X-Live-Tab": tab },
    }).then(function (response) {
      return response.ok && !response.redirected ? response.text() : null;
    }).then(function (html) {
      if (html) htmx.swap(target, html, { swapStyle: "innerHTML", swapDelay: 0, settleDelay: 0 });
    }).catch(function () {});
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-live-show]");
    if (button) show(button);
  });

  setState("connecting");
  connect();
})();
