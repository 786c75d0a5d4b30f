// The admin UI's only script, an enhancement of server-rendered pages: forms with data-confirm
// ask before they are sent, and the charts redraw from /admin/stats.json every sampling interval.
'use strict';

document.addEventListener('submit', (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) event.preventDefault();
});

function startCharts(container) {
  const url = container.dataset.stats;
  const seconds = Math.max(1, Number(container.dataset.interval) || 5);
  const refresh = async () => {
    try {
      const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
      if (!response.ok) return;
      const { series } = await response.json();
      for (const s of series) {
        const figure = container.querySelector(`figure[data-series="${CSS.escape(s.key)}"]`);
        if (!figure) continue;
        figure.querySelector('polyline').setAttribute('points', s.points);
        figure.querySelector('.latest').textContent = s.latest;
        figure.querySelector('.max').textContent = `max ${s.max}`;
      }
      container.dataset.updated = String(Date.now());
    } catch {
      // The server is restarting or unreachable: the next tick tries again.
    }
  };
  setInterval(refresh, seconds * 1000);
}

document.querySelectorAll('.charts[data-stats]').forEach(startCharts);
