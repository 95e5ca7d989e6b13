// The console's charts: every element with a data-chart attribute holds an ECharts option
// (JSON written by the server); it is drawn once ECharts is loaded, and redrawn when the
// window changes size. Nothing else on a page needs JavaScript.
(function () {
  "use strict";
  function draw() {
    if (typeof echarts === "undefined") {
      return;
    }
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var option;
      try {
        option = JSON.parse(el.getAttribute("data-chart"));
      } catch (e) {
        return;
      }
      var chart = echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option);
      el.setAttribute("data-drawn", "true");
      charts.push(chart);
    });
    window.addEventListener("resize", function () {
      charts.forEach(function (c) {
        c.resize();
      });
    });
  }
  // A rule being typed is checked by the server a moment after the last key: its mistake
  // at its column, or how many customers it holds now.
  function checkRules() {
    document.querySelectorAll("textarea[data-check]").forEach(function (area) {
      var out = document.getElementById("rule-check");
      var purpose = area.form.querySelector("input[name=purpose]");
      var timer = null;
      var asked = 0;
      function ask() {
        var n = ++asked;
        var url = area.getAttribute("data-check") + "?rule=" + encodeURIComponent(area.value) +
          (purpose && purpose.checked ? "&purpose=analysis" : "");
        fetch(url, { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : ""; })
          .then(function (html) {
            if (n === asked && out) {
              out.innerHTML = html;
            }
          });
      }
      function later() {
        clearTimeout(timer);
        timer = setTimeout(ask, 400);
      }
      area.addEventListener("input", later);
      if (purpose) {
        purpose.addEventListener("change", later);
      }
      if (area.value.trim() !== "") {
        ask();
      }
    });
  }
  function ready() {
    draw();
    checkRules();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
