// Copy buttons ([data-copy]): the full value (a version's SHA-256) to the clipboard, with "Copied"
// shown on the button and said in the page's status region. Delegated, so buttons htmx swaps in work
// too; they are <button>s, so Enter and Space use them from the keyboard.
(function () {
  "use strict";

  var RESET_MS = 2000;

  function fallbackCopy(text) {
    // Without the asynchronous clipboard (an insecure origin): a selected, off-screen text field.
    var field = document.createElement("textarea");
    field.value = text;
    field.setAttribute("readonly", "");
    field.style.position = "fixed";
    field.style.top = "-1000px";
    document.body.appendChild(field);
    field.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    field.remove();
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  function say(button, message) {
    var scope = button.closest("#compare") || document;
    var status = scope.querySelector(".copy-status") || document.querySelector(".copy-status");
    if (status) status.textContent = message;
  }

  function show(button, label, ok) {
    if (!button.hasAttribute("data-label")) button.setAttribute("data-label", button.textContent);
    button.textContent = label;
    button.classList.toggle("copied", ok);
    button.setAttribute("data-copied", ok ? "true" : "false");
    clearTimeout(button._copyTimer);
    button._copyTimer = setTimeout(function () {
      button.textContent = button.getAttribute("data-label");
      button.classList.remove("copied");
      button.removeAttribute("data-copied");
    }, RESET_MS);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    copy(text).then(function () {
      show(button, "Copied", true);
      say(button, "Copied " + text + " to the clipboard.");
    }, function () {
      show(button, "Copy failed", false);
      say(button, "Could not copy: select the value and copy it yourself.");
    });
  });
})();
