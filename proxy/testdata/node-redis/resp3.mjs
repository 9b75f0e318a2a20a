// resp3.mjs: node-redis 5 speaking RESP3 (HELLO 3) to the address in
// REDIS_URL, run by proxy/resp3_clients_test.go through the proxy and
// straight to a redis-server. It prints one JSON object of what the
// commands returned, decoded as node-redis decodes RESP3 by default: maps
// as objects, doubles as numbers, nulls as null.
import { createClient } from 'redis';

const client = createClient({ url: process.env.REDIS_URL, RESP: 3, socket: { reconnectStrategy: false } });
client.on('error', (err) => { console.error(`client error: ${err}`); process.exitCode = 1; });
await client.connect();

const out = {};
const hello = await client.sendCommand(['HELLO']);
out.helloProto = hello.proto;
out.helloKeys = Object.keys(hello);
out.set = await client.set('node:s', 'v1');
out.get = await client.get('node:s');
out.getMissing = await client.get('node:missing');
await client.hSet('node:h', { a: '1', b: '2' });
out.hGetAll = await client.hGetAll('node:h');
out.hGetAllMissing = await client.hGetAll('node:hmissing');
// Raw replies, as the protocol decodes them: a RESP3 map is an object,
// a RESP3 double a number (in RESP2: an array, a string).
out.rawHGetAll = await client.sendCommand(['HGETALL', 'node:h']);
await client.sAdd('node:set', ['x', 'y', 'z']);
out.sMembers = (await client.sMembers('node:set')).sort();
await client.zAdd('node:z', [{ score: 1.5, value: 'm' }, { score: 2, value: 'n' }]);
out.zScore = await client.zScore('node:z', 'm');
out.rawZScore = await client.sendCommand(['ZSCORE', 'node:z', 'm']);
out.zRangeWithScores = await client.zRangeWithScores('node:z', 0, -1);
out.mSet = await client.mSet({ 'node:1': 'a', 'node:2': 'b', 'node:3': 'c', 'node:4': 'd' });
out.mGet = await client.mGet(['node:1', 'node:2', 'node:missing', 'node:3', 'node:4']);
out.del = await client.del(['node:1', 'node:2', 'node:missing']);
// A pipeline without MULTI, and commands pipelined by node-redis itself.
out.pipeline = await client.multi()
  .set('node:p', '1').incr('node:p').get('node:p').hGetAll('node:h').mGet(['node:p', 'node:3', 'node:none'])
  .execAsPipeline();
out.autoPipelined = await Promise.all([
  client.get('node:p'), client.exists(['node:p', 'node:3', 'node:none']), client.hGet('node:h', 'b'),
  client.zScore('node:z', 'n'), client.get('node:none'),
]);
try {
  await client.sendCommand(['LPUSH', 'node:s', 'x']);
  out.wrongType = 'no error';
} catch (err) {
  out.wrongType = err.message;
}
out.ping = await client.ping();
await client.close();
console.log(JSON.stringify(out));
