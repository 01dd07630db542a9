// Small progressive enhancements; every page works without JavaScript.
(function () {
  "use strict";
  // Live progress: an element with data-poll="<json url>" is refreshed every few seconds.
  // The JSON is {"fields": {"<name>": "<text>"}, "percent": <0-100>, "done": bool}.
  document.querySelectorAll("[data-poll]").forEach(function (box) {
    var url = box.getAttribute("data-poll");
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          Object.keys(data.fields || {}).forEach(function (name) {
            box.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) { el.textContent = data.fields[name]; });
          });
          var bar = box.querySelector(".progress > span");
          if (bar && typeof data.percent === "number") { bar.style.width = data.percent + "%"; bar.parentElement.setAttribute("aria-valuenow", data.percent); }
          if (data.done) {
            if (box.hasAttribute("data-reload-when-done")) { window.location.reload(); }
            return;
          }
          setTimeout(tick, 1500);
        })
        .catch(function () { setTimeout(tick, 4000); });
    }
    tick();
  });
  // Top-bar menus (<details>): one open at a time, closed by a click elsewhere or Escape.
  var menus = document.querySelectorAll(".mainnav details");
  menus.forEach(function (menu) {
    menu.addEventListener("toggle", function () {
      if (menu.open) { menus.forEach(function (other) { if (other !== menu) { other.open = false; } }); }
    });
  });
  document.addEventListener("click", function (e) {
    menus.forEach(function (menu) { if (menu.open && !menu.contains(e.target)) { menu.open = false; } });
  });
  // ... and when keyboard focus moves out of them, so that an open menu never hides the page.
  menus.forEach(function (menu) {
    menu.addEventListener("focusout", function (e) {
      if (menu.open && e.relatedTarget && !menu.contains(e.relatedTarget)) { menu.open = false; }
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") { return; }
    menus.forEach(function (menu) {
      if (menu.open) { menu.open = false; menu.querySelector("summary").focus(); }
    });
  });
  // A table or chart wider than its box scrolls sideways: make the box focusable (and name it) so
  // that it can be scrolled from the keyboard; a box that fits stays out of the tab order.
  function labelFor(box) {
    var caption = box.querySelector("caption");
    var img = box.querySelector("[role=img][aria-label]");
    var before = box.previousElementSibling;
    var section = box.closest("section, .card");
    var heading = (before && /^H[2-6]$/.test(before.tagName) && before) || (section && section.querySelector("h2"));
    var text = (caption && caption.textContent) || (img && img.getAttribute("aria-label")) || (heading && heading.textContent) || "";
    return (text.trim() || "Table") + " (scrolls sideways)";
  }
  function markScrollable() {
    document.querySelectorAll(".table-wrap, .chart").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", labelFor(box));
        box.setAttribute("data-scrollable", "");
      } else if (!scrolls && box.hasAttribute("data-scrollable")) {
        ["tabindex", "role", "aria-label", "data-scrollable"].forEach(function (a) { box.removeAttribute(a); });
      }
    });
  }
  markScrollable();
  window.addEventListener("resize", markScrollable);
  // After a refused submission, focus the first field in error: its label and error are read out.
  var invalid = document.querySelector("main [aria-invalid=true]");
  if (invalid && (document.activeElement === document.body || !document.activeElement)) { invalid.focus(); }
  // Confirm destructive actions.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) { if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); } });
  });
})();
