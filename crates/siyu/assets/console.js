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
              // The shop is counting the rule before: ask again in a moment.
              if (html.indexOf("data-busy") >= 0) {
                later();
              }
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
  // The what-if: GMV times the product of (1 + move) over the factors, as the server
  // computes it (siyu report gmv --what-if), shown as each slider moves.
  function whatIf() {
    var out = document.getElementById("projected");
    if (!out) {
      return;
    }
    var fen = Number(out.getAttribute("data-gmv-fen"));
    var zh = out.getAttribute("data-lang") === "zh";
    var sliders = document.querySelectorAll("input[data-move]");
    function money(f) {
      var yuan = Math.abs(f) / 100;
      var sign = f < 0 ? "-" : "";
      if (zh && yuan >= 1e8) {
        return sign + "¥" + (Math.round(yuan / 1e6) / 100).toFixed(2) + "亿";
      }
      if (zh && yuan >= 1e4) {
        return sign + "¥" + (Math.round(yuan / 100) / 100).toFixed(2) + "万";
      }
      return sign + "¥" + yuan.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    function update() {
      var scale = 1;
      sliders.forEach(function (s) {
        scale *= 1 + Number(s.value) / 100;
        var shown = document.querySelector("output[data-for='" + s.getAttribute("data-move") + "']");
        if (shown) {
          shown.textContent = (Number(s.value) >= 0 ? "+" : "") + s.value + "%";
        }
      });
      out.textContent = money(Math.round(fen * scale));
    }
    sliders.forEach(function (s) {
      s.addEventListener("input", update);
    });
  }
  function ready() {
    draw();
    checkRules();
    whatIf();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
