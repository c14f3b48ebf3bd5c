#!/bin/sh
# genesis (compose one-shot): the demo chain's genesis hash, into /genesis/chain. The signers'
# config needs it (`chain`), and it depends on the runtime wasm inside the demo node image, so
# it is read from that image: a throw-away node on `--chain local --tmp`, asked over its RPC
# (loopback inside this container) for block 0's hash, then stopped.
set -eu
exclave-demo-node --chain local --tmp --no-prometheus --no-telemetry --no-mdns \
	--rpc-port 9944 --listen-addr /ip4/127.0.0.1/tcp/30399 >/tmp/genesis-node.log 2>&1 &
pid=$!
hash=""
i=0
while [ $i -lt 120 ] && [ -z "$hash" ]; do
	sleep 1
	i=$((i + 1))
	hash=$(curl -fsS -H 'content-type: application/json' \
		-d '{"jsonrpc":"2.0","id":1,"method":"chain_getBlockHash","params":[0]}' http://127.0.0.1:9944 2>/dev/null |
		sed -n 's/.*"result":"\(0x[0-9a-f]\{64\}\)".*/\1/p') || hash=""
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if [ -z "$hash" ]; then
	tail -20 /tmp/genesis-node.log >&2
	echo "genesis: the node did not answer chain_getBlockHash(0) within 120 s" >&2
	exit 1
fi
echo "$hash" >/genesis/chain.tmp
mv /genesis/chain.tmp /genesis/chain
echo "genesis: $hash"
