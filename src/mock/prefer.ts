// The Prefer header as Prism reads it: `Prefer: code=404, example=expired`.
export interface Preference {
  code?: string;
  example?: string;
}

export function parsePrefer(header: string | string[] | undefined): Preference {
  const preference: Preference = {};
  for (const part of [header ?? []].flat().join(',').split(/[,;]/)) {
    const [name = '', ...rest] = part.trim().split('=');
    const key = name.trim().toLowerCase(); // RFC 7240: preference names are case-insensitive
    const value = rest.join('=').trim().replace(/^"(.*)"$/, '$1');
    if ((key === 'code' || key === 'example') && value) preference[key] = value;
  }
  return preference;
}
