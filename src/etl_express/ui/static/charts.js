// The pipeline page's charts (Chart.js, shipped with the package): rows, rows/s, duration.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var failedColor = "#dc2626", okColor = "#2563eb";
  var pointColors = data.status.map(function (s) { return s === "succeeded" ? okColor : failedColor; });
  Chart.defaults.animation = false;  // draw at once (screenshots and tests see the final chart)
  Chart.defaults.maintainAspectRatio = false;

  function chart(id, type, datasets) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    new Chart(canvas, {
      type: type,
      data: { labels: data.labels, datasets: datasets },
      options: {
        responsive: true,
        scales: { y: { beginAtZero: true } },
        plugins: { legend: { display: datasets.length > 1 } }
      }
    });
  }

  chart("chart-rows", "bar", [
    { label: "written", data: data.rows_written, backgroundColor: "#60a5fa", stack: "rows" },
    { label: "quarantined", data: data.rows_quarantined, backgroundColor: "#f59e0b", stack: "rows" }
  ]);
  chart("chart-rate", "line", [
    { label: "rows/s", data: data.rows_per_s, borderColor: okColor, pointBackgroundColor: pointColors, pointRadius: 4 }
  ]);
  chart("chart-duration", "line", [
    { label: "seconds", data: data.duration_s, borderColor: "#7c3aed", pointBackgroundColor: pointColors, pointRadius: 4 }
  ]);
}());
