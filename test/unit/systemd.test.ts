import { describe, it, expect } from 'vitest';
import { listenFdFromSystemd } from '../../daemon/systemd/listen-fds.js';
import { parseMetricsListen } from '../../daemon/metrics/server.js';

describe('socket activation environment', () => {
  it('takes fd 3 for a single socket meant for this pid, and ignores one meant for another', () => {
    expect(listenFdFromSystemd({ LISTEN_PID: '42', LISTEN_FDS: '1' }, 42)).toBe(3);
    expect(listenFdFromSystemd({ LISTEN_PID: '43', LISTEN_FDS: '1' }, 42)).toBeUndefined();
    expect(listenFdFromSystemd({}, 42)).toBeUndefined();
  });
  it('picks the socket named attestd among several, and refuses ambiguity', () => {
    expect(listenFdFromSystemd({ LISTEN_PID: '7', LISTEN_FDS: '2', LISTEN_FDNAMES: 'metrics:attestd' }, 7)).toBe(4);
    expect(() => listenFdFromSystemd({ LISTEN_PID: '7', LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b' }, 7)).toThrow(/none is named/);
    expect(() => listenFdFromSystemd({ LISTEN_PID: '7', LISTEN_FDS: '2' }, 7)).toThrow(/more than one/);
  });
});

describe('metrics address', () => {
  it('accepts loopback and Unix sockets only', () => {
    expect(parseMetricsListen('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseMetricsListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseMetricsListen('unix:/run/attestd/m.sock')).toEqual({ path: '/run/attestd/m.sock' });
    for (const bad of ['0.0.0.0:9464', '10.0.0.1:1', '127.0.0.1:0', '127.0.0.1:70000', 'localhost', 'unix:relative']) {
      expect(() => parseMetricsListen(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});
