// The one node built-in circomlibjs's Poseidon imports.
export default function assert(ok, message) {
  if (!ok) throw new Error(message || "assertion failed");
}
