// The admin web UI (seed 001 section 11.6.1) at /admin/ on the HTTP port: administrators (the
// `admins` JIDs, with their XMPP password) manage domains, users and sessions, browse PubSub
// nodes and watch statistics with live charts, and find the operator panel. Every change runs the
// same ad-hoc command an XMPP administrator would (VHost Manager, XEP-0133): one code path, one set
// of rules. Plain server-rendered forms; the little JavaScript there is (live charts, confirming a
// removal) only improves them.
import { z } from 'zod';
import { defineModule } from '../../core/module-definition.js';
import { AdminWebApp } from './app.js';
import { ChartHistory } from './chart-history.js';
import { domainPages } from './pages/domains.js';
import { clusterPages } from './pages/cluster.js';
import { overviewPage } from './pages/overview.js';
import { pubsubPages } from './pages/pubsub.js';
import { sessionPages } from './pages/sessions.js';
import { statsPages } from './pages/stats.js';
import { userPages } from './pages/users.js';

export default defineModule({
  name: 'admin-web',
  description: 'Admin web UI at /admin/ on the HTTP port (seed 001 section 11.6.1): domains, users, sessions, PubSub nodes, live statistics, for the admins',
  config: z.object({
    enabled: z.boolean().default(true).describe('Serve the admin UI at /admin/ (only the JIDs in admins can log in)'),
    'session-timeout': z.number().int().min(60).default(1800).describe('Seconds an admin UI login stays valid without a request'),
    'login-attempts': z.number().int().min(1).default(5)
      .describe('Failed logins allowed per client address, and per account, within login-window; beyond, logins are refused until the window passes'),
    'login-window': z.number().int().min(1).default(300).describe('Seconds over which failed admin UI logins are counted'),
    'chart-interval': z.number().int().min(1).default(5).describe('Seconds between two samples of the live charts (the last 120 are shown)'),
  }).strict(),
  setup(ctx) {
    if (!ctx.config.enabled) return;
    const app = new AdminWebApp(ctx);
    const history = new ChartHistory();
    const interval = ctx.config['chart-interval'];
    const sample = () => ctx.metrics.snapshot().then((s) => history.add(s, Date.now()), (e: unknown) => ctx.log.warn({ err: e }, 'admin web: statistics sample failed'));
    void sample();
    const sampler = setInterval(() => { void sample(); }, interval * 1000);
    sampler.unref();
    const sweeper = setInterval(() => app.sessions.sweep(), 60_000);
    sweeper.unref();

    overviewPage(app, history, interval);
    domainPages(app);
    userPages(app);
    sessionPages(app);
    pubsubPages(app);
    clusterPages(app);
    statsPages(app, history, interval);
    app.on('POST', '/admin/logout', (rq) => app.logout(rq));
    ctx.http.route('/admin/', (req, res, url) => app.handle(req, res, url), { documentedIn: 'README "Admin web UI" (HTML pages for people)' });
    return () => {
      clearInterval(sampler);
      clearInterval(sweeper);
      app.sessions.clear();
    };
  },
});
