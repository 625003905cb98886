/** An answer over real HTTP: the status, the parsed JSON body (or the text) and the raw text. */
export interface HttpAnswer {
  status: number;
  body: any;
  text: string;
}

/** POSTs JSON to `${base}/api/v1${path}` with a Bearer key, over a real socket. */
export async function postJson(
  base: string, path: string, body: unknown, key: string, headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  const res = await fetch(`${base}/api/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // keep the text
  }
  return { status: res.status, body: parsed, text };
}
