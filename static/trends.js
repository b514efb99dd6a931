// Draw the trend charts from the figures the page embeds; every chart has a table beside it.
(function () {
  const source = document.getElementById("trend-data");
  if (!source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const palette = ["#1f5fae", "#6a3fb0", "#0d6b5f", "#b5651d", "#a3161b", "#4a7f2c", "#8a6d00",
                   "#2d8fb0", "#b03f8c", "#5b6168", "#7d4e24", "#3f51b0", "#0f8f6f"];
  const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  Chart.defaults.color = dark ? "#e6e6e3" : "#1d1f21";
  Chart.defaults.borderColor = dark ? "#30343a" : "#dcdfe3";

  function lines(series) {
    return Object.entries(series).map(([label, values], i) => ({
      label, data: values, borderColor: palette[i % palette.length],
      backgroundColor: palette[i % palette.length], cubicInterpolationMode: "monotone", pointRadius: 2,
    }));
  }
  const charts = {
    volume: () => ({
      type: "bar",
      data: { labels: data.periods, datasets: Object.entries(data.severity).map(([level, values], i) => ({
        label: level, data: values, backgroundColor: palette[i % palette.length], stack: "s" })) },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    }),
    facet: () => ({ type: "line", data: { labels: data.periods, datasets: lines(data.shares.facet) },
      options: { scales: { y: { beginAtZero: true, max: 100, title: { display: true, text: "% of postmortems" } } } } }),
    category: () => ({ type: "line", data: { labels: data.periods, datasets: lines(data.shares.category) },
      options: { scales: { y: { beginAtZero: true, max: 100, title: { display: true, text: "% of postmortems" } } } } }),
    detect: () => ({ type: "bar", data: { labels: data.periods, datasets: [
        { label: "median hours to detect", data: data.detect, backgroundColor: palette[0] }] },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: "hours" } } } } }),
  };
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const make = charts[canvas.dataset.chart];
    if (!make) return;
    const config = make();
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    new Chart(canvas, config);
  });
})();
