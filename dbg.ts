import { operationFor, responseViolations, specBackend } from './test/helpers/spec-validator.ts';
const api = await specBackend();
console.log(operationFor(api, 'POST', '/api/messaging/sessions'));
try { console.log(responseViolations(api, 'createSession', 201, { sessionId: 'x' })); } catch (e) { console.log('THROW', e); }
try { console.log(responseViolations(api, undefined, 404, { success: false, error: {code:'NOT_FOUND', message:'x'} })); } catch (e) { console.log('THROW', e); }
