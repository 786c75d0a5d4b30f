// Anonymous users (seed 001 section 11.13). SASL ANONYMOUS itself is per virtual host
// (`vhost-options.<host>.anonymous-login`, or "Anonymous enabled" in the VHost Manager; off by
// default) and gives a temporary JID per login; the core keeps everything of such an account in
// memory and forgets it at logout (storage/ephemeral.ts), so nothing is stored: no roster, no
// offline messages to it (messages to it once it is gone are refused), no private data. There
// are no server-to-server connections, so anonymous users cannot reach other servers.
//
// This module adds the per-user traffic limit: an anonymous session may send at most
// `max-stanzas` stanzas and `max-bytes` bytes per `period` seconds (on by default); beyond, its
// stanzas are refused with policy-violation until the period ends, and a session that keeps
// going at more than twice the limit is disconnected.
import { z } from 'zod';
import { defineModule } from '../core/module-definition.js';
import type { ClientSession } from '../core/session.js';
import { StanzaError, StreamError } from '../core/errors.js';
import type { Element } from '../xml/element.js';

interface Window {
  start: number;
  stanzas: number;
  bytes: number;
}

export default defineModule({
  name: 'anonymous',
  description: 'Anonymous users (seed 001 section 11.13): the per-user traffic limit of SASL ANONYMOUS sessions (nothing of theirs is stored)',
  config: z.object({
    'traffic-limit': z.boolean().default(true).describe('Limit the traffic each anonymous user generates'),
    'max-stanzas': z.number().int().min(1).default(100).describe('Stanzas an anonymous session may send per period'),
    'max-bytes': z.number().int().min(1024).default(65536).describe('Bytes of stanzas an anonymous session may send per period'),
    period: z.number().int().min(1).default(60).describe('Length of the traffic limit period, in seconds'),
  }).strict(),
  setup(ctx) {
    const options = ctx.config;
    if (!options['traffic-limit']) return;
    const windows = new WeakMap<ClientSession, Window>();

    /** Counts a stanza of an anonymous session; true when it is over the limit (and was refused). */
    const overLimit = (stanza: Element, origin: ClientSession | undefined): boolean => {
      if (!origin?.anonymous) return false;
      const now = Date.now();
      let w = windows.get(origin);
      if (!w || now - w.start >= options.period * 1000) windows.set(origin, (w = { start: now, stanzas: 0, bytes: 0 }));
      w.stanzas++;
      w.bytes += Buffer.byteLength(stanza.toString());
      if (w.stanzas <= options['max-stanzas'] && w.bytes <= options['max-bytes']) return false;
      if (w.stanzas > 2 * options['max-stanzas'] || w.bytes > 2 * options['max-bytes']) {
        ctx.log.warn({ user: origin.jid.full, ip: origin.remoteAddress }, 'anonymous user disconnected: traffic limit exceeded');
        origin.close(new StreamError('policy-violation', 'traffic limit for anonymous users exceeded'));
        return true;
      }
      ctx.router.bounce(stanza, new StanzaError('policy-violation', `anonymous users may send ${options['max-stanzas']} stanzas and ${options['max-bytes']} bytes every ${options.period} seconds`, 'wait'), origin);
      return true;
    };

    // Every stanza the session sends counts, wherever it goes.
    return ctx.hooks.on('client/stanza', ({ stanza, origin }) => overLimit(stanza, origin), 1000);
  },
});
