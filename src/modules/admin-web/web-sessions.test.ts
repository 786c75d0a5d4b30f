import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { SESSION_COOKIE, WebSessions, readCookies, sameToken } from './web-sessions.js';

const request = (cookie?: string) => ({ headers: cookie === undefined ? {} : { cookie }, socket: {} }) as unknown as IncomingMessage;

describe('admin web sessions', () => {
  it('finds a session by its cookie until it has been idle too long', () => {
    let now = 0;
    const sessions = new WebSessions(60_000, () => now);
    const s = sessions.create('admin@example.com');
    assert.notEqual(s.id, s.csrf);
    now = 59_000;
    assert.equal(sessions.find(request(`other=1; ${SESSION_COOKIE}=${s.id}`))?.admin, 'admin@example.com');
    now = 118_000;
    assert.ok(sessions.find(request(`${SESSION_COOKIE}=${s.id}`)), 'each request keeps it alive');
    now = 178_001;
    assert.equal(sessions.find(request(`${SESSION_COOKIE}=${s.id}`)), undefined, 'idle for more than a minute');
    assert.equal(sessions.find(request()), undefined);
  });

  it('keeps at most maxSessions, ending the least recently used', () => {
    const sessions = new WebSessions(60_000, () => 0, 2);
    const a = sessions.create('a@x');
    const b = sessions.create('b@x');
    sessions.find(request(`${SESSION_COOKIE}=${a.id}`));
    sessions.create('c@x');
    assert.ok(sessions.find(request(`${SESSION_COOKIE}=${a.id}`)));
    assert.equal(sessions.find(request(`${SESSION_COOKIE}=${b.id}`)), undefined);
  });

  it('reads only well-formed cookie values and compares tokens in full', () => {
    assert.deepEqual([...readCookies(request('a=abc_-1; b="quoted"; c=x y; =z; a=second'))], [['a', 'abc_-1']]);
    assert.equal(sameToken('abc', 'abc'), true);
    assert.equal(sameToken('abc', 'abd'), false);
    assert.equal(sameToken('abc', 'abcd'), false);
    assert.equal(sameToken(undefined, undefined), false);
    assert.equal(sameToken('', ''), false);
  });
});
