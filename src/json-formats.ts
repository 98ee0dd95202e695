// The string formats every validator of the spec knows: ajv-formats', with `uuid` as RFC
// 9562 writes one (ajv-formats also takes the URN form `urn:uuid:…`, a second spelling
// of the same id that lookups would then treat as another).
import type { Ajv } from 'ajv';
import ajvFormats from 'ajv-formats';

const UUID = /^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$/i;

export function addFormats<A extends Pick<Ajv, 'addFormat'>>(ajv: A): A {
  ajvFormats.default(ajv as unknown as Ajv);
  ajv.addFormat('uuid', UUID);
  return ajv;
}
