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

/** usage_write_group_size from the service's /metrics: groups committed, and writes in them (both write routes). */
export async function writeGroupSizes(base: string): Promise<{ count: number; sum: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^usage_write_group_size_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { count: read('count'), sum: read('sum') };
}
