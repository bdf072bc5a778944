// The uWebSockets.js package used here falls back to a slow pure-JS shim when
// its native binary fails to load. Chorus refuses to run on the shim.
import uWS from 'uWebSockets.js';

export function nativeUwsProblem(): string | null {
  const source = Function.prototype.toString.call(uWS.App);
  if (source.includes('[native code]')) return null;
  return (
    'uWebSockets.js did not load its native binary and fell back to the JavaScript shim. ' +
    `Chorus needs the native build (Node ${process.version}, ABI ${process.versions.modules}, ` +
    `${process.platform}-${process.arch}). Use Node.js 20 on linux-x64 / arm64 or darwin, ` +
    'reinstall with `npm ci`, and make sure UWS_USE_FALLBACK is not set.'
  );
}
