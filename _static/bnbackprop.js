/* Makes every sidebar toggle of the page work.
 *
 * pydata-sphinx-theme 0.17.1 (which opens the sidebars as dialogs below 992 px)
 * and sphinx-book-theme 1.3.0 (which collapses the primary sidebar at 992 px
 * and wider) bind their click handlers to the FIRST .primary-toggle and
 * .secondary-toggle of the page: the copy in the site header, which this
 * combination of themes never shows. The toggles a reader sees (in the
 * article's header) have no handler and do nothing. This script forwards a
 * click on any other copy to the first one, so that the themes' own handlers
 * run, whatever the width of the window.
 */
(function () {
  "use strict";

  function forwardClicks(selector) {
    const first = document.querySelector(selector);
    if (!first) return;
    document.querySelectorAll(selector).forEach((toggle) => {
      if (toggle === first) return;
      toggle.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        first.click();
        toggle.blur();
        // The Bootstrap tooltip shown on tap would otherwise stay on screen.
        if (window.bootstrap && window.bootstrap.Tooltip) {
          const tooltip = window.bootstrap.Tooltip.getInstance(toggle);
          if (tooltip) tooltip.hide();
        }
      });
    });
  }

  function bindToggles() {
    forwardClicks(".primary-toggle");
    forwardClicks(".secondary-toggle");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bindToggles);
  } else {
    bindToggles();
  }
})();
