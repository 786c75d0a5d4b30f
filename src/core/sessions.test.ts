import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseJid } from '../jid.js';
import type { ClientSession } from './session.js';
import { SessionManager } from './sessions.js';

/** Just what the session manager reads of a session: its JID and, for another node's, the node. */
function session(jid: string, node?: string): ClientSession {
  return { jid: parseJid(jid), node } as unknown as ClientSession;
}

describe('SessionManager counts', () => {
  it('counts this node\'s sessions apart from the other nodes\' (statistics, /health)', () => {
    const sessions = new SessionManager();
    const own = session('alice@localhost/phone');
    sessions.add(own);
    sessions.add(session('alice@localhost/desk', 'node2'));
    sessions.add(session('bob@localhost/desk', 'node2'));
    assert.equal(sessions.size, 3);
    assert.equal(sessions.localCount(), 1);
    sessions.remove(own);
    assert.equal(sessions.size, 2);
    assert.equal(sessions.localCount(), 0);
  });
});
