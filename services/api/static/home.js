// Home's 30-day usage chart, drawn by Chart.js (loaded before this module from /static/vendor/chart.js/).
// The figures come from the page's #usage-chart-data (made on the server in the organisation's calendar);
// screen readers get the canvas's description and the table under it, which has every figure.
// While anything is sending, the figures (usage, cost, campaigns by state) follow /api/v1/dashboard/home.
import { api, formatMoney, formatNumber } from "./app.js";

const canvas = document.getElementById("usage-chart");
const source = document.getElementById("usage-chart-data");

if (canvas && source && window.Chart) {
  const data = JSON.parse(source.textContent);
  const style = getComputedStyle(canvas);
  const colour = (name) => style.getPropertyValue(name).trim();
  const last = data.segments.length - 1;
  const count = new Intl.NumberFormat("en-US");
  const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  // Axis labels in the page's own type.
  window.Chart.defaults.font.family = style.fontFamily;
  window.Chart.defaults.font.size = 11;
  window.Chart.defaults.color = colour("--ink-faint");

  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        {
          label: "Failed messages",
          // A day without failures draws nothing (null), rather than a red sliver of minBarLength.
          data: data.failed.map((n) => (n > 0 ? n : null)),
          backgroundColor: colour("--chart-failed"),
          minBarLength: 2,
          order: 0, // drawn last, so on top of its day's segments bar
        },
        {
          label: "Segments",
          data: data.segments,
          backgroundColor: data.segments.map((n, i) =>
            colour(i === last ? "--chart-today" : n > 0 ? "--chart-segments" : "--chart-zero")),
          hoverBackgroundColor: colour("--chart-hover"),
          minBarLength: 2, // a small day next to a busy one stays visible
          borderRadius: 2,
          order: 1,
        },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      datasets: { bar: { grouped: false, categoryPercentage: 0.8, barPercentage: 0.85 } },
      scales: {
        x: {
          grid: { display: false },
          // A date every week, counted back from the last day so that today is always labelled.
          ticks: { autoSkip: false, maxRotation: 0, callback: (_, i) => ((last - i) % 7 === 0 ? data.labels[i] : null) },
        },
        y: {
          beginAtZero: true,
          ticks: { precision: 0, maxTicksLimit: 5, callback: (value) => count.format(value) },
        },
      },
      plugins: {
        legend: { display: false }, // the card's own legend, in the page's type and colours
        tooltip: {
          callbacks: {
            title: (items) => data.titles[items[0].dataIndex],
            label: () => null,
            afterBody: (items) => {
              const i = items[0].dataIndex;
              return [
                `${count.format(data.segments[i])} segments`,
                `${count.format(data.messages[i])} messages`,
                `${count.format(data.failed[i])} failed`,
                `${money.format(Number(data.cost[i]))} cost`,
              ];
            },
          },
        },
      },
    },
  });
}

// ---- Live figures: #home-figures[data-refresh][data-open] ---------------------------------------------
const REFRESH_MS = 5000;
const live = document.getElementById("home-figures");

function figures(home) {
  const usage = home.usage;
  const n = home.campaigns_by_state;
  return {
    used_this_month: formatNumber(home.plan.used_this_month),
    segments_today: formatNumber(usage.segments_today),
    messages_today: formatNumber(usage.messages_today),
    segments_this_month: formatNumber(usage.segments_this_month),
    messages_this_month: formatNumber(usage.messages_this_month),
    failed_this_month: formatNumber(usage.failed_this_month),
    cost_this_month: formatMoney(usage.cost_this_month),
    tile_draft: formatNumber(n.draft),
    tile_scheduled: formatNumber(n.scheduled),
    tile_sending: formatNumber(n.sending + n.paused),
    note_sending: n.paused ? ` · ${n.paused} paused` : "",
    tile_completed: formatNumber(n.completed + n.cancelled),
    note_completed: n.cancelled ? ` · ${n.cancelled} cancelled` : "",
    tile_archived: formatNumber(n.archived),
  };
}

function showFigures(home) {
  const values = figures(home);
  document.querySelectorAll("[data-figure]").forEach((el) => {
    const value = values[el.dataset.figure];
    if (value !== undefined && el.textContent !== value) el.textContent = value;
  });
  const bar = document.querySelector("#stat-plan progress");
  if (bar && home.plan.used_percent !== null) bar.value = Math.min(home.plan.used_percent, 100);
}

// Polls only while a campaign is sending or paused: the answer that shows nothing open is the last.
async function followFigures() {
  if (document.visibilityState === "visible") {
    try {
      const home = await api("GET", live.dataset.refresh);
      showFigures(home);
      live.dataset.open = home.sending.length ? "true" : "false";
    } catch {
      /* a missed poll is retried on the next tick */
    }
  }
  if (live.dataset.open === "true") setTimeout(followFigures, REFRESH_MS);
}

if (live?.dataset.open === "true") setTimeout(followFigures, REFRESH_MS);
