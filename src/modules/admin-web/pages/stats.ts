// Statistics: small live charts (inline SVG, redrawn by assets/admin.js from /admin/stats.json
// every sampling interval) and every current value of the server's metrics, the same figures as
// GET /metrics and the ad-hoc "Get statistics" command.
import { METRIC_PREFIX, type MetricSample } from '../../../core/metrics.js';
import type { AdminWebApp } from '../app.js';
import { HEIGHT, WIDTH, type ChartHistory, type SeriesView } from '../chart-history.js';
import { html, table, type Html } from '../html.js';
import { sendJson } from '../../../http/server.js';

const SECTION = '/admin/stats';

export function chart(s: SeriesView): Html {
  return html`<figure class="chart" data-series="${s.key}">
    <figcaption>${s.label} <strong class="latest">${s.latest}</strong></figcaption>
    <svg viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${s.label}, last values">
      <polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${s.points}"></polyline>
    </svg>
    <small class="max">max ${s.max}</small>
  </figure>`;
}

/** The charts, refreshed live when the page has JavaScript. */
export function charts(views: SeriesView[], intervalSeconds: number, keys?: string[]): Html {
  const shown = keys ? views.filter((v) => keys.includes(v.key)) : views;
  return html`<div class="charts" data-stats="/admin/stats.json" data-interval="${intervalSeconds}">${shown.map(chart)}</div>`;
}

export function statsPages(app: AdminWebApp, history: ChartHistory, intervalSeconds: number): void {
  const { ctx } = app;

  app.on('GET', SECTION, async (rq) => {
    const samples = await ctx.metrics.snapshot();
    const rows = (list: MetricSample[]) => list.map((s) => [
      html`<span title="${s.help}">${s.name}</span>`,
      Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(', '),
      Number.isInteger(s.value) ? String(s.value) : String(Number(s.value.toPrecision(6))),
    ]);
    const server = samples.filter((s) => s.name.startsWith(METRIC_PREFIX));
    const process = samples.filter((s) => !s.name.startsWith(METRIC_PREFIX));
    app.render(rq, 200, 'Statistics', SECTION, html`
      <p class="hint">Sampled every ${intervalSeconds} s; the charts show the last ${Math.round((intervalSeconds * 120) / 60)} minutes.
        The same values are exported for Prometheus at <code>/metrics</code>.</p>
      ${charts(history.view(), intervalSeconds)}
      <h2>Server, now</h2>
      ${table(['Metric', 'Labels', 'Value'], rows(server))}
      <details><summary>Node.js process (${process.length} values)</summary>${table(['Metric', 'Labels', 'Value'], rows(process))}</details>`);
  });

  app.on('GET', '/admin/stats.json', (rq) => sendJson(rq.res, 200, { interval: intervalSeconds, series: history.view() }));
}
