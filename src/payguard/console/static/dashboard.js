// Draws the dashboard's charts from the JSON the server put in the page.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  function chart(id, option) {
    const el = document.getElementById(id);
    if (!el) return;
    const c = echarts.init(el, null, { renderer: "svg" });
    c.setOption(Object.assign({ animation: false, tooltip: { trigger: "axis" }, grid: { left: 50, right: 20, top: 30, bottom: 30 } }, option));
    el.dataset.drawn = "1";
  }
  const x = { type: "category", data: data.days };
  chart("chart-actions", {
    legend: {}, xAxis: x, yAxis: { type: "value" },
    series: Object.entries(data.per_action).map(([name, values]) => ({ name: name, type: "bar", stack: "a", data: values })),
  });
  chart("chart-friction", { xAxis: x, yAxis: { type: "value" }, series: [{ type: "line", data: data.friction_rate }] });
  chart("chart-money", { xAxis: x, yAxis: { type: "value" }, series: [{ type: "bar", data: data.money_stopped }] });
  chart("chart-errors", { xAxis: x, yAxis: { type: "value" }, series: [{ type: "bar", data: data.rule_errors }] });
  chart("chart-queues", {
    xAxis: { type: "category", data: data.queue_ages.map((q) => q.queue) }, yAxis: { type: "value" },
    series: [{ type: "bar", data: data.queue_ages.map((q) => q.oldest_hours) }],
  });
})();
