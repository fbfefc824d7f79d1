// The models list's column choice (templates/models/list.html's "Columns" menu): the columns a
// person hid are remembered in localStorage and hidden by `cols-hide-<column>` classes on <html>
// (static/css/list.css), so the rows htmx swaps in (filters, sorting, pages, live updates) follow the
// choice with no work here. Loaded in <head> without defer: the classes are set before the table is
// drawn, so a hidden column never flashes. Without JavaScript no class is set, the menu stays hidden
// and every column shows.
(function () {
  "use strict";

  var KEY = "model-registry:models-list:hidden-columns";
  var PREFIX = "cols-hide-";
  var NAME = /^[a-z0-9-]{1,40}$/;
  var root = document.documentElement;

  // The hidden columns' names; none when nothing (or nothing readable) is stored.
  function load() {
    try {
      var parsed = JSON.parse(window.localStorage.getItem(KEY) || "[]");
      return Array.isArray(parsed) ? parsed.filter(function (name) { return typeof name === "string" && NAME.test(name); }) : [];
    } catch (error) {
      return []; // storage blocked (private mode, a policy) or a value not ours: every column shows
    }
  }

  function save(hidden) {
    try {
      if (hidden.length) window.localStorage.setItem(KEY, JSON.stringify(hidden));
      else window.localStorage.removeItem(KEY);
    } catch (error) {
      // Not remembered, but still applied to this page.
    }
  }

  function apply(hidden) {
    Array.prototype.slice.call(root.classList).forEach(function (name) {
      if (name.indexOf(PREFIX) === 0 && hidden.indexOf(name.slice(PREFIX.length)) === -1) root.classList.remove(name);
    });
    hidden.forEach(function (name) { root.classList.add(PREFIX + name); });
  }

  apply(load());

  var MENU = "[data-columns-menu]";

  function boxesOf(menu) {
    return Array.prototype.slice.call(menu.querySelectorAll("input[type=checkbox][value]"));
  }

  // Each menu's boxes as the stored choice says, and the menu shown. Run once the page is parsed and
  // again when htmx puts back a page from its history (a new copy of the menu, its boxes as first drawn).
  function init() {
    var hidden = load();
    Array.prototype.slice.call(document.querySelectorAll(MENU)).forEach(function (menu) {
      boxesOf(menu).forEach(function (box) { box.checked = hidden.indexOf(box.value) === -1; });
      menu.hidden = false;
    });
  }

  function choose(hidden) {
    save(hidden);
    apply(hidden);
  }

  // Listened for on the document, so that a menu htmx put back works the same.
  document.addEventListener("change", function (event) {
    var menu = event.target.closest && event.target.closest(MENU);
    if (!menu || !event.target.matches("input[type=checkbox][value]")) return;
    choose(boxesOf(menu).filter(function (box) { return !box.checked; }).map(function (box) { return box.value; }));
  });

  document.addEventListener("click", function (event) {
    var reset = event.target.closest && event.target.closest(MENU + " [data-columns-reset]");
    if (reset) {
      choose([]);
      init();
      return;
    }
    // A click elsewhere closes an open menu.
    Array.prototype.slice.call(document.querySelectorAll(MENU + "[open]")).forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });

  // Escape closes the menu and gives the focus back to its button.
  document.addEventListener("keydown", function (event) {
    var menu = event.key === "Escape" && event.target.closest && event.target.closest(MENU);
    if (!menu || !menu.open) return;
    event.preventDefault();
    menu.open = false;
    var summary = menu.querySelector("summary");
    if (summary) summary.focus();
  });

  // The choice made in another tab applies here too.
  window.addEventListener("storage", function (event) {
    if (event.key !== null && event.key !== KEY) return;
    apply(load());
    init();
  });

  document.addEventListener("htmx:historyRestore", init);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
