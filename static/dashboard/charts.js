// Draws the dashboard's charts from the JSON the page embeds. The same
// numbers are in the tables, so a page without JavaScript loses nothing.
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var colours = {
    iql: "#6c757d", mql: "#0d6efd", sql: "#198754", opportunity: "#fd7e14",
    won: "#20c997", cold: "#0dcaf0", warm: "#ffc107", hot: "#dc3545"
  };
  Chart.defaults.animation = false;

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  if (data.funnel) {
    draw("funnel-chart", {
      type: "bar",
      data: {
        labels: data.funnel.labels,
        datasets: [{
          label: data.funnel.title,
          data: data.funnel.counts,
          backgroundColor: data.funnel.keys.map(function (k) { return colours[k]; })
        }]
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } } }
    });
  }
  if (data.weekly) {
    draw("weekly-chart", {
      type: "bar",
      data: {
        labels: data.weekly.labels,
        datasets: data.weekly.series.map(function (series) {
          return {
            label: series.label,
            data: series.counts,
            backgroundColor: colours[series.key]
          };
        })
      },
      options: {
        scales: {
          x: { stacked: data.weekly.stacked },
          y: { stacked: data.weekly.stacked, beginAtZero: true }
        }
      }
    });
  }
  if (data.temperature) {
    draw("temperature-chart", {
      type: "doughnut",
      data: {
        labels: data.temperature.labels,
        datasets: [{
          data: data.temperature.counts,
          backgroundColor: data.temperature.keys.map(function (k) { return colours[k]; })
        }]
      },
      options: { plugins: { legend: { position: "bottom" } } }
    });
  }
})();
