// Values of the key-value store are kept as JSON text by both backends.

export function encodeJsonValue(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError('Cannot store a value that has no JSON form (undefined, a function or a symbol)');
  return json;
}
