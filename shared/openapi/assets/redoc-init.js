// Starts ReDoc on /redoc. Served as a file so that the page's
// Content-Security-Policy needs no inline script.
"use strict";
Redoc.init("/openapi.json", {
  expandResponses: "200,202",
  requiredPropsFirst: true,
  sortPropsAlphabetically: false,
  pathInMiddlePanel: true
}, document.getElementById("redoc"));
