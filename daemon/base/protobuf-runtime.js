// Loaded by the generated daemon/gen/proto.js before anything else touches protobufjs:
// attestd's 64-bit fields (times in milliseconds, counters, sequence numbers) stay far below
// 2^53, so they decode as plain numbers rather than Long objects.
import $protobuf from 'protobufjs/minimal.js';

$protobuf.util.Long = undefined;
$protobuf.configure();
