// Renders a received value for an error message: JSON-quoted so newlines, NUL and quotes show as escapes,
// and cut short so a hostile megabyte does not flood the log.

const MAX_SHOWN = 80;

/** `"web_frontend"` for strings, `number 5` / `array` / `null` for anything else. */
export function display(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value);
  }
  if (value === null) {
    return "null";
  }
  if (Array.isArray(value)) {
    return "an array";
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return `${typeof value} ${String(value)}`;
  }
  return typeof value === "object" ? "an object" : typeof value;
}
