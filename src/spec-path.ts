// Where the OpenAPI document lives: a module of its own, so that a command can name it
// without loading the spec's validators (most of a second).
import { fileURLToPath } from 'node:url';

export const specPath = fileURLToPath(new URL('../openapi/sessions-api.yaml', import.meta.url));
