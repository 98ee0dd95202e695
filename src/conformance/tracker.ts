// Everything the suite creates, learnt from the answers (fixtures, generated bodies,
// hostile ones alike), deleted at the end, newest first. Only what it created: an id
// comes from the answer to the suite's own create request.
import { findId } from './fixtures.js';
import type { Answer } from './http.js';
import type { RequestValues } from './requests.js';
import type { Operation, SpecModel } from './spec-model.js';

interface Deleter {
  operation: Operation;
  parameter: string;
}

interface Created {
  deleter: Deleter;
  id: string;
}

export interface Cleanup {
  deleted: number;
  /** Resources that could not be deleted, each with why. */
  left: string[];
}

export class ResourceTracker {
  private readonly deleters = new Map<string, Deleter>();
  private readonly created: Created[] = [];

  constructor(spec: SpecModel) {
    for (const operation of spec.operations.filter((o) => o.method === 'DELETE')) {
      const match = /^(.*)\/\{([^}]+)\}$/.exec(operation.path);
      if (!match) continue;
      const producer = spec.operations.find((o) => o.method === 'POST' && o.path === match[1]);
      if (producer) this.deleters.set(producer.operationId, { operation, parameter: match[2]! });
    }
  }

  /** Called with every answer: a successful create is remembered. */
  learn(operation: Operation, answer: Answer): void {
    if (answer.status < 200 || answer.status >= 300) return;
    const deleter = this.deleters.get(operation.operationId);
    if (!deleter) return;
    const id = findId(answer.json, [deleter.parameter, 'id']);
    // The same id learnt twice (a server answering every create with one example id, as a mock does) is deleted once.
    if (id !== undefined && !this.created.some((c) => c.deleter === deleter && c.id === id)) this.created.push({ deleter, id });
  }

  get count(): number {
    return this.created.length;
  }

  /**
   * Deletes what was created: kinds in the reverse order of their first creation (sessions
   * before the agents they belong to), `workers` at a time within a kind. Gone already
   * (404, 410) counts as deleted.
   */
  async cleanup(call: (operation: Operation, values: RequestValues) => Promise<Answer>, workers = 1): Promise<Cleanup> {
    const result: Cleanup = { deleted: 0, left: [] };
    const kinds = [...new Set(this.created.map((c) => c.deleter))].reverse();
    for (const deleter of kinds) {
      const ids = this.created.filter((c) => c.deleter === deleter).map((c) => c.id).reverse();
      const force = deleter.operation.parameters.find((p) => p.in === 'query' && p.name === 'force' && p.schema.type === 'boolean');
      let next = 0;
      const worker = async () => {
        while (next < ids.length) {
          const id = ids[next++]!;
          const answer = await call(deleter.operation, { path: { [deleter.parameter]: id }, query: force ? { force: true } : {} });
          if ((answer.status >= 200 && answer.status < 300) || answer.status === 404 || answer.status === 410) result.deleted += 1;
          else result.left.push(`${deleter.operation.operationId} ${id}: ${answer.error ?? `answered ${answer.status}`}`);
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, workers) }, worker));
    }
    this.created.length = 0;
    return result;
  }
}
