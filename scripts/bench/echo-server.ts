/**
 * The baseline server of the lease benchmark, run as its own process as the daemon is: a
 * Unix stream socket created the way the daemon creates its own (net.createServer, mode
 * 0660), frames read with FrameDecoder and each payload written straight back with
 * frameMessage. What the daemon costs beyond this is identification, policy, signing and
 * the durable audit record.
 *
 * Usage: node echo-server.js SOCKET    Prints "ready" once listening; stops on SIGTERM.
 */
import net from 'node:net';
import { chmod } from 'node:fs/promises';
import { FrameDecoder, frameMessage } from '../../daemon/api/framing.js';

const socketPath = process.argv[2];
if (!socketPath) {
  process.stderr.write('usage: echo-server SOCKET\n');
  process.exit(2);
}

const server = net.createServer({ allowHalfOpen: false }, (socket) => {
  const decoder = new FrameDecoder();
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const frame of decoder.push(chunk)) socket.write(frameMessage(frame));
    } catch {
      socket.destroy();
    }
  });
  socket.on('error', () => socket.destroy());
});

const oldMask = process.umask(0o117);
server.listen(socketPath, () => {
  process.umask(oldMask);
  void chmod(socketPath, 0o660).then(() => process.stdout.write('ready\n'));
});
process.once('SIGTERM', () => process.exit(0));
