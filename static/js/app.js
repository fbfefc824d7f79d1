// Small enhancements on top of htmx; every page works without them.
(function () {
  "use strict";

  // Upload progress: htmx reports the XHR's progress on the form that sent it.
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest && event.target.closest("#upload-form");
    if (!form || !event.detail.lengthComputable) return;
    var percent = Math.round((event.detail.loaded / event.detail.total) * 100);
    var bar = document.getElementById("upload-progress");
    var label = document.getElementById("upload-percent");
    if (bar) bar.value = percent;
    if (label) label.textContent = percent + "%";
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.target.id === "upload-form") {
      var bar = document.getElementById("upload-progress");
      var label = document.getElementById("upload-percent");
      if (bar) bar.value = 0;
      if (label) label.textContent = "0%";
    }
  });

  // Filter forms leave out their empty fields, so pushed URLs read ?framework=sklearn, not a list of blanks.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.verb !== "get") return;
    var params = event.detail.parameters;
    if (typeof params.entries === "function") {
      Array.from(params.entries()).forEach(function (pair) {
        if (pair[1] === "") params.delete(pair[0]);
      });
    } else {
      Object.keys(params).forEach(function (key) {
        if (params[key] === "") delete params[key];
      });
    }
  });

  // Keep the filter form's hidden ordering in step with the URL after a sort link swapped the table.
  document.addEventListener("htmx:pushedIntoHistory", function () {
    var form = document.getElementById("model-filters");
    if (!form) return;
    var ordering = new URLSearchParams(window.location.search).get("ordering") || "";
    var input = form.querySelector("input[name=ordering]");
    if (input) input.value = ordering;
  });

  // The reason an error page gives (403.html, 404.html, 500.html: [data-error-reason]), if the answer is one.
  function errorReason(xhr) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (type.indexOf("text/html") !== 0 || !xhr.responseText) return "";
    var node = new DOMParser().parseFromString(xhr.responseText, "text/html").querySelector("[data-error-reason]");
    return node ? node.textContent.trim() : "";
  }

  // Copy buttons ([data-copy]: the text to copy), e.g. a new API key, shown once.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button || !navigator.clipboard) return;
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      button.textContent = "Copied";
    }, function () {
      button.textContent = "Copy failed: select the key and copy it";
    });
  });

  // A failed htmx request (network error, 4xx, 5xx) gets a visible message instead of silence.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var text = status === 413 ? "The file is larger than the upload limit." : errorReason(event.detail.xhr) ||
      (status === 403 ? "You are not allowed to do that." : "Something went wrong (" + status + "). Please try again.");
    var target = event.detail.target;
    if (target) {
      var note = document.createElement("p");
      note.className = "error";
      note.setAttribute("role", "alert");
      note.textContent = text;
      target.prepend(note);
    }
  });

  // The navigation's menu button (narrow screens, base.html): opens and closes the links, says so
  // in aria-expanded; Escape or a click elsewhere closes it, Escape returns focus to the button.
  // The user menu (<details>) closes the same way.
  function navToggle() { return document.querySelector(".nav-toggle"); }
  function setNavOpen(open, focusButton) {
    var button = navToggle();
    if (!button) return;
    var links = document.getElementById(button.getAttribute("aria-controls"));
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (links) links.classList.toggle("open", open);
    if (focusButton) button.focus();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".nav-toggle");
    if (button) {
      setNavOpen(button.getAttribute("aria-expanded") !== "true", false);
      return;
    }
    var toggle = navToggle();
    if (toggle && toggle.getAttribute("aria-expanded") === "true" && !event.target.closest(".nav")) setNavOpen(false, false);
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var toggle = navToggle();
    if (toggle && toggle.getAttribute("aria-expanded") === "true") {
      setNavOpen(false, toggle.contains(document.activeElement) || !!document.activeElement.closest(".nav-links"));
    }
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      var hadFocus = menu.contains(document.activeElement);
      menu.open = false;
      if (hadFocus) menu.querySelector("summary").focus();
    });
  });

  // Toasts: an htmx answer that went through says so in its HX-Trigger header (a "toast" event,
  // registry.pages.with_toast), shown in the page's one live region (base.html). A toast goes by
  // itself, but not while the pointer or the focus is on it, so that it can be read and dismissed.
  var TOAST_MS = 6000;
  var TOAST_LEVELS = ["success", "error", "warning"];
  function showToast(message, level) {
    var region = document.getElementById("toasts");
    if (!region || !message) return;
    var toast = document.createElement("div");
    toast.className = "toast " + (TOAST_LEVELS.indexOf(level) >= 0 ? level : "success");
    var text = document.createElement("p");
    text.className = "toast-message";
    text.textContent = String(message);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    toast.append(text, close);
    var timer = null;
    function dismiss() {
      clearTimeout(timer);
      toast.remove();
    }
    function hold() { clearTimeout(timer); }
    function wait() {
      clearTimeout(timer);
      timer = setTimeout(dismiss, TOAST_MS);
    }
    close.addEventListener("click", dismiss);
    toast.addEventListener("mouseenter", hold);
    toast.addEventListener("focusin", hold);
    toast.addEventListener("mouseleave", function () {
      if (!toast.contains(document.activeElement)) wait();
    });
    toast.addEventListener("focusout", function (event) {
      if (!toast.contains(event.relatedTarget) && !toast.matches(":hover")) wait();
    });
    region.appendChild(toast);
    wait();
  }
  document.body.addEventListener("toast", function (event) {
    var detail = event.detail || {};
    showToast(detail.message, detail.level);
  });

  // allauth's passkey scripts announce a refused or cancelled passkey with this event (and log it to
  // the console when nobody handles it): say so on the page instead.
  document.addEventListener("allauth.error", function (event) {
    var note = document.getElementById("passkey-error");
    if (!note) return;
    event.preventDefault();
    note.textContent = "The passkey was not accepted or the request was cancelled: try again, or sign in with your password.";
    note.hidden = false;
  });
})();
