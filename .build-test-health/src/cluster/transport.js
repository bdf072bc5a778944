// A transport moves bytes between nodes and knows nothing of Pusher: topics to
// publish and subscribe, and a few atomic operations in the broker. Everything
// with meaning (presence, counts, who gets what) lives in the adapter above it.
export {};
