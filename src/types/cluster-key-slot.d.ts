// cluster-key-slot ships no types; it is the slot function ioredis itself routes with.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0-16383) of a key, honouring {hash tags}. */
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    /** The common slot of all keys, or -1 when they span several. */
    function generateMulti(keys: Array<string | Buffer>): number;
  }
  export = calculateSlot;
}
