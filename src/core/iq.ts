// IQ dispatch by payload namespace (RFC 6120 8.2.3). Handlers return the result payload
// (or nothing for an empty result) and throw StanzaError for errors; an IQ nobody handles
// gets service-unavailable, a handler that crashes gets internal-server-error.
import type { Element } from '../xml/element.js';
import type { Routed } from './events.js';

export type IqHandler = (iq: Routed & { payload: Element }) => Element | void | Promise<Element | void>;

export interface IqHandlers {
  get?: IqHandler;
  set?: IqHandler;
}

/** Where an IQ is addressed: the server domain, or an account's bare JID (own or another's). */
export type IqTarget = 'host' | 'account';

export class IqRegistry {
  private readonly handlers = new Map<string, IqHandler>();

  /** Registers handlers for IQs whose payload is in `ns`; returns a remover. */
  register(target: IqTarget, ns: string, handlers: IqHandlers): () => void {
    const keys: string[] = [];
    for (const type of ['get', 'set'] as const) {
      const h = handlers[type];
      if (!h) continue;
      const key = `${target} ${type} ${ns}`;
      if (this.handlers.has(key)) throw new Error(`two handlers for ${key}`);
      this.handlers.set(key, h);
      keys.push(key);
    }
    return () => { for (const k of keys) this.handlers.delete(k); };
  }

  find(target: IqTarget, type: string, ns: string | undefined): IqHandler | undefined {
    return ns === undefined ? undefined : this.handlers.get(`${target} ${type} ${ns}`);
  }
}
