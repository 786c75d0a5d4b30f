// A TCP proxy on a free loopback port, to cut one process's link to a server (a network
// partition) and restore it: pause() drops every connection and refuses new ones.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePorts } from './server.js';

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(readonly port: number, private readonly targetPort: number) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const [port] = await freePorts(1);
    const proxy = new TcpProxy(port!, targetPort);
    await proxy.resume();
    return proxy;
  }

  /** Accepts connections again, on the same port. */
  resume(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream).pipe(client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  /** Drops every connection and stops listening. */
  async pause(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}
