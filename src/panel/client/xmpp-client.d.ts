// The part of @xmpp/client (which ships no types) the operator panel uses, in the browser.
declare module '@xmpp/client' {
  /** An ltx element (structurally an XmlLike of ./model.ts). */
  export interface XmlElement {
    name: string;
    attrs: Record<string, string | undefined>;
    children: (XmlElement | string)[];
    text(): string;
    getChild(name: string, xmlns?: string): XmlElement | undefined;
    getChildren(name: string, xmlns?: string): XmlElement[];
    is(name: string, xmlns?: string): boolean;
    toString(): string;
  }

  export function xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: (XmlElement | string | undefined)[]): XmlElement;

  export interface Jid {
    toString(): string;
    bare(): Jid;
  }

  export interface Client {
    jid: Jid | null;
    on(event: 'stanza', listener: (stanza: XmlElement) => void): void;
    on(event: 'online', listener: (jid: Jid) => void): void;
    on(event: 'status', listener: (status: string) => void): void;
    on(event: 'error', listener: (error: Error & { condition?: string }) => void): void;
    on(event: 'offline' | 'disconnect', listener: () => void): void;
    start(): Promise<Jid>;
    stop(): Promise<void>;
    send(element: XmlElement): Promise<void>;
    iqCaller: { request(element: XmlElement, timeout?: number): Promise<XmlElement> };
    reconnect: { delay: number; stop(): void; start(): void };
  }

  export function client(options: { service: string; domain: string; resource?: string; username?: string; password?: string }): Client;
}
